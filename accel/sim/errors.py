"""The one exception type that the ``accel`` command turns into a one-line error message."""


class UserError(Exception):
    """Bad input a user can reach: wrong shape, dtype, missing key, corrupt file, unknown option."""


class CheckFailed(Exception):
    """A self-check of a finished run failed (hardware against golden, one backend against another):
    the output is complete but not trustworthy. One line on stderr and exit status 1."""
