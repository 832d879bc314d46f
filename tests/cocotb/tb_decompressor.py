"""cocotb testbench: the sparse weight decompressor (accel.hw.decompressor.Decompressor) against
accel.golden.sparse, round trip from golden encoding to hardware tiles.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_FORMAT, ACCEL_TB_GATING, ACCEL_TB_SEED.
Streams of tiles at densities 0 to 100% (nm24: up to 50%) go in as the registry's stimulus words; the model
decodes each stream (golden) when it is queued, and predicts its tiles when its header word is accepted
(tiles come out while the rest of the stream is still going in). The checker compares every
element's zero flag and, where it is not flagged, its value (a flagged element's lines are don't-care here:
the frozen-line sender is checked in tests/test_decompressor_hw.py).
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from accel.golden import sparse
from accel.hw.units import unit
from accel.sim.payload import pack, unpack
from streams import GATING, SEED, StreamTestbench

FORMAT = os.environ.get("ACCEL_TB_FORMAT", "bitmask")
ENTRY = unit(f"decompress_{FORMAT}")
UNIT = ENTRY(GATING)
IN_LAYOUT = UNIT.i.payload.shape()
OUT_LAYOUT = UNIT.o.payload.shape()
DENSITIES = (0.0, 0.05, 0.1, 0.5, 1.0)


def stream(tiles, density, seed):
    """The packed input words of one stream of ``tiles`` tiles."""
    return pack(IN_LAYOUT, ENTRY.stimulus(tiles, seed=seed, densities=(1.0, density)))


class DecompressorBench(StreamTestbench):
    """Predicts a stream's tiles (golden decoding of its words) when its header word goes in."""

    def __init__(self, dut, **options):
        super().__init__(dut, model=None, compare=None, in_width=IN_LAYOUT.size, latency=UNIT.latency, **options)
        self.streams = []            # golden tiles of each queued stream, oldest first
        self.in_stream = False

    def send(self, words):
        data = [int(w) for w in unpack(IN_LAYOUT, words)["data"][:, 0]]
        tiles, zero = sparse.decode_words(data, FORMAT, width=UNIT.width)
        self.streams.append(list(zip(tiles.reshape(-1, 16), zero.reshape(-1, 16))))
        super().send(words)

    def forget_queued(self):
        """Drop the words not yet sent (and their stream's predictions): a reset cut the stream."""
        self.driver.queue.clear()
        self.streams.clear()
        self.in_stream = False

    def accepted(self, word):
        if not self.in_stream:
            self.expected.extend((word, tile) for tile in self.streams.pop(0))
        self.in_stream = not unpack(IN_LAYOUT, [word])["last"][0, 0]

    def check(self, got):
        if not self.expected:
            self.mismatches.append(f"unexpected tile {got:#x}")
            return
        _, (tile, flags) = self.expected.popleft()
        out = unpack(OUT_LAYOUT, [got])       # fields "<p>.value", "<p>.is_zero" of the 16 elements
        got_flags = np.array([out[f"{p}.is_zero"][0, 0] for p in range(16)], bool)
        got_values = np.array([out[f"{p}.value"][0, 0] for p in range(16)])
        want_flags = flags.astype(bool) if GATING != "none" else np.zeros(16, bool)
        if not np.array_equal(got_flags, want_flags):
            self.mismatches.append(f"flags {got_flags.astype(int)} want {want_flags.astype(int)}")
        live = ~flags.astype(bool)
        if not np.array_equal(got_values[live], tile[live]):
            self.mismatches.append(f"values {got_values[live]} want {tile[live]}")
        self.checked += 1


@cocotb.test()
async def streams_under_back_pressure(dut):
    """Streams at every density, random idle cycles in and random back-pressure out: every tile right."""
    tb = DecompressorBench(dut, seed=SEED, valid_prob=0.7, ready_prob=0.6)
    await tb.start()
    for i, density in enumerate(DENSITIES):
        if FORMAT != "nm24" or density <= 0.5:
            tb.send(stream(12, density, SEED + i))
    assert await tb.drain(5000), f"not drained: {len(tb.driver.queue)} words unsent, {len(tb.expected)} tiles due"
    tb.assert_clean(12 * sum(FORMAT != "nm24" or d <= 0.5 for d in DENSITIES))
    assert int(dut.error.value) == 0


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset in the middle of a stream: what was in flight is lost, the next stream decodes right."""
    tb = DecompressorBench(dut, seed=SEED + 1, valid_prob=0.8, ready_prob=0.7)
    await tb.start()
    tb.send(stream(40, 0.3, SEED + 1))
    await ClockCycles(dut.clk, 15)
    await tb.reset()
    tb.forget_queued()                # the rest of the interrupted stream is never sent
    tb.send(stream(10, 0.1, SEED + 2))
    assert await tb.drain(2000), "the stream after the reset did not come through"
    tb.assert_clean(10)
    assert int(dut.error.value) == 0
