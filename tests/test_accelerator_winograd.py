"""The accelerator's Winograd path (F(2×2, 3×3) and F(4×4, 3×3)) against golden's same schedule.

The Winograd sequencer alone is checked request by request against
:func:`accel.golden.schedule.gemm_schedule` in its ``WINOGRAD_LOOPS`` order (cheap: no array). Whole layers
run through :func:`accel.sim.conv.run_conv` in the Amaranth simulator on small shapes whose output sizes
are not multiples of m and whose C, K are not multiples of 4, over formats and gating styles (a covering
set: every format and every gating style, F(2×2) for three of the formats; the F(4×4) units are large, so
F4 runs once, with nm24 weights); every counter is what the schedule and golden say.
"""

import functools
from dataclasses import replace

import numpy as np
import pytest

from accel.golden.hmma import gated_mac_count
from accel.golden.schedule import TILE, WINOGRAD_LOOPS, chain_gap, gemm_schedule
from accel.golden.winograd import filter_transform, random_layer, winograd_conv, winograd_operands
from accel.hw.accelerator import BufferConfig
from accel.hw.sequencer import WinogradSequencer
from accel.sim.conv import run_conv, weight_stream
from hwcheck import sequencer_requests

SMALL = BufferConfig(act_words=512, weight_tiles=256, psum_tiles=36 * 8, v_words=16, out_words=256)
FULL_OUT = replace(SMALL, out_words=32)     # the F4 layers fill the output buffer exactly: its address wraps


def channel_2_4(rng, w):
    """Two of every four input channels of each filter zeroed at every tap, so that the transformed filters
    U = G·g·Gᵀ keep the zeros and fit ``nm24`` (C padded to 4: the padding counts as zeros)."""
    filters, chans = w.shape[:2]
    w = w.copy()
    for k in range(filters):
        for block in range(0, chans, TILE):
            drop = block + rng.permutation(TILE)[:2]
            w[k, drop[drop < chans]] = 0
    return w


def layer(seed, chans, filters, height, width):
    rng = np.random.default_rng(seed)
    x, w = random_layer(rng, chans, filters, height, width, "relu")
    return x, channel_2_4(rng, w)


def schedule_tiles(x, u, m):
    """Each Winograd instruction's A and B tiles [N, 4, 4] in the hardware's walk order."""
    shape, a, b = winograd_operands(x, u, m)
    rows, cols, inner = shape.padded
    a = np.pad(a, ((0, 0), (0, rows - a.shape[1]), (0, inner - a.shape[2])))
    b = np.pad(b, ((0, 0), (0, inner - b.shape[1]), (0, cols - b.shape[2])))
    tile = np.arange(TILE)
    schedule = gemm_schedule(shape, WINOGRAD_LOOPS)
    a_tiles = np.stack([a[ins.gemm][np.ix_(ins.row + tile, ins.inner + tile)] for ins in schedule])
    b_tiles = np.stack([b[ins.gemm][np.ix_(ins.inner + tile, ins.col + tile)] for ins in schedule])
    return shape, schedule, a_tiles, b_tiles


@pytest.mark.parametrize("m, chans, filters, height, width", [(2, 5, 6, 7, 8), (4, 3, 5, 9, 7)])
def test_sequencer_walks_the_winograd_schedule(m, chans, filters, height, width):
    x = np.zeros((chans, height, width), np.uint16)
    shape, schedule, _, _ = schedule_tiles(x, np.zeros((filters, chans, m + 2, m + 2), np.uint16), m)
    rows, cols, inner = (shape.blocks(n) for n in (shape.rows, shape.cols, shape.inner))
    expected = []
    for ins in schedule:
        r, s, cb = ins.row // TILE, ins.step, ins.col // TILE
        live = tuple(s * TILE + kk < chans and ins.col + j < shape.cols for kk in range(TILE) for j in range(TILE))
        expected.append(((r * inner + s) * shape.gemms + ins.gemm, (r * inner + s) % 2, ins.gemm, s * cols + cb,
                         r * cols + cb, s == 0, live))
    dut = WinogradSequencer(m=m, v_bits=8, weight_bits=10, psum_bits=8)

    def take(req):
        return (req.w_addr, req.w_half, req.point, req.v_addr, req.psum_addr, bool(req.first),
                tuple(bool(req.live >> e & 1) for e in range(TILE * TILE)))
    bounds = {"channels": chans, "filters": filters, "height": height, "width": width, "kernel": 3}
    got, gap = sequencer_requests(dut, bounds, 3 * len(expected) + 8, take)
    assert gap == chain_gap(shape, WINOGRAD_LOOPS)
    assert got == expected


def check_counters(run, x, u, m, gating, compressed):
    """Every counter is what the Winograd schedule and golden say (``u``: the transformed filters as the
    hardware holds them; ``compressed``: through the decompressed-weight file)."""
    shape, schedule, a_tiles, b_tiles = schedule_tiles(x, u, m)
    rows, cols = shape.blocks(shape.rows), shape.blocks(shape.cols)
    c, n = run.counters, len(schedule)
    chans, height, width = x.shape
    assert c["instructions"] == n == c["psum_writes"] == c["v_reads"] and c["macs"] == 64 * n
    assert c["weight_file_reads"] == (n if compressed else 0)
    assert c["weight_file_writes"] == (shape.gemms * rows * shape.blocks(shape.inner) if compressed else 0)
    assert c["macs_gated"] == gated_mac_count(a_tiles, b_tiles, gating)
    assert c["transforms_in"] == chans * shape.cols and c["v_writes"] == shape.gemms * chans * shape.cols
    assert c["transforms_out"] == c["out_writes"] == rows * cols * TILE * TILE
    assert c["psum_reads"] == sum(ins.step > 0 for ins in schedule) + shape.gemms * rows * cols
    assert c["stores"] == shape.rows * shape.cols and c["act_writes"] == -(-chans * height * width // 16) * 16
    n_side = m + 2
    ys = np.arange(-(-(height - 2) // m))[:, None] * m + np.arange(n_side)
    xs = np.arange(-(-(width - 2) // m))[:, None] * m + np.arange(n_side)
    assert c["act_reads"] == chans * np.sum(ys < height) * np.sum(xs < width)      # patches inside the layer
    idle = {k: v for k, v in c.items() if k.startswith("idle_")}
    assert c["cycles"] == n + sum(idle.values())
    assert idle["idle_output_full"] == 0 and idle["idle_activations"] > 0 and idle["idle_drain"] >= run.latency
    assert run.ideal_cycles == shape.gemms * shape.rows * shape.inner * shape.cols / 64


CASES = [("winograd2", "dense", "hold"), ("winograd2", "bitmask", "and"), ("winograd2", "rle", "none"),
         ("winograd4", "nm24", "and")]


@functools.cache
def case_run(algo, fmt, gating):
    """(x, w, run) of one case: 7×8 (F2) or 9×7 (F4) layers, outputs not whole tiles, C and K not
    multiples of 4, one weight a stored −0."""
    m = int(algo[-1])
    x, w = layer(len(fmt) + m, 5, 6, 7, 8) if m == 2 else layer(3, 3, 5, 9, 7)
    w[0, 0, 1, 1] = 0x8000
    return x, w, run_conv(x, w, algo=algo, fmt=fmt, gating=gating, buffers=SMALL if m == 2 else FULL_OUT)


@pytest.mark.parametrize("algo, fmt, gating", CASES)
def test_winograd_conv_is_bit_exact_with_exact_counters(algo, fmt, gating):
    m = int(algo[-1])
    x, w, run = case_run(algo, fmt, gating)
    assert run.bit_exact and run.y.shape == (w.shape[0], x.shape[1] - 2, x.shape[2] - 2)
    u = filter_transform(w, m)
    held = u if fmt == "dense" else weight_stream(u, fmt)[1]
    if fmt == "dense" and gating != "hold":     # the same as golden's whole Winograd convolution from w
        assert np.array_equal(run.y, winograd_conv(x, w, m, gating=gating))
    check_counters(run, x, held, m, gating, fmt != "dense")


def test_winograd_response_back_pressure_changes_nothing_but_the_stream_time():
    x, w, free = case_run(*CASES[0])
    pattern = np.random.default_rng(22).random(2 * free.stream_cycles) < 0.5
    pressed = run_conv(x, w, algo="winograd2", buffers=SMALL, ready_pattern=pattern)
    assert pressed.bit_exact and np.array_equal(pressed.y, free.y)
    assert pressed.counters == free.counters and pressed.stream_cycles > free.stream_cycles


def test_winograd_buffers_are_checked():
    wino = replace(SMALL, algo="winograd2")
    assert wino.points == 16 and wino.psum_bank_tiles == 18 and wino.layer_tiles(5, 6, 7, 8) == (2, 2, 3)
    with pytest.raises(ValueError, match="transformed-activation buffer bank"):
        replace(wino, act_words=8192).layer_tiles(20, 4, 10, 10)
    with pytest.raises(ValueError, match="psum_tiles must be at least 36"):
        BufferConfig(algo="winograd4", psum_tiles=32)
    with pytest.raises(ValueError, match="algo"):
        BufferConfig(algo="winograd3")
    with pytest.raises(ValueError, match="not 2:4"):   # U of weights pruned 2:4 tap by tap is not 2:4
        x, w = layer(1, 4, 4, 6, 6)
        w[:, :, 0, 0] = 0x3C00
        run_conv(x, w, algo="winograd2", fmt="nm24", buffers=SMALL)
