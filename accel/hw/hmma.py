"""HMMA MAC array: D = A·B + C with A (m x k), B (k x n) FP16 plus zero flags, C and D FP32.

m*n*k exact multipliers and m*n*k FP32 adders, fully pipelined (one instruction per clock). Each
output accumulates in chain order ``(((C + p0) + p1) + p2) + ...`` with one rounding per add. The
operands are skewed instead of the products: A[i][kk] and B[kk][j] pass through ``kk`` skew registers
and then their distribution-line register (broadcast along row i / column j), so product ``kk``
reaches chain adder ``kk`` exactly when the running sum does. Stage plan (load index):

    0..kk     skew + distribution registers of A[i][kk], B[kk][j]   (C: loads 0..2)
    kk+1      multiplier operand registers       kk+2  product register
    kk+3      chain adder kk operand registers   k+3   output register (latency k + 4)

Gating: ``hold`` freezes a zero-flagged operand's line registers (the flag travels instead), each
multiplier freezes when either operand is flagged and its adder passes the running sum through
(product skipped); ``and`` isolates the multiplier's significand array and adds normally; ``none``
has no zero logic.

Sparse mode (``sparse=True``, 2:4 structured sparsity that skips, like Ampere's ``mma.sp``): A is weights
given 2:4-compressed (:func:`accel.golden.hmma.compress_24`): ``k`` kept values per row with their 2-bit
indices, standing for ``K = 2k`` reduction channels; B has ``K`` rows. Kept element ``t`` of row ``i`` comes
from group ``g = t // 2`` (channels ``4g..4g+3``). Its index travels with its value in A's line (frozen with it
under ``hold``). B's element ``B[ch][j]`` has one line with a tap at each chain step its group feeds (steps
``2g`` and ``2g + 1``), and in front of each multiplier ``(i, j, t)`` a 4:1 multiplexer picks, by the index,
which of its group's four activations (value and zero flag) the multiplier's operand register takes. So the
same ``m*n*k`` multipliers and adders do ``m*n*2k`` dense-equivalent multiply-adds per clock, at the same
latency; gating is as in the dense array (a kept ±0 weight and a ±0 activation are both flagged).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.gating import Gating
from ..golden.hmma import GROUP, KEPT
from .config import AcceleratorConfig
from .fp_add import FPAddLane
from .fp_mul import FPMulLane
from .operand import Flagged
from .pipeline import DelayLine, pipeline_control, stage_reg

__all__ = ["HMMA", "INDEX_BITS"]

#: Bits of a kept weight's index within its 2:4 group.
INDEX_BITS = (GROUP - 1).bit_length()


class HMMA(wiring.Component):
    """The array behind valid/ready streams (a global stall while the output waits).

    ``i.payload``: ``a`` (``ArrayLayout(Flagged(fmt_in), m*k)``, row-major A[i][kk]), ``b`` (``k*n``,
    row-major B[kk][j]), ``c`` (``ArrayLayout(fmt_acc.width, m*n)``); ``o.payload``: ``d`` (``m*n``).
    Sparse (``sparse=True``): ``a`` holds the kept values (row-major values[i][t]), ``a_index``
    (``ArrayLayout(2, m*k)``) their indices within their group, ``b`` is ``2k*n`` (row-major B[ch][j]);
    :meth:`input_layout` gives both. The parameters are those of an
    :class:`~accel.hw.config.AcceleratorConfig`, which checks them.
    """

    def __init__(self, *, m=4, n=4, k=4, gating=Gating.HOLD, sparse=False):
        self._config = AcceleratorConfig(m=m, n=n, k=k, gating=gating, sparse=sparse)
        super().__init__({
            "i": In(stream.Signature(self.input_layout(m, n, k, self._config))),
            "o": Out(stream.Signature(data.StructLayout(
                {"d": data.ArrayLayout(self._config.fmt_acc.width, m * n)}))),
        })

    @classmethod
    def from_config(cls, config):
        """The array of an :class:`~accel.hw.config.AcceleratorConfig`."""
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        return cls(m=config.m, n=config.n, k=config.k, gating=config.gating, sparse=config.sparse)

    @staticmethod
    def input_layout(m, n, k, config=AcceleratorConfig()):
        """The payload layout of the input stream of an ``m`` x ``n`` x ``k`` array (formats and mode of
        ``config``): dense ``{a, b, c}``; sparse ``{a, a_index, b, c}`` with ``b`` of ``2k`` rows."""
        operand = Flagged(config.fmt_in)
        reduction = 2 * k if config.sparse else k
        fields = {"a": data.ArrayLayout(operand, m * k)}
        if config.sparse:
            fields["a_index"] = data.ArrayLayout(INDEX_BITS, m * k)
        return data.StructLayout({**fields, "b": data.ArrayLayout(operand, reduction * n),
                                  "c": data.ArrayLayout(config.fmt_acc.width, m * n)})

    @property
    def config(self):
        return self._config

    @property
    def build_parameters(self):
        """What the design is built from besides the code, as text (the Verilator backend's build index)."""
        return repr(self._config)

    @property
    def shape(self):
        """(m, n, k)."""
        return self._config.shape

    @property
    def gating(self):
        return self._config.gating

    @property
    def sparse(self):
        """Whether the array runs 2:4 sparse instructions."""
        return self._config.sparse

    @property
    def reduction(self):
        """Reduction channels per instruction: ``k`` dense, ``2k`` sparse (B's rows)."""
        return self._config.reduction

    @property
    def throughput(self):
        """Instructions per clock in steady state."""
        return 1

    @property
    def macs_per_cycle(self):
        """Multiplies (multiply-adds done) per clock in steady state (one instruction per clock)."""
        return self._config.macs_per_instruction * self.throughput

    @property
    def dense_macs_per_cycle(self):
        """Dense-equivalent multiply-adds per clock: ``m*n*reduction``, twice :attr:`macs_per_cycle` when sparse."""
        return self._config.dense_macs_per_instruction * self.throughput

    @property
    def latency(self):
        """Line register, multiplier, ``k`` chain adders, output register."""
        return 1 + FPMulLane.LATENCY + FPAddLane.LATENCY * self._config.k + 1

    def elaborate(self, platform):
        m = Module()
        rows, cols, inner = self.shape
        gating, fmt_in, fmt_acc = self._config.gating, self._config.fmt_in, self._config.fmt_acc
        load = pipeline_control(m, self.latency, self.i, self.o)

        def line(name, operand, kk):
            """Skew + distribution registers of one A or B element used at chain step ``kk``."""
            length = kk * FPAddLane.LATENCY + 1
            m.submodules[name] = delay = DelayLine(fmt_in.width, length, gating)
            m.d.comb += [delay.value.eq(operand.value), delay.is_zero.eq(operand.is_zero),
                         delay.load.eq(load[:length])]
            return delay

        if self._config.sparse:
            operands = self._sparse_operands(m, load)
        else:
            a_lines = [[line(f"line_a_{i}_{kk}", self.i.payload.a[i * inner + kk], kk) for kk in range(inner)]
                       for i in range(rows)]
            b_lines = [[line(f"line_b_{kk}_{j}", self.i.payload.b[kk * cols + j], kk) for j in range(cols)]
                       for kk in range(inner)]

            def operands(i, j, kk):
                a, b = a_lines[i][kk], b_lines[kk][j]
                return a.value_out, a.is_zero_out, b.value_out, b.is_zero_out
        first_add = 1 + FPMulLane.LATENCY   # load index of chain adder 0 (= C's register count)
        for i in range(rows):
            for j in range(cols):
                m.submodules[f"line_c_{i}_{j}"] = c_line = DelayLine(fmt_acc.width, first_add, Gating.NONE)
                m.d.comb += [c_line.value.eq(self.i.payload.c[i * cols + j]), c_line.load.eq(load[:first_add])]
                acc = c_line.value_out
                for kk in range(inner):
                    a_value, a_zero, b_value, b_zero = operands(i, j, kk)
                    step = first_add + kk * FPAddLane.LATENCY
                    m.submodules[f"mul_{i}_{j}_{kk}"] = mul = FPMulLane(fmt_in=fmt_in, fmt_out=fmt_acc, gating=gating)
                    m.submodules[f"add_{i}_{j}_{kk}"] = add = FPAddLane(
                        fmt=fmt_acc, gating=Gating.HOLD if gating is Gating.HOLD else Gating.NONE)
                    m.d.comb += [
                        mul.x.a.value.eq(a_value), mul.x.a.is_zero.eq(a_zero),
                        mul.x.b.value.eq(b_value), mul.x.b.is_zero.eq(b_zero),
                        mul.load.eq(load[step - FPMulLane.LATENCY:step]),
                        add.x.a.eq(acc), add.x.b.value.eq(mul.y.p), add.x.b.is_zero.eq(mul.y.is_zero),
                        add.load.eq(load[step:step + FPAddLane.LATENCY]),
                    ]
                    acc = add.y
                m.d.comb += self.o.payload.d[i * cols + j].eq(stage_reg(m, acc, load[-1], f"d_{i}_{j}"))
        return m

    def _sparse_operands(self, m, load):
        """Sparse mode's lines and multiplexers; returns ``operands(i, j, t)`` -> (A value, A flag, selected B
        value, selected B flag) at multiplier ``(i, j, t)``'s operand register inputs."""
        rows, cols, inner = self.shape
        fmt_in, gating = self._config.fmt_in, self._config.gating
        width = fmt_in.width

        a_lines = {}
        for i in range(rows):
            for t in range(inner):
                # the index rides in A's line with its value: frozen with it under hold
                length = t * FPAddLane.LATENCY + 1
                m.submodules[f"line_a_{i}_{t}"] = delay = DelayLine(width + INDEX_BITS, length, gating)
                operand = self.i.payload.a[i * inner + t]
                m.d.comb += [delay.value.eq(Cat(operand.value, self.i.payload.a_index[i * inner + t])),
                             delay.is_zero.eq(operand.is_zero), delay.load.eq(load[:length])]
                a_lines[i, t] = delay

        b_taps = {}     # (channel, j, r) -> the line of B[channel][j] at chain step KEPT*group + r
        for ch in range(self.reduction):
            group = ch // GROUP
            for j in range(cols):
                operand, start = self.i.payload.b[ch * cols + j], 0
                value, is_zero = operand.value, operand.is_zero
                for r in range(KEPT):
                    end = (KEPT * group + r) * FPAddLane.LATENCY + 1
                    m.submodules[f"line_b_{ch}_{j}_{r}"] = delay = DelayLine(width, end - start, gating)
                    m.d.comb += [delay.value.eq(value), delay.is_zero.eq(is_zero), delay.load.eq(load[start:end])]
                    b_taps[ch, j, r] = delay
                    value, is_zero, start = delay.value_out, delay.is_zero_out, end

        def operands(i, j, t):
            a = a_lines[i, t]
            group, r = divmod(t, KEPT)
            index = a.value_out[width:]
            b_value = Signal(width, name=f"b_sel_{i}_{j}_{t}")
            b_zero = Signal(name=f"b_sel_zero_{i}_{j}_{t}")
            with m.Switch(index):
                for c in range(GROUP):
                    with m.Case(c):
                        tap = b_taps[GROUP * group + c, j, r]
                        m.d.comb += [b_value.eq(tap.value_out), b_zero.eq(tap.is_zero_out)]
            return a.value_out[:width], a.is_zero_out, b_value, b_zero

        return operands
