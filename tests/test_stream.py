"""Elastic stream plumbing (accel.hw.stream) in the Amaranth simulator: order, no loss or repeat under random
back-pressure, full rate when nothing stalls, a chain of blocks joined with ``chain``, bad parameters."""

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from accel.hw.stream import StreamFIFO, chain
from accel.sim.payload import pack, unpack
from accel.sim.pysim import run_stream
from hwcheck import backpressure

LAYOUT = data.StructLayout({"value": 16, "tag": 3})


def words(rng, n):
    return pack(LAYOUT, {"value": rng.integers(0, 1 << 16, n), "tag": rng.integers(0, 8, n)})


class TwoFIFOs(wiring.Component):
    """Two FIFOs in a row, joined with :func:`chain`."""

    def __init__(self):
        self.first, self.second = StreamFIFO(LAYOUT, depth=2), StreamFIFO(LAYOUT, depth=3)
        super().__init__({"i": In(stream.Signature(LAYOUT)), "o": Out(stream.Signature(LAYOUT))})

    @property
    def latency(self):
        return self.first.latency + self.second.latency

    def elaborate(self, platform):
        m = Module()
        m.submodules.first, m.submodules.second = self.first, self.second
        head, tail = chain(m, self.first, self.second)
        wiring.connect(m, wiring.flipped(self.i), head)
        wiring.connect(m, tail, wiring.flipped(self.o))
        return m


@pytest.mark.parametrize("make", [lambda: StreamFIFO(LAYOUT), lambda: StreamFIFO(LAYOUT, depth=5), TwoFIFOs])
def test_words_come_out_in_order_under_random_back_pressure(make):
    rng = np.random.default_rng(4)
    sent = words(rng, 60)
    run = run_stream(make(), sent, **backpressure(rng, 60))
    assert run.outputs == sent


@pytest.mark.parametrize("make", [lambda: StreamFIFO(LAYOUT), TwoFIFOs])
def test_full_rate_when_nothing_stalls(make):
    dut = make()
    sent = words(np.random.default_rng(5), 30)
    run = run_stream(dut, sent)
    assert run.outputs == sent and run.cycles == len(sent) + dut.latency


def test_a_stalled_reader_loses_nothing_and_the_fifo_fills_to_its_depth():
    dut = StreamFIFO(LAYOUT, depth=4)
    sent = words(np.random.default_rng(6), 12)
    taken = []

    async def bench(ctx):
        offered = 0
        for cycle in range(80):
            ctx.set(dut.i.valid, offered < len(sent))
            if offered < len(sent):
                ctx.set(dut.i.payload.as_value(), sent[offered])
            ctx.set(dut.o.ready, cycle >= 20)        # nothing read for 20 cycles
            if offered < len(sent) and ctx.get(dut.i.ready):
                offered += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                taken.append(ctx.get(dut.o.payload.as_value()))
            if cycle == 19:
                assert offered == dut.depth            # it took exactly depth words, then pushed back
            await ctx.tick()

    from accel.sim.pysim import run_testbench
    run_testbench(dut, bench)
    assert [int(v) for v in taken] == sent
    assert unpack(LAYOUT, taken)["tag"].shape == (12, 1)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("depth, error", [(0, ValueError), (1.5, TypeError)])
def test_bad_depth_is_refused(depth, error):
    with pytest.raises(error, match="depth"):
        StreamFIFO(LAYOUT, depth=depth)


def test_chain_needs_two_components():
    with pytest.raises(ValueError, match="at least two"):
        chain(Module(), StreamFIFO(LAYOUT))
