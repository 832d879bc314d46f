"""Waveforms on request (`--vcd FILE`, `--vcd-cycles START:END`): the VCD parses, names the design's signals
by hierarchy and holds only the window's cycles, at the times and values the run had; bad requests give one
line, exit status 2 and no file."""

import errno
import json
import os

import numpy as np
import pytest

from accel.cli.main import main
from accel.sim.waveform import VcdWindow, Waveform

from test_cli_conv import layer
from test_cli_hmma import write_ops

PERIOD_FS = 10 ** 9     # one clock (1 µs) in the VCD's femtoseconds


def parse_vcd(path):
    """A VCD file read independently of its writer: (timescale, {dotted hierarchical name: id}, time stamps,
    {id: [(time, value), ...]}). Scalar values as "0"/"1", vectors as their digits."""
    tokens = iter(open(path).read().split())
    scopes, names, stamps, changes, timescale, time = [], {}, [], {}, None, None
    for token in tokens:
        if token == "$timescale":
            timescale = " ".join(iter(lambda: next(tokens), "$end"))
        elif token == "$scope":
            next(tokens)
            scopes.append(next(tokens))
        elif token == "$upscope":
            scopes.pop()
        elif token == "$var":
            _kind, _size, ident, name, *_range = iter(lambda: next(tokens), "$end")
            names[".".join(scopes + [name])] = ident
        elif token in ("$comment", "$date", "$version"):
            for _ in iter(lambda: next(tokens), "$end"):
                pass
        elif token.startswith("$"):
            continue            # $dumpvars and its $end
        elif token.startswith("#"):
            time = int(token[1:])
            assert not stamps or time > stamps[-1], f"time stamps out of order: {time} after {stamps[-1]}"
            stamps.append(time)
        else:
            if token[0] in "bBrRsS":
                value, ident = token[1:], next(tokens)
            else:
                value, ident = token[0], token[1:]
            assert time is not None, f"a value change before the first time stamp: {token}"
            changes.setdefault(ident, []).append((time, value))
    return timescale, names, stamps, changes


def every_value_at(changes, names, time):
    """Whether each signal's first value comes at ``time`` (the window's start: the state it opens with)."""
    return all(ident in changes and changes[ident][0][0] == time for ident in names.values())


def value_at(changes, ident, time):
    """The value of ``ident`` at ``time`` (its last change at or before it)."""
    return [value for when, value in changes[ident] if when <= time][-1]


def test_hmma_vcd_holds_the_window_cycles_at_their_times(tmp_path, capsys):
    """6 instructions through the array (latency 8), cycles 4..9: the input is offered in cycles 0..5, so
    i.valid falls with the edge ending cycle 5; the first result is valid in cycle 8, after the edge ending 7."""
    write_ops(tmp_path / "ops.npz", n=6)
    code = main(["hmma", "--in", str(tmp_path / "ops.npz"), "--out", str(tmp_path / "res.npz"),
                 "--vcd", str(tmp_path / "w.vcd"), "--vcd-cycles", "4:10", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["bit_exact"] and report["cycles"] == 14
    assert report["waveform"] == {"file": str(tmp_path / "w.vcd"), "start": 4, "stop": 10}
    timescale, names, stamps, changes = parse_vcd(tmp_path / "w.vcd")
    assert timescale == "1 fs"
    valid, ready = names["bench.top.i__valid"], names["bench.top.i__ready"]
    out_valid, clk = names["bench.top.o__valid"], names["bench.top.clk"]
    assert any(name.startswith("bench.top.mul_") for name in names)        # the array's multipliers
    start, stop = 4 * PERIOD_FS - PERIOD_FS // 2, 10 * PERIOD_FS - PERIOD_FS // 2
    assert stamps[0] == start and stamps[-1] == stop and every_value_at(changes, names, start)
    assert stamps == list(range(start, stop + 1, PERIOD_FS // 2))          # every clock edge, nothing else
    assert not any(time == stop for ident in changes for time, _ in changes[ident])   # the end mark only
    assert [(t, v) for t, v in changes[valid]] == [(start, "1"), (6 * PERIOD_FS - PERIOD_FS // 2, "0")]
    assert [(t, v) for t, v in changes[out_valid]] == [(start, "0"), (8 * PERIOD_FS - PERIOD_FS // 2, "1")]
    assert value_at(changes, ready, start) == "1"
    assert [value_at(changes, clk, t) for t in stamps[:4]] == ["1", "0", "1", "0"]


def test_verilator_vcd_of_hmma_holds_the_window_cycles_at_their_times(tmp_path, capsys):
    """A 2x2x2 array (latency 6; its trace build takes 35-50 s on 2 shared cores, a 4x4x4 one 4.5 minutes):
    cycles 4..9, dumped at each cycle's falling clock (c µs, its inputs) and rising edge (c + ½ µs); the input
    is offered in cycles 0..5, the first result is valid in cycle 6."""
    rng = np.random.default_rng(5)
    np.savez(tmp_path / "ops.npz", a=rng.standard_normal((6, 2, 2)).astype(np.float16),
             b=rng.standard_normal((6, 2, 2)).astype(np.float16), c=rng.standard_normal((6, 2, 2)).astype(np.float32))
    code = main(["hmma", "--in", str(tmp_path / "ops.npz"), "--out", str(tmp_path / "res.npz"), "--backend",
                 "verilator", "--vcd", str(tmp_path / "w.vcd"), "--vcd-cycles", "4:10", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    assert report["bit_exact"] and report["cycles"] == 12 and report["latency"] == 6
    assert report["waveform"] == {"file": str(tmp_path / "w.vcd"), "start": 4, "stop": 10}
    timescale, names, stamps, changes = parse_vcd(tmp_path / "w.vcd")
    assert timescale == "1ns"
    valid, ready = names["TOP.top.i__valid"], names["TOP.top.i__ready"]
    out_valid, clk = names["TOP.top.o__valid"], names["TOP.top.clk"]
    assert "TOP.top.mul_0_0_0.clk" in names and every_value_at(changes, names, 4000)
    assert stamps == list(range(4000, 10000, 500))
    assert [(t, v) for t, v in changes[valid]] == [(4000, "1"), (6000, "0")]
    assert [(t, v) for t, v in changes[out_valid]] == [(4000, "0"), (5500, "1")]     # after the edge ending 5
    assert value_at(changes, ready, 4000) == "1"
    assert [value_at(changes, clk, t) for t in stamps[:4]] == ["0", "1", "0", "1"]


def test_conv_vcd_names_the_accelerator_hierarchy_in_the_default_window(tmp_path, capsys):
    layer(tmp_path / "layer.npz", chans=2, filters=2, height=5, width=5)
    code = main(["conv", "--in", str(tmp_path / "layer.npz"), "--out", str(tmp_path / "res.npz"),
                 "--vcd", str(tmp_path / "conv.vcd"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    report = json.loads(out)
    cycles = report["stream_cycles"]
    assert report["bit_exact"] and report["waveform"] == {"file": str(tmp_path / "conv.vcd"), "start": 0,
                                                          "stop": cycles}    # the run is shorter than 2,000
    timescale, names, stamps, changes = parse_vcd(tmp_path / "conv.vcd")
    assert timescale == "1 fs"
    array_valid, array_ready = names["bench.top.array.i__valid"], names["bench.top.array.i__ready"]
    assert "bench.top.\\act_buf[0]" in names                                # memories, row by row
    assert "bench.top.array.mul_0_0_0.clk" in names                          # blocks inside blocks
    assert stamps[0] == 0 and stamps[-1] == cycles * PERIOD_FS
    assert every_value_at(changes, names, 0)
    assert "1" in [value for _, value in changes[array_valid]]               # the array did work in it


def test_vcd_window_keeps_only_the_window():
    """The filter alone, on a hand-written VCD fed in pieces that split lines."""
    text = ("$timescale 1 fs $end\n$scope module top $end\n$var wire 1 ! a $end\n$var wire 4 \" b $end\n"
            "$upscope $end\n$enddefinitions $end\n#0\n$dumpvars\n0!\nb0 \"\n$end\n#10\n1!\n#20\nb11 \"\n"
            "#25\n0!\n#30\n1!\nb1 \"\n#40\n0!\n#50\n")

    class Sink(list):
        def write(self, text):
            self.append(text)

        def close(self):
            self.append("<closed>")

    def filtered(start, stop, piece=7):
        sink = Sink()
        window = VcdWindow(sink, start, stop)
        for at in range(0, len(text), piece):
            window.write(text[at:at + piece])
        window.close()
        assert sink[-1] == "<closed>"
        return "".join(sink[:-1])

    header = text[:text.index("#0")]
    assert filtered(20, 40) == header + "#20\n$dumpvars\n1!\nb11 \"\n$end\n#25\n0!\n#30\n1!\nb1 \"\n#40\n"
    assert filtered(15, 31) == header + "#15\n$dumpvars\n1!\nb0 \"\n$end\n#20\nb11 \"\n#25\n0!\n#30\n1!\nb1 \"\n#31\n"
    assert filtered(0, 10, piece=1) == header + "#0\n$dumpvars\n0!\nb0 \"\n$end\n#10\n"
    assert filtered(50, 60) == header + "#50\n$dumpvars\n0!\nb1 \"\n$end\n"      # the run ends at the start
    assert filtered(60, 70) == header                                            # and before it


def cli(command, tmp_path, capsys, *extra):
    inputs = {"hmma": ["--in", str(tmp_path / "ops.npz")], "conv": ["--in", str(tmp_path / "layer.npz")]}
    code = main([command, *inputs[command], "--out", str(tmp_path / "res.npz"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


@pytest.mark.parametrize("command", ["hmma", "conv"])
@pytest.mark.parametrize("extra, message", [
    (["--vcd", "{tmp}/w.txt"], "--vcd {tmp}/w.txt: a waveform file name ends in .vcd or .fst, not '.txt'"),
    (["--vcd", "{tmp}/w"], "--vcd {tmp}/w: a waveform file name ends in .vcd or .fst"),
    (["--vcd", "{tmp}/w.fst"], "--vcd {tmp}/w.fst: the pysim backend writes VCD waveforms, not FST"),
    (["--vcd", "{tmp}/nodir/w.vcd"], "--vcd {tmp}/nodir/w.vcd: directory {tmp}/nodir does not exist"),
    (["--vcd", "{tmp}/sub.vcd"], "--vcd {tmp}/sub.vcd: is a directory"),
    (["--vcd", "{tmp}/ro.vcd"], "--vcd {tmp}/ro.vcd: exists and is read-only"),
    (["--vcd", "{tmp}/res.npz.vcd", "--out", "{tmp}/res.npz.vcd"], "is also the output"),
    (["--vcd", "{tmp}/w.vcd", "--vcd-cycles", "5:5"], "argument --vcd-cycles: '5:5' holds no cycle"),
    (["--vcd", "{tmp}/w.vcd", "--vcd-cycles", "9:3"], "argument --vcd-cycles: '9:3' holds no cycle"),
    (["--vcd", "{tmp}/w.vcd", "--vcd-cycles", "100"], "argument --vcd-cycles: must be START:END"),
    (["--vcd", "{tmp}/w.vcd", "--vcd-cycles=-1:4"], "argument --vcd-cycles: must be START:END"),
    (["--vcd-cycles", "0:10"], "--vcd-cycles needs --vcd FILE"),
])
def test_bad_waveform_requests_give_one_line_and_write_nothing(tmp_path, capsys, command, extra, message):
    write_ops(tmp_path / "ops.npz")
    layer(tmp_path / "layer.npz")
    (tmp_path / "sub.vcd").mkdir()
    (tmp_path / "ro.vcd").write_text("keep")
    (tmp_path / "ro.vcd").chmod(0o444)
    before = sorted(os.listdir(tmp_path))
    code, out, err = cli(command, tmp_path, capsys, *(e.format(tmp=tmp_path) for e in extra))
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert message.format(tmp=tmp_path) in err
    assert sorted(os.listdir(tmp_path)) == before and (tmp_path / "ro.vcd").read_text() == "keep"


def test_fst_without_its_libraries_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    """Verilator's FST writer links LZ4 and zlib: without them (as on this machine, which lacks liblz4-dev)
    the request is refused at once, not after a failed build."""
    import accel.sim.verilator as vl
    monkeypatch.setattr(vl, "_missing_libraries", lambda kind: vl.TRACE_LIBRARIES[kind][:1])
    write_ops(tmp_path / "ops.npz")
    code, out, err = cli("hmma", tmp_path, capsys, "--backend", "verilator", "--vcd", str(tmp_path / "w.fst"))
    assert code == 2 and out == "" and sorted(os.listdir(tmp_path)) == ["ops.npz"]
    assert err == (f"accel: error: --vcd {tmp_path}/w.fst: Verilator's FST writer needs lz4.h and liblz4, which "
                   f"the C++ compiler does not find here (Debian: liblz4-dev); write a .vcd instead")


def test_waveform_of_a_failed_run_leaves_no_file(tmp_path, capsys, monkeypatch):
    """The simulator writes part of the waveform, then the disk is full: no file, no temporary file."""
    import accel.cli.commands.hmma as command

    def fails_halfway(*args, waveform, **options):
        assert os.path.dirname(waveform.path) == str(tmp_path) and waveform.path.endswith(".vcd")
        with open(waveform.path, "w") as file:
            file.write("$timescale 1 fs $end\n")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(command, "run_hmma", fails_halfway)
    write_ops(tmp_path / "ops.npz")
    code, out, err = cli("hmma", tmp_path, capsys, "--vcd", str(tmp_path / "w.vcd"))
    assert code == 2 and err == f"accel: error: {tmp_path}/w.vcd: cannot write (No space left on device)"
    assert sorted(os.listdir(tmp_path)) == ["ops.npz"]


def test_waveform_request_is_checked_in_the_library():
    with pytest.raises(ValueError, match="holds no cycle"):
        Waveform("w.vcd", 3, 3)
    with pytest.raises(ValueError, match="ends in .vcd or .fst"):
        Waveform("w.ghw")
    with pytest.raises(ValueError, match="pysim backend writes VCD waveforms, not FST"):
        from accel.sim.pysim import run_testbench
        run_testbench(None, None, Waveform("w.fst"))
