"""Datapath pieces shared by the FP units (:mod:`accel.hw.fp_mul`, :mod:`accel.hw.fp_add`): field
unpacking, named combinational nodes and the leading-zero normaliser.

Key intermediate values are named signals, so that toggle counting sees them, not only the registers.
"""

from dataclasses import dataclass

from amaranth import *

__all__ = ["Unpacked", "unpack", "node", "normalize"]


@dataclass(frozen=True)
class Unpacked:
    """Fields and class of one float: ``exp`` is the biased exponent (the field, or 1 for subnormals)
    and ``sig`` the significand with its hidden bit, so the value is ``sig * 2**(exp - bias - man_bits)``."""

    sign: Value
    exp: Value
    sig: Value
    zero: Value
    inf: Value
    nan: Value


def unpack(bits, fmt):
    """Split ``fmt`` bit pattern ``bits`` into sign, effective exponent, significand and class flags."""
    man, exp, sign = bits[:fmt.man_bits], bits[fmt.man_bits:fmt.width - 1], bits[fmt.width - 1]
    normal, exp_max, man_zero = exp != 0, exp == fmt.exp_max_field, man == 0
    return Unpacked(sign=sign, exp=Mux(normal, exp, 1), sig=Cat(man, normal),
                    zero=~normal & man_zero, inf=exp_max & man_zero, nan=exp_max & ~man_zero)


def node(m, name, value, shape=None):
    """A named combinational signal driven by ``value`` (what toggle counting samples)."""
    sig = Signal(value.shape() if shape is None else shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


def normalize(m, name, value, limit=None):
    """Shift ``value`` left until its top bit is set, by at most ``limit``: (shifted, shift count).

    A log-depth cascade: each step shifts by a power of two when the top bits it would drop are zero
    (and the remaining ``limit`` allows it), so the shift count is the leading-zero count, capped.
    Each step's outputs are signals, which keeps the expression a chain rather than a tree.
    """
    width = len(value)
    steps = [1 << i for i in reversed(range(max(1, (width - 1).bit_length())))]
    taken = []
    for step in steps:
        take = value[width - step:] == 0
        if limit is not None:
            take &= limit >= step
            limit = node(m, f"{name}_limit{step}", Mux(take, limit - step, limit), len(limit))
        take = node(m, f"{name}_take{step}", take)
        value = node(m, f"{name}_step{step}", Mux(take, (value << step)[:width], value), width)
        taken.append(take)
    return value, node(m, f"{name}_shift", Cat(*reversed(taken)))
