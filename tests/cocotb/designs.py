"""Designs the harness and cocotb tests share: a tiny stream component (a 2-stage pipelined adder with a
zero flag: small on purpose, Verilator compiles it in seconds; it has a submodule, registers, named wires
and back-pressure, which is all the harness and toggle-counting tests need), and the accelerator point
the cocotb testbench drives (small buffers, so that it builds quickly).
"""

from amaranth import Elaboratable, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accel.hw.accelerator import Accelerator, BufferConfig
from accel.hw.config import AcceleratorConfig

IN_LAYOUT = data.StructLayout({"a": 16, "b": 16, "b_zero": 1})
OUT_LAYOUT = data.StructLayout({"s": 17})


class _Stage(Elaboratable):
    """One register stage with an enable: ``q <= d`` when ``en``."""

    def __init__(self, width):
        self.d = Signal(width)
        self.q = Signal(width)
        self.en = Signal()

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.d)
        return m


class PipeAdd(wiring.Component):
    """``s = a + b`` (``s = a`` when ``b_zero``), latency 2, one word per clock, valid/ready honoured."""

    latency = 2

    def __init__(self):
        super().__init__({"i": In(stream.Signature(IN_LAYOUT)), "o": Out(stream.Signature(OUT_LAYOUT))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.stage = stage = _Stage(17)
        sum_a = Signal(17)
        v1 = Signal()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(advance)
        p = self.i.payload
        with m.If(p.b_zero):
            m.d.comb += sum_a.eq(p.a)
        with m.Else():
            m.d.comb += sum_a.eq(p.a + p.b)
        r1 = Signal(17)
        with m.If(advance):
            m.d.sync += [v1.eq(self.i.valid), self.o.valid.eq(v1)]
            with m.If(self.i.valid):
                m.d.sync += r1.eq(sum_a)
        m.d.comb += [stage.d.eq(r1), stage.en.eq(advance & v1), self.o.payload.s.eq(stage.q)]
        return m


def pack_in(a, b, b_zero=0):
    return IN_LAYOUT.const({"a": a, "b": b, "b_zero": b_zero}).as_value().value


def model(word):
    a, b, z = word & 0xFFFF, (word >> 16) & 0xFFFF, (word >> 32) & 1
    return a if z else a + b


def accelerator(fmt, gating):
    """The accelerator the cocotb testbench drives: direct convolution, ``fmt`` weights, small buffers."""
    return Accelerator(BufferConfig(array=AcceleratorConfig(gating=gating), weight_format=fmt, act_words=256,
                                    weight_tiles=32, psum_tiles=32))
