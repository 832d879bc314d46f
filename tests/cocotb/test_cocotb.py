"""Run the cocotb testbenches (tb_*.py) on the exported Verilog under Verilator, from pytest.

One design point per test (unit, gating, shape), one build folder per point under
``build/cocotb/<point>-<hash of the Verilog>/``: a point whose Verilog has not changed is not rebuilt.
The testbenches read their configuration from ``ACCEL_TB_*`` environment variables.
"""

import hashlib
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the simulator's Python gets this process's sys.path (testbench modules)
    sys.path.insert(0, str(HERE))

from accel.hw.hmma import HMMA  # noqa: E402
from accel.hw.units import build_unit  # noqa: E402
from accel.sim import verilator as vl  # noqa: E402
from accel.synth.export import export_verilog  # noqa: E402
from accel.synth.workspace import build_root  # noqa: E402
from designs import accelerator  # noqa: E402

# the backend's model build settings: split C++ files compiled in parallel at -O1 (make flags: vl.make_flags)
BUILD_ARGS = vl.VERILATOR_FLAGS + ["--output-split", "20000"]
SLOW = pytest.mark.skipif(os.environ.get("ACCEL_SLOW_TESTS") != "1",
                          reason="builds that take over 10 minutes on 2 cores, more than make test's 30-minute "
                                 "budget leaves; run with ACCEL_SLOW_TESTS=1")


def _hmma(gating, shape):
    m, n, k = shape
    return HMMA(m=m, n=n, k=k, gating=gating)


def run_testbench(point, module, dut, env, expect_tests):
    """Export ``dut``, build it for cocotb (unless cached), run ``module``; assert all tests passed."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    vl.environment()
    top = point.split("-")[0]
    export = export_verilog(dut, top=top)
    key = hashlib.sha256((export.text + repr(BUILD_ARGS) + repr(vl.MODEL_MAKE_VARIABLES)
                          + vl.verilator_version()).encode()).hexdigest()[:16]
    build_dir = build_root() / "cocotb" / f"{point}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{top}.v"
    runner = get_runner("verilator")
    stamp = build_dir / "built.ok"
    if not stamp.exists():
        source.write_text(export.text)
        saved = os.environ.get("MAKEFLAGS")
        os.environ["MAKEFLAGS"] = vl.make_flags()  # the runner's make command takes no variables
        try:
            runner.build(sources=[source], hdl_toplevel=top, build_dir=build_dir, build_args=BUILD_ARGS,
                         always=True, log_file=build_dir / "build.log")
        finally:
            if saved is None:
                del os.environ["MAKEFLAGS"]
            else:
                os.environ["MAKEFLAGS"] = saved
        stamp.write_text("ok\n")
    run_dir = build_dir / "run"
    results = runner.test(test_module=module, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                          build_dir=build_dir, test_dir=run_dir, extra_env=env,
                          results_xml=str(run_dir / "results.xml"), log_file=run_dir / "test.log")
    tests, failed = get_results(Path(results))
    log = (run_dir / "test.log").read_text() if (run_dir / "test.log").exists() else ""
    assert failed == 0, f"{failed} of {tests} cocotb tests failed for {point}:\n{log[-4000:]}"
    assert tests == expect_tests, f"ran {tests} cocotb tests for {point}, expected {expect_tests}"


@pytest.mark.parametrize("gating", ["hold", "none"])
def test_fp16_mul(gating):
    run_testbench(f"fp16_mul-{gating}", "tb_fp_mul", build_unit("fp16_mul", gating),
                  {"ACCEL_TB_GATING": gating, "ACCEL_TB_SEED": "11"}, expect_tests=3)


@pytest.mark.parametrize("gating", ["hold", "none"])
def test_fp32_add(gating):
    run_testbench(f"fp32_add-{gating}", "tb_fp_add", build_unit("fp32_add", gating),
                  {"ACCEL_TB_GATING": gating, "ACCEL_TB_SEED": "12"}, expect_tests=3)


@pytest.mark.parametrize("gating", ["hold", "and"])
def test_hmma_2x2x2(gating):
    run_testbench(f"hmma-2x2x2-{gating}", "tb_hmma", _hmma(gating, (2, 2, 2)),
                  {"ACCEL_TB_GATING": gating, "ACCEL_TB_SHAPE": "2,2,2", "ACCEL_TB_SEED": "13"},
                  expect_tests=3)


@pytest.mark.parametrize("fmt, gating", [("bitmask", "hold"), ("rle", "and"), ("nm24", "hold")])
def test_decompressor(fmt, gating):
    run_testbench(f"decompress_{fmt}-{gating}", "tb_decompressor", build_unit(f"decompress_{fmt}", gating),
                  {"ACCEL_TB_FORMAT": fmt, "ACCEL_TB_GATING": gating, "ACCEL_TB_SEED": "14"}, expect_tests=2)


# F(4x4) with ACCEL_SLOW_TESTS=1: exporting and compiling its input transform (312 FP16 adders) takes about
# 16 minutes on a 2-core machine (docs/winograd.md); make test checks the F(4x4) units bit for bit in the
# Amaranth simulator (tests/test_winograd_hw.py).
@pytest.mark.parametrize("kind, m", [("in", 2), ("out", 2), pytest.param("in", 4, marks=SLOW),
                                     pytest.param("out", 4, marks=SLOW)])
def test_winograd(kind, m):
    run_testbench(f"winograd_{kind}{m}-none", "tb_winograd", build_unit(f"winograd_{kind}{m}", "none"),
                  {"ACCEL_TB_UNIT": kind, "ACCEL_TB_TILE": str(m), "ACCEL_TB_SEED": "15"}, expect_tests=3)


@SLOW
def test_accelerator():
    # direct convolution with bitmask-compressed weights under hold: the decompressor, the senders and the
    # sequencer in one design point (a Winograd point takes too long to build on a 2-core machine). The whole
    # accelerator is checked against golden on Verilator by tests/test_accelerator_hw.py in every make test.
    run_testbench("accelerator-bitmask-hold", "tb_accelerator", accelerator("bitmask", "hold"),
                  {"ACCEL_TB_FORMAT": "bitmask", "ACCEL_TB_GATING": "hold", "ACCEL_TB_SEED": "16"},
                  expect_tests=2)
