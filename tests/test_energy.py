"""Energy model: calibration constants reproduce the published figures, arithmetic, gating, CLI errors."""

import json

import pytest

from accel.sim import energy
from accel.sim.cli import main
from accel.sim.gatelevel import compare_unit
from accel.sim.toggles import Toggles


def test_calibration_constants_reproduce_published_figures():
    # the committed toggles_per_op are what the calibration run measures, so 1.1 / 0.9 pJ come back exactly
    for cls, entry in energy.CALIBRATION.items():
        toggles, _ = energy.measure_unit(entry["unit"], entry["ops"], seed=entry["seed"])
        e = energy.energy_pj(toggles).by_unit[cls] / entry["ops"]
        assert e == pytest.approx(entry["target_pj"], rel=1e-4), cls


def test_energy_arithmetic():
    t = Toggles(total=130, by_unit={"mul": 100, "lines": 30}, copies_by_unit={"lines": 10}, samples=5, reg_bits=8)
    pj = {"mul": 0.01, "lines": 0.1}
    e = energy.energy_pj(t, pj_per_toggle=pj, clock_pj=0.001, buffer_bits=64, instructions=2)
    assert e.by_unit["mul"] == pytest.approx(1.0)
    assert e.by_unit["lines"] == pytest.approx(2.0)          # copies (port connections) are not charged
    assert e.by_unit["clock"] == pytest.approx(8 * 5 * 0.001)
    assert e.by_unit["buffers"] == pytest.approx(10.0)       # one 64-bit SRAM access
    assert e.by_unit["fetch_decode"] == pytest.approx(60.0)
    assert e.total == pytest.approx(sum(e.by_unit.values()))


def test_report_has_total_and_by_unit():
    toggles, _ = energy.measure_unit("fp16_mul", 8)
    r = energy.report(toggles)
    assert set(r) == {"toggles", "energy_pj"}
    assert {"mul", "lines"} <= set(r["toggles"]["by_unit"]) and r["toggles"]["total"] == toggles.total
    assert r["energy_pj"]["total"] == pytest.approx(sum(r["energy_pj"]["by_unit"].values()), abs=0.01)


def test_hold_gating_cuts_multiplier_energy_on_sparse_data():
    r = energy.sparsity_check(ops=200)
    g = r["gating"]
    assert g["hold"]["mul_pj"] < 0.5 * g["none"]["mul_pj"]
    assert g["and"]["mul_pj"] > 0.5 * g["none"]["mul_pj"]


def test_gate_level_replay_agrees_with_rtl():
    r = compare_unit("fp16_mul", n_ops=12, gating="none")   # raises if the netlist's outputs differ
    assert r["gate_toggles"] > r["rtl_toggles"] > 0
    assert r["named_compared"] >= 5 and r["named_match"] == r["named_compared"]


def test_unknown_unit_is_user_error():
    from accel.sim.errors import UserError
    with pytest.raises(UserError, match="fp64_div"):
        energy.build("fp64_div")
    with pytest.raises(UserError, match="density_a"):
        energy.unit_operands("fp16_mul", 4, density_a=1.5)


def test_cli_table(capsys):
    assert main(["energy", "--json", "--ops", "8"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["table"]["rows"]) == {"hfma", "hdp4a", "hmma"}
    for row in out["table"]["rows"].values():
        assert row["overhead_pct"] == pytest.approx(100 * row["overhead_pj"] / row["math_pj"], rel=1e-2)


@pytest.mark.parametrize("argv, message", [(["--ops", "0"], "--ops"), (["--plot", "x.png"], "--sweep")])
def test_cli_errors(capsys, argv, message):
    assert main(["energy", *argv]) == 2
    assert message in capsys.readouterr().err
