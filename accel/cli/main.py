"""The ``accel`` command: one sub-command per module in :mod:`accel.cli.commands`, and the error policy.

Every sub-command module exposes ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
A :class:`UserError`, or one of the library's input errors (:data:`INPUT_ERRORS`), raised anywhere below
becomes one line on stderr and exit status 2, so bad input never ends in a traceback; a :class:`CheckFailed`
(a run that disagrees with its reference) or a :class:`SynthError` (a synthesis tool that failed on a design;
the message names its log) becomes one line and exit status 1. A reader that closes the pipe
early ends the command quietly (status 141). This is the only place that knows about exit codes.
"""

import argparse
import os
import sys

from ..sim.errors import BackendError, CheckFailed
from ..synth.errors import BuildFolderError, SynthError, SynthInputError
from .commands import bench, compress, conv, decompress, energy, formats, hmma, run, sweep, synth, winograd
from .errors import UserError

COMMANDS = (bench, compress, conv, decompress, energy, formats, hmma, run, sweep, synth, winograd)

#: The library's errors that are the user's input (a bad unit, flow or Liberty file, an unusable build folder,
#: a backend that cannot run here): reported like a UserError.
INPUT_ERRORS = (UserError, SynthInputError, BuildFolderError, BackendError)


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(message)


def build_parser():
    parser = _Parser(prog="accel", description="accel: a cycle-level, synthesizable model of a sparse, "
                     "Winograd-capable tensor-core accelerator")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for module in COMMANDS:
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(handler=module.run)
    return parser


def main(argv=None):
    try:
        args = build_parser().parse_args(argv)
        status = args.handler(args) or 0
        sys.stdout.flush()      # a closed pipe shows here, not at exit
        return status
    except INPUT_ERRORS as error:
        print(f"accel: error: {error}", file=sys.stderr)
        return 2
    except CheckFailed as error:
        print(f"accel: check failed: {error}", file=sys.stderr)
        return 1
    except SynthError as error:
        print(f"accel: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("accel: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``accel ... | head``): stop quietly, as a command killed by SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
