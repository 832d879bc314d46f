"""Option types the sub-commands share: each turns bad text into the parser's one-line error naming the option."""

import argparse

from ..golden.gating import GATING_STYLES, Gating
from ..sim.backends import BACKENDS

__all__ = ["bounded_int", "add_gating", "add_backend"]


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
