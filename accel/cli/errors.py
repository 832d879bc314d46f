"""The one exception type of the command line: bad input a user can reach (wrong shape, dtype, missing key,
corrupt file, unknown option, a size out of bounds). :func:`accel.cli.main.main` turns it, and the library's
own input errors, into one line on stderr and exit status 2."""


class UserError(Exception):
    """Bad input a user can reach; the message names the problem in one line."""
