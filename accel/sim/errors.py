"""The one exception type that the ``accel`` command turns into a one-line error message."""


class UserError(Exception):
    """Bad input a user can reach: wrong shape, dtype, missing key, corrupt file, unknown option."""
