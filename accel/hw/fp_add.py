"""Floating-point adder (FP32, round-to-nearest-even, subnormals kept) with zero-flag bypass.

Same algorithm as :func:`accel.golden.fp.add_raw` + :func:`accel.golden.fp.round_pack`, stage for
stage: order by magnitude, align the smaller operand with guard/round/sticky bits, add or subtract,
normalise by the leading-zero count (capped so that tiny results stay subnormal), round once.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.fp import FP16, FP32, GUARD_BITS
from ..golden.gating import Gating
from .fp_common import node, normalize, unpack
from .operand import Flagged
from .pipeline import check_format, check_gating, data_load, load_when, pipeline_control, stage_reg

__all__ = ["ADD_GATINGS", "ADD_ENERGY_CLASSES", "add_core", "add_operands_layout", "AddNode", "FPAddLane", "FPAdd"]

#: An adder skips a flagged operand (``hold``) or has no zero logic; it has no operand isolation (``and``).
ADD_GATINGS = (Gating.HOLD, Gating.NONE)

#: The energy class of an adder lane by its format: an FP16 adder is charged as an FP16 add wherever it sits.
ADD_ENERGY_CLASSES = {FP32: "add", FP16: "add16"}


def add_core(m, a, b, fmt):
    """IEEE sum of ``fmt`` bit patterns ``a`` and ``b``: ±0 rules, ±Inf, Inf - Inf = canonical NaN."""
    ua, ub = unpack(a, fmt), unpack(b, fmt)
    a_bigger = a[:fmt.width - 1] >= b[:fmt.width - 1]   # magnitude order: exponent, then fraction
    big_sign, big_exp, big_sig = (Mux(a_bigger, x, y) for x, y in
                                  ((ua.sign, ub.sign), (ua.exp, ub.exp), (ua.sig, ub.sig)))
    small_sign, small_exp, small_sig = (Mux(a_bigger, y, x) for x, y in
                                        ((ua.sign, ub.sign), (ua.exp, ub.exp), (ua.sig, ub.sig)))
    width = fmt.sig_bits + GUARD_BITS               # an operand with its guard, round and sticky bits
    gap = (big_exp - small_exp)[:fmt.exp_bits]   # non-negative: the operands are ordered
    distance = Mux(gap > width, width, gap)
    shifted = node(m, "aligned", Cat(C(0, width + GUARD_BITS), small_sig) >> distance, 2 * width)
    small_aligned = shifted[width:] | (shifted[:width] != 0)
    big_aligned = Cat(C(0, GUARD_BITS), big_sig)
    same_sign = big_sign == small_sign
    total = node(m, "total", Mux(same_sign, big_aligned + small_aligned, big_aligned - small_aligned), width + 1)
    norm, shift = normalize(m, "total", total, limit=big_exp)
    top_exp = big_exp + 1 - shift                   # biased exponent of the top bit of ``norm``
    guard, sticky, lsb = norm[GUARD_BITS], norm[:GUARD_BITS] != 0, norm[GUARD_BITS + 1]
    rounded = node(m, "rounded", norm[GUARD_BITS + 1:] + (guard & (sticky | lsb)), fmt.sig_bits + 1)
    exp = node(m, "sum_exp", Mux(rounded[fmt.man_bits:] != 0, top_exp + rounded[-1], 0), fmt.exp_bits + 2)
    sign = Mux(total == 0, ua.sign & ub.sign, big_sign)
    inf_field = C(fmt.exp_max_field, fmt.exp_bits)
    result = Signal(fmt.width, name="result")
    with m.If(ua.nan | ub.nan | (ua.inf & ub.inf & (ua.sign != ub.sign))):
        m.d.comb += result.eq(fmt.canonical_nan)
    with m.Elif(ua.inf | ub.inf):
        m.d.comb += result.eq(Cat(C(0, fmt.man_bits), inf_field, Mux(ua.inf, ua.sign, ub.sign)))
    with m.Elif(exp >= fmt.exp_max_field):
        m.d.comb += result.eq(Cat(C(0, fmt.man_bits), inf_field, sign))
    with m.Else():
        m.d.comb += result.eq(Cat(rounded[:fmt.man_bits], exp[:fmt.exp_bits], sign))
    return result


class AddNode(wiring.Component):
    """A combinational adder ``y = a + b`` in ``fmt`` (:func:`add_core`), for datapaths that register around
    it themselves (the Winograd transforms' adder trees); charged as its format's add class."""

    def __init__(self, fmt=FP32):
        self._fmt = check_format("fmt", fmt)
        if fmt not in ADD_ENERGY_CLASSES:
            raise ValueError(f"fmt must be one of {', '.join(f.name for f in ADD_ENERGY_CLASSES)}, not {fmt.name}")
        super().__init__({"a": In(fmt.width), "b": In(fmt.width), "y": Out(fmt.width)})

    @property
    def energy_class(self):
        return ADD_ENERGY_CLASSES[self._fmt]

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.y.eq(add_core(m, self.a, self.b, self._fmt))
        return m


def add_operands_layout(fmt):
    """The running sum ``a`` and a flagged operand ``b`` (skipped under ``hold`` when flagged)."""
    return data.StructLayout({"a": fmt.width, "b": Flagged(fmt)})


class FPAddLane(wiring.Component):
    """One adder: operand registers (``load``) then the combinational sum ``y``.

    ``hold``: a zero-flagged ``b`` freezes ``a_reg``/``b_reg`` (nothing in the datapath toggles) and
    ``a`` goes to ``y`` through ``bypass_reg`` instead. ``none``: the flag is ignored.
    """

    LATENCY = 1

    def __init__(self, *, fmt=FP32, gating=Gating.HOLD):
        self._fmt = check_format("fmt", fmt)
        if fmt not in ADD_ENERGY_CLASSES:
            raise ValueError(f"fmt must be one of {', '.join(f.name for f in ADD_ENERGY_CLASSES)}, not {fmt.name}")
        self._gating = check_gating(gating, ADD_GATINGS)
        super().__init__({"x": In(add_operands_layout(fmt)), "load": In(self.LATENCY), "y": Out(fmt.width)})
        self.a_reg = Signal(fmt.width)
        self.b_reg = Signal(fmt.width)

    @property
    def energy_class(self):
        return ADD_ENERGY_CLASSES[self._fmt]

    def elaborate(self, platform):
        m = Module()
        skip_in = self.x.b.is_zero if self._gating is Gating.HOLD else C(0, 1)
        operand_load = data_load(self.load, skip_in, self._gating)
        load_when(m, self.a_reg, self.x.a, operand_load)
        load_when(m, self.b_reg, self.x.b.value, operand_load)
        total = add_core(m, self.a_reg, self.b_reg, self._fmt)
        if self._gating is Gating.HOLD:
            skip = stage_reg(m, skip_in, self.load, "skip_reg")
            bypass = stage_reg(m, self.x.a, self.load & skip_in, "bypass_reg")
            # the running sum passes unchanged, except that a NaN leaves canonical as every NaN result does;
            # checked behind the register, so the check switches only when a skipped sum changes
            passed = Mux(unpack(bypass, self._fmt).nan, self._fmt.canonical_nan, bypass)
            total = Mux(skip, passed, total)
        m.d.comb += self.y.eq(total)
        return m


class FPAdd(wiring.Component):
    """Pipelined adder behind valid/ready streams: ``i.payload`` ``a`` and flagged ``b``; ``o.payload`` ``s``.

    Latency 2 (operand registers, sum register). With ``hold`` a flagged ``b`` is skipped: ``s = a``.
    """

    def __init__(self, *, fmt=FP32, gating=Gating.HOLD):
        self.lane = FPAddLane(fmt=fmt, gating=gating)
        super().__init__({"i": In(stream.Signature(add_operands_layout(fmt))),
                          "o": Out(stream.Signature(data.StructLayout({"s": fmt.width})))})

    @property
    def latency(self):
        return FPAddLane.LATENCY + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.add = lane = self.lane
        load = pipeline_control(m, self.latency, self.i, self.o)
        m.d.comb += [lane.x.eq(self.i.payload), lane.load.eq(load[0]),
                     self.o.payload.s.eq(stage_reg(m, lane.y, load[1], "s_reg"))]
        return m
