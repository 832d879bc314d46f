"""Layers larger than the on-chip buffers run in passes (accel.sim.conv.plan_passes): groups of output
channels, bands of output rows and columns, and, when no pass over all input channels fits, groups of input
channels (the passes after a region's first channel group carry on from the psum buffer's sums: CONFIG's
accumulate bit), each pass a layer of its own in one command stream. The passes together must equal golden's
unsplit layer bit for bit, with every pass's loads counted as off-chip traffic.
Double buffering (accel.sim.conv.conv_stream): the next pass's loads follow the running pass's RUN, into the
other end of the buffer; the host never loads into a region the running pass reads."""

import numpy as np
import pytest

from accel.golden.schedule import INNER_ORDERS, ORDER_DEPTH, TILE
from accel.golden.sparse import magnitude_prune
from accel.golden.winograd import (direct_conv, filter_transform, im2col_operands, random_layer, winograd_conv,
                                   winograd_operands)
from accel.hw.accelerator import BufferConfig, Op
from accel.sim.conv import Pass, conv_stream, golden_conv, layer_weights, plan_passes, run_conv, run_convs

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
    assert plan_passes(x, w, BufferConfig()) == [Pass(0, 6, 0, 8, 0, 7, 0, 3)]


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
        assert (p.ci0, p.ci1) == (0, 3)
        x_part, w_part = p.operands(x, w[p.k0:p.k1, p.ci0:p.ci1])
        buffers.layer_tiles(x_part.shape[0], w_part.shape[0], *x_part.shape[1:])   # raises if it did not fit


def test_a_layer_whose_smallest_pass_does_not_fit_is_refused_naming_the_buffer():
    x, w = layer(3, 40, 4, 5, 5)      # 40 channels x 3 x 3 = 360 words: over 64 for one output, but 4 channels fit
    with pytest.raises(ValueError, match="needs 9 tiles of the weight buffer, which holds 8"):
        plan_passes(x, w, SMALL)      # the smallest pass's 4 filters x 4 channels x 9 taps
    with pytest.raises(ValueError, match="needs 48 words of the activation buffer, which holds 32"):
        plan_passes(x, w, BufferConfig(act_words=32, weight_tiles=16))     # its 4 channels x 3 x 3


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


# ---------------------------------------------------------------------------------------------- input channels

def test_a_layer_that_fits_over_all_input_channels_plans_as_before():
    # ResNet-18's conv2_1a (docs/architecture.md): 4 groups of 16 filters x 28 bands of 2 output rows, on half
    # the activation buffer; every pass over all 64 input channels
    x, w = np.zeros((64, 58, 58), np.uint16), np.zeros((64, 64, 3, 3), np.uint16)
    passes = plan_passes(x, w, BufferConfig())
    assert passes == [Pass(k0, k0 + 16, r0, r0 + 2, 0, 56, 0, 64) for k0 in range(0, 64, 16) for r0 in range(0, 56, 2)]


def test_512_channel_layers_split_their_input_channels():
    # ResNet-18's conv5 layers: 4 filters of 512 channels are 1,152 weight tiles, over the 1,024 of the buffer
    x, w = np.zeros((512, 9, 9), np.uint16), np.zeros((512, 512, 3, 3), np.uint16)
    passes = plan_passes(x, w, BufferConfig())
    # the fewest passes, 256 of 576 tiles: 8 filters x 128 channels, 16 x 64, ..., 256 x 4 (256 channels would need
    # 4-filter groups and 2 row bands: 512 passes); of those the smallest channel groups, so that the input is
    # loaded twice, not 64 times; a region's 128 channel groups one after the other
    assert passes == [Pass(k0, k0 + 256, 0, 7, 0, 7, ci0, ci0 + 4) for k0 in (0, 256) for ci0 in range(0, 512, 4)]
    # 4,000 channels x 3 x 3 (36,000 words) overflow the activation buffer, and their taps the weight buffer: halvings
    # down to 252 channels (567 tiles; 504 channels would be 1,134)
    x, w = np.zeros((4000, 3, 3), np.uint16), np.zeros((1, 4000, 3, 3), np.uint16)
    assert plan_passes(x, w, BufferConfig()) == [Pass(0, 1, 0, 1, 0, 1, ci0, min(ci0 + 252, 4000))
                                                 for ci0 in range(0, 4000, 252)]


@pytest.mark.parametrize("order", INNER_ORDERS)
def test_channel_groups_run_the_unsplit_chains_step_by_step(order):
    # the inner orders are channel-block major: groups of whole blocks (4 channels, 8 for tap_pairs) but the last
    # give every chain the unsplit layer's steps, padding included, one group after the other (C = 10: 8 + 2)
    x, w = layer(7, 10, 4, 5, 5)
    depth = ORDER_DEPTH[order]

    def steps(c0, c1):
        """A and B of the channels' GEMM, padded to whole steps."""
        shape, a, b = im2col_operands(x[c0:c1], w[:, c0:c1], order)
        return (np.pad(a, ((0, 0), (0, shape.steps * depth - a.shape[1]))),
                np.pad(b, ((0, shape.steps * depth - b.shape[0]), (0, 0))))

    whole, groups = steps(0, 10), [steps(0, 8), steps(8, 10)]
    for k in range(2):
        assert np.array_equal(whole[k], np.concatenate([g[k] for g in groups], axis=1 - k))
    if order == "channel_major":        # 9 x 3 = 27 inner rows: 3 channels are no whole number of steps
        split = [steps(0, 3), steps(3, 10)]
        assert not np.array_equal(whole[0], np.concatenate([g[0] for g in split], axis=1))


def test_winograd_channel_groups_run_the_unsplit_chains_step_by_step():
    x, w = layer(8, 6, 4, 6, 6)
    u = filter_transform(w, 2)
    _, a, b = winograd_operands(x, u, 2)
    parts = [winograd_operands(x[c0:c1], u[:, c0:c1], 2)[1:] for c0, c1 in ((0, 4), (4, 6))]
    assert np.array_equal(a, np.concatenate([p[0] for p in parts], axis=2))       # inner: channels in steps of 4
    assert np.array_equal(b, np.concatenate([p[1] for p in parts], axis=1))


def pass_commands(commands):
    """Per RUN of ``commands``: [its CONFIG's accumulate bit, the STOREs of its pass]."""
    runs, accumulate = [], None
    for op, _, data in commands:
        if op == Op.CONFIG.value:
            accumulate = int(data[11])
        elif op == Op.RUN.value:
            runs.append([accumulate, 0])
        elif op == Op.STORE.value:
            runs[-1][1] += 1
    return runs


def skip_layer(seed, chans, filters, height, width):
    """ReLU activations and magnitude-pruned 2:4 weights."""
    rng = np.random.default_rng(seed)
    return layer(seed, chans, filters, height, width)[0], magnitude_prune((filters, chans, 3, 3), 0.5, rng, "nm24")


# 12 weight tiles: 4 dense filters over 6 channels need 14 (over 4: 9); 48 words hold 4 nm24 filters' stream
# over 8 channels (42 words), not over 12 (82)
SPLIT = BufferConfig(act_words=512, weight_tiles=12, psum_tiles=16)
CHANNEL_SPLITS = {     # algo, format, sparse mode, layer, buffers (too few weight tiles for all channels), groups
    "direct": ("direct", "dense", "gate", layer(31, 6, 6, 6, 6), SPLIT, [(0, 4), (4, 6)]),
    "bitmask": ("direct", "bitmask", "gate", layer(21, 10, 4, 5, 5),
                BufferConfig(act_words=512, weight_tiles=20, psum_tiles=16), [(0, 8), (8, 10)]),
    "nm24-skip": ("direct", "nm24", "skip", skip_layer(22, 12, 4, 5, 5),
                  SPLIT, [(0, 8), (8, 12)]),
    "winograd2": ("winograd2", "dense", "gate", layer(23, 6, 4, 6, 6),
                  BufferConfig(act_words=512, weight_tiles=16, psum_tiles=16 * 4, v_words=16, out_words=64),
                  [(0, 4), (4, 6)]),
}


@pytest.mark.parametrize("case", CHANNEL_SPLITS)
def test_input_channel_groups_accumulate_to_the_unsplit_layer(case):
    algo, fmt, mode, (x, w), buffers, groups = CHANNEL_SPLITS[case]
    running = buffers.running(algo=algo, weight_format=fmt, gating="hold", sparse_mode=mode)
    commands, (passes,), plans = conv_stream([(x, w)], running)
    chans, filters, out_h, out_w = len(x), len(w), x.shape[1] - 2, x.shape[2] - 2
    assert sorted({(p.ci0, p.ci1) for p in passes}) == groups and all((p.r0, p.r1) == (0, out_h) for p in passes)
    # a region's channel groups in turn: the later ones accumulate, only the last one stores
    assert [p.ci0 for p in passes] == [c0 for _ in range(len(passes) // len(groups)) for c0, _ in groups]
    runs = pass_commands(commands)
    assert [accumulate for accumulate, _ in runs] == [int(p.ci0 > 0) for p in passes]
    assert [stores > 0 for _, stores in runs] == [p.ci1 == chans for p in passes]

    run = run_conv(x, w, algo=algo, fmt=fmt, sparse_mode=mode, buffers=buffers)
    # golden's unsplit layer (on buffers that hold it whole); ignoring the accumulate bit, the last channel group
    # would overwrite the others' sums
    unsplit = BufferConfig().running(algo=algo, weight_format=fmt, gating="hold", sparse_mode=mode)
    assert run.passes == len(passes) and run.bit_exact and np.array_equal(run.y, golden_conv(x, w, unsplit))
    c, mt, points = run.counters, running.winograd_m, running.points
    # every pass loads its channels' window and its group's weights (consecutive passes differ in channels)
    assert c["act_writes"] == sum(-(-x_part.size // 16) * 16 for *_, x_part, _, _, _ in plans)
    assert c["weight_writes"] == sum(len(layer_weights(w_part, running)[0]) for *_, w_part, _, _ in plans)
    # each output stored once, as by the unsplit layer
    if mt is None:
        rows, _, cols = unsplit.layer_tiles(chans, filters, *x.shape[1:])
        assert c["stores"] == rows * cols and run.offchip_bytes["store"] == 4 * 16 * rows * cols
    else:
        tiles = -(-out_h // mt) * -(-out_w // mt)
        assert c["stores"] == filters * tiles and run.offchip_bytes["store"] == 4 * mt * mt * filters * tiles
        # every pass's output pass transforms its sums (the partial ones in vain)
        assert c["transforms_out"] == len(passes) * filters * tiles
    # C reads: every chain step but step 0, plus step 0 of the accumulating passes (the previous group's sums:
    # reads the unsplit chains make there too), plus STORE's (direct) or the output passes' (all P banks a tile)
    chains = [rows * cols * points for _, _, (rows, _, cols), *_ in plans]
    accumulated = sum(n for n, p in zip(chains, passes) if p.accumulate)
    out_reads = c["stores"] if mt is None else sum(chains)
    assert accumulated > 0 and c["psum_reads"] == c["instructions"] - sum(chains) + accumulated + out_reads


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


CONTRACT_CASES = {     # buffers, a layer that runs in passes on them
    "direct": (SMALL, layer(3, 3, 6, 10, 9)),
    "winograd2": (BufferConfig(act_words=256, weight_tiles=256, psum_tiles=36 * 4, v_words=16, out_words=64,
                               algo="winograd2"), layer(3, 3, 6, 10, 9)),
    "input-channels": (SPLIT, layer(31, 6, 6, 6, 6)),
}


@pytest.mark.parametrize("case", CONTRACT_CASES)
def test_the_host_alternates_halves_and_never_loads_into_the_running_pass(case):
    buffers, (x, w) = CONTRACT_CASES[case]
    x2, w2 = layer(6, 3, 4, 6, 6)
    buffers = buffers.running(algo=buffers.algo, weight_format="dense", gating="hold")
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
