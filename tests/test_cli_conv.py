"""`accel conv`: a layer through the accelerator, bit-exact with golden, and bad input refused with one line,
exit status 2 and no output file."""

import json

import numpy as np
import pytest

from accel.cli.main import main
from accel.golden import fp
from accel.golden.winograd import direct_conv, winograd_conv


def layer(path, chans=2, filters=3, height=5, width=6, seed=2, **overrides):
    rng = np.random.default_rng(seed)
    arrays = {"x": np.maximum(rng.standard_normal((chans, height, width)), 0).astype(np.float16),
              "w": (rng.standard_normal((filters, chans, 3, 3)) * (rng.random((filters, chans, 3, 3)) < 0.5))
              .astype(np.float16)}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def conv(tmp_path, capsys, *extra):
    code = main(["conv", "--in", str(tmp_path / "layer.npz"), "--out", str(tmp_path / "res.npz"), *extra])
    out, err = capsys.readouterr()
    return code, out, err.strip()


def check_energy_by_block(energy, present, absent):
    """By block adds up to the total (each figure rounded to 0.001 pJ); the blocks a design has are charged,
    those it lacks are absent."""
    by_block = energy["by_block"]
    assert sum(by_block.values()) == pytest.approx(energy["total"], abs=1e-3 * len(by_block))
    assert all(by_block[block] > 0 for block in present) and not set(absent) & set(by_block)
    assert by_block["clock"] == pytest.approx(energy["by_unit"]["clock"], abs=1e-3)
    # the clock with RTL clock gating counts; the ungated figure is reported beside it, and is larger
    assert energy["clock_gating"] is True and energy["clock"]["gated"] == energy["by_unit"]["clock"]
    assert 0 < energy["clock"]["gated"] < energy["clock"]["ungated"]


def test_conv_runs_a_layer_bit_exact_and_reports_the_contract_keys(tmp_path, capsys):
    arrays = layer(tmp_path / "layer.npz")
    code, out, err = conv(tmp_path, capsys, "--json")
    assert code == 0, err
    report = json.loads(out)
    for key in ("cycles", "macs", "macs_gated", "toggles", "energy_pj", "bit_exact", "accuracy", "counters",
                "offchip_bytes"):
        assert key in report
    assert report["bit_exact"] is True and report["energy_pj"]["by_unit"]["buffers"] > 0
    check_energy_by_block(report["energy_pj"], ["array_multipliers", "array_adders", "buffer_act", "buffer_psum"],
                          ["decompressor", "input_transform", "output_transform", "buffer_v"])
    y = np.load(tmp_path / "res.npz")["y"]
    x_bits, w_bits = fp.to_bits(arrays["x"], fp.FP16), fp.to_bits(arrays["w"], fp.FP16)
    assert y.dtype == np.float32 and y.shape == (3, 3, 4)
    assert np.array_equal(fp.to_bits(y, fp.FP32), direct_conv(x_bits, w_bits, "hold"))


def test_conv_runs_a_512_channel_layer_in_input_channel_passes(tmp_path, capsys):
    # 4 filters of 512 channels: 1,152 weight tiles, over the buffer's 1,024: two passes of 256 channels, the
    # second carrying on from the first's partial sums (on Verilator: 1,152 chained instructions)
    arrays = layer(tmp_path / "layer.npz", chans=512, filters=4, height=3, width=3)
    code, out, err = conv(tmp_path, capsys, "--backend", "verilator", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["bit_exact"] is True and report["passes"] == 2 and report["counters"]["stores"] == 1
    x_bits, w_bits = fp.to_bits(arrays["x"], fp.FP16), fp.to_bits(arrays["w"], fp.FP16)
    y = np.load(tmp_path / "res.npz")["y"]
    assert np.array_equal(fp.to_bits(y, fp.FP32), direct_conv(x_bits, w_bits, "hold"))


def test_conv_runs_winograd_bit_exact_against_golden(tmp_path, capsys):
    arrays = layer(tmp_path / "layer.npz", height=7, width=6)
    code, out, err = conv(tmp_path, capsys, "--algo", "winograd2", "--gating", "and", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["algo"] == "winograd2" and report["bit_exact"] is True
    assert report["counters"]["transforms_in"] == 2 * 3 * 2 and report["accuracy"]["max_abs"] < 1e-2
    check_energy_by_block(report["energy_pj"], ["input_transform", "output_transform", "array_multipliers",
                                                "buffer_v", "buffer_out"], ["decompressor", "buffer_weight_file"])
    y = np.load(tmp_path / "res.npz")["y"]
    x_bits, w_bits = fp.to_bits(arrays["x"], fp.FP16), fp.to_bits(arrays["w"], fp.FP16)
    assert np.array_equal(fp.to_bits(y, fp.FP32), winograd_conv(x_bits, w_bits, 2, gating="and"))


def test_conv_takes_compressed_weights_from_an_acw_file(tmp_path, capsys):
    arrays = layer(tmp_path / "layer.npz", chans=4, filters=4)
    np.savez(tmp_path / "w.npz", w=arrays["w"])
    assert main(["compress", "--in", str(tmp_path / "w.npz"), "--out", str(tmp_path / "w.acw"), "--format",
                 "rle"]) == 0
    capsys.readouterr()
    code, out, err = conv(tmp_path, capsys, "--weights", str(tmp_path / "w.acw"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["format"] == "rle" and report["bit_exact"] is True
    check_energy_by_block(report["energy_pj"], ["decompressor", "buffer_weight"], ["input_transform"])


@pytest.mark.parametrize("overrides, extra, message", [
    ({"x": np.zeros((2, 5), np.float16)}, [], "array 'x' has shape (2, 5), expected 3 dimensions"),
    ({"w": np.zeros((3, 2, 3, 3), np.float32)}, [], "array 'w' has dtype float32, expected float16"),
    ({"x": np.zeros((2, 2, 6), np.float16)}, [], "x must be at least 3x3, not 2x6"),
    ({"x": np.zeros((0, 5, 6), np.float16), "w": np.zeros((3, 0, 3, 3), np.float16)}, [], "x must be a non-empty 3-d array"),
    ({"w": np.zeros((0, 2, 3, 3), np.float16)}, [], "w must be a non-empty 4-d array"),
    ({"w": np.zeros((3, 4, 3, 3), np.float16)}, [], "w must be [K, 2, 3, 3]"),
    ({"w": np.full((3, 2, 3, 3), np.inf, np.float16)}, ["--algo", "winograd4"],
     "filter_transform needs finite weights"),
    ({"x": np.ones((3, 5, 6), np.float16), "w": np.ones((3, 3, 3, 3), np.float16)},
     ["--algo", "winograd2", "--format", "nm24"],
     "nm24 weights after the winograd2 filter transform"),
])
def test_conv_refuses_bad_layers(tmp_path, capsys, overrides, extra, message):
    layer(tmp_path / "layer.npz", **overrides)
    code, _, err = conv(tmp_path, capsys, *extra)
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "res.npz").exists()


def test_conv_refuses_a_corrupt_or_mismatched_weight_file(tmp_path, capsys):
    arrays = layer(tmp_path / "layer.npz")
    np.savez(tmp_path / "w.npz", w=np.concatenate([arrays["w"]] * 2, axis=1))     # C = 4, x has 2 channels
    assert main(["compress", "--in", str(tmp_path / "w.npz"), "--out", str(tmp_path / "w.acw"), "--format",
                 "bitmask"]) == 0
    capsys.readouterr()
    code, _, err = conv(tmp_path, capsys, "--weights", str(tmp_path / "w.acw"))
    assert code == 2 and "do not fit x of shape [2, 5, 6]" in err and len(err.splitlines()) == 1
    data = bytearray((tmp_path / "w.acw").read_bytes())
    data[-6] ^= 1
    (tmp_path / "w.acw").write_bytes(bytes(data))
    code, _, err = conv(tmp_path, capsys, "--weights", str(tmp_path / "w.acw"))
    assert code == 2 and "CRC mismatch" in err and len(err.splitlines()) == 1
    code, _, err = conv(tmp_path, capsys, "--weights", str(tmp_path / "w.acw"), "--format", "rle")
    assert code == 2 and len(err.splitlines()) == 1
    assert not (tmp_path / "res.npz").exists()
