"""`accel compress`, `accel decompress` and `accel formats`: round trips, and every corrupted `.acw` refused with
one line, exit status 2 and no output file."""

import json
import struct
import zlib

import numpy as np
import pytest

from accel.cli.main import main
from accel.golden import acw, sparse


def pruned_weights(path, density=0.1, fmt="bitmask", shape=(8, 8, 3, 3), seed=5):
    bits = sparse.magnitude_prune(shape, density, np.random.default_rng(seed), fmt)
    w = bits.view(np.float16)
    np.savez(path, w=w)
    return w


@pytest.mark.parametrize("fmt, density", [("bitmask", 0.1), ("rle", 0.05), ("nm24", 0.5), ("bitmask", 1.0)])
def test_compress_then_decompress_gives_the_weights_back(tmp_path, capsys, fmt, density):
    w = pruned_weights(tmp_path / "w.npz", density, fmt)
    assert main(["compress", "--in", str(tmp_path / "w.npz"), "--out", str(tmp_path / "w.acw"), "--format", fmt,
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes"] == (tmp_path / "w.acw").stat().st_size and summary["nonzero"] == int((w != 0).sum())
    assert main(["decompress", "--in", str(tmp_path / "w.acw"), "--out", str(tmp_path / "back.npz")]) == 0
    back = np.load(tmp_path / "back.npz")["w"]
    assert back.dtype == np.float16 and np.array_equal(back.view(np.uint16), w.view(np.uint16))


def test_negative_zeros_come_back_as_positive_zeros(tmp_path, capsys):
    w = np.array([[[[-0.0, 1.5], [0.0, -2.0]]]], np.float16)
    np.savez(tmp_path / "w.npz", w=w)
    assert main(["compress", "--in", str(tmp_path / "w.npz"), "--out", str(tmp_path / "w.acw"), "--format", "rle"]) == 0
    assert main(["decompress", "--in", str(tmp_path / "w.acw"), "--out", str(tmp_path / "back.npz")]) == 0
    assert np.load(tmp_path / "back.npz")["w"].view(np.uint16).ravel().tolist() == [0, 0x3E00, 0, 0xC000]


def good_file(tmp_path):
    pruned_weights(tmp_path / "w.npz")
    assert main(["compress", "--in", str(tmp_path / "w.npz"), "--out", str(tmp_path / "w.acw"), "--format",
                 "bitmask"]) == 0
    return (tmp_path / "w.acw").read_bytes()


def with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


def corruptions(data):
    """(name, bytes, words the error line must hold) for every corruption the issue lists."""
    body = bytearray(data[:-4])
    flipped = bytearray(data)
    flipped[acw.HEADER_SIZE + 3] ^= 0x10
    cases = [("flipped payload bit", bytes(flipped), "CRC mismatch")]
    at = 0
    for name, code in acw.HEADER:                 # each field's last byte missing
        size = struct.calcsize("<" + code)
        cases.append((f"truncated in {name}", data[:at + size - 1], f"truncated in header field {name!r}"))
        at += size
    cases.append(("bad magic", b"PK\x03\x04" + data[4:], "not an .acw file"))
    future = bytearray(body)
    future[4:6] = struct.pack("<H", acw.VERSION + 1)
    cases.append(("future version", with_crc(bytes(future)), f"unsupported .acw version {acw.VERSION + 1}"))
    huge = bytearray(body)
    huge[8:24] = struct.pack("<4I", 1 << 20, 1 << 20, 3, 3)          # 10^13 weights declared
    cases.append(("huge declared shape", with_crc(bytes(huge)), "tiles"))
    return cases


def test_decompress_refuses_every_corrupted_file(tmp_path, capsys):
    data = good_file(tmp_path)
    capsys.readouterr()
    for name, bad, words in corruptions(data):
        (tmp_path / "bad.acw").write_bytes(bad)
        code = main(["decompress", "--in", str(tmp_path / "bad.acw"), "--out", str(tmp_path / "out.npz")])
        err = capsys.readouterr().err.strip()
        assert code == 2, name
        assert words in err and len(err.splitlines()) == 1, (name, err)
        assert not (tmp_path / "out.npz").exists(), name


@pytest.mark.parametrize("arrays, message", [
    ({"w": np.ones((2, 4, 3, 3), np.float32)}, "array 'w' has dtype float32, expected float16"),
    ({"w": np.ones((4, 3, 3), np.float16)}, "expected 4 dimensions"),
    ({"x": np.ones((1, 1, 1, 1), np.float16)}, "missing array 'w'"),
    ({"w": np.ones((1, 4, 1, 1), np.float16)}, "w[0, 0:4, 0, 0] has 4 non-zeros"),
])
def test_compress_refuses_bad_weights(tmp_path, capsys, arrays, message):
    np.savez(tmp_path / "w.npz", **arrays)
    code = main(["compress", "--in", str(tmp_path / "w.npz"), "--out", str(tmp_path / "w.acw"), "--format", "nm24"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "w.acw").exists()


def test_formats_prints_the_density_table(capsys):
    assert main(["formats", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    bitmask = {r["density"]: r for r in rows if r["format"] == "bitmask"}
    weights = 64 * 64 * 9                        # a 16-bit mask per 16 weights, 16 bits per kept weight
    assert bitmask[0.1]["bits_per_weight"] == pytest.approx(1 + 16 * round(0.1 * weights) / weights)
    assert bitmask[0.1]["tiles_per_cycle"] > 0.99
    assert max(r["density"] for r in rows if r["format"] == "nm24") == 0.5
