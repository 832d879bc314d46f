"""The accelerator's top level (direct convolution, dense weights) against golden's same schedule.

The sequencer alone is checked request by request against :func:`accel.golden.schedule.gemm_schedule`
(cheap: no array). Whole layers run through :func:`accel.sim.conv.run_conv` on small shapes in the
Amaranth simulator (a few dozen HMMA instructions each, including sizes that do not fill whole tiles and
C, K not multiples of 4), under every gating style; the counters are checked against what the schedule
and the golden model say. Verilator must agree with pysim on outputs, cycles and toggles, and runs the
C = K = 16, 34×34 layer whose cycle count must be within 2% of MACs / 64.
"""

from dataclasses import replace

import gc

import numpy as np
import pytest

from accel.golden import fp
from accel.golden.hmma import gated_mac_count
from accel.golden.operands import sent_operand
from accel.golden.specials import mix_specials
from accel.golden.schedule import INNER_ORDERS, TILE, GemmShape, chain_gap, direct_gemms, gemm_schedule, inner_rows
from accel.golden.winograd import direct_conv, im2col_operands, random_layer, reference_conv, run_gemms
from accel.hw.accelerator import COUNTERS, Accelerator, BufferConfig
from accel.hw.config import AcceleratorConfig
from accel.hw.sequencer import DirectSequencer
from accel.sim.conv import check_layer, conv_commands, run_conv, run_convs, weight_stream
from accel.sim.payload import pack, unpack
from accel.sim.pysim import run_stream
from hwcheck import sequencer_requests

GATINGS = ["hold", "and", "none"]
SMALL = BufferConfig(act_words=256, weight_tiles=32, psum_tiles=32)
LAYERS = [(4, 4, 6, 6), (3, 5, 5, 7)]        # (C, K, H, W): 36 and 56 instructions


def layer(seed, chans, filters, height, width, specials=0.0):
    """ReLU-like activations (about half zeros) with some weights zeroed, plus special values."""
    rng = np.random.default_rng(seed)
    x, w = random_layer(rng, chans, filters, height, width, "relu")
    w[rng.random(w.shape) < 0.3] = 0
    if specials:
        mix_specials(rng, x, fp.FP16, specials)
        mix_specials(rng, w, fp.FP16, specials)
    return x, w


def prune_2_4(rng, w):
    """Zero two of every four input channels at each tap of each filter (C padded to 4: the padding counts
    as zeros), so the weights fit ``nm24``."""
    filters, chans = w.shape[:2]
    w = w.copy()
    for k in range(filters):
        for block in range(0, chans, TILE):
            for tap in range(9):
                drop = block + rng.permutation(TILE)[:2]
                w[k, drop[drop < chans], tap // 3, tap % 3] = 0
    return w


def schedule_tiles(x, w, order="channel_major"):
    """Each instruction's A and B tiles [N, 4, 4] in schedule order."""
    shape, a, b = im2col_operands(x, w, order)
    rows, cols, inner = shape.padded
    a = np.pad(a, ((0, rows - a.shape[0]), (0, inner - a.shape[1])))
    b = np.pad(b, ((0, inner - b.shape[0]), (0, cols - b.shape[1])))
    tile = np.arange(TILE)
    schedule = gemm_schedule(shape)
    a_tiles = np.stack([a[np.ix_(ins.row + tile, ins.inner + tile)] for ins in schedule])
    b_tiles = np.stack([b[np.ix_(ins.inner + tile, ins.col + tile)] for ins in schedule])
    return schedule, a_tiles, b_tiles


def test_golden_im2col_orders():
    # channel_major's operands are the plain im2col (weights [K, 9C] as stored, the nine shifted input
    # windows); tap_blocks sums in another order (same value up to rounding)
    x, w = layer(2, 5, 3, 6, 5)
    _, a, b = im2col_operands(x, w, "channel_major")
    windows = np.stack([x[:, ky:ky + 4, kx:kx + 3] for ky in range(3) for kx in range(3)], axis=1)
    assert np.array_equal(a, w.reshape(3, 45)) and np.array_equal(b, windows.reshape(45, 12))
    tap = fp.from_bits(direct_conv(x, w, order="tap_blocks"), fp.FP32)
    assert np.allclose(tap, reference_conv(x, w), rtol=1e-3, atol=1e-3)
    assert inner_rows(5, "tap_blocks")[0].tolist()[:8] == [0, 1, 2, 3, 0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------- sequencer

@pytest.mark.parametrize("order", INNER_ORDERS)
@pytest.mark.parametrize("chans, filters, height, width, kernel", [(3, 5, 5, 7, 3), (6, 9, 4, 3, 3), (6, 5, 2, 3, 1)])
def test_sequencer_walks_the_golden_schedule(order, chans, filters, height, width, kernel):
    oh, ow = height - kernel + 1, width - kernel + 1
    shape = direct_gemms(chans, filters, oh, ow, order, kernel)
    rows_c, rows_ky, rows_kx = inner_rows(chans, order, kernel)
    inner_blocks, col_blocks = shape.steps, shape.blocks(shape.cols)
    expected = []
    for ins in gemm_schedule(shape):
        addr, live = [], []
        for kk in range(shape.depth):
            q = ins.inner + kk
            c, ky, kx = (int(v[q]) if q < shape.inner else chans for v in (rows_c, rows_ky, rows_kx))
            for j in range(TILE):
                oy, ox = divmod(ins.col + j, ow)
                live.append(c < chans and ins.col + j < oh * ow)
                addr.append(c * height * width + (oy + ky) * width + ox + kx)
        expected.append((ins.row // TILE * inner_blocks + ins.step, ins.row // TILE * col_blocks + ins.col // TILE,
                         ins.step == 0, ins.col == 0, tuple(live),
                         tuple(a if ok else None for a, ok in zip(addr, live))))
    dut = DirectSequencer(act_bits=10, weight_bits=8, psum_bits=8, order=order)

    def take(req):
        live = tuple(bool(req.act_live >> e & 1) for e in range(shape.depth * TILE))
        return (req.w_addr, req.psum_addr, bool(req.first), bool(req.new_tile), live,
                tuple(a if ok else None for a, ok in zip(req.act_addr, live)))
    bounds = {"channels": chans, "filters": filters, "height": height, "width": width, "kernel": kernel}
    got, gap = sequencer_requests(dut, bounds, 3 * len(expected) + 8, take)
    assert gap == chain_gap(shape)
    assert got == expected


# ---------------------------------------------------------------------------------------------- whole layers

def check_counters(run, x, w, gating, fmt="dense"):
    """The counters are what the schedule and golden say they must be (``w``: the weights as the hardware
    holds them)."""
    order = "channel_major" if fmt == "dense" else "tap_blocks"
    schedule, a_tiles, b_tiles = schedule_tiles(x, w, order)
    c = run.counters
    n = len(schedule)
    chans, height, width = x.shape
    assert set(c) == set(COUNTERS)
    assert c["instructions"] == n and c["macs"] == 64 * n and c["psum_writes"] == n
    assert c["macs_gated"] == gated_mac_count(a_tiles, b_tiles, gating)
    assert c["psum_reads"] == sum(ins.step > 0 for ins in schedule) + c["stores"]
    weight_words = len({(i.row, i.inner) for i in schedule}) if fmt == "dense" else len(weight_stream(w, fmt)[0])
    assert c["weight_writes"] == weight_words
    assert c["weight_reads"] == (n if fmt == "dense" else weight_words)
    assert c["act_writes"] == -(-chans * height * width // 16) * 16       # 16 elements a LOAD_ACT
    channel = inner_rows(chans, order)[0]
    channel = np.pad(channel, (0, -len(channel) % TILE), constant_values=chans)       # padding rows
    pixels = (height - 2) * (width - 2)
    live = sum(int(np.sum((channel[ins.inner:ins.inner + TILE] < chans)[:, None]
                          & (ins.col + np.arange(TILE) < pixels)[None, :])) for ins in schedule)
    assert c["act_reads"] == live
    # every clock of the run either issues or is idle for exactly one cause; the fill is one clock, the
    # drain the accelerator's latency, a chain waits only when there are too few column blocks
    idle = {k: v for k, v in c.items() if k.startswith("idle_")}
    assert c["cycles"] == n + sum(idle.values())
    gap = (max(ins.row for ins in schedule) // TILE + 1) * (max(ins.col for ins in schedule) // TILE + 1)
    waits = sum(ins.step > 0 and ins.col == 0 and ins.row == 0 for ins in schedule) * max(0, run.latency - gap)
    assert (idle["idle_output_full"], idle["idle_drain"]) == (0, run.latency)
    if fmt == "dense":
        assert (idle["idle_operands"], idle["idle_weights"], idle["idle_dependency"]) == (1, 0, waits)
    else:   # the decompressor's first tile takes a few clocks; a later wait for weights may hide a chain's
        assert idle["idle_weights"] > 0 and idle["idle_dependency"] <= waits
        assert idle["idle_operands"] + idle["idle_weights"] + idle["idle_dependency"] >= waits + 1
    assert run.offchip_bytes["total"] == (2 * c["act_writes"] + 64 * c["stores"]
                                          + (32 if fmt == "dense" else 8) * c["weight_writes"])


@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("shape", LAYERS, ids=lambda s: "x".join(map(str, s)))
def test_direct_conv_is_bit_exact_with_exact_counters(gating, shape):
    x, w = layer(sum(shape), *shape)
    run = run_conv(x, w, gating=gating, buffers=SMALL)
    assert run.y.shape == (shape[1], shape[2] - 2, shape[3] - 2) and run.y.dtype == np.uint32
    assert run.bit_exact and run.latency == 9
    check_counters(run, x, w, gating)


@pytest.mark.parametrize("fmt, gating", [("bitmask", "hold"), ("rle", "hold"), ("nm24", "hold"),
                                         ("bitmask", "and"), ("rle", "none"), ("nm24", "and")])
def test_compressed_weights_are_bit_exact_with_exact_counters(fmt, gating):
    x, w = layer(13, 3, 5, 5, 7)
    w = prune_2_4(np.random.default_rng(14), w)
    w[0, 0, 1, 1] = 0x8000              # a stored -0 decodes to +0: the reference uses the decoded weights
    run = run_conv(x, w, fmt=fmt, gating=gating, buffers=SMALL)
    assert run.bit_exact
    held = weight_stream(w, fmt)[1]
    assert held[0, 0, 1, 1] == 0 and np.array_equal(held[w != 0x8000], w[w != 0x8000])
    check_counters(run, x, held, gating, fmt)


def test_a_batch_of_layers_and_a_1x1_gemm_run_in_one_stream():
    # the classifier of a network is a 1x1 convolution: features as channels, images as pixels; its chain
    # order is the GEMM's (features ascending, four per instruction); a layer that reuses the previous
    # layer's weights does not load them again, and each layer's counters are its own
    rng = np.random.default_rng(31)
    features = fp.to_bits(np.maximum(rng.standard_normal((25, 1, 9)), 0).astype(np.float16), fp.FP16)
    w_fc = fp.to_bits(rng.standard_normal((6, 25, 1, 1)).astype(np.float16), fp.FP16)
    x, w = layer(32, 3, 5, 5, 6)
    runs, toggles = run_convs([(features, w_fc), (features, w_fc), (x, w)], fmt="bitmask", buffers=SMALL)
    assert [run.bit_exact for run in runs] == [True] * 3 and toggles.total > 0
    gemm = run_gemms(GemmShape(1, 6, 9, 25), w_fc[:, :, 0, 0][None], features[:, 0, :][None], "hold")[0]
    assert np.array_equal(runs[0].y[:, 0, :], gemm) and np.array_equal(runs[1].y, runs[0].y)
    words = len(weight_stream(w_fc, "bitmask")[0])
    assert [run.counters["weight_writes"] for run in runs] == [words, 0, len(weight_stream(w, "bitmask")[0])]
    assert runs[1].counters == {**runs[0].counters, "weight_writes": 0}
    assert runs[0].counters["instructions"] == 2 * 7 * 3 and runs[2].counters["instructions"] == 2 * 9 * 3
    with pytest.raises(ValueError, match=r"w must be \[K, 25, 3, 3\]"):
        run_convs([(features, w_fc)], algo="winograd2")


def test_response_back_pressure_changes_nothing_but_the_stream_time():
    x, w = layer(17, 2, 3, 5, 4)
    free = run_conv(x, w, buffers=SMALL)
    pattern = np.random.default_rng(18).random(2 * free.stream_cycles) < 0.5
    pressed = run_conv(x, w, buffers=SMALL, ready_pattern=pattern)
    assert pressed.bit_exact and np.array_equal(pressed.y, free.y)
    assert pressed.counters == free.counters and pressed.stream_cycles > free.stream_cycles


def test_loads_taken_during_a_run_answer_in_a_well_formed_stream_under_back_pressure():
    # a one-instruction layer, then a layer of 41 loads: the second's loads follow the first's RUN and
    # outlast it, so a load is taken on the clock the run ends (both answer: the run's response waits a
    # clock, run_owed) and, under random back-pressure, while the response register is held
    tiny, big = layer(41, 1, 1, 3, 3), layer(42, 4, 12, 7, 8)     # 29 run clocks; 14 + 27 loads
    serial, _ = run_convs([tiny, big], buffers=SMALL, overlap=False)
    free, free_toggles = run_convs([tiny, big], buffers=SMALL)
    pattern = np.random.default_rng(43).random(4 * free[1].stream_cycles) < 0.5
    pressed, pressed_toggles = run_convs([tiny, big], buffers=SMALL, ready_pattern=pattern)
    for runs in (free, pressed):
        assert [run.bit_exact for run in runs] == [True, True]
        assert all(np.array_equal(a.y, b.y) and a.counters == b.counters for a, b in zip(runs, serial))
    assert free[1].stream_cycles < serial[1].stream_cycles < pressed[1].stream_cycles
    owed = [sum(n for name, n in t.by_signal.items() if name.split(".")[-1] == "run_owed")
            for t in (free_toggles, pressed_toggles)]
    assert min(owed) > 0, owed


@pytest.mark.parametrize("gating", ["hold", "and"])
def test_special_values_are_bit_exact(gating):
    x, w = layer(7, 2, 3, 5, 5, specials=0.2)
    assert run_conv(x, w, gating=gating, buffers=SMALL).bit_exact


@pytest.mark.parametrize("fmt, gating", [("dense", "hold"), ("dense", "and"), ("dense", "none"),
                                         ("bitmask", "hold"), ("bitmask", "and")])
def test_senders_put_golden_lines_on_the_array(fmt, gating):
    # what reaches the array's input lines, instruction by instruction, is golden's sender: under hold a
    # zero is never sent (its lines keep the last value sent), under and it is sent with its flag; with
    # compressed weights the decompressor is the A sender
    x, w = layer(3, 4, 4, 6, 6)
    dut = Accelerator(replace(SMALL, array=AcceleratorConfig(gating=gating), weight_format=fmt))
    commands, _, held = conv_commands(x, w, dut.buffers)
    _, a_tiles, b_tiles = schedule_tiles(x, held, dut.buffers.order)
    words = pack(dut.i.payload.shape(), {"op": np.array([c[0] for c in commands]),
                                         "addr": np.array([c[1] for c in commands]),
                                         "data": np.stack([c[2] for c in commands])})
    taken = []

    async def on_cycle(ctx):
        if ctx.get(dut.array.i.valid) and ctx.get(dut.array.i.ready):
            taken.append(ctx.get(dut.array.i.payload.as_value()))

    run_stream(dut, words, on_cycle=on_cycle, max_cycles=2000)
    fields = unpack(dut.array.i.payload.shape(), taken)
    for name, tiles in (("a", a_tiles), ("b", b_tiles)):
        lines, flags = sent_operand(tiles.reshape(len(tiles), -1), fp.FP16, gating)
        assert np.array_equal(fields[f"{name}.value"], lines), name
        assert np.array_equal(fields[f"{name}.is_zero"].astype(bool), flags), name


# ---------------------------------------------------------------------------------------------- Verilator

def test_verilator_agrees_with_pysim():
    x, w = layer(11, 4, 4, 6, 6)
    runs = [run_conv(x, w, backend=backend) for backend in ("verilator", "pysim")]
    for run in runs:
        assert run.bit_exact
    first, second = runs
    assert np.array_equal(first.y, second.y)
    assert (first.cycles, first.stream_cycles, first.counters) == (second.cycles, second.stream_cycles, second.counters)
    assert first.toggles.total > 0 and first.toggles.by_signal == second.toggles.by_signal
    assert first.toggles.reg_clock_loads == second.toggles.reg_clock_loads is not None


def test_whole_tile_layer_runs_within_two_percent_of_ideal_on_verilator():
    # C = K = 16, 34×34: 4 row blocks x 36 chain steps x 256 column blocks = 36864 instructions
    rng = np.random.default_rng(5)
    x, w = random_layer(rng, 16, 16, 34, 34, "relu")
    run = run_conv(x, w, backend="verilator")
    assert run.bit_exact
    assert run.ideal_cycles == 36864 == run.counters["instructions"]
    assert run.cycles <= 1.02 * run.ideal_cycles
    assert run.counters["idle_dependency"] == 0 and run.counters["idle_output_full"] == 0


# ---------------------------------------------------------------------------------------------- checks

@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_buffer_config_is_checked():
    with pytest.raises(ValueError, match="act_words"):
        BufferConfig(act_words=0)
    with pytest.raises(TypeError, match="psum_tiles"):
        BufferConfig(psum_tiles=2.5)
    with pytest.raises(ValueError, match="4x4x4"):
        BufferConfig(array=AcceleratorConfig(m=2))
    with pytest.raises(ValueError, match="addr_fifo_depth"):
        Accelerator(BufferConfig(addr_fifo_depth=8))
    with pytest.raises(TypeError, match="BufferConfig"):
        Accelerator(AcceleratorConfig())
    with pytest.raises(ValueError, match="psum buffer"):
        SMALL.layer_tiles(1, 16, 10, 10)
    with pytest.raises(ValueError, match="H, W >= 3"):
        SMALL.layer_tiles(1, 1, 2, 5)
    assert SMALL.layer_tiles(3, 5, 5, 7) == (2, 7, 4)
    assert replace(SMALL, weight_format="rle").layer_tiles(3, 5, 5, 7) == (2, 9, 4)   # C padded to 4 per tap
    with pytest.raises(ValueError, match="weight_format"):
        BufferConfig(weight_format="zip")
    gc.collect()     # the components built before a check failed warn here, inside the filter


def test_run_conv_rejects_bad_layers():
    x, w = layer(1, 2, 2, 5, 5)
    with pytest.raises(ValueError, match="uint16"):
        check_layer(x.astype(np.float16), w)
    with pytest.raises(ValueError, match=r"\[K, 2, 3, 3\]"):
        check_layer(x, w[:, :1])
    with pytest.raises(ValueError, match="at least 3x3"):
        check_layer(x[:, :2], w)
    with pytest.raises(ValueError, match="algo"):
        run_conv(x, w, algo="winograd3")
    with pytest.raises(ValueError, match="gating"):
        run_conv(x, w, gating="maybe")
