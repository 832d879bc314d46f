"""The ``accel`` sub-commands, one module each (see :mod:`accel.sim.cli`), and their shared option types."""

import argparse


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
