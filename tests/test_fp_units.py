"""FPMul and FPAdd in the Amaranth simulator against accel.golden.fp, bit for bit, every gating style."""

import gc

import numpy as np
import pytest

from accel.golden import fp
from accel.hw.fp_add import FPAdd
from accel.hw.fp_mul import FPMul
from accel.hw.hmma import HMMA
from accel.hw.units import UNITS, build_unit
from accel.sim.pysim import run_stream
from hwcheck import check_fp_add, check_fp_mul, random_bits, random_words, register_trace

# Validation and registry tests build units they never simulate: collect them while the filter holds.
pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@pytest.fixture(autouse=True)
def collect_unused_units():
    yield
    gc.collect()


@pytest.mark.parametrize("gating", ["hold", "and", "none"])
def test_fp_mul_matches_golden(gating):
    check_fp_mul(gating, seed=11)


@pytest.mark.parametrize("gating", ["hold", "none"])
def test_fp_add_matches_golden(gating):
    check_fp_add(gating, seed=12)


@pytest.mark.parametrize("make", [lambda: FPMul(gating="hold"), lambda: FPAdd(gating="none")])
def test_back_to_back_takes_n_plus_latency_cycles(make):
    dut = make()
    words = random_words(np.random.default_rng(3), dut, 20)
    assert run_stream(dut, words).cycles == len(words) + dut.latency


LIVE, FLAGGED = 4, 12


def mul_lines(gating):
    """FPMul operand/product registers while LIVE unflagged then FLAGGED a-flagged products stream by,
    sampled from the cycle after the last live product reached the product register."""
    rng = np.random.default_rng(5)

    def no_zero(bits):   # ±0 (which would gate itself) becomes 1.0 in the same draw
        return np.where(bits & 0x7FFF == 0, 0x3C00, bits)

    a, b = (no_zero(random_bits(rng, LIVE + FLAGGED, fp.FP16)) for _ in range(2))
    assert not np.any(fp.is_zero(a, fp.FP16)) and not np.any(fp.is_zero(b, fp.FP16))
    dut = FPMul(gating=gating)
    flags = np.arange(LIVE + FLAGGED) >= LIVE
    trace = register_trace(dut, {"a.value": a, "a.is_zero": flags, "b.value": b, "b.is_zero": np.zeros_like(flags)},
                           (dut.lane.a_reg, dut.lane.b_reg, dut.lane.p_reg))
    return trace[LIVE + 1:]


def test_fp_mul_hold_freezes_its_lines():
    trace = mul_lines("hold")
    assert len(trace) >= FLAGGED and len(set(trace)) == 1


def test_fp_mul_without_gating_lines_keep_toggling():
    a_reg, b_reg, p_reg = zip(*mul_lines("none"))
    assert min(len(set(a_reg)), len(set(b_reg)), len(set(p_reg))) >= FLAGGED


def add_lines(gating):
    """FPAdd operand registers while b-flagged sums stream by (after two live ones)."""
    rng = np.random.default_rng(6)
    a, b = random_bits(rng, 2 + FLAGGED, fp.FP32), random_bits(rng, 2 + FLAGGED, fp.FP32)
    dut = FPAdd(gating=gating)
    trace = register_trace(dut, {"a": a, "b.value": b, "b.is_zero": np.arange(2 + FLAGGED) >= 2},
                           (dut.lane.a_reg, dut.lane.b_reg))
    return trace[2:]


def test_fp_add_hold_freezes_its_operands():
    assert len(set(add_lines("hold"))) == 1
    assert len(set(add_lines("none"))) >= FLAGGED


@pytest.mark.parametrize("make, error, match", [
    (lambda: FPMul(gating="off"), ValueError, "'off'"),
    (lambda: FPMul(gating=None), ValueError, "None"),
    (lambda: FPMul(fmt_in="fp16"), TypeError, "'fp16'"),
    (lambda: FPMul(fmt_out=32), TypeError, "32"),
    (lambda: FPMul(fmt_in=fp.BF16), ValueError, "bf16 x bf16"),
    (lambda: FPMul(fmt_in=fp.FP16, fmt_out=fp.FP16), ValueError, "fp16 x fp16 .* fp16"),
    (lambda: FPAdd(gating="and"), ValueError, "'and'"),
    (lambda: FPAdd(fmt=fp.FP32.width), TypeError, "32"),
])
def test_parameters_are_validated(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("name, cls", [("fp16_mul", FPMul), ("fp32_add", FPAdd), ("hmma", HMMA)])
def test_unit_registry_builds_each_gating(name, cls):
    unit = UNITS[name]
    assert unit.can_ungate and unit.can_gate
    for gating in unit.gatings:
        assert isinstance(build_unit(name, gating=gating), cls)
    assert isinstance(build_unit(name), cls)


def test_unit_registry_rejects_unknown_names_and_gatings():
    with pytest.raises(ValueError, match="'fp64_fma'.*fp16_mul, fp32_add, hmma"):
        build_unit("fp64_fma")
    assert "and" not in UNITS["fp32_add"].gatings
    with pytest.raises(ValueError, match="'and'"):
        build_unit("fp32_add", gating="and")


def test_hold_adder_bypass_register_loads_only_for_skipped_products():
    # the bypass register carries the running sum past a skipped product; loading it on every operation
    # would give the same sums with more toggles, so it must stay still while nothing is skipped
    from accel.energy.measure import unit_fields, unit_words
    from accel.sim.toggles import count_toggles
    for flagged, still in ((0.0, True), (0.5, False)):
        dut = FPAdd(gating="hold")
        fields = unit_fields("fp32_add", 24, seed=3, density_b=1.0 - flagged, gating="hold")
        assert bool(fields["b.is_zero"].any()) is not still
        _, toggles = count_toggles(dut, unit_words(dut, fields))
        assert (toggles.by_signal["add.bypass_reg"] == 0) is still
        assert toggles.by_signal["add.a_reg"] > 0
