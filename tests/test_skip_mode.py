"""2:4 weights in skip mode (issue #17): the ``tap_pairs`` schedule, its golden convolution, and the accelerator
running ``nm24`` layers on the 2:4 sparse array, against golden in pysim and Verilator, and ``accel conv``.

Golden's skip-mode convolution is checked against each output's chain written out here (step by step, the
kept products in ascending channel order) and against a float64 convolution; the accelerator bit for bit
against golden on small layers with C not a multiple of 8, K not a multiple of 4 and outputs that do not
fill whole tiles, with every counter derived from the schedule and golden.
"""

import gc
import json

import numpy as np
import pytest

from accel.cli.main import main
from accel.golden import fp
from accel.golden.hmma import compress_24, gated_mac_count, kept_channels, sparse_gated_mac_count
from accel.golden.operands import held_lines, sent_operand
from accel.golden.schedule import SPARSE_DEPTH, TILE, direct_gemms, gemm_schedule, inner_rows
from accel.golden.sparse import magnitude_prune
from accel.golden.specials import mix_specials
from accel.golden.winograd import direct_conv, im2col_operands, reference_conv
from accel.hw.accelerator import COUNTERS, Accelerator, BufferConfig, Op
from accel.hw.config import AcceleratorConfig
from accel.sim.conv import conv_commands, run_conv, weight_stream
from accel.sim.payload import pack, unpack
from accel.sim.backends import run_stream

SMALL = BufferConfig(act_words=512, weight_tiles=64, psum_tiles=32)


def skip_layer(seed, chans, filters, height, width, specials=0.0):
    """ReLU activations and magnitude-pruned 2:4 weights (C cut from a multiple of 4: still 2:4), a stored −0
    among the zeros; ``specials``: that fraction of the activations special values."""
    rng = np.random.default_rng(seed)
    x = fp.to_bits(np.maximum(rng.standard_normal((chans, height, width)), 0).astype(np.float16), fp.FP16)
    w = magnitude_prune((filters, -(-chans // TILE) * TILE, 3, 3), 0.5, rng, "nm24")[:, :chans].copy()
    w[tuple(np.argwhere(w == 0)[0])] = 0x8000
    if specials:
        mix_specials(rng, x, fp.FP16, specials)
    return x, w


def chain_reference(x, w, gating):
    """Each output's chain written out: +0, then per step (channels 8cb..8cb+7 at tap (ky, kx); cb outer, tap
    inner) the step's kept products in ascending channel order, one FP32 rounding per add; under ``hold``
    a product with a ±0 operand is skipped."""
    pad = -x.shape[0] % SPARSE_DEPTH
    xp, wp = np.pad(x, ((0, pad), (0, 0), (0, 0))), np.pad(w, ((0, 0), (0, pad), (0, 0), (0, 0)))
    oh, ow = x.shape[1] - 2, x.shape[2] - 2
    acc = np.zeros((w.shape[0], oh, ow), np.uint32)
    for cb in range(xp.shape[0] // SPARSE_DEPTH):
        for ky in range(3):
            for kx in range(3):
                values, indices = compress_24(wp[:, SPARSE_DEPTH * cb:SPARSE_DEPTH * (cb + 1), ky, kx])
                channels = SPARSE_DEPTH * cb + kept_channels(indices)                    # [K, 4], ascending
                for t in range(values.shape[1]):
                    b = xp[channels[:, t], ky:ky + oh, kx:kx + ow]
                    a = np.broadcast_to(values[:, t, None, None], b.shape)
                    product = fp.mul(a, b, fp.FP16, fp.FP32)
                    zero = fp.is_zero(a, fp.FP16) | fp.is_zero(b, fp.FP16)
                    acc = np.asarray(fp.add_gated(acc, product, zero, fp.FP32) if gating == "hold"
                                     else fp.add(acc, product, fp.FP32)).astype(np.uint32)
    return acc


def instruction_tiles(x, w, order):
    """The schedule of ``order`` and each instruction's A [N, 4, d] and B [N, d, 4] tiles (d rows a step)."""
    shape, a, b = im2col_operands(x, w, order)
    rows, cols, inner = shape.padded
    a = np.pad(a, ((0, rows - a.shape[0]), (0, inner - a.shape[1])))
    b = np.pad(b, ((0, inner - b.shape[0]), (0, cols - b.shape[1])))
    tile, depth = np.arange(TILE), np.arange(shape.depth)
    schedule = gemm_schedule(shape)
    return (schedule, np.stack([a[np.ix_(ins.row + tile, ins.inner + depth)] for ins in schedule]),
            np.stack([b[np.ix_(ins.inner + depth, ins.col + tile)] for ins in schedule]))


# ---------------------------------------------------------------------------------------------- golden

def test_tap_pairs_steps_over_eight_channels_at_one_tap():
    c, ky, kx = inner_rows(6, "tap_pairs")
    assert c[:16].tolist() == list(range(8)) * 2 and (ky[:8] == 0).all() and (kx[:8] == 0).all() and kx[8] == 1
    assert len(c) == 9 * 8                                 # C padded to 8: rows 6, 7 of each step are padding
    for chans, ratio in ((6, 2), (8, 2), (12, 1.5), (16, 2)):
        sparse, dense = (gemm_schedule(direct_gemms(chans, 5, 4, 3, order)) for order in ("tap_pairs", "tap_blocks"))
        assert len(dense) == ratio * len(sparse) and {ins.inner % 8 for ins in sparse} == {0}


@pytest.mark.parametrize("gating", ["hold", "and"])
@pytest.mark.parametrize("chans", [6, 12, 16])
def test_golden_skip_conv_is_its_sparse_chain(chans, gating):
    x, w = skip_layer(chans, chans, 5, 6, 5, specials=0.1 if gating == "and" else 0.0)
    assert np.array_equal(direct_conv(x, w, gating, "tap_pairs"), chain_reference(x, w, gating))


@pytest.mark.parametrize("chans", [6, 16])
def test_golden_skip_conv_is_within_the_fp32_chain_bound_of_float64(chans):
    # n = 9C adds of exact products, each rounded: |error| <= n·2⁻²⁴·Σ|w·x| (γ_n, the products being exact)
    x, w = skip_layer(chans + 1, chans, 5, 7, 6)
    y = fp.from_bits(direct_conv(x, w, "hold", "tap_pairs"), fp.FP32).astype(np.float64)
    magnitude = reference_conv(x & 0x7FFF, w & 0x7FFF)
    error = np.abs(y - reference_conv(x, w))
    assert error.max() > 0 and (error <= 9 * chans * 2.0 ** -24 * magnitude).all()


def test_golden_skip_conv_refuses_weights_that_are_not_2_4():
    x, w = skip_layer(3, 6, 5, 5, 5)
    w[2, 0:3, 1, 2] = fp.to_bits(np.float16(1.5), fp.FP16)
    with pytest.raises(ValueError, match="not 2:4 sparse: instruction .* row 2 group 0"):
        direct_conv(x, w, "hold", "tap_pairs")


# ---------------------------------------------------------------------------------------------- hardware

def check_skip_counters(run, x, held, gating):
    """Every counter of a skip-mode run from the tap_pairs schedule and golden; the useful multiplies equal
    gate mode's (its schedule: tap_blocks)."""
    schedule, a_tiles, b_tiles = instruction_tiles(x, held, "tap_pairs")
    gate_schedule, gate_a, gate_b = instruction_tiles(x, held, "tap_blocks")
    c, n = run.counters, len(schedule)
    chans, height, width = x.shape
    rows, cols = -(-held.shape[0] // TILE), -(-(height - 2) * (width - 2) // TILE)
    assert c["instructions"] == n == rows * cols * 9 * -(-chans // 8)
    assert len(gate_schedule) == rows * cols * 9 * -(-chans // 4)
    gated_kept = sparse_gated_mac_count(*compress_24(a_tiles), b_tiles, gating)
    assert c["macs"] == 128 * n and c["macs_gated"] == 64 * n + gated_kept
    if gating == "hold":     # the same multiplies as gate mode does
        assert c["macs"] - c["macs_gated"] == 64 * len(gate_schedule) - gated_mac_count(gate_a, gate_b, gating)
    assert c["psum_writes"] == n and c["stores"] == rows * cols
    assert c["psum_reads"] == sum(ins.step > 0 for ins in schedule) + c["stores"]
    words = len(weight_stream(held, "nm24", "pairs")[0])
    assert c["weight_writes"] == c["weight_reads"] == words
    channel = inner_rows(chans, "tap_pairs")[0]
    pixels = (height - 2) * (width - 2)
    assert c["act_reads"] == sum(int(np.sum((channel[ins.inner:ins.inner + 8] < chans)[:, None]
                                            & (ins.col + np.arange(TILE) < pixels)[None, :])) for ins in schedule)
    idle = {k: v for k, v in c.items() if k.startswith("idle_")}
    assert c["cycles"] == n + sum(idle.values()) and run.cycles == c["cycles"]
    assert (idle["idle_output_full"], idle["idle_drain"]) == (0, run.latency)


@pytest.mark.parametrize("shape, gating", [((12, 5, 5, 7), "hold"), ((6, 5, 6, 6), "and")],
                         ids=["12x5x5x7-hold", "6x5x6x6-and"])
def test_skip_mode_is_bit_exact_with_exact_counters(shape, gating):
    x, w = skip_layer(sum(shape), *shape)
    run = run_conv(x, w, fmt="nm24", gating=gating, sparse_mode="skip", buffers=SMALL)
    held = weight_stream(w, "nm24", "pairs")[1]
    assert held[w == 0x8000].tolist() == [0] and np.array_equal(held[w != 0x8000], w[w != 0x8000])
    assert run.bit_exact and run.sparse_mode == "skip"
    assert np.array_equal(run.y, chain_reference(x, held, gating))
    check_skip_counters(run, x, held, gating)


def skip_accelerator(x, w):
    """A skip-mode accelerator (hold) and the command words of the layer: (dut, ops, words, held weights)."""
    dut = Accelerator(SMALL.running(algo="direct", weight_format="nm24", gating="hold", sparse_mode="skip"))
    commands, _, held = conv_commands(x, w, dut.buffers)
    ops = np.array([c[0] for c in commands])
    words = pack(dut.i.payload.shape(), {"op": ops, "addr": np.array([c[1] for c in commands]),
                                         "data": np.stack([c[2] for c in commands])})
    return dut, ops, words, held


def test_skip_mode_senders_freeze_the_lines_of_zeros():
    # what reaches the sparse array's inputs, instruction by instruction, is golden's hold sender: the kept
    # values with their indices (a kept ±0 flagged, its value and index lines frozen), and 8 × 4 activations
    x, w = skip_layer(5, 6, 5, 6, 6)
    dut, _, words, held = skip_accelerator(x, w)
    _, a_tiles, b_tiles = instruction_tiles(x, held, "tap_pairs")
    taken = []

    async def on_cycle(ctx):
        if ctx.get(dut.array.i.valid) and ctx.get(dut.array.i.ready):
            taken.append(ctx.get(dut.array.i.payload.as_value()))

    run_stream("pysim", dut, words, on_cycle=on_cycle, max_cycles=2000)
    fields = unpack(dut.array.i.payload.shape(), taken)
    values, indices = (v.reshape(len(v), -1) for v in compress_24(a_tiles))
    flags = fp.is_zero(values, fp.FP16)
    assert flags.any() and np.array_equal(fields["a.is_zero"].astype(bool), flags)
    assert np.array_equal(fields["a.value"], held_lines(values, flags))
    assert np.array_equal(fields["a_index"], held_lines(indices, flags))
    lines, b_flags = sent_operand(b_tiles.reshape(len(b_tiles), -1), fp.FP16, "hold")
    assert np.array_equal(fields["b.value"], lines) and np.array_equal(fields["b.is_zero"].astype(bool), b_flags)


def test_skip_mode_on_verilator_equals_pysim():
    # one plain Verilator build (no toggle counting: the slow build): every response (the output tiles, every
    # counter) and the stream's cycles are pysim's, and the output tiles are golden's
    x, w = skip_layer(9, 6, 5, 6, 7)          # C = 6: padded to 8 with zero weights and activations
    dut, ops, words, held = skip_accelerator(x, w)
    runs = [run_stream(backend, dut, words, max_cycles=3000) for backend in ("verilator", "pysim")]
    (verilated, simulated) = (unpack(dut.o.payload.shape(), run.outputs)["data"] for run in runs)
    assert runs[0].cycles == runs[1].cycles and np.array_equal(verilated, simulated)
    y = np.pad(direct_conv(x, held, "hold", "tap_pairs").reshape(5, -1), ((0, 3), (0, 0)))     # [8, 20]: 2 x 5 tiles
    tiles = y.reshape(2, TILE, 5, TILE).transpose(0, 2, 1, 3).reshape(-1, TILE * TILE)
    assert np.array_equal(verilated[ops == Op.STORE.value], tiles)
    counters = dict(zip(COUNTERS, verilated[ops == Op.COUNTER.value][:, 0]))
    idle = sum(v for name, v in counters.items() if name.startswith("idle_"))
    assert counters["instructions"] == 2 * 5 * 9 and counters["cycles"] == 90 + idle


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_skip_mode_configuration_is_checked():
    for fmt, algo in (("bitmask", "direct"), ("dense", "direct"), ("nm24", "winograd2")):
        with pytest.raises(ValueError, match=f"sparse_mode skip needs nm24 weights and direct convolution, not "
                                             f"{fmt} weights and {algo}"):
            BufferConfig(weight_format=fmt, algo=algo, sparse_mode="skip")
    with pytest.raises(ValueError, match="sparse_mode"):
        BufferConfig(sparse_mode="maybe")
    with pytest.raises(ValueError, match="follows sparse_mode"):
        BufferConfig(array=AcceleratorConfig(sparse=True))
    skip = SMALL.running(algo="direct", weight_format="nm24", gating="hold", sparse_mode="skip")
    assert skip.order == "tap_pairs" and skip.array_config.sparse and not skip.array.sparse
    assert skip.layer_tiles(12, 5, 5, 7) == (2, 18, 4) and skip.layer_tiles(6, 5, 5, 7, kernel=1) == (2, 1, 9)
    assert Accelerator(skip).array.reduction == 8 and Accelerator(skip).latency == 9
    with pytest.raises(ValueError, match="walk"):
        weight_stream(np.zeros((4, 4, 3, 3), np.uint16), "nm24", "columns")
    gc.collect()


# ---------------------------------------------------------------------------------------------- accel conv

def cli_layer(path, chans=6, filters=3, height=5, width=6):
    x, w = skip_layer(4, chans, filters, height, width)
    np.savez(path, x=fp.from_bits(x, fp.FP16), w=fp.from_bits(w, fp.FP16))
    return x, w


def test_conv_runs_nm24_in_skip_mode_by_default(tmp_path, capsys):
    x, w = cli_layer(tmp_path / "layer.npz")
    code = main(["conv", "--in", str(tmp_path / "layer.npz"), "--out", str(tmp_path / "res.npz"), "--format", "nm24",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["sparse_mode"] == "skip" and report["bit_exact"] is True
    assert report["counters"]["instructions"] == 9 * 1 * 3 and report["macs"] == 128 * 27
    y = np.load(tmp_path / "res.npz")["y"]
    assert np.array_equal(fp.to_bits(y, fp.FP32), direct_conv(x, weight_stream(w, "nm24", "pairs")[1], "hold",
                                                                  "tap_pairs"))


@pytest.mark.parametrize("extra, message", [
    (["--format", "bitmask", "--sparse-mode", "skip"], "--sparse-mode skip needs nm24 weights and --algo direct, "
                                                       "not bitmask weights and direct"),
    (["--format", "nm24", "--algo", "winograd2", "--sparse-mode", "skip"], "not nm24 weights and winograd2"),
    (["--sparse-mode", "skip"], "not dense weights and direct"),
    (["--format", "nm24", "--sparse-mode", "half"], "invalid choice: 'half'"),
])
def test_conv_refuses_skip_mode_where_it_does_not_apply(tmp_path, capsys, extra, message):
    cli_layer(tmp_path / "layer.npz")
    code = main(["conv", "--in", str(tmp_path / "layer.npz"), "--out", str(tmp_path / "res.npz"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "res.npz").exists()
