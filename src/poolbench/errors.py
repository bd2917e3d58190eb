class UserError(ValueError):
    """Bad input the user can fix: the message names the value and the fix, in one line.

    Entry points print it without a traceback and exit with status 2.
    """
