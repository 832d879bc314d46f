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
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.gating import Gating
from .config import AcceleratorConfig
from .fp_add import FPAddLane
from .fp_mul import FPMulLane
from .operand import Flagged
from .pipeline import DelayLine, pipeline_control, stage_reg

__all__ = ["HMMA"]


class HMMA(wiring.Component):
    """The array behind valid/ready streams (a global stall while the output waits).

    ``i.payload``: ``a`` (``ArrayLayout(Flagged(fmt_in), m*k)``, row-major A[i][kk]), ``b`` (``k*n``,
    row-major B[kk][j]), ``c`` (``ArrayLayout(fmt_acc.width, m*n)``); ``o.payload``: ``d`` (``m*n``).
    The parameters are those of an :class:`~accel.hw.config.AcceleratorConfig`, which checks them.
    """

    def __init__(self, *, m=4, n=4, k=4, gating=Gating.HOLD):
        self._config = AcceleratorConfig(m=m, n=n, k=k, gating=gating)
        super().__init__({
            "i": In(stream.Signature(self.input_layout(m, n, k))),
            "o": Out(stream.Signature(data.StructLayout(
                {"d": data.ArrayLayout(self._config.fmt_acc.width, m * n)}))),
        })

    @classmethod
    def from_config(cls, config):
        """The array of an :class:`~accel.hw.config.AcceleratorConfig`."""
        if not isinstance(config, AcceleratorConfig):
            raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
        return cls(m=config.m, n=config.n, k=config.k, gating=config.gating)

    @staticmethod
    def input_layout(m, n, k, config=AcceleratorConfig()):
        """The payload layout of the input stream of an ``m`` x ``n`` x ``k`` array (formats of ``config``)."""
        operand = Flagged(config.fmt_in)
        return data.StructLayout({"a": data.ArrayLayout(operand, m * k), "b": data.ArrayLayout(operand, k * n),
                                  "c": data.ArrayLayout(config.fmt_acc.width, m * n)})

    @property
    def config(self):
        return self._config

    @property
    def shape(self):
        """(m, n, k)."""
        return self._config.shape

    @property
    def gating(self):
        return self._config.gating

    @property
    def macs_per_cycle(self):
        """Multiply-adds per clock in steady state (one instruction per clock)."""
        return self._config.macs_per_instruction

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

        a_lines = [[line(f"line_a_{i}_{kk}", self.i.payload.a[i * inner + kk], kk) for kk in range(inner)]
                   for i in range(rows)]
        b_lines = [[line(f"line_b_{kk}_{j}", self.i.payload.b[kk * cols + j], kk) for j in range(cols)]
                   for kk in range(inner)]
        first_add = 1 + FPMulLane.LATENCY   # load index of chain adder 0 (= C's register count)
        for i in range(rows):
            for j in range(cols):
                m.submodules[f"line_c_{i}_{j}"] = c_line = DelayLine(fmt_acc.width, first_add, Gating.NONE)
                m.d.comb += [c_line.value.eq(self.i.payload.c[i * cols + j]), c_line.load.eq(load[:first_add])]
                acc = c_line.value_out
                for kk in range(inner):
                    a, b = a_lines[i][kk], b_lines[kk][j]
                    step = first_add + kk * FPAddLane.LATENCY
                    m.submodules[f"mul_{i}_{j}_{kk}"] = mul = FPMulLane(fmt_in=fmt_in, fmt_out=fmt_acc, gating=gating)
                    m.submodules[f"add_{i}_{j}_{kk}"] = add = FPAddLane(
                        fmt=fmt_acc, gating=Gating.HOLD if gating is Gating.HOLD else Gating.NONE)
                    m.d.comb += [
                        mul.x.a.value.eq(a.value_out), mul.x.a.is_zero.eq(a.is_zero_out),
                        mul.x.b.value.eq(b.value_out), mul.x.b.is_zero.eq(b.is_zero_out),
                        mul.load.eq(load[step - FPMulLane.LATENCY:step]),
                        add.x.a.eq(acc), add.x.b.value.eq(mul.y.p), add.x.b.is_zero.eq(mul.y.is_zero),
                        add.load.eq(load[step:step + FPAddLane.LATENCY]),
                    ]
                    acc = add.y
                m.d.comb += self.o.payload.d[i * cols + j].eq(stage_reg(m, acc, load[-1], f"d_{i}_{j}"))
        return m
