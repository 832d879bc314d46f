"""cocotb testbench: the accelerator's top level (accel.hw.accelerator.Accelerator) running whole conv layers
against golden's same schedule.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_FORMAT (the weight format),
ACCEL_TB_GATING, ACCEL_TB_SEED. The driver sends each layer's command stream (accel.sim.conv.conv_commands:
CONFIG, loads, RUN, one STORE per output tile; no COUNTER reads, whose values depend on the stalls the
random back-pressure makes); the model predicts one response per command: empty, or for a STORE the 4×4
tile of golden's output (zero where the tile pads the layer). Random layers (C and K not multiples of 4,
outputs not whole tiles) go through with random idle cycles on the commands and random back-pressure on
the responses; a reset in the middle of a layer loses what was in flight, and the next layer, loaded
again from scratch, comes out right.
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from accel.golden.schedule import TILE
from accel.golden.winograd import random_layer
from accel.hw.accelerator import Op, response_layout
from accel.sim.conv import conv_commands, golden_conv
from accel.sim.payload import pack
from designs import accelerator
from streams import SEED, StreamTestbench

FORMAT = os.environ.get("ACCEL_TB_FORMAT", "dense")
UNIT = accelerator(FORMAT, os.environ.get("ACCEL_TB_GATING", "hold"))
IN_LAYOUT = UNIT.i.payload.shape()
OUT_LAYOUT = response_layout()


def layer(seed, chans, filters, height, width):
    """Commands of a random ReLU-like layer (about a third of the weights zero) and their responses."""
    rng = np.random.default_rng(seed)
    x, w = random_layer(rng, chans, filters, height, width, "relu")
    w[rng.random(w.shape) < 0.3] = 0
    commands, (rows, _, cols), held = conv_commands(x, w, UNIT.buffers)
    commands = [c for c in commands if c[0] != Op.COUNTER.value]
    y = golden_conv(x, w, UNIT.buffers, held)                                  # FP32 bits [K, OH, OW]
    d = np.zeros((rows * TILE, cols * TILE), np.uint32)
    d[:filters, :y.shape[1] * y.shape[2]] = y.reshape(filters, -1)
    tiles = d.reshape(rows, TILE, cols, TILE).transpose(0, 2, 1, 3).reshape(rows * cols, TILE * TILE)
    responses = [tiles[addr] if op == Op.STORE.value else np.zeros(TILE * TILE, np.uint32)
                 for op, addr, _ in commands]
    words = pack(IN_LAYOUT, {"op": np.array([c[0] for c in commands]),
                             "addr": np.array([c[1] for c in commands]), "data": np.stack([c[2] for c in commands])})
    return words, pack(OUT_LAYOUT, {"data": np.stack(responses)})


def compare(got, want, word):
    return None if got == want else f"response {got:#x}, golden {want:#x}"


class AcceleratorBench(StreamTestbench):
    """Each command accepted takes the next predicted response of its layer."""

    def __init__(self, dut, **options):
        super().__init__(dut, model=None, compare=compare, in_width=IN_LAYOUT.size, latency=0, **options)
        self.predicted = []

    def send_layer(self, words, responses):
        self.predicted.extend(int(r) for r in responses)
        self.send(words)

    def forget_queued(self):
        """Drop the commands not yet sent and their responses: a reset cut the layer."""
        self.driver.queue.clear()
        self.predicted.clear()          # the responses of the commands never sent

    def accepted(self, word):
        self.expected.append((word, self.predicted.pop(0)))


@cocotb.test()
async def layers_under_back_pressure(dut):
    """Two random layers, random idle cycles on the commands, random back-pressure on the responses."""
    tb = AcceleratorBench(dut, seed=SEED, valid_prob=0.7, ready_prob=0.5)
    await tb.start()
    sent = 0
    for i, shape in enumerate([(3, 5, 5, 7), (6, 3, 6, 4)]):
        words, responses = layer(SEED + i, *shape)
        tb.send_layer(words, responses)
        sent += len(words)
    assert await tb.drain(40 * sent), f"not drained: {len(tb.driver.queue)} commands unsent"
    tb.assert_clean(sent)


@cocotb.test()
async def reset_mid_layer(dut):
    """Reset while a layer runs: in-flight work is lost; the next layer, loaded from scratch, is right."""
    tb = AcceleratorBench(dut, seed=SEED + 1, valid_prob=0.9, ready_prob=0.8)
    await tb.start()
    words, responses = layer(SEED + 2, 5, 6, 6, 6)
    tb.send_layer(words, responses)
    await ClockCycles(dut.clk, len(words) // 2 + 30)       # past the loads, into the run
    await tb.reset()
    tb.forget_queued()
    words, responses = layer(SEED + 3, 3, 4, 5, 5)
    tb.send_layer(words, responses)
    assert await tb.drain(40 * len(words)), "the layer after the reset did not come through"
    tb.assert_clean(len(words))
    assert tb.resets == 1 and tb.dropped + tb.checked >= len(words)
