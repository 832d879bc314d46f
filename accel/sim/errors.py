"""The simulators' own errors."""


class CheckFailed(Exception):
    """A self-check of a finished run failed (hardware against golden, one backend or level against another):
    the output is complete but not trustworthy. The command line reports it in one line, with exit status 1."""


class BackendError(Exception):
    """A simulator backend cannot run here (a missing tool, an unrunnable compiled model); the message says
    what to do. The command line reports it in one line, with exit status 2."""
