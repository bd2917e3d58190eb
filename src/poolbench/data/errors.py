from poolbench.errors import UserError


class DataError(UserError):
    """Data that cannot be used as configured; the message says what to do."""
