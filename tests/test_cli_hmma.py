"""`accel hmma` and the HMMA runner: results, counters, and bad input (one line, exit 2, no file)."""

import json

import numpy as np
import pytest

from accel.golden import fp
from accel.golden import hmma as golden
from accel.cli.main import main
from accel.golden.operands import hmma_operands
from accel.sim.hmma import run_hmma


def write_ops(path, n=3, **overrides):
    a, b, c = hmma_operands(n, weight_density=0.5, act_density=0.5, seed=11)
    arrays = {"a": fp.from_bits(a, fp.FP16), "b": fp.from_bits(b, fp.FP16), "c": fp.from_bits(c, fp.FP32)}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return a, b, c


def count_zero_operand_products(a, b):
    """Independent count: loop over every (instruction, i, j, k) slot."""
    count = 0
    for s in range(a.shape[0]):
        for i in range(a.shape[1]):
            for j in range(b.shape[2]):
                for k in range(a.shape[2]):
                    count += a[s, i, k] & 0x7FFF == 0 or b[s, k, j] & 0x7FFF == 0
    return count


def test_hmma_command_writes_golden_result_and_json(tmp_path, capsys):
    a, b, c = write_ops(tmp_path / "ops.npz")
    assert main(["hmma", "--in", str(tmp_path / "ops.npz"), "--out", str(tmp_path / "res.npz"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    d = np.load(tmp_path / "res.npz")["d"]
    assert d.dtype == np.float32 and d.shape == (3, 4, 4)
    np.testing.assert_array_equal(fp.to_bits(d, fp.FP32), golden.hmma(a, b, c, "hold"))
    assert report["bit_exact"] is True
    assert report["macs"] == 3 * 64
    assert report["macs_gated"] == count_zero_operand_products(a, b)
    assert report["macs_useful"] == 3 * 64 - count_zero_operand_products(a, b)
    assert report["cycles"] == 3 + report["latency"]


@pytest.mark.parametrize("gating", ["hold", "and", "none"])
def test_runner_counts_and_matches_golden_under_back_pressure(gating):
    a, b, c = hmma_operands(3, m=2, n=2, k=2, weight_density=0.4, act_density=0.5, seed=12)
    rng = np.random.default_rng(13)
    run = run_hmma(a, b, c, gating=gating, valid_pattern=rng.random(40) < 0.6, ready_pattern=rng.random(40) < 0.5)
    assert run.bit_exact
    np.testing.assert_array_equal(run.d, golden.hmma(a, b, c, gating))
    assert run.macs == 3 * 8
    assert run.macs_gated == (count_zero_operand_products(a, b) if gating == "hold" else 0)
    assert run.macs_useful == 3 * 8 - count_zero_operand_products(a, b)


def run_cli(tmp_path, capsys, *extra):
    code = main(["hmma", "--in", str(tmp_path / "ops.npz"), "--out", str(tmp_path / "res.npz"), *extra])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("overrides, message", [
    ({"a": None}, "missing array 'a'"),
    ({"b": np.zeros((3, 4, 4), np.float32)}, "array 'b' has dtype float32, expected float16"),
    ({"c": np.zeros((3, 16), np.float32)}, "array 'c' has shape (3, 16), expected 3 dimensions"),
    ({"c": np.zeros((2, 4, 4), np.float32)}, "shapes do not form D = A·B + C"),
])
def test_bad_operands_give_one_line_and_no_output(tmp_path, capsys, overrides, message):
    write_ops(tmp_path / "ops.npz", **overrides)
    code, err = run_cli(tmp_path, capsys)
    assert code == 2
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "res.npz").exists()


def test_corrupt_and_missing_input_files(tmp_path, capsys):
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "no such file" in err
    (tmp_path / "ops.npz").write_bytes(b"not a zip at all")
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "not a .npz file" in err and len(err.splitlines()) == 1
    (tmp_path / "ops.npz").write_bytes(b"PK\x03\x04 then a broken zip")
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "not a readable .npz file" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "res.npz").exists()


def test_inputs_that_are_not_npz_archives(tmp_path, capsys):
    import zipfile
    inp = tmp_path / "ops.npz"
    np.save(tmp_path / "a.npy", np.zeros((1, 4, 4), np.float16))
    (tmp_path / "a.npy").rename(inp)
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "is a .npy file" in err and len(err.splitlines()) == 1
    inp.write_text("a, b, c\n1, 2, 3\n")
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "not a .npz file" in err and len(err.splitlines()) == 1
    inp.write_bytes(b"")
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "is empty" in err and len(err.splitlines()) == 1
    with zipfile.ZipFile(inp, "w") as archive:     # members without a .npy header
        for key in "abc":
            archive.writestr(f"{key}.npy", b"raw bytes")
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "member 'a' is not a .npy array" in err and len(err.splitlines()) == 1
    # a header promising far more data than any machine holds
    header = "{'descr': '<f2', 'fortran_order': False, 'shape': (100000000000, 4, 4), }"
    member = b"\x93NUMPY\x01\x00" + len(header.ljust(118) + "\n").to_bytes(2, "little") \
        + (header.ljust(118) + "\n").encode() + bytes(64)
    with zipfile.ZipFile(inp, "w") as archive:
        for key in "abc":
            archive.writestr(f"{key}.npy", member)
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1 and ("too large" in err or "not a readable" in err)
    assert not (tmp_path / "res.npz").exists()


def test_big_endian_operands_are_read_in_native_order(tmp_path, capsys):
    a, b, c = write_ops(tmp_path / "native.npz")
    arrays = dict(np.load(tmp_path / "native.npz"))
    np.savez(tmp_path / "ops.npz", **{k: v.astype(v.dtype.newbyteorder(">")) for k, v in arrays.items()})
    code, err = run_cli(tmp_path, capsys)
    assert code == 0, err
    expected = golden.hmma(a, b, c, gating="hold")
    assert np.array_equal(fp.to_bits(np.load(tmp_path / "res.npz")["d"], fp.FP32), expected)


@pytest.mark.parametrize("m, k, p", [(0, 4, 4), (4, 0, 4), (4, 4, 0)])
def test_empty_array_dimension_is_refused(tmp_path, capsys, m, k, p):
    np.savez(tmp_path / "ops.npz", a=np.zeros((1, m, k), np.float16), b=np.zeros((1, k, p), np.float16),
             c=np.zeros((1, m, p), np.float32))
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "each must be at least 1" in err and len(err.splitlines()) == 1


def test_contradicting_and_unknown_options(tmp_path, capsys):
    write_ops(tmp_path / "ops.npz")
    code, err = run_cli(tmp_path, capsys, "--no-zero-gating", "--gating", "hold")
    assert code == 2 and "--no-zero-gating contradicts --gating hold" in err
    code, err = run_cli(tmp_path, capsys, "--gating", "sometimes")
    assert code == 2 and "invalid choice" in err and len(err.splitlines()) == 1
    code, err = run_cli(tmp_path, capsys, "--frobnicate")
    assert code == 2 and "unrecognized arguments: --frobnicate" in err
    assert not (tmp_path / "res.npz").exists()


def test_unusable_output_path_fails_before_the_run(tmp_path, capsys):
    write_ops(tmp_path / "ops.npz")
    (tmp_path / "target.npz").write_bytes(b"keep")
    (tmp_path / "link.npz").symlink_to(tmp_path / "target.npz")
    (tmp_path / "afile").write_bytes(b"")
    for out, message in ((tmp_path, "is a directory"), (tmp_path / "nodir" / "res.npz", "does not exist"),
                         ("", "output file name is empty"), ("/dev/null", "not a regular file"),
                         (tmp_path / "link.npz", "not a regular file"),
                         (f"{tmp_path}/new/", "names a directory; expected a file name"),
                         (f"{tmp_path}/ops.npz/", "names a directory; expected a file name"),
                         (tmp_path / "afile" / "res.npz", f"{tmp_path}/afile is not a directory"),
                         (f"{tmp_path}/afile/../res.npz", "does not exist"),     # resolved as on writing
                         (f"{tmp_path}/nodir/../res.npz", "does not exist"),
                         (f"{tmp_path}/sub/..", "names a directory; expected a file name"),
                         (tmp_path / "ops.npz", "is also the input"),
                         (tmp_path / "." / "ops.npz", "is also the input")):
        code = main(["hmma", "--in", str(tmp_path / "ops.npz"), "--out", str(out)])
        captured = capsys.readouterr()
        assert code == 2 and message in captured.err and len(captured.err.strip().splitlines()) == 1
        assert captured.out == ""   # failed before running: no report
    assert (tmp_path / "target.npz").read_bytes() == b"keep" and (tmp_path / "link.npz").is_symlink()
    assert set(np.load(tmp_path / "ops.npz").files) == {"a", "b", "c"}     # the input is untouched
    assert not (tmp_path / "new").exists()


def test_operands_read_from_a_pipe(tmp_path, capsys):
    """``--in <(...)`` and ``--in /dev/stdin`` give a pipe, which cannot be re-read from its start."""
    import os
    import threading
    a, b, c = write_ops(tmp_path / "ops.npz")
    read_end, write_end = os.pipe()
    data = (tmp_path / "ops.npz").read_bytes()
    feeder = threading.Thread(target=lambda: (os.write(write_end, data), os.close(write_end)))
    feeder.start()
    try:
        code = main(["hmma", "--in", f"/dev/fd/{read_end}", "--out", str(tmp_path / "res.npz")])
    finally:
        feeder.join()
        os.close(read_end)
    assert code == 0, capsys.readouterr().err
    np.testing.assert_array_equal(fp.to_bits(np.load(tmp_path / "res.npz")["d"], fp.FP32), golden.hmma(a, b, c, "hold"))


def test_array_too_large_to_build_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "ops.npz", a=rng.standard_normal((1, 9, 2)).astype(np.float16),
             b=rng.standard_normal((1, 2, 2)).astype(np.float16), c=np.zeros((1, 9, 2), np.float32))
    code, err = run_cli(tmp_path, capsys)
    assert code == 2 and "too large to build" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "res.npz").exists()


def test_disagreement_with_golden_is_a_failed_check(tmp_path, capsys, monkeypatch):
    write_ops(tmp_path / "ops.npz", n=2)
    monkeypatch.setattr(golden, "hmma", lambda a, b, c, gating: np.zeros_like(c))
    code, err = run_cli(tmp_path, capsys)
    assert code == 1
    assert err == "accel: check failed: hardware and golden model disagree (bit_exact false); please report this"
