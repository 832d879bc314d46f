"""The Winograd transform units in the Amaranth simulator against golden/winograd.py, bit for bit.

Building a simulator for an F(4×4) unit takes about 20 s (hundreds of adders), so each unit is built once
and one run checks it three ways: tiles back to back (N tiles in N + latency cycles), tiles under
random valid/ready back-pressure, and a reset while tiles are in flight (they are dropped; the tiles
sent after it come out right). Stimulus: wide-range random values (subnormal results, overflow to Inf),
special values, ReLU-like tiles, partial tiles (zero rows and columns, as at the layer edge), zero tiles.
"""

import gc

import numpy as np
import pytest
from amaranth import Elaboratable, Module, ResetInserter, Signal
from amaranth.sim import Simulator

from accel.golden import fp
from accel.golden import winograd as golden
from accel.golden.specials import SPECIAL_FP16, SPECIAL_FP32, mix_specials
from accel.hw.winograd import WinogradInput, WinogradOutput, scale_pow2
from accel.sim.payload import pack, unpack

BACK_TO_BACK, UNDER_PRESSURE, BEFORE_RESET, AFTER_RESET = 8, 10, 3, 5   # BEFORE_RESET <= every latency


def input_tiles(rng, n, count):
    """FP16 d tiles [count, n, n]: wide-range normals, specials, ReLU-like, partial and zero tiles."""
    scale = rng.choice(np.r_[-26:-14, -4:4, 12:15], (count, 1, 1))      # subnormal, ordinary, overflowing
    values = rng.standard_normal((count, n, n)) * 2.0 ** scale
    values[1::4] = np.maximum(values[1::4], 0)                   # ReLU-like: about half zeros
    values[2::4, :, n - 2:] = 0                                  # partial tiles: zero columns ...
    values[2::8, n - 3:, :] = 0                                  # ... and zero rows
    values[3] = 0
    values[5] = 60000 * np.sign(rng.standard_normal((n, n)))      # finite, the sums overflow (or cancel)
    with np.errstate(over="ignore"):                             # large values become ±Inf
        tiles = fp.to_bits(values, fp.FP16)
    mix_specials(rng, tiles[::3], fp.FP16, 0.06)
    return tiles


def output_tiles(rng, n, count):
    """FP32 M tiles [count, n, n]: wide-range values (subnormal and overflowing results) and specials."""
    values = rng.standard_normal((count, n, n)) * 2.0 ** rng.choice(np.r_[-148:-120, -4:4, 122:128], (count, 1, 1))
    values[2::4, :, n - 2:] = 0
    values[3] = 0
    values[5] = 3e38 * np.sign(rng.standard_normal((n, n)))
    with np.errstate(over="ignore"):
        tiles = fp.to_bits(values, fp.FP32)
    mix_specials(rng, tiles[::3], fp.FP32, 0.06)
    return tiles


def run_unit(dut, words, rng):
    """Stream ``words`` through ``dut`` under a ResetInserter, with separate input and output testbenches.

    Phase 1: BACK_TO_BACK words, output always ready. Phase 2: UNDER_PRESSURE words with random input
    gaps and random output stalls. Phase 3: BEFORE_RESET words sent back to back while the output is not
    ready (they sit in the stalled pipeline), a reset, then the remaining words. Returns (outputs of
    phases 1 and 2, clock edge of the last phase-1 output, outputs after the reset)."""
    reset = Signal()
    top = Module()
    top.submodules.dut = ResetInserter(reset)(dut)
    n1, n12, held = BACK_TO_BACK, BACK_TO_BACK + UNDER_PRESSURE, BACK_TO_BACK + UNDER_PRESSURE + BEFORE_RESET
    taken, after, state = [], [], {"last_edge": None, "reset_done": False}

    async def put(ctx, word):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload.as_value(), word)
        await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def producer(ctx):
        for index, word in enumerate(words[:held]):
            if index == n12:                       # phase 3 starts once phases 1 and 2 are out
                while len(taken) < n12:
                    await ctx.tick()
            elif n1 <= index < n12 and rng.random() < 0.4:
                await ctx.tick().repeat(int(rng.integers(1, 4)))
            await put(ctx, word)
        ctx.set(reset, 1)
        await ctx.tick()
        ctx.set(reset, 0)
        state["reset_done"] = True
        for word in words[held:]:
            await put(ctx, word)

    async def consumer(ctx):
        edge = 0
        while len(after) < len(words) - held:
            phase3 = len(taken) == n12
            ready = state["reset_done"] if phase3 else len(taken) < n1 or rng.random() < 0.6
            ctx.set(dut.o.ready, ready)
            *_, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload.as_value())
            if valid and ready:
                (after if phase3 else taken).append(int(payload))
                if len(taken) == n1 and state["last_edge"] is None:
                    state["last_edge"] = edge
            edge += 1
            assert edge < 10 * len(words) + 100, "the unit stopped producing outputs"

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()
    return taken, state["last_edge"], after


UNITS = [("input", 2, "fp16"), ("input", 2, "fp32"), ("output", 2, None),
         ("input", 4, "fp16"), ("input", 4, "fp32"), ("output", 4, None)]


@pytest.mark.parametrize("kind, m, precision", UNITS)
def test_unit_matches_golden_back_to_back_under_backpressure_and_after_reset(kind, m, precision):
    rng = np.random.default_rng(m * 10 + len(kind))
    n, count = m + 2, BACK_TO_BACK + UNDER_PRESSURE + BEFORE_RESET + AFTER_RESET
    if kind == "input":
        dut = WinogradInput(m=m, precision=precision)
        tiles = input_tiles(rng, n, count)
        expected = golden.input_transform(tiles, m, precision=precision).reshape(count, n * n)
        words = pack(dut.i.payload.shape(), {"d": tiles.reshape(count, n * n)})
    else:
        dut = WinogradOutput(m=m)
        tiles = output_tiles(rng, n, count)
        expected = golden.output_transform(tiles, m).reshape(count, m * m)
        words = pack(dut.i.payload.shape(), {"m": tiles.reshape(count, n * n)})
    taken, last_edge, after = run_unit(dut, words, rng)
    outputs = unpack(dut.o.payload.shape(), taken + after)
    kept = np.r_[0:BACK_TO_BACK + UNDER_PRESSURE, count - AFTER_RESET:count]   # the held tiles were dropped
    if kind == "input":
        assert_tiles_equal(outputs["v.value"], expected[kept], tiles.reshape(count, -1)[kept])
        flags = fp.is_zero(expected[kept], fp.FP16)
        assert flags.any() and np.array_equal(outputs["v.is_zero"].astype(bool), flags)
    else:
        assert_tiles_equal(outputs["y"], expected[kept], tiles.reshape(count, -1)[kept])
    assert last_edge == BACK_TO_BACK + dut.latency - 1     # N tiles take N + latency cycles
    del dut
    gc.collect()


def assert_tiles_equal(actual, expected, inputs):
    bad = np.flatnonzero((np.asarray(actual, np.uint64) != np.asarray(expected, np.uint64)).any(axis=1))
    detail = [f"tile {i}: in {[hex(int(v)) for v in inputs[i]]}\n  got {[hex(int(v)) for v in actual[i]]}"
              f"\n  expected {[hex(int(v)) for v in expected[i]]}" for i in bad[:2]]
    assert not len(bad), f"{len(bad)} of {len(actual)} tiles differ\n" + "\n".join(detail)


class Scalers(Elaboratable):
    """One input feeding :func:`scale_pow2` for each (fmt_out, shift)."""

    def __init__(self, fmt_in, targets):
        self.x = Signal(fmt_in.width)
        self.targets = targets
        self.outs = [Signal(fmt_out.width, name=f"y{k}") for k, (fmt_out, _) in enumerate(targets)]
        self.fmt_in = fmt_in

    def elaborate(self, platform):
        m = Module()
        for k, ((fmt_out, shift), out) in enumerate(zip(self.targets, self.outs)):
            m.submodules[f"scale{k}"] = sub = Module()
            m.d.comb += out.eq(scale_pow2(sub, self.x, self.fmt_in, fmt_out, shift))
        return m


def scale_inputs(rng, fmt, specials):
    """Specials, every power of two around the subnormal and overflow edges, neighbours, random."""
    top = fmt.exp_max_field << fmt.man_bits
    edges = [e << fmt.man_bits for e in (0, 1, 2, 3, 4, fmt.exp_max_field - 4, fmt.exp_max_field - 1)]
    near = [v + d for v in edges for d in (-1, 1, 3, (1 << fmt.man_bits) - 1) if 0 <= v + d < top]
    values = np.array(specials + edges + near, np.uint64)
    values = np.concatenate([values, values | fmt.sign_mask,
                             rng.integers(0, 1 << fmt.width, 150, dtype=np.uint64),
                             rng.integers(0, 1 << (fmt.man_bits + 3), 100, dtype=np.uint64)])
    return values.astype(fmt.dtype)


@pytest.mark.parametrize("fmt_in, targets", [
    (fp.FP16, [(fp.FP16, s) for s in (-3, -2, -1, 1, 2, 3)] + [(fp.FP32, s) for s in (-1, 0, 1)]),
    (fp.FP32, [(fp.FP32, s) for s in (-3, -1, 1, 3)] + [(fp.FP16, 0)]),
])
def test_scale_pow2_rounds_like_golden(fmt_in, targets):
    rng = np.random.default_rng(31)
    values = scale_inputs(rng, fmt_in, SPECIAL_FP16 if fmt_in == fp.FP16 else SPECIAL_FP32)
    dut = Scalers(fmt_in, targets)
    results = []

    async def testbench(ctx):
        for v in values:
            ctx.set(dut.x, int(v))
            results.append([ctx.get(out) for out in dut.outs])

    sim = Simulator(dut)       # combinational only: no clock
    sim.add_testbench(testbench)
    sim.run()
    results = np.array(results, np.uint64)
    for k, (fmt_out, shift) in enumerate(targets):
        expected = golden.convert(values, fmt_in, fmt_out, shift)
        assert_tiles_equal(results[:, k, None], expected[:, None], values[:, None])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("make, error, match", [
    (lambda: WinogradInput(m=3), ValueError, "m must be 2 or 4, not 3"),
    (lambda: WinogradOutput(m="4"), TypeError, "m must be an integer, not '4'"),
    (lambda: WinogradInput(m=2, precision="bf16"), ValueError, "'bf16'"),
    (lambda: WinogradInput(m=4, points="cheb"), ValueError, "'cheb'"),
    (lambda: WinogradOutput(m=2, points=(0, 1, 2, 3)), ValueError, "needs 3 distinct"),
])
def test_parameters_are_validated(make, error, match):
    with pytest.raises(error, match=match):
        make()
    gc.collect()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_latency_throughput_and_adders_follow_the_plan():
    # latency: input register + one stage per adder level of each pass; adders: (terms − 1) per output
    assert [WinogradInput(m=2).latency, WinogradInput(m=4).latency, WinogradOutput(m=2).latency,
            WinogradOutput(m=4).latency, WinogradInput(m=4, points="lavin4").latency] == [3, 7, 5, 7, 5]
    assert [WinogradInput(m=2).adders, WinogradInput(m=4).adders, WinogradInput(m=4, points="lavin4").adders,
            WinogradOutput(m=2).adders, WinogradOutput(m=4).adders] == [32, 312, 216, 24, 140]
    assert WinogradInput(m=4).tiles_per_cycle == WinogradOutput(m=4).tiles_per_cycle == 1
    gc.collect()
