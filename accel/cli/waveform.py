"""``--vcd FILE`` and ``--vcd-cycles START:END`` of ``accel conv`` and ``accel hmma``: the options, their
checks before the run, and the waveform file written all-or-nothing."""

import argparse
import os
from contextlib import contextmanager
from dataclasses import replace

from ..sim.backends import check_waveform
from ..sim.errors import BackendError
from ..sim.waveform import DEFAULT_CYCLES, Waveform
from ..synth.workspace import atomic_path
from .errors import UserError
from .files import check_output

__all__ = ["add_waveform", "waveform_from", "written", "waveform_summary"]


def cycle_window(text):
    """An argparse ``type``: ``START:END`` with 0 ≤ START < END, as ``(START, END)``."""
    start, colon, end = text.partition(":")
    try:
        window = int(start), int(end)
    except ValueError:
        window = None
    if not colon or window is None or window[0] < 0:
        raise argparse.ArgumentTypeError(f"must be START:END, two cycle numbers from 0 on, not {text!r}")
    if window[1] <= window[0]:
        raise argparse.ArgumentTypeError(f"{text!r} holds no cycle: START:END holds START <= cycle < END, so "
                                         f"END must be greater than START")
    return window


def add_waveform(parser):
    """``--vcd FILE`` and ``--vcd-cycles START:END``."""
    parser.add_argument("--vcd", metavar="FILE", help="write a waveform of the run, every signal named by its "
                        "place in the design (open it in GTKWave or Surfer): FILE.vcd (VCD, any backend) or "
                        "FILE.fst (FST, --backend verilator)")
    parser.add_argument("--vcd-cycles", type=cycle_window, metavar="START:END",
                        help=f"the cycles the waveform holds, START <= cycle < END (default 0:{DEFAULT_CYCLES}: "
                             f"the first {DEFAULT_CYCLES:,} cycles)")


def waveform_from(args, inputs, outputs):
    """The :class:`~accel.sim.waveform.Waveform` that ``args`` ask for (None without ``--vcd``), checked
    before the run: a file name that can be written and is none of ``inputs`` and ``outputs``, a kind the
    backend writes (and can build here). A UserError otherwise."""
    if args.vcd is None:
        if args.vcd_cycles is not None:
            raise UserError("--vcd-cycles needs --vcd FILE")
        return None
    start, stop = args.vcd_cycles or (0, DEFAULT_CYCLES)
    try:
        waveform = Waveform(args.vcd, start, stop)
        check_waveform(args.backend, waveform)
        check_output(args.vcd, inputs=inputs)
    except (ValueError, UserError, BackendError) as error:
        raise UserError(f"--vcd {error}") from None
    for output in outputs:
        if os.path.realpath(args.vcd) == os.path.realpath(output):
            raise UserError(f"--vcd {args.vcd}: is also the output {output}; give the waveform its own file")
    return waveform


@contextmanager
def written(waveform):
    """Run the block with ``waveform`` pointed at a temporary file beside it (None: nothing to write); the
    file appears under its own name once the block ends, and not at all if it fails."""
    if waveform is None:
        yield None
        return
    try:
        with atomic_path(waveform.path) as temporary:
            yield replace(waveform, path=temporary)
    except OSError as error:
        raise UserError(f"{waveform.path}: cannot write ({error.strerror or error})") from None


def waveform_summary(waveform, cycles):
    """The summary's ``waveform`` entry: the file and the cycles ``start`` ≤ c < ``stop`` it holds of a run
    of ``cycles`` (none, start = stop, when the run ended before the window)."""
    return {"file": waveform.path, "start": waveform.start,
            "stop": max(waveform.start, min(waveform.stop, cycles))}
