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

from ..golden.fp import FP16, FP32
from .fp_add import FPAddLane
from .fp_mul import FPMulLane
from .pipeline import GATING_STYLES, DelayLine, check_choice, check_count, pipeline_control, stage_reg

__all__ = ["OPERAND", "HMMA"]

OPERAND = data.StructLayout({"value": FP16.width, "is_zero": 1})


class HMMA(wiring.Component):
    """The array behind valid/ready streams (a global stall while the output waits).

    ``i.payload``: ``a`` (``ArrayLayout(OPERAND, m*k)``, row-major A[i][kk]), ``b`` (``k*n``, row-major
    B[kk][j]), ``c`` (``ArrayLayout(32, m*n)``); ``o.payload``: ``d`` (``ArrayLayout(32, m*n)``).
    """

    def __init__(self, *, m=4, n=4, k=4, gating="hold"):
        self._m, self._n, self._k = check_count("m", m), check_count("n", n), check_count("k", k)
        self._gating = check_choice("gating", gating, GATING_STYLES)
        super().__init__({
            "i": In(stream.Signature(self.input_layout(m, n, k))),
            "o": Out(stream.Signature(data.StructLayout({"d": data.ArrayLayout(FP32.width, m * n)}))),
        })

    @staticmethod
    def input_layout(m, n, k):
        """The payload layout of the input stream of an ``m`` x ``n`` x ``k`` array."""
        return data.StructLayout({"a": data.ArrayLayout(OPERAND, m * k), "b": data.ArrayLayout(OPERAND, k * n),
                                  "c": data.ArrayLayout(FP32.width, m * n)})

    @property
    def shape(self):
        """(m, n, k)."""
        return self._m, self._n, self._k

    @property
    def gating(self):
        return self._gating

    @property
    def macs_per_cycle(self):
        """Multiply-adds per clock in steady state (one instruction per clock)."""
        return self._m * self._n * self._k

    @property
    def latency(self):
        """Line register, multiplier, ``k`` chain adders, output register."""
        return 1 + FPMulLane.LATENCY + FPAddLane.LATENCY * self._k + 1

    def elaborate(self, platform):
        m = Module()
        rows, cols, inner = self.shape
        gating = self._gating
        load = pipeline_control(m, self.latency, self.i, self.o)

        def line(name, operand, kk):
            """Skew + distribution registers of one A or B element used at chain step ``kk``."""
            length = kk * FPAddLane.LATENCY + 1
            m.submodules[name] = delay = DelayLine(FP16.width, length, gating)
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
                m.submodules[f"line_c_{i}_{j}"] = c_line = DelayLine(FP32.width, first_add, "none")
                m.d.comb += [c_line.value.eq(self.i.payload.c[i * cols + j]), c_line.load.eq(load[:first_add])]
                acc = c_line.value_out
                for kk in range(inner):
                    a, b = a_lines[i][kk], b_lines[kk][j]
                    step = first_add + kk * FPAddLane.LATENCY
                    m.submodules[f"mul_{i}_{j}_{kk}"] = mul = FPMulLane(fmt_in=FP16, fmt_out=FP32, gating=gating)
                    m.submodules[f"add_{i}_{j}_{kk}"] = add = FPAddLane(
                        fmt=FP32, gating="hold" if gating == "hold" else "none")
                    m.d.comb += [
                        mul.x.a.eq(a.value_out), mul.x.a_zero.eq(a.is_zero_out),
                        mul.x.b.eq(b.value_out), mul.x.b_zero.eq(b.is_zero_out),
                        mul.load.eq(load[step - FPMulLane.LATENCY:step]),
                        add.x.a.eq(acc), add.x.b.eq(mul.y.p), add.x.b_zero.eq(mul.y.is_zero),
                        add.load.eq(load[step:step + FPAddLane.LATENCY]),
                    ]
                    acc = add.y
                m.d.comb += self.o.payload.d[i * cols + j].eq(stage_reg(m, acc, load[-1], f"d_{i}_{j}"))
        return m
