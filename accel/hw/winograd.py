"""Winograd transform units for F(m×m, 3×3), m = 2 or 4: the input transform V = Bᵀ·d·B (FP16 tiles in,
FP16 tiles with zero flags out) and the output transform Y = Aᵀ·M·A (FP32 in and out).

Both follow the golden order (:mod:`accel.golden.winograd`) stage for stage: an input register, then the
row pass and the column pass, each a tree of adder levels with one register stage per level. A level's
first terms are scaled on the way in: an exponent adjustment with one rounding (:func:`scale_pow2`), or
only a sign flip for a constant ±1. Adders are :func:`accel.hw.fp_add.add_core` in the working format
(FP16, or FP32 for the ``fp32`` input transform, which also widens on the way in and rounds to FP16
before its last register), each an :class:`~accel.hw.fp_add.AddNode` that the energy model charges as an
add of its format. Fully pipelined: one tile per clock, N tiles in N + latency cycles.
"""

from itertools import count

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.fp import FP16, FP32
from ..golden.winograd import (DEFAULT_PRECISION, PRECISIONS, matrices, pass_plan, points_for, tree_depth,
                               tree_level)
from .fp_add import AddNode
from .fp_common import node, normalize, unpack
from .operand import Flagged, ZeroDetector
from .pipeline import check_choice, check_count, check_format, pipeline_control, stage_reg

__all__ = ["scale_pow2", "WinogradInput", "WinogradOutput"]


def scale_pow2(m, bits, fmt_in, fmt_out, shift=0, negate=False):
    """``±bits · 2**shift`` converted from ``fmt_in`` to ``fmt_out`` with one round-to-nearest-even, as
    :func:`accel.golden.winograd.convert`: subnormal results kept, overflow to ±Inf, NaN canonical.

    The significand is normalised (as far as the output exponent allows), shifted right by the bits
    the output lacks plus the underflow distance, rounded with guard and sticky bits, and packed as
    ``(exponent − 1) << man_bits + rounded`` so that a rounding carry moves into the exponent field.
    """
    check_format("fmt_in", fmt_in)
    check_format("fmt_out", fmt_out)
    if fmt_in == fmt_out and shift == 0:
        return bits ^ (int(negate) << (fmt_in.width - 1))
    u = unpack(bits, fmt_in)
    sign = u.sign ^ int(negate)
    ew = max(fmt_in.exp_bits, fmt_out.exp_bits) + 3                     # signed exponent arithmetic
    exp = node(m, "exp", u.exp + (fmt_out.bias - fmt_in.bias + shift), signed(ew))
    norm, lz = normalize(m, "sig", u.sig, limit=node(m, "limit", Mux(exp > 1, exp - 1, 0), ew - 1))
    exp = node(m, "exp_norm", exp - lz, signed(ew))
    drop = fmt_in.man_bits - fmt_out.man_bits                          # < 0: the output has more bits
    sig = Cat(C(0, max(-drop, 0)), norm)
    cap = len(sig) + 1                                                 # past it, everything is sticky
    under = node(m, "under", Mux(exp < 1, 1 - exp, 0), ew)               # distance below the normal range
    guard_bits = max(drop, 0) + cap
    distance = node(m, "distance", Mux(under > cap, cap, under) + max(drop, 0), range(guard_bits + 1))
    shifted = node(m, "shifted", Cat(C(0, guard_bits), sig) >> distance)
    kept, guard, sticky = shifted[guard_bits:], shifted[guard_bits - 1], shifted[:guard_bits - 1] != 0
    rounded = node(m, "rounded", kept + (guard & (sticky | kept[0])), len(kept) + 1)
    magnitude = node(m, "magnitude", ((Mux(exp < 1, 1, exp) - 1) << fmt_out.man_bits) + rounded,
                     signed(ew + fmt_out.man_bits + 2))
    result = Signal(fmt_out.width, name="scaled")
    with m.If(u.nan):
        m.d.comb += result.eq(fmt_out.canonical_nan)
    with m.Elif(u.zero):
        m.d.comb += result.eq(Cat(C(0, fmt_out.width - 1), sign))
    with m.Elif(u.inf | (magnitude >= fmt_out.exp_max_field << fmt_out.man_bits)):
        m.d.comb += result.eq(Cat(C(0, fmt_out.man_bits), C(fmt_out.exp_max_field, fmt_out.exp_bits), sign))
    with m.Else():
        m.d.comb += result.eq(Cat(magnitude[:fmt_out.width - 1], sign))
    return result


def check_tile(m):
    if check_count("m", m) not in (2, 4):
        raise ValueError(f"m must be 2 or 4, not {m!r}")
    return m


class _Transform(wiring.Component):
    """``M·X·Mᵀ`` on an n×n tile behind streams: input register, row pass, column pass."""

    def __init__(self, signature, matrix, fmt_in, fmt, fmt_out):
        self._plan = pass_plan(matrix)
        self._n = len(matrix[0])
        self._fmts = fmt_in, fmt, fmt_out
        super().__init__(signature)

    @property
    def levels(self):
        """Adder levels of one pass (one register stage each)."""
        return max(1, tree_depth(max(len(terms) for terms in self._plan)))

    @property
    def latency(self):
        """Input register, then the adder levels of the row pass and of the column pass."""
        return 1 + 2 * self.levels

    @property
    def tiles_per_cycle(self):
        """Throughput in steady state: fully pipelined, one tile per clock."""
        return 1

    @property
    def adders(self):
        """Adder lanes: (terms − 1) per output element, in the row pass (rows × n) and the column pass."""
        per_vector = sum(len(terms) - 1 for terms in self._plan)
        return per_vector * (self._n + len(self._plan))

    def _pass(self, m, name, rows, fmt_in, load, first_stage, finish=None):
        """One 1-D pass on the columns of ``rows`` (``rows[j][c]``): output [i][c] = the terms of plan row i
        on column c, summed level by level (one register stage per level); ``finish(m, value, name)``
        (the rounding to FP16 of the ``fp32`` input transform) goes before the last register."""
        fmt = self._fmts[1]
        scaled, adds = {}, count()

        def term(t, c):
            key = (t.source, c, t.shift)
            if key not in scaled:      # one scaler per source element and exponent, shared by the outputs
                scaled[key] = rows[t.source][c]
                if t.shift or fmt_in != fmt:
                    m.submodules[f"{name}_scale_{t.source}_{c}_{'m' if t.shift < 0 else 'p'}{abs(t.shift)}"] \
                        = sub = Module()
                    scaled[key] = scale_pow2(sub, scaled[key], fmt_in, fmt, t.shift)
            # the sign bit flips after the shared scaling: rounding is symmetric, and a NaN's sign does not
            # matter (every plan row has two terms or more, and the adders canonicalise NaN)
            return scaled[key] ^ (int(t.negate) << (fmt.width - 1))

        def add(a, b):     # an adder lane, charged as an add of its format (FP16 adds as FP16 adds)
            m.submodules[f"{name}_add_{next(adds)}"] = adder = AddNode(fmt)
            m.d.comb += [adder.a.eq(a), adder.b.eq(b)]
            return adder.y

        columns = range(len(rows[0]))
        items = {(i, c): [term(t, c) for t in terms] for i, terms in enumerate(self._plan) for c in columns}
        for level in range(self.levels):
            for (i, c), values in items.items():
                values = tree_level(values, add)
                if finish is not None and level == self.levels - 1:
                    values = [finish(m, values[0], f"{name}_{i}_{c}")]
                items[(i, c)] = [stage_reg(m, v, load[first_stage + level], f"{name}_{i}_{c}_l{level}_{k}")
                                 for k, v in enumerate(values)]
        return [[items[(i, c)][0] for c in columns] for i in range(len(self._plan))]

    def _datapath(self, m, tile, load):
        """The transformed tile (row-major list of registered values) of the flat input array ``tile``."""
        fmt_in, fmt, fmt_out = self._fmts
        n = self._n

        def narrow(m, value, name):
            m.submodules[f"{name}_round"] = sub = Module()
            return scale_pow2(sub, value, fmt, fmt_out)

        x = [[stage_reg(m, tile[j * n + c], load[0], f"x_{j}_{c}") for c in range(n)] for j in range(n)]
        t = self._pass(m, "row", x, fmt_in, load, 1)
        columns = [list(column) for column in zip(*t)]                    # columns[c][i] = t[i][c]
        y = self._pass(m, "col", columns, fmt, load, 1 + self.levels, None if fmt == fmt_out else narrow)
        return [y[j][i] for i in range(len(y[0])) for j in range(len(y))]   # y[j][i] is element (i, j)


class WinogradInput(_Transform):
    """Input transform V = Bᵀ·d·B: ``i.payload.d`` FP16 ``ArrayLayout(16, n*n)`` row-major; ``o.payload.v``
    ``ArrayLayout(Flagged(FP16), n*n)``, ``is_zero`` raised by a :class:`ZeroDetector` where V is ±0 (the
    array's gating sees Winograd-domain zeros).

    ``precision``: ``fp16`` (FP16 adders, every scale and add rounded) or ``fp32`` (exact widening on the
    way in, FP32 adders, one rounding to FP16 before the last register).
    """

    def __init__(self, *, m=4, points=None, precision=DEFAULT_PRECISION):
        self._m = check_tile(m)
        self._points = points_for(m, points)
        self._precision = check_choice("precision", precision, PRECISIONS)
        n = m + 2
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"d": data.ArrayLayout(FP16.width, n * n)}))),
            "o": Out(stream.Signature(data.StructLayout({"v": data.ArrayLayout(Flagged(FP16), n * n)}))),
        }, matrices(self._points)[2], FP16, FP16 if precision == "fp16" else FP32, FP16)

    @property
    def m(self):
        return self._m

    @property
    def precision(self):
        return self._precision

    def elaborate(self, platform):
        m = Module()
        load = pipeline_control(m, self.latency, self.i, self.o)
        for k, v in enumerate(self._datapath(m, self.i.payload.d, load)):
            m.submodules[f"zero_{k}"] = zero = ZeroDetector(FP16)
            m.d.comb += [zero.x.eq(v), self.o.payload.v[k].value.eq(v), self.o.payload.v[k].is_zero.eq(zero.z)]
        return m


class WinogradOutput(_Transform):
    """Output transform Y = Aᵀ·M·A in FP32: ``i.payload.m`` ``ArrayLayout(32, n*n)`` row-major Winograd-domain
    tile; ``o.payload.y`` ``ArrayLayout(32, m*m)`` row-major output tile."""

    def __init__(self, *, m=4, points=None):
        self._m = check_tile(m)
        self._points = points_for(m, points)
        n = m + 2
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"m": data.ArrayLayout(FP32.width, n * n)}))),
            "o": Out(stream.Signature(data.StructLayout({"y": data.ArrayLayout(FP32.width, m * m)}))),
        }, matrices(self._points)[0], FP32, FP32, FP32)

    @property
    def m(self):
        return self._m

    def elaborate(self, platform):
        m = Module()
        load = pipeline_control(m, self.latency, self.i, self.o)
        for k, v in enumerate(self._datapath(m, self.i.payload.m, load)):
            m.d.comb += self.o.payload.y[k].eq(v)
        return m
