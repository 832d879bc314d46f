"""Option types the sub-commands share: each turns bad text into the parser's one-line error naming the option."""

import argparse

from ..golden.gating import GATING_STYLES, Gating
from ..hw.accelerator import ALGORITHMS, SPARSE_MODES, WEIGHT_FORMATS
from ..sim.backends import BACKENDS
from .errors import UserError

__all__ = ["bounded_int", "add_gating", "add_backend", "add_algorithm", "add_sparse_mode", "sparse_mode"]


def bounded_int(low, high=None):
    """An argparse ``type``: an integer in ``low..high`` (no upper bound when ``high`` is None), else the
    parser's one-line error naming the option and the range."""
    span = f"at least {low}" if high is None else f"in {low}..{high}"

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer {span}, not {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer {span}, not {value}")
        return value

    return parse


def _gating(text):
    """A :class:`~accel.golden.gating.Gating`, or the text itself for the parser's "invalid choice" line."""
    try:
        return Gating(text)
    except ValueError:
        return text


def add_gating(parser, default=Gating.HOLD, help="zero gating style (default hold: frozen lines, a zero "
               "operand's product is skipped)"):
    """``--gating hold|and|none``, parsed to a :class:`~accel.golden.gating.Gating`."""
    parser.add_argument("--gating", type=_gating, choices=GATING_STYLES, default=default, help=help)


def add_backend(parser):
    """``--backend pysim|verilator`` (default pysim)."""
    parser.add_argument("--backend", default="pysim", choices=list(BACKENDS))


def add_algorithm(parser, default="direct"):
    """``--algo direct|winograd2|winograd4``."""
    parser.add_argument("--algo", choices=ALGORITHMS, default=default,
                        help="convolution algorithm: direct (im2col) or Winograd F(2x2,3x3) / F(4x4,3x3)")


def add_sparse_mode(parser):
    """``--format dense|bitmask|rle|nm24`` (default None: the caller's) and ``--sparse-mode skip|gate`` (default
    None: :func:`sparse_mode` picks)."""
    parser.add_argument("--format", choices=WEIGHT_FORMATS, default=None,
                        help="how the weight buffer holds the weights (default dense, or the .acw file's format)")
    parser.add_argument("--sparse-mode", choices=SPARSE_MODES, default=None,
                        help="nm24 weights: skip (default: the 2:4 sparse array, 8 input channels an instruction; "
                             "direct only) or gate (expanded, the pruned zeros gated: 4 channels an instruction)")


def sparse_mode(fmt, algo, requested=None):
    """The sparse mode of ``fmt`` weights under ``algo``: ``requested``, else skip where it can be (nm24,
    direct), else gate; a :class:`UserError` for skip where it cannot be."""
    skippable = (fmt, algo) == ("nm24", "direct")
    mode = requested or ("skip" if skippable else "gate")
    if mode == "skip" and not skippable:
        raise UserError(f"--sparse-mode skip needs nm24 weights and --algo direct, not {fmt} weights and {algo}")
    return mode
