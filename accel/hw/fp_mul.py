"""Exact floating-point multiplier (FP16 x FP16 -> FP32) with zero-flag gating, HardFloat style.

Key intermediate values are named signals (:func:`accel.hw.fp_common.node`), so that toggle counting
sees the significand multiplier array's inputs and output, not only the registers.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.fp import FP16, FP32
from ..golden.gating import Gating
from .fp_common import node, normalize, unpack
from .operand import Flagged
from .pipeline import check_format, check_gating, data_load, load_when, pipeline_control, stage_reg

__all__ = ["mul_core", "check_exact_product",
           "mul_operands_layout", "mul_result_layout", "FPMulLane", "FPMul"]


def check_exact_product(fmt_in, fmt_out):
    """ValueError unless every ``fmt_in`` x ``fmt_in`` product is exactly representable and normal in ``fmt_out``."""
    smallest = 2 * (fmt_in.emin - fmt_in.man_bits)   # exponent of min subnormal squared
    largest = 2 * fmt_in.emax + 1                     # max normal squared is below 2**(2*emax + 2)
    if fmt_out.sig_bits < 2 * fmt_in.sig_bits or smallest < fmt_out.emin or largest > fmt_out.emax:
        raise ValueError(f"{fmt_in.name} x {fmt_in.name} products are not exact in {fmt_out.name}: "
                         f"need {2 * fmt_in.sig_bits} significand bits and exponents {smallest}..{largest}")


def mul_core(m, a, b, fmt_in, fmt_out, isolate=None):
    """Exact product of ``fmt_in`` bit patterns ``a`` and ``b`` packed as ``fmt_out`` (never rounds).

    Raw step: normalised significands (subnormals shifted by their leading-zero count), their integer
    product and the exponent sum; packing step: one-bit normalisation, then the special classes
    (NaN canonical, Inf x 0 = NaN). ``isolate`` forces the significand array inputs to zero (operand
    isolation) while the class logic still sees the real operands.
    """
    ua, ub = unpack(a, fmt_in), unpack(b, fmt_in)
    sig_a, shift_a = normalize(m, "sig_a", ua.sig)
    sig_b, shift_b = normalize(m, "sig_b", ub.sig)
    if isolate is not None:
        sig_a, sig_b = (node(m, f"{name}_isolated", Mux(isolate, 0, sig), len(sig))
                        for name, sig in (("sig_a", sig_a), ("sig_b", sig_b)))
    width = 2 * fmt_in.sig_bits
    product = node(m, "product", sig_a * sig_b, width)
    carry = product[-1]
    fraction = Mux(carry, product, product << 1)[:width - 1]
    exp = node(m, "product_exp", ua.exp - shift_a + ub.exp - shift_b + carry + (fmt_out.bias - 2 * fmt_in.bias),
               fmt_out.exp_bits)
    sign = ua.sign ^ ub.sign
    result = Signal(fmt_out.width, name="result")
    with m.If(ua.nan | ub.nan | (ua.inf & ub.zero) | (ub.inf & ua.zero)):
        m.d.comb += result.eq(fmt_out.canonical_nan)
    with m.Elif(ua.inf | ub.inf):
        m.d.comb += result.eq(Cat(C(0, fmt_out.man_bits), C(fmt_out.exp_max_field, fmt_out.exp_bits), sign))
    with m.Elif(ua.zero | ub.zero):
        m.d.comb += result.eq(Cat(C(0, fmt_out.width - 1), sign))
    with m.Else():
        m.d.comb += result.eq(Cat(C(0, fmt_out.man_bits - (width - 1)), fraction, exp, sign))
    return result


def mul_operands_layout(fmt_in):
    """Two flagged operands ``a`` and ``b``."""
    return data.StructLayout({"a": Flagged(fmt_in), "b": Flagged(fmt_in)})


def mul_result_layout(fmt_out):
    """The product ``p`` and its ``is_zero`` flag (set only with ``hold``: the product was skipped)."""
    return data.StructLayout({"p": fmt_out.width, "is_zero": 1})


class FPMulLane(wiring.Component):
    """One multiplier: operand registers (``load[0]``), the exact core, product register (``load[1]``).

    ``hold``: a zero flag on either operand freezes the operand and product registers; only the
    registered ``is_zero`` result flag changes. ``and``: operand isolation of the significand array,
    IEEE-exact result. ``none``: no zero logic. ``a_reg``, ``b_reg`` and ``p_reg`` are the state.
    """

    LATENCY = 2
    energy_class = "mul"

    def __init__(self, *, fmt_in=FP16, fmt_out=FP32, gating=Gating.HOLD):
        self._fmt_in = check_format("fmt_in", fmt_in)
        self._fmt_out = check_format("fmt_out", fmt_out)
        self._gating = check_gating(gating)
        check_exact_product(fmt_in, fmt_out)
        super().__init__({"x": In(mul_operands_layout(fmt_in)), "load": In(self.LATENCY),
                          "y": Out(mul_result_layout(fmt_out))})
        self.a_reg = Signal(fmt_in.width)
        self.b_reg = Signal(fmt_in.width)
        self.p_reg = Signal(fmt_out.width)

    def elaborate(self, platform):
        m = Module()
        gated = self._gating.flags_zeros
        zero_in = self.x.a.is_zero | self.x.b.is_zero if gated else C(0, 1)
        zero = stage_reg(m, zero_in, self.load[0], "zero_reg") if gated else zero_in
        operand_load = data_load(self.load[0], zero_in, self._gating)
        load_when(m, self.a_reg, self.x.a.value, operand_load)
        load_when(m, self.b_reg, self.x.b.value, operand_load)
        product = mul_core(m, self.a_reg, self.b_reg, self._fmt_in, self._fmt_out,
                           isolate=zero if self._gating is Gating.AND else None)
        load_when(m, self.p_reg, product, data_load(self.load[1], zero, self._gating))
        m.d.comb += self.y.p.eq(self.p_reg)
        if self._gating is Gating.HOLD:
            m.d.comb += self.y.is_zero.eq(stage_reg(m, zero, self.load[1], "is_zero_reg"))
        return m


class FPMul(wiring.Component):
    """Pipelined exact multiplier behind valid/ready streams (one product per clock, ``latency`` 2).

    ``i.payload``: flagged operands ``a`` and ``b`` (:class:`~accel.hw.operand.Flagged`); ``o.payload``: ``p``
    and ``is_zero`` (set only with ``hold``, where ``p`` is then stale and consumers skip it). See
    :class:`FPMulLane` for gating.
    """

    def __init__(self, *, fmt_in=FP16, fmt_out=FP32, gating=Gating.HOLD):
        self.lane = FPMulLane(fmt_in=fmt_in, fmt_out=fmt_out, gating=gating)
        super().__init__({"i": In(stream.Signature(mul_operands_layout(fmt_in))),
                          "o": Out(stream.Signature(mul_result_layout(fmt_out)))})

    @property
    def latency(self):
        return FPMulLane.LATENCY

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = lane = self.lane
        m.d.comb += [lane.x.eq(self.i.payload), lane.load.eq(pipeline_control(m, self.latency, self.i, self.o)),
                     self.o.payload.eq(lane.y)]
        return m
