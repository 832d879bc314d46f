"""Layers larger than the on-chip buffers run in passes (accel.sim.conv.plan_passes): groups of output
channels, bands of output rows and columns, each pass a layer of its own in one command stream. The passes
together must equal golden's unsplit layer bit for bit, with every pass's loads counted as off-chip traffic.
Double buffering (accel.sim.conv.conv_stream): the next pass's loads follow the running pass's RUN, into the
other end of the buffer; the host never loads into a region the running pass reads."""

import numpy as np
import pytest

from accel.golden.schedule import TILE
from accel.golden.winograd import direct_conv, random_layer, winograd_conv
from accel.hw.accelerator import BufferConfig, Op
from accel.sim.conv import conv_stream, plan_passes, run_conv, run_convs

# a 128-word activation buffer: several-pass layers are planned on its halves of 64 words
SMALL = BufferConfig(act_words=128, weight_tiles=8, psum_tiles=64, v_words=16, out_words=64)
TINY = BufferConfig(act_words=64, weight_tiles=32, psum_tiles=32)


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
    with pytest.raises(ValueError, match="activation buffer, which holds 128"):
        plan_passes(x, w, SMALL)


def test_direct_passes_in_groups_rows_and_columns_equal_the_unsplit_layer():
    x, w = layer(3, 3, 6, 10, 9)                # 270 activations in 64-word halves, 14 weight tiles in 8
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
    x, w = layer(4, 3, 5, 8, 7)                 # 168 activations in 256 words' halves: two bands of 4 output rows
    buffers = BufferConfig(act_words=256, weight_tiles=256, psum_tiles=36 * 4, v_words=16, out_words=64)
    run = run_conv(x, w, algo="winograd2", fmt="dense", gating="hold", buffers=buffers)
    assert run.passes == 2 and run.bit_exact
    assert np.array_equal(run.y, winograd_conv(x, w, 2, gating="hold"))


# ---------------------------------------------------------------------------------------------- double buffering

def regions(commands):
    """Per RUN in ``commands``: (its activation region, its weight region, the loads issued after it and
    before its pass's STOREs: the ones the accelerator may take while it runs), regions as address sets."""
    runs, config = [], None
    for i, (op, addr, data) in enumerate(commands):
        if op == Op.CONFIG.value:
            config = [int(v) for v in data]
        elif op == Op.RUN.value:
            chans, _, height, width = config[:4]
            act_base, weight_base = config[7] | config[8] << 16, config[9] | config[10] << 16
            words = config[4] | config[5] << 16
            act = set(range(act_base, act_base + -(-chans * height * width // 16) * 16))
            runs.append([act, set(range(weight_base, weight_base + words)), [], False])
        elif runs and not runs[-1][3] and op in (Op.LOAD_ACT.value, Op.LOAD_WGT.value):
            span = 16 if op == Op.LOAD_ACT.value else 1
            runs[-1][2].append((op, set(range(addr, addr + span))))
        elif runs and op in (Op.STORE.value, Op.COUNTER.value):
            runs[-1][3] = True
    return [r[:3] for r in runs]


def early_loads(commands):
    return sum(len(loads) for _, _, loads in regions(commands))


@pytest.mark.parametrize("algo", ["direct", "winograd2"])
def test_the_host_alternates_halves_and_never_loads_into_the_running_pass(algo):
    x, w = layer(3, 3, 6, 10, 9)
    x2, w2 = layer(6, 3, 4, 6, 6)
    buffers = SMALL.running(algo=algo, weight_format="dense", gating="hold")
    if algo != "direct":
        buffers = BufferConfig(act_words=256, weight_tiles=256, psum_tiles=36 * 4, v_words=16, out_words=64,
                               algo=algo)
    commands, parts, _ = conv_stream([(x, w), (x, w), (x2, w2)], buffers)      # a batch, then another layer
    runs = regions(commands)
    assert len(runs) == sum(len(p) for p in parts) and len(parts[0]) > 1
    bases = [min(act) for act, _, _ in runs]
    assert all(a != b for a, b in zip(bases, bases[1:]))               # consecutive passes: the other end
    for (act, weights, loads), (next_act, next_weights, _) in zip(runs, runs[1:] + [(set(), set(), [])]):
        assert max(act) < buffers.act_words and max(weights) < buffers.weight_words
        for op, where in loads:
            assert not where & (act if op == Op.LOAD_ACT.value else weights)     # never the running pass's
            assert where <= (next_act if op == Op.LOAD_ACT.value else next_weights)
    assert early_loads(commands) > len(runs)
    serial, _, _ = conv_stream([(x, w), (x, w), (x2, w2)], buffers, overlap=False)
    assert early_loads(serial) == 0 and sorted(c[0] for c in serial) == sorted(c[0] for c in commands)


def test_a_layer_that_fits_whole_takes_the_whole_buffer_in_one_pass():
    x, w = layer(5, 3, 4, 6, 6)                 # 108 activations: over half of 128 words, one pass
    assert len(plan_passes(x, w, SMALL)) == 1
    x, w = layer(5, 2, 4, 6, 8)                 # 96 activations in 64 words: passes of 32 words
    passes = plan_passes(x, w, TINY)
    assert len(passes) > len(plan_passes(x, w, TINY, double_buffer=False)) > 1
    for p in passes:
        TINY.layer_tiles(2, p.k1 - p.k0, p.r1 - p.r0 + 2, p.c1 - p.c0 + 2)
        assert -(-2 * (p.r1 - p.r0 + 2) * (p.c1 - p.c0 + 2) // 16) * 16 <= TINY.act_words // 2


def test_loads_during_runs_save_their_cycles_and_change_nothing_else():
    x, w = layer(5, 2, 4, 6, 8)
    runs = {overlap: run_conv(x, w, buffers=TINY, overlap=overlap) for overlap in (True, False)}
    fast, slow = runs[True], runs[False]
    assert fast.passes == slow.passes > 1 and fast.bit_exact and slow.bit_exact
    assert np.array_equal(fast.y, slow.y) and np.array_equal(fast.y, direct_conv(x, w, "hold"))
    assert fast.counters == slow.counters and fast.cycles == slow.cycles
    commands = conv_stream([(x, w)], TINY.running(algo="direct", weight_format="dense", gating="hold"))[0]
    assert slow.stream_cycles - fast.stream_cycles >= early_loads(commands) > 0


def test_verilator_agrees_with_pysim_on_overlapped_passes():
    x, w = layer(5, 2, 4, 6, 8)
    first, second = (run_conv(x, w, buffers=TINY, backend=backend) for backend in ("verilator", "pysim"))
    assert first.bit_exact and second.bit_exact and first.passes > 1
    assert np.array_equal(first.y, second.y)
    assert (first.cycles, first.stream_cycles, first.counters) == (second.cycles, second.stream_cycles, second.counters)
    assert first.toggles.total > 0 and first.toggles.by_signal == second.toggles.by_signal


def test_compressed_weights_of_the_next_layer_load_during_the_run_at_the_other_end():
    # two layers of bitmask weights in one stream: the second layer's stream (78 words) goes to the far end of
    # the 128-word weight buffer while the first (40 words) runs, and the decompressor reads it from there
    # (CONFIG's weight base)
    x, w = layer(8, 4, 4, 6, 6)
    x2, w2 = layer(9, 4, 8, 5, 5)
    roomy = BufferConfig(act_words=512, weight_tiles=32, psum_tiles=32)
    commands = conv_stream([(x, w), (x2, w2)], roomy.running(algo="direct", weight_format="bitmask", gating="hold"))[0]
    configs = [c for c in commands if c[0] == Op.CONFIG.value]
    assert [int(c[2][9]) | int(c[2][10]) << 16 for c in configs] == [0, 128 - 78]
    assert early_loads(commands) > 0
    fast, toggles = run_convs([(x, w), (x2, w2)], fmt="bitmask", buffers=roomy)
    slow, _ = run_convs([(x, w), (x2, w2)], fmt="bitmask", buffers=roomy, overlap=False)
    for a, b in zip(fast, slow):
        assert a.bit_exact and b.bit_exact and np.array_equal(a.y, b.y)
        assert a.counters == b.counters          # each layer's own loads, wherever they were issued
    # the whole stream (every layer's stream_cycles) is shorter by at least the loads taken during the run
    assert slow[0].stream_cycles - fast[0].stream_cycles >= early_loads(commands) > 0
    assert toggles.samples == fast[0].stream_cycles
