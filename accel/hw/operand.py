"""The flagged operand: a value of a float format and the ``is_zero`` flag that travels with it.

One named payload layout (:class:`Flagged`) for every place an operand crosses a block boundary with its zero
flag: the multipliers' inputs, the adders' gated input, the HMMA array's A and B, the sparse decompressor's
output. The flag is a field of the payload, so operand isolation is visible in the interface. The
:class:`ZeroDetector` is the sender's side: it raises the flag.
"""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..golden.fp import FP16, FloatFormat

__all__ = ["Flagged", "ZeroDetector"]


class Flagged(data.StructLayout):
    """``{value: fmt.width, is_zero: 1}``: a value of ``fmt`` and its zero flag (``value`` is stale when
    ``is_zero`` is set under ``hold``: the sender did not send it)."""

    def __init__(self, fmt):
        if not isinstance(fmt, FloatFormat):
            raise TypeError(f"fmt must be a FloatFormat (e.g. FP16, FP32), not {fmt!r}")
        self.fmt = fmt
        super().__init__({"value": fmt.width, "is_zero": 1})

    def __repr__(self):
        return f"Flagged({self.fmt.name})"


class ZeroDetector(wiring.Component):
    """One zero detector: ``z`` is high when ``x`` is +0 or -0 of ``fmt`` (every bit below the sign is 0)."""

    energy_class = "zdet"

    def __init__(self, fmt=FP16):
        if not isinstance(fmt, FloatFormat):
            raise TypeError(f"fmt must be a FloatFormat (e.g. FP16, FP32), not {fmt!r}")
        self._fmt = fmt
        super().__init__({"x": In(fmt.width), "z": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.z.eq(self.x[:self._fmt.width - 1] == 0)
        return m
