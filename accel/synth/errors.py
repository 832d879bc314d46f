"""Errors of the synthesis flows.

``accel.synth`` sits below ``accel.sim`` and cannot raise the CLI's ``UserError``; the ``accel synth``
command turns :class:`SynthInputError` (bad unit, flow or Liberty file: the user's input) into a
``UserError`` and reports any other :class:`SynthError` (a tool that failed on a design) as one line.
"""


class SynthError(Exception):
    """A synthesis or place-and-route tool failed; the message names the log file."""


class SynthInputError(SynthError, ValueError):
    """Bad input a user can reach: unknown unit or flow, missing or unusable Liberty file."""


class BuildFolderError(ValueError):
    """The build folder cannot be created or written (``$ACCEL_BUILD_DIR`` names another one)."""
