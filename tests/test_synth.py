"""Synthesis flows (accel.synth, `accel synth`): numbers checked against independent sums.

Only small designs are synthesized here: a 6x6 registered multiplier of our own, the FP16 multiplier,
the FP32 adder and 1x1xk HMMA arrays; the 4x4x4 HMMA is measured once with the CLI (docs/area.md).
"""

import json
import re
from pathlib import Path

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from accel.cli.main import main
from accel.synth import SynthInputError, load_liberty, parse_liberty, synth_variants, synthesize

FIXTURE = Path(__file__).parent / "fixtures" / "tiny45.lib"

# Transistors per static-CMOS gate (2 per input for NAND/NOR/AOI/OAI, 2 for NOT, 12 for XOR/XNOR/MUX,
# 10 for NMUX, 16 for a D flip-flop): the table of Yosys' `stat -tech cmos`, written out again here.
TRANSISTORS = {"NOT": 2, "NAND": 4, "NOR": 4, "AOI3": 6, "OAI3": 6, "AOI4": 8, "OAI4": 8,
               "NMUX": 10, "MUX": 12, "XOR": 12, "XNOR": 12, "DFF_P": 16}


def fixture_areas():
    """Cell -> area read straight from the fixture text (independent of accel.synth.liberty)."""
    text = FIXTURE.read_text()
    areas = {name: float(area) for name, area in
             re.findall(r"cell\s*\(\s*(\w+)\s*\)\s*\{\s*area\s*:\s*([0-9.]+)", text)}
    assert len(areas) == text.count("cell (")
    return areas


class RegMul(wiring.Component):
    """Operand registers, a WxW multiplier and a product register; ``gating="hold"`` freezes the
    operand registers while ``zero`` is set (the talk's frozen lines), ``"none"`` has no zero logic."""

    def __init__(self, gating="hold", width=6):
        if gating not in ("hold", "none"):
            raise ValueError(f"gating must be 'hold' or 'none', not {gating!r}")
        self.gating, self.width = gating, width
        super().__init__({"a": In(width), "b": In(width), "zero": In(1), "p": Out(2 * width)})

    @property
    def flops(self):
        return 4 * self.width

    def elaborate(self, platform):
        m = Module()
        a, b = Signal(self.width), Signal(self.width)
        load = ~self.zero if self.gating == "hold" else 1
        with m.If(load):
            m.d.sync += [a.eq(self.a), b.eq(self.b)]
        m.d.sync += self.p.eq(a * b)
        return m


def accel(capsys, *argv):
    status = main(["synth", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


# ---------------------------------------------------------------- flows on our own small component

def test_cmos_transistors_are_the_sum_over_cells(tmp_path):
    dut = RegMul("hold")
    result = synthesize(dut, "cmos", tmp_path)
    cells = result["cells"]
    assert cells["DFF_P"] == dut.flops
    assert set(cells) <= set(TRANSISTORS), cells
    assert result["transistors"] == sum(TRANSISTORS[c] * n for c, n in cells.items())
    assert result["ge"] == result["transistors"] / 4
    assert result["num_cells"] == sum(cells.values())
    assert (tmp_path / "design.il").exists() and (tmp_path / "yosys.log").exists()


def test_liberty_area_is_the_sum_of_cell_areas(tmp_path):
    dut = RegMul("hold")
    result = synthesize(dut, f"liberty:{FIXTURE}", tmp_path)
    areas = fixture_areas()
    cells = result["cells"]
    assert set(cells) <= set(areas), cells
    assert cells["DFF"] == dut.flops
    assert result["area_um2"] == pytest.approx(sum(areas[c] * n for c, n in cells.items()), rel=1e-9)
    assert result["sequential_area_um2"] == pytest.approx(areas["DFF"] * dut.flops, rel=1e-9)


def test_zero_gating_overhead_is_gated_against_ungated(tmp_path):
    result = synth_variants(lambda gating: RegMul(gating), "cmos", tmp_path, label="regmul")
    gated, ungated = result["ge"], result["ungated"]["ge"]
    assert result["gating"] == "hold" and result["ungated"]["gating"] == "none"
    assert gated != ungated  # the hold enables cost gates
    assert result["zero_gating_overhead_pct"] == pytest.approx(100 * (gated - ungated) / ungated, abs=0.01)
    assert result["overhead_basis"] == "ge"
    assert (tmp_path / "hold" / "design.il").read_text() != (tmp_path / "none" / "design.il").read_text()


def test_unit_without_ungated_build_has_no_overhead(tmp_path):
    def gated_only(gating):
        if gating != "hold":
            raise ValueError("no ungated build")
        return RegMul(gating, width=2)

    result = synth_variants(gated_only, "cmos", tmp_path)
    assert "ungated" not in result and "zero_gating_overhead_pct" not in result


def test_ecp5_reports_luts_flops_dsps_and_fmax(tmp_path):
    dut = RegMul("hold", width=20)   # 20x20 needs more than one 18x18 DSP, plus LUT glue
    result = synthesize(dut, "ecp5", tmp_path)
    cells = result["cells"]
    assert result["ffs"] == cells["TRELLIS_FF"] == dut.flops
    assert result["luts"] == cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) > 0
    assert result["dsps"] == cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0) >= 1
    assert result["fmax_mhz"] > 0
    assert result["device"].startswith("LFE5U-")
    report = json.loads((tmp_path / "timing" / "report.json").read_text())
    assert min(c["achieved"] for c in report["fmax"].values()) == pytest.approx(result["fmax_mhz"], abs=0.01)
    path = result["critical_path"]   # register to register, through the multiplier
    assert 0 < path["logic_ns"] + path["routing_ns"] <= path["ns"]   # plus clock-to-q and setup
    assert 1000 / path["ns"] == pytest.approx(result["fmax_mhz"], rel=0.1)
    # the timing harness adds one register per port bit around the unit
    assert result["pnr_utilization"]["TRELLIS_FF"] == dut.flops + (4 * dut.width + 1)  # a, b, zero, p


# ---------------------------------------------------------------- the Liberty reader

def test_liberty_reader_on_the_fixture():
    library = load_liberty(FIXTURE)
    assert {name: cell.area for name, cell in library.cells.items()} == fixture_areas()
    assert library.cells["DFF"].sequential and not library.cells["NAND2"].sequential
    assert library.cells["BUF"].is_buffer and library.cells["INV"].is_inverter
    assert library.cells["NAND2"].functions == {"Y": "!(A & B)"}


@pytest.mark.parametrize("text, message", [
    ("library (x) { cell (A) { area : 1 ; }", r"<t>:1: group library \(x\) opened on line 1 is never closed"),
    ("library (x) {\n cell (A) {\n area 1 ; } }", r"<t>:3: expected '\(', found '1'"),
    ("library (x) {\n cell (A) { pin (Y) { direction : output ; } } }", r"<t>:2: cell A has no area"),
    ("library (x) { cell (A) { area : big ; } }", r"non-numeric area 'big'"),
    ("library (x) { cell (A) { area : -5 ; } }", r"<t>:1: cell A has area '-5'; it must be a finite number >= 0"),
    ("library (x) { cell (A) { area : inf ; } }", r"cell A has area 'inf'; it must be a finite number >= 0"),
    ("cell (A) { area : 1 ; }", r"must start with a 'library"),
    ("", r"empty Liberty file"),
])
def test_liberty_reader_names_the_line_of_an_error(text, message):
    with pytest.raises(SynthInputError, match=message):
        parse_liberty(text, "<t>")


# ---------------------------------------------------------------- the real units through the CLI

def test_cli_fp16_mul_cmos_json(tmp_path, capsys):
    status, out, err = accel(capsys, "--unit", "fp16_mul", "--flow", "cmos", "--json", "--build-dir", tmp_path)
    assert status == 0, err
    result = json.loads(out)
    assert result["unit"] == "fp16_mul" and result["flow"] == "cmos"
    assert result["ge"] == result["transistors"] / 4 > 0
    assert result["transistors"] == sum(TRANSISTORS[c] * n for c, n in result["cells"].items())
    ungated = result["ungated"]
    assert ungated["gating"] == "none" and ungated["ge"] > 0
    assert result["ge"] != ungated["ge"]
    assert result["zero_gating_overhead_pct"] == pytest.approx(
        100 * (result["ge"] - ungated["ge"]) / ungated["ge"], abs=0.01)
    assert "fp16_mul" in err  # progress on stderr
    saved = json.loads((tmp_path / "fp16_mul" / "cmos" / "result.json").read_text())
    assert saved == result


def test_cli_ecp5_no_pnr_gives_synthesis_figures_only(tmp_path, capsys):
    status, out, err = accel(capsys, "--unit", "fp16_mul", "--flow", "ecp5", "--no-pnr", "--json",
                             "--build-dir", tmp_path)
    assert status == 0, err
    result = json.loads(out)
    assert result["luts"] > 0 and result["dsps"] == 1 and "fmax_mhz" not in result
    assert result["zero_gating_overhead_pct"] == pytest.approx(
        100 * (result["luts"] - result["ungated"]["luts"]) / result["ungated"]["luts"], abs=0.01)
    assert not (tmp_path / "fp16_mul" / "ecp5" / "hold" / "timing").exists()


def test_cli_fp32_add_liberty_table(tmp_path, capsys):
    status, out, err = accel(capsys, "--unit", "fp32_add", "--flow", f"liberty:{FIXTURE}", "--build-dir", tmp_path)
    assert status == 0, err
    saved = list((tmp_path / "fp32_add").glob("liberty-tiny45-*/result.json"))
    assert len(saved) == 1
    result = json.loads(saved[0].read_text())
    areas = fixture_areas()
    for build in (result, result["ungated"]):
        assert build["area_um2"] == pytest.approx(sum(areas[c] * n for c, n in build["cells"].items()), rel=1e-9)
    assert f"{result['area_um2']:,.3f}" in out and "zero_gating_overhead_pct" in out


def test_hmma_area_is_multipliers_and_adders_plus_pipeline(tmp_path):
    """A 1x1x2 HMMA has one multiplier and one adder more than a 1x1x1; that step costs what a
    stand-alone FP16 multiplier plus FP32 adder cost (their stream control aside)."""
    from accel.hw.hmma import HMMA
    from accel.hw.units import build_unit

    ge = {}
    for name in ("fp16_mul", "fp32_add"):
        ge[name] = synthesize(build_unit(name, gating="hold"), "cmos", tmp_path / name)["ge"]
    for k in (1, 2):
        ge[k] = synthesize(HMMA(m=1, n=1, k=k, gating="hold"), "cmos", tmp_path / f"hmma{k}")["ge"]
    lane = ge["fp16_mul"] + ge["fp32_add"]
    assert ge[2] - ge[1] == pytest.approx(lane, rel=0.15)
    assert lane < ge[1] < 1.5 * lane   # one lane plus skew, operand and output registers


# ---------------------------------------------------------------- bad input

def _bad_liberty(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("argv, message", [
    (["--unit", "fp64_div"], r"unknown unit 'fp64_div'; choose one of decompress_bitmask, decompress_nm24, decompress_rle, fp16_add, "
                                  r"fp16_mul, fp32_add, hmma, hmma_sparse, winograd_in2, winograd_in4, winograd_out2, winograd_out4"),
    (["--unit", "fp16_mul", "--flow", "asic"], r"unknown flow 'asic'; choose one of cmos, ecp5, liberty:FILE"),
    (["--unit", "fp16_mul", "--flow", "liberty:"], r"needs a file name after 'liberty:'"),
    (["--unit", "fp16_mul", "--flow", "liberty:{tmp}/missing.lib"], r"Liberty file '.*missing.lib' not found"),
    (["--unit", "fp16_mul", "--flow", "liberty:{tmp}"], r"is a directory"),
    (["--unit", "fp16_mul", "--flow", "liberty:{corrupt}"], r"corrupt.lib:\d+: group pin \(Y\) opened on line \d+ is never closed"),
    (["--unit", "fp16_mul", "--flow", "liberty:{nobuf}"], r"nobuf.lib' has no buffer cell"),
    (["--unit", "fp16_mul", "--flow", "liberty:{noff}"], r"noff.lib' has no flip-flop cell"),
    (["--unit", "fp16_mul", "--flow", "liberty:{badfn}"],
     r"badfn.lib:\d+: cell NAND2, pin Y: cannot read function '!\(A & & \)' \(unexpected '&'\)"),
    (["--unit", "fp16_mul", "--flow", "liberty:{negarea}"],
     r"negarea.lib:\d+: cell INV has area '-5'; it must be a finite number >= 0"),
    (["--unit", "fp16_mul", "--flow", "liberty:{nanarea}"],
     r"nanarea.lib:\d+: cell INV has area 'nan'; it must be a finite number >= 0"),
    (["--unit", "fp16_mul", "--flow", "liberty:{latin1}"], r"latin1.lib' is not UTF-8 \(or ASCII\) text"),
    (["--unit", "fp16_mul", "--flow", "cmos", "--no-pnr"], r"--no-pnr only applies to the ecp5 flow, not --flow cmos"),
    (["--unit", "fp16_mul", "--flow", "liberty:{fixture}", "--no-pnr"],
     r"--no-pnr only applies to the ecp5 flow, not --flow liberty:"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, capsys, argv, message):
    fixture = FIXTURE.read_text()
    files = {
        "tmp": tmp_path,
        "fixture": FIXTURE,
        "corrupt": _bad_liberty(tmp_path, "corrupt.lib", fixture[:fixture.index("function : \"!(A & B)")]),
        "nobuf": _bad_liberty(tmp_path, "nobuf.lib", re.sub(r"cell \(BUF\) \{.*?\n  \}\n", "", fixture, flags=re.S)),
        "noff": _bad_liberty(tmp_path, "noff.lib", re.sub(r"cell \(DFF\) \{.*?\n  \}\n", "", fixture, flags=re.S)),
        "badfn": _bad_liberty(tmp_path, "badfn.lib", fixture.replace('"!(A & B)"', '"!(A & & )"')),
        "negarea": _bad_liberty(tmp_path, "negarea.lib", fixture.replace("area : 0.532", "area : -5")),
        "nanarea": _bad_liberty(tmp_path, "nanarea.lib", fixture.replace("area : 0.532", "area : nan")),
        "latin1": _bad_liberty(tmp_path, "latin1.lib", fixture),
    }
    (tmp_path / "latin1.lib").write_bytes(("/* caf\u00e9 */\n" + fixture).encode("latin-1"))
    build = tmp_path / "build"
    argv = [arg.format(**files) for arg in argv]
    status, out, err = accel(capsys, *argv, "--build-dir", build)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("accel: error: "), err
    assert re.search(message, lines[0]), lines[0]
    assert not build.exists()


def test_tool_failure_is_one_line_exit_1_naming_the_log(tmp_path, capsys, monkeypatch):
    from accel.synth.flows import CmosFlow
    monkeypatch.setattr(CmosFlow, "SCRIPT", "read_rtlil design.il\nno_such_pass\n")
    status, out, err = accel(capsys, "--unit", "fp16_mul", "--build-dir", tmp_path)
    assert status == 1 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("accel: error: ")]
    assert len(lines) == 1
    log = tmp_path / "fp16_mul" / "cmos" / "hold" / "yosys.log"
    assert "no_such_pass" in lines[0] and str(log) in lines[0] and log.exists()


def test_cli_unusable_build_dir_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for build in (tmp_path / "file", tmp_path / "file" / "sub"):
        status, out, err = accel(capsys, "--unit", "fp16_mul", "--build-dir", build)
        lines = err.strip().splitlines()
        assert status == 2 and out == "" and len(lines) == 1 and "--build-dir" in lines[0], err
