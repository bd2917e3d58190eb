class DataError(RuntimeError):
    """Data that cannot be used as configured; the message says what to do."""
