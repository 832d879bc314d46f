"""Writing outputs all-or-nothing and refusing what would be unsafe: planted links at temporary names, a
write that fails half-way, a read-only output, an oversized batch, an input stream that never ends."""

import os
import tempfile
import threading
import zipfile

import numpy as np
import pytest

from accel.cli import files
from accel.cli.main import main
from accel.golden import fp
from accel.golden.operands import hmma_operands
from accel.synth.workspace import write_all_atomic, write_atomic


def write_ops(path, batch=2):
    a, b, c = hmma_operands(batch, weight_density=0.5, act_density=0.5, seed=3)
    np.savez(path, a=fp.from_bits(a, fp.FP16), b=fp.from_bits(b, fp.FP16), c=fp.from_bits(c, fp.FP32))


def hmma(tmp_path, capsys, *extra, inp=None):
    code = main(["hmma", "--in", str(inp or tmp_path / "ops.npz"), "--out", str(tmp_path / "res.npz"), *extra])
    return code, capsys.readouterr().err.strip()


def test_links_planted_at_the_temporary_names_are_never_followed(tmp_path, capsys, monkeypatch):
    # the temporary file's name is drawn at random; make the draw known, plant a link at each of the first
    # names it gives (and at the old predictable name), all pointing at a victim outside the output folder
    out_dir, victim = tmp_path / "out", tmp_path / "victim.txt"
    out_dir.mkdir()
    victim.write_text("precious")
    names = ["first", "second", "third"]
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: iter(names))
    planted = [out_dir / f".res.npz.{name}.tmp" for name in names[:2]] + [out_dir / f".res.{os.getpid()}.tmp.npz"]
    for link in planted:
        link.symlink_to(victim)
    write_ops(tmp_path / "ops.npz")
    code = main(["hmma", "--in", str(tmp_path / "ops.npz"), "--out", str(out_dir / "res.npz")])
    assert code == 0, capsys.readouterr().err
    assert victim.read_text() == "precious"
    assert all(link.is_symlink() and os.readlink(link) == str(victim) for link in planted)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted([link.name for link in planted] + ["res.npz"])
    assert np.load(out_dir / "res.npz")["d"].shape == (2, 4, 4)


def test_a_write_that_fails_half_way_leaves_the_old_file_and_no_temporary(tmp_path, capsys, monkeypatch):
    write_ops(tmp_path / "ops.npz")
    (tmp_path / "res.npz").write_bytes(b"the previous result")

    def half_then_fail(stream, **arrays):
        stream.write(b"PK\x03\x04 half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.np, "savez", half_then_fail)
    code, err = hmma(tmp_path, capsys)
    assert code == 2 and "cannot write (No space left on device)" in err and len(err.splitlines()) == 1
    assert (tmp_path / "res.npz").read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ops.npz", "res.npz"]


def test_write_all_atomic_writes_all_files_or_none(tmp_path):
    (tmp_path / "a.txt").write_text("old a")

    def fail(stream):
        stream.write(b"partial")
        raise RuntimeError("plot failed")

    with pytest.raises(RuntimeError, match="plot failed"):
        write_all_atomic({tmp_path / "a.txt": lambda stream: stream.write(b"new a"), tmp_path / "b.png": fail})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old a"
    write_atomic(tmp_path / "a.txt", lambda stream: stream.write(b"new a"))
    assert (tmp_path / "a.txt").read_text() == "new a"
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_existing_read_only_output_is_refused(tmp_path, capsys):
    write_ops(tmp_path / "ops.npz")
    (tmp_path / "res.npz").write_bytes(b"keep me")
    (tmp_path / "res.npz").chmod(0o444)
    code, err = hmma(tmp_path, capsys)
    assert code == 2 and "exists and is read-only" in err and len(err.splitlines()) == 1
    assert (tmp_path / "res.npz").read_bytes() == b"keep me"


def _header_only_npz(path, shapes):
    """A .npz whose members have real headers declaring ``shapes`` ({key: (descr, shape)}) and no data."""
    with zipfile.ZipFile(path, "w") as archive:
        for key, (descr, shape) in shapes.items():
            header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}".ljust(118) + "\n"
            archive.writestr(f"{key}.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode())


def test_an_oversized_batch_is_refused_before_its_data_is_read(tmp_path, capsys):
    from accel.cli.commands.hmma import MAX_BATCH
    batch = MAX_BATCH + 1
    _header_only_npz(tmp_path / "ops.npz", {"a": ("<f2", (batch, 4, 4)), "b": ("<f2", (batch, 4, 4)),
                                            "c": ("<f4", (batch, 4, 4))})
    code, err = hmma(tmp_path, capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"a batch of {batch:,} instructions is too large (at most {MAX_BATCH:,})" in err
    assert not (tmp_path / "res.npz").exists()


def test_an_input_stream_that_never_ends_is_refused_as_too_long(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(files, "MAX_PIPE_BYTES", 1 << 16)
    fifo = tmp_path / "endless"
    os.mkfifo(fifo)

    def feed():     # a zip's first bytes, then zeros until the reader goes away (bounded: 64 MiB at most)
        with open(fifo, "wb") as stream:
            try:
                stream.write(b"PK\x03\x04")
                for _ in range(1024):
                    stream.write(bytes(1 << 16))
            except BrokenPipeError:
                pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    code, err = hmma(tmp_path, capsys, inp=fifo)
    writer.join(timeout=30)
    assert code == 2 and "the input is too long (more than 65,536 bytes)" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "res.npz").exists()


def test_hmma_help_says_that_hold_skips_zero_products(capsys):
    with pytest.raises(SystemExit):
        main(["hmma", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "a product with a zero operand is skipped, so 0 x Inf gives C, not NaN" in text
