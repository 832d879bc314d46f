"""Layers larger than the on-chip buffers run in passes (accel.sim.conv.plan_passes): groups of output
channels, bands of output rows and columns, each pass a layer of its own in one command stream. The passes
together must equal golden's unsplit layer bit for bit, with every pass's loads counted as off-chip traffic."""

import numpy as np
import pytest

from accel.golden.schedule import TILE
from accel.golden.winograd import direct_conv, random_layer, winograd_conv
from accel.hw.accelerator import BufferConfig
from accel.sim.conv import plan_passes, run_conv

SMALL = BufferConfig(act_words=64, weight_tiles=8, psum_tiles=64, v_words=16, out_words=64)


def layer(seed, chans, filters, height, width):
    return random_layer(np.random.default_rng(seed), chans, filters, height, width, "relu")


def covered(passes, shape):
    """How many passes write each output (k, y, x)."""
    count = np.zeros(shape, int)
    for p in passes:
        count[p.k0:p.k1, p.r0:p.r1, p.c0:p.c1] += 1
    return count


def test_a_layer_that_fits_is_one_pass():
    x, w = layer(1, 3, 6, 10, 9)
    (only,) = plan_passes(x, w, BufferConfig())
    assert (only.k0, only.k1, only.r0, only.r1, only.c0, only.c1) == (0, 6, 0, 8, 0, 7)


@pytest.mark.parametrize("algo, unit", [("direct", 1), ("winograd2", 2), ("winograd4", 4)])
def test_passes_cover_every_output_once_and_each_fits(algo, unit):
    x, w = layer(2, 3, 10, 12, 11)
    buffers = SMALL.running(algo=algo, weight_format="dense", gating="hold")
    if algo != "direct":
        buffers = BufferConfig(act_words=128, weight_tiles=64, psum_tiles=36 * 4, v_words=16, out_words=64,
                               algo=algo)
    passes = plan_passes(x, w, buffers)
    assert len(passes) > 1 and (covered(passes, (10, 10, 9)) == 1).all()
    for p in passes:
        assert p.k0 % TILE == 0 and p.r0 % unit == 0 and p.c0 % unit == 0    # whole tiles of m×m outputs
        x_part, w_part = p.operands(x, w[p.k0:p.k1])
        buffers.layer_tiles(x_part.shape[0], w_part.shape[0], *x_part.shape[1:])   # raises if it did not fit


def test_a_layer_whose_smallest_pass_does_not_fit_is_refused_naming_the_buffer():
    x, w = layer(3, 40, 4, 5, 5)                # 40 channels x 3 x 3 = 360 words: over 64 even for one output
    with pytest.raises(ValueError, match="activation buffer, which holds 64"):
        plan_passes(x, w, SMALL)


def test_direct_passes_in_groups_rows_and_columns_equal_the_unsplit_layer():
    x, w = layer(3, 3, 6, 10, 9)                # 270 activations in a 64-word buffer, 14 weight tiles in 8
    run = run_conv(x, w, algo="direct", fmt="dense", gating="hold", buffers=SMALL)
    passes = plan_passes(x, w, SMALL)
    assert run.passes == len(passes) == 32 and {(p.k0, p.k1) for p in passes} == {(0, 4), (4, 6)}
    assert run.bit_exact and np.array_equal(run.y, direct_conv(x, w, "hold"))
    c = run.counters
    windows = [(p.r1 - p.r0 + 2) * (p.c1 - p.c0 + 2) * 3 for p in passes]
    assert c["act_writes"] == sum(-(-n // 16) * 16 for n in windows)      # every window loaded, halo included
    assert c["weight_writes"] == 7 + 7                                    # each group's tiles once
    assert c["stores"] == sum(-(-(p.k1 - p.k0) // TILE) * -(-(p.r1 - p.r0) * (p.c1 - p.c0) // TILE) for p in passes)
    assert run.offchip_bytes["act_load"] == 2 * c["act_writes"] > 2 * x.size


def test_winograd_passes_in_row_bands_equal_the_unsplit_layer():
    x, w = layer(4, 3, 5, 8, 7)                 # 168 activations in 128 words: two bands of 4 output rows
    buffers = BufferConfig(act_words=128, weight_tiles=256, psum_tiles=36 * 4, v_words=16, out_words=64)
    run = run_conv(x, w, algo="winograd2", fmt="dense", gating="hold", buffers=buffers)
    assert run.passes == 2 and run.bit_exact
    assert np.array_equal(run.y, winograd_conv(x, w, 2, gating="hold"))
