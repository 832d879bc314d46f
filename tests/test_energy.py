"""Energy model and studies: calibration constants reproduce the published figures, arithmetic, gating, the
array sweep, CLI errors."""

import json

import pytest

from accel.cli.main import main
from accel.energy import model as energy
from accel.energy import studies
from accel.energy.gatelevel import compare_unit
from accel.energy.measure import measure_unit, unit_fields
from accel.hw.units import mul_fields
from accel.sim.toggles import Toggles


def test_calibration_constants_reproduce_published_figures():
    # the committed toggles_per_op are what the calibration run measures, so 1.1 / 0.9 pJ come back exactly
    assert {cls: e["target_pj"] for cls, e in energy.CALIBRATION.items()} == \
        {"mul": energy.HOROWITZ_45NM_PJ["fp16_mul"], "add": energy.HOROWITZ_45NM_PJ["fp32_add"],
         "add16": energy.HOROWITZ_45NM_PJ["fp16_add"]}
    for cls, entry in energy.CALIBRATION.items():
        toggles, _ = measure_unit(entry["unit"], entry["ops"], seed=entry["seed"])
        e = energy.energy_pj(toggles).by_unit[cls] / entry["ops"]
        assert e == pytest.approx(entry["target_pj"], rel=1e-4), cls


def test_gate_level_calibration_reproduces_published_figures():
    # the committed GATE_CALIBRATION is what the gate-level run measures: each lane at its own net energy
    # costs its published figure per random operation (FP16 mul 1.1 pJ, FP32 add 0.9 pJ)
    from accel.energy.gatelevel import lane_net_equivalents_per_op
    for cls in energy.GATE_CALIBRATION:
        entry = energy.CALIBRATION[cls]
        per_op = lane_net_equivalents_per_op(entry["unit"])
        assert per_op == pytest.approx(energy.GATE_CALIBRATION[cls], abs=1e-3), cls
        published = energy.HOROWITZ_45NM_PJ[entry["unit"]]
        assert per_op * energy.E_NET_PJ_BY_CLASS[cls] == pytest.approx(published, rel=1e-5), cls


def test_flag_registers_are_priced_as_register_bits_and_lines_as_long_wires():
    # a flag delay register is a flip-flop (FLOP_NET_EQUIV net toggles), an operand line a long wire
    # (LINE_NET_EQUIV): by hand, 10 flag-register toggles and 10 line toggles
    t = Toggles(total=20, by_unit={"flags": 10, "lines": 10}, samples=1)
    spent = energy.energy_pj(t, clock_pj=0.0, clock_gating=False).by_unit
    assert spent["flags"] == pytest.approx(10 * energy.FLOP_NET_EQUIV * energy.E_NET_PJ)
    assert spent["lines"] == pytest.approx(10 * energy.LINE_NET_EQUIV * energy.E_NET_PJ)
    assert energy.PJ_PER_TOGGLE["flags"] == energy.PJ_PER_TOGGLE["pipe"] < energy.PJ_PER_TOGGLE["lines"]


def test_every_unit_class_has_a_price():
    from accel.sim.toggles import UNIT_CLASSES
    assert set(UNIT_CLASSES) == set(energy.PJ_PER_TOGGLE)
    with pytest.raises(KeyError, match="nowhere"):
        energy.energy_pj(Toggles(total=1, by_unit={"nowhere": 1}, samples=1))


def test_energy_arithmetic():
    t = Toggles(total=130, by_unit={"mul": 100, "lines": 30}, copies_by_unit={"lines": 10}, samples=5, reg_bits=8,
                reg_clock_loads=17)
    pj = {"mul": 0.01, "lines": 0.1}
    e = energy.energy_pj(t, pj_per_toggle=pj, clock_pj=0.001, buffer_bits=64, instructions=2)
    assert e.by_unit["mul"] == pytest.approx(1.0)
    assert e.by_unit["lines"] == pytest.approx(2.0)          # copies (port connections) are not charged
    assert e.clock_gating and e.by_unit["clock"] == pytest.approx(17 * 0.001)      # gated: the loads counted
    assert e.clock == pytest.approx({"gated": 17 * 0.001, "ungated": 8 * 5 * 0.001})
    ungated = energy.energy_pj(t, pj_per_toggle=pj, clock_pj=0.001, clock_gating=False)
    assert ungated.by_unit["clock"] == pytest.approx(8 * 5 * 0.001)                 # every bit every cycle
    assert ungated.total == pytest.approx(1.0 + 2.0 + 8 * 5 * 0.001)
    steady = energy.energy_pj(t, pj_per_toggle=pj, clock_pj=0.001, cycles=3, clock_gating=False)
    assert steady.by_unit["clock"] == pytest.approx(8 * 3 * 0.001) and steady.clock["gated"] is None
    with pytest.raises(ValueError, match="cycles"):
        energy.energy_pj(t, cycles=3)
    with pytest.raises(ValueError, match="change counts"):
        energy.energy_pj(Toggles(by_unit={"mul": 1}, samples=2, reg_bits=1))
    assert e.by_unit["buffers"] == pytest.approx(10.0)       # one 64-bit SRAM access
    assert e.by_unit["fetch_decode"] == pytest.approx(60.0)
    assert e.total == pytest.approx(sum(e.by_unit.values()))


def test_report_has_total_and_by_unit():
    toggles, _ = measure_unit("fp16_mul", 8)
    r = energy.report(toggles)
    assert set(r) == {"toggles", "energy_pj"}
    assert {"mul", "lines"} <= set(r["toggles"]["by_unit"]) and r["toggles"]["total"] == toggles.total
    assert r["toggles"]["total"] == sum(r["toggles"]["by_unit"].values()) > 0
    assert r["energy_pj"]["total"] == pytest.approx(sum(r["energy_pj"]["by_unit"].values()), abs=0.01)


def test_hold_gating_cuts_multiplier_energy_on_sparse_data():
    r = studies.sparsity_check(ops=200)
    g = r["gating"]
    assert g["hold"]["mul_pj"] < 0.5 * g["none"]["mul_pj"]
    assert g["and"]["mul_pj"] > 0.5 * g["none"]["mul_pj"]


def test_gate_level_replay_agrees_with_rtl():
    r = compare_unit("fp16_mul", n_ops=12, gating="none")   # raises if the netlist's outputs differ
    assert r["gate_toggles"] > r["rtl_toggles"] > 0
    assert r["named_compared"] >= 5 and r["named_match"] == r["named_compared"]


def test_unknown_unit_and_bad_density_are_value_errors():
    with pytest.raises(ValueError, match="fp64_div"):
        measure_unit("fp64_div", 4)
    with pytest.raises(ValueError, match="density_a"):
        unit_fields("fp16_mul", 4, density_a=1.5)


def test_cli_text_shows_the_sparsity_check_as_a_table(capsys, monkeypatch):
    check = studies.sparsity_check(ops=60)
    monkeypatch.setattr(studies, "sparsity_check", lambda **options: check)
    assert main(["energy", "--sparsity", "--ops", "2", "--instructions", "1"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if "hold / none / useful" in line]
    assert float(row.split()[-1]) == pytest.approx(check["hold_over_ideal"], abs=5e-4)
    assert "rtl" in out and "{" not in out      # a table, not a JSON dump


def test_cli_table(capsys):
    assert main(["energy", "--json", "--ops", "8", "--instructions", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    table = out["table"]
    assert set(table["rows"]) == {"hfma", "hdp4a", "hmma"} and table["math_classes"] == ["mul", "add"]
    for name, row in table["rows"].items():
        m, n, k = row["shape"]
        assert row["fmas"] == m * n * k == {"hfma": 1, "hdp4a": 4, "hmma": 64}[name]
        assert row["math_pj"] == pytest.approx(row["mul_pj"] + row["add_pj"], abs=2e-3)
        assert row["array_other_pj"] == pytest.approx(sum(row["array_other_by_unit"].values()), abs=0.01)
        assert {"lines", "pipe", "clock"} <= set(row["array_other_by_unit"])
        assert row["overhead_pct"] == pytest.approx(100 * row["overhead_pj"] / row["math_pj"], rel=1e-2)
        assert row["overhead_incl_array_pct"] == pytest.approx(
            100 * (row["overhead_pj"] + row["array_other_pj"]) / row["math_pj"], rel=1e-2)
    # measured on the array, not extrapolated from one FMA: the 4x4x4 array's 64 lanes cost about 64 FMAs
    fma = table["rows"]["hfma"]["math_pj"]
    assert 40 * fma < table["rows"]["hmma"]["math_pj"] < 90 * fma


def test_overhead_table_rows_are_the_array_measured_at_each_shape():
    import numpy as np
    from accel.golden.operands import hmma_operands
    from accel.sim.hmma import run_hmma
    table = studies.overhead_table(ops=4, instructions=3, seed=8)
    for name in ("hfma", "hdp4a"):
        row = table["rows"][name]
        m, n, k = row["shape"]
        run = run_hmma(*hmma_operands(3, m=m, n=n, k=k, seed=8), gating="none")
        spent = energy.energy_pj(run.toggles, cycles=3, clock_gating=False)
        assert row["mul_pj"] == pytest.approx(spent.by_unit["mul"] / 3, abs=1e-3)
        assert row["add_pj"] == pytest.approx(spent.by_unit["add"] / 3, abs=1e-3)
        assert row["array_other_by_unit"]["clock"] == pytest.approx(run.toggles.reg_bits * energy.CLOCK_PJ_PER_REG_BIT,
                                                                    abs=1e-3)
        assert np.isclose(row["array_other_pj"] + row["math_pj"], spent.total / 3, atol=0.01)


@pytest.mark.parametrize("argv, message", [(["--ops", "0"], "--ops: must be an integer in 1..100000, not 0"),
                                           (["--ops", "10**12"], "--ops: must be an integer in 1..100000"),
                                           (["--ops", "1000000000000"], "--ops: must be an integer in 1..100000"),
                                           (["--instructions", "0"], "--instructions: must be an integer in 1..100000"),
                                           (["--instructions", "100001"], "--instructions: must be an integer in 1.."),
                                           (["--plot", "x.png"], "--sweep"),
                                           (["--plot", ""], "--sweep"),
                                           (["--sweep", "--plot", ""], "the output file name is empty"),
                                           (["--sweep", "--plot", "no-such-dir/x.png"], "does not exist"),
                                           (["--sweep", "--plot", "sweep"], "ending in .png"),
                                           (["--seed", "-1"], "--seed: must be an integer at least 0, not -1")])
def test_cli_errors(capsys, argv, message):
    assert main(["energy", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------------------------------ zero gating

def _zero_run(dense_ops=6, zero_ops=20, seed=2):
    """``dense_ops`` random multiplies, then ``zero_ops`` with one operand zero (the side chosen at random)."""
    import numpy as np
    ops = unit_fields("fp16_mul", dense_ops + zero_ops, seed=seed)
    a, b = ops["a.value"][:, 0].copy(), ops["b.value"][:, 0].copy()
    side = np.random.default_rng(seed).random(zero_ops) < 0.5
    a[dense_ops:][side] = 0
    b[dense_ops:][~side] = 0
    return a, b


def test_hold_freezes_multiplier_lane_datapath_on_zero_flagged_run():
    from accel.energy.gatelevel import replay_mul_lane
    dense_ops = 6
    a, b = _zero_run(dense_ops)
    # count from the cycle where the last dense operation's operands and product are in their registers
    runs = {g: replay_mul_lane(mul_fields(a, b, g), gating=g, count_from=dense_ops + 1)
            for g in ("hold", "none")}
    datapath = ("mul.a_reg", "mul.b_reg", "mul.p_reg", "mul.product")
    for name in datapath:
        assert runs["hold"].rtl.by_signal[name] == 0, name
    assert all(runs["none"].rtl.by_signal[name] > 0 for name in ("mul.a_reg", "mul.b_reg", "mul.p_reg"))
    # gate level: under hold the only lane nets that change are the zero-flag registers' nets
    hold = runs["hold"]
    own = hold.netlist.own_toggles(hold.gate.per_net)
    flag_nets = {int(i) for name, nets in hold.netlist.named.items() if "zero" in name for i in nets}
    assert set(map(int, own.nonzero()[0])) <= flag_nets
    assert runs["none"].net_toggles > 50 * dense_ops
    # with clock gates the frozen datapath takes no clock: only the ungated flip-flops and the gates themselves;
    # under none the same gates open for every operation (all but the last of the 20 are in the window)
    hold_net, none_net = hold.netlist, runs["none"].netlist
    assert hold.gate.clock_loads == hold.gate.samples * (hold_net.free_dffs + hold_net.clock_gates)
    assert hold_net.gated_dffs >= 60
    assert runs["none"].gate.clock_loads >= 19 * none_net.n_dffs


@pytest.mark.parametrize("zero_side", ["a", "b"])
def test_gate_level_and_isolation_saves_nets_when_one_operand_is_zero(zero_side):
    # at gate level the isolation muxes keep the non-zero operand's significand out of the multiplier array
    # (measured: about 10 % fewer lane net toggles than none on such data); at RTL the two are equal
    from accel.energy.gatelevel import replay_mul_lane
    ops = unit_fields("fp16_mul", 40, seed=9)
    a, b = ops["a.value"][:, 0].copy(), ops["b.value"][:, 0].copy()
    (a if zero_side == "a" else b)[:] = 0
    nets = {g: replay_mul_lane(mul_fields(a, b, g), gating=g).net_toggles for g in ("none", "and")}
    assert nets["and"] < nets["none"]


def test_sparsity_check_at_gate_level_reports_both_levels():
    r = studies.sparsity_check(ops=400, gate_level=True, dense_ops=64)
    assert r["level"] == "rtl" and r["gate_level"]["level"] == "gate"
    # frozen lines: hold spends about a dense random multiply per useful multiply and nothing on the
    # flagged ones (a flagged op leaking a tenth of a multiply would put this above 3 at 16 useful of 400)
    for level in (r, r["gate_level"], r["gate_level"]["with_glitches"]):
        assert 0.8 < level["hold_per_useful_over_dense"] < 1.3
    for level in (r, r["gate_level"]):
        assert level["gating"]["hold"]["ratio_to_none"] < level["gating"]["none"]["ratio_to_none"] == 1.0
        assert level["hold_over_ideal"] == pytest.approx(
            level["hold_per_useful_over_dense"] / level["none_per_op_over_dense"], rel=0.02)
    # counting the lane's clock: without clock gates hold pays every flip-flop every cycle as none does
    with_clock = r["gate_level"]["with_clock"]
    assert with_clock["clock_gated"]["hold_ratio_to_none"] < with_clock["ungated"]["hold_ratio_to_none"]
    # with gate delays every settled change is still one transition, and the glitches come on top
    for gating in r["gate_level"]["gating"].values():
        assert gating["glitch_net_toggles"] > gating["net_toggles"]
    assert r["gate_level"]["with_glitches"]["hold_ratio_to_none"] < 1


def test_density_sweep_runs_the_array_and_hold_cuts_multiplier_energy():
    r = studies.density_sweep(densities=((0.1, 0.3),), instructions=2, gatings=("none", "hold"))
    (point,) = r["points"]
    g = point["gating"]
    assert 0 < point["useful"] < 0.1
    assert g["hold"]["mul_pj"] < 0.5 * g["none"]["mul_pj"]
    assert g["none"]["flags_pj"] == 0 < g["hold"]["flags_pj"]        # no flags are raised under none
    assert g["none"]["array_pj"] > g["none"]["mul_pj"] > 0


# ------------------------------------------------------------------------------------------ workloads

@pytest.mark.parametrize("fmt_name", ["fp16", "fp32"])
def test_sparse_bits_keeps_the_random_stream(fmt_name):
    # the calibration constants and every seeded workload depend on this order of draws: normal values,
    # zeros replaced by 1, then one uniform draw per element deciding whether it is kept
    import numpy as np
    from accel.golden import fp
    from accel.golden.operands import sparse_bits
    fmt = fp.format_by_name(fmt_name)
    native = {"fp16": np.float16, "fp32": np.float32}[fmt_name]
    rng = np.random.default_rng(4)
    values = rng.standard_normal((50, 7)).astype(native)
    values[values == 0] = 1
    values[rng.random((50, 7)) >= 0.3] = 0
    bits = sparse_bits((50, 7), 0.3, np.random.default_rng(4), fmt)
    assert bits.dtype == fmt.dtype and np.array_equal(bits, fp.to_bits(values, fmt))
    assert 0.15 < np.mean(~fp.is_zero(bits, fmt)) < 0.45


def test_sparse_bits_rejects_bad_format_and_density():
    import numpy as np
    from accel.golden import fp
    from accel.golden.operands import sparse_bits
    with pytest.raises(ValueError, match="bf16"):
        sparse_bits(4, 0.5, np.random.default_rng(0), fp.BF16)
    with pytest.raises(ValueError, match="1.5"):
        sparse_bits(4, 1.5, np.random.default_rng(0))


def test_held_lines_by_hand():
    # a flagged element is never sent: its lines keep the value last sent on them (0 before the first)
    import numpy as np
    from accel.golden import fp
    from accel.golden.operands import held_lines, sent_operand
    bits = np.array([[0, 2], [7, 0], [0, 0], [0, 5], [9, 0]], np.uint16)
    flags = np.array([[1, 0], [0, 1], [1, 1], [1, 0], [0, 0]], bool)   # the last row's 0 is sent as a value
    expected = np.array([[0, 2], [7, 2], [7, 2], [7, 5], [9, 0]], np.uint16)
    held = held_lines(bits, flags)
    assert held.dtype == np.uint16 and np.array_equal(held, expected)
    with pytest.raises(ValueError, match="differ in shape"):
        held_lines(bits, flags[:, :1])
    with pytest.raises(ValueError, match="'hodl'"):
        sent_operand(bits, fp.FP16, "hodl")


def test_hold_sender_freezes_the_operand_lines_and_results_stay_exact():
    # on the same sparse data the hold sender's value lines toggle only between non-zero values: the
    # array's input lines cost less than under and (the C lines and the flags are the same in both)
    from accel.golden.operands import hmma_operands
    from accel.sim.hmma import run_hmma
    a, b, c = hmma_operands(8, m=2, n=2, k=2, weight_density=0.1, act_density=0.3, seed=11)
    runs = {g: run_hmma(a, b, c, gating=g) for g in ("hold", "and")}
    assert all(run.bit_exact for run in runs.values())
    lines = {g: energy.energy_pj(run.toggles).by_unit["lines"] for g, run in runs.items()}
    flags = {g: run.toggles.by_unit["flags"] for g, run in runs.items()}
    assert lines["hold"] < lines["and"] and flags["hold"] == flags["and"]


def test_flag_lines_are_the_flag_bits_of_the_input_bus():
    # 1x1x2 array: the bus is a[0], a[1], b[0], b[1] (16 value bits and a flag bit each: flags at bits 16, 33,
    # 50, 67), then c; count the flag bits' changes in the sampled bus values by hand
    import numpy as np
    from accel.hw.hmma import HMMA
    from accel.sim.hmma import flag_line_toggles, instruction_words
    from accel.sim.pysim import run_stream
    from accel.sim.toggles import ToggleCounter
    one, two = 0x3C00, 0x4000
    a = np.array([[0, one], [one, 0], [0, 0], [two, 0], [0x8000, one]], np.uint16).reshape(5, 1, 2)
    b = np.array([[one, 0], [0, 0], [0, two], [one, two], [0, 0]], np.uint16).reshape(5, 2, 1)
    c = np.zeros((5, 1, 1), np.uint32)
    dut = HMMA(m=1, n=1, k=2, gating="hold")
    counter = ToggleCounter(per_bit=True, record=["i__payload"])
    run_stream(dut, instruction_words(dut, a, b, c, "hold"), on_cycle=counter.on_cycle)
    bus = counter.recorded["i__payload"]
    by_bit = [sum(((now ^ before) >> bit) & 1 for before, now in zip(bus, bus[1:])) for bit in (16, 33, 50, 67)]
    assert min(by_bit) >= 1 and flag_line_toggles(dut.shape, counter.result()) == sum(by_bit)


def test_unit_operands_hold_sender_keeps_values_and_flags():
    import numpy as np
    from accel.golden import fp
    sent = {g: {k: v[:, 0] for k, v in unit_fields("fp16_mul", 60, seed=4, density_a=0.3, density_b=0.3,
                                                    gating=g).items()}
            for g in ("none", "and", "hold")}
    zero_a = fp.is_zero(sent["none"]["a.value"], fp.FP16)
    assert zero_a.any() and not sent["none"]["a.is_zero"].any()
    assert np.array_equal(sent["and"]["a.value"], sent["none"]["a.value"])
    assert np.array_equal(sent["and"]["a.is_zero"], zero_a)
    assert np.array_equal(sent["hold"]["a.is_zero"], zero_a)
    assert np.array_equal(sent["hold"]["a.value"][~zero_a], sent["none"]["a.value"][~zero_a])
    first_sent = int(np.argmin(zero_a))      # a zero is never sent once a value has been
    assert not fp.is_zero(sent["hold"]["a.value"][first_sent:], fp.FP16).any()


# ------------------------------------------------------------------------------------------ array at gate level

def test_array_gate_level_splits_energy_by_lane_and_gates_the_clock():
    r = studies.array_gate_level(shape=(2, 2, 2), instructions=4, gatings=("none", "hold"))
    none, hold = r["gating"]["none"], r["gating"]["hold"]
    for run in (none, hold):
        for key in ("switching_pj", "clock_pj", "clock_gated_pj"):
            assert run[key] == pytest.approx(sum(c[key] for c in run["by_class"].values()))
        assert all(c["switching_pj"] > 0 and c["clock_pj"] > 0 for c in run["by_class"].values())
    # frozen lines: the multiplier lanes switch less, and with clock gates their registers take fewer edges
    assert hold["by_class"]["mul"]["switching_pj"] < none["by_class"]["mul"]["switching_pj"]
    assert hold["by_class"]["mul"]["clock_gated_pj"] < hold["by_class"]["mul"]["clock_pj"] / 2
    ratios = r["ratios"]
    assert ratios["array, clock gated"]["hold_ratio_to_none"] < ratios["array, clock ungated"]["hold_ratio_to_none"]
    # the RTL clock of the same instructions: gating cuts it too, and more under hold (frozen registers)
    for run in (none, hold):
        rtl = run["rtl_clock"]
        assert rtl["clock_pj"] == pytest.approx(rtl["reg_bits"] * rtl["cycles"] * energy.CLOCK_PJ_PER_REG_BIT)
        assert rtl["clock_gated_pj"] < rtl["clock_pj"] and rtl["clock_gates"] > 0
    assert hold["rtl_clock"]["clock_gated_pj"] / hold["rtl_clock"]["clock_pj"] < \
        none["rtl_clock"]["clock_gated_pj"] / none["rtl_clock"]["clock_pj"]


def test_array_energy_by_class_by_hand():
    from accel.energy.model import CLOCK_PJ_PER_REG_BIT, E_NET_PJ_BY_CLASS, FLOP_NET_EQUIV
    from accel.sim.netlist import GateNetlist
    from hwcheck import hand_netlist
    # mul_0: n = NOT a, q <= n.  add_0: y = q XOR a, and two registers loaded under en (one clock gate).
    netlist = GateNetlist(hand_netlist({
        "$flatten\\mul_0.n": ("$_NOT_", {"A": 2, "Y": 3}),
        "$flatten\\mul_0.f": ("$_DFF_P_", {"D": 3, "Q": 4}),
        "$flatten\\add_0.x": ("$_XOR_", {"A": 4, "B": 2, "Y": 5}),
        "$flatten\\add_0.m1": ("$_MUX_", {"A": 7, "B": 2, "S": 6, "Y": 8}),
        "$flatten\\add_0.f1": ("$_DFF_P_", {"D": 8, "Q": 7}),
        "$flatten\\add_0.m2": ("$_MUX_", {"A": 9, "B": 3, "S": 6, "Y": 10}),
        "$flatten\\add_0.f2": ("$_DFF_P_", {"D": 10, "Q": 9}),
    }, {"a": ("input", 2), "en": ("input", 6), "y": ("output", 5)}))
    assert netlist.owners == ["", "mul_0", "add_0"] and netlist.clock_gates == 1
    a, en = [0, 1, 1, 0, 1], [0, 1, 0, 0, 0]
    run = netlist.simulate({"a": a, "en": en})
    spent = studies._array_energy(netlist, run, {"mul_0": "mul", "add_0": "add"})["by_class"]
    # by hand: n = 1,0,0,1,0 (3 toggles); q = 0,1,0,0,1 (3); y = q ^ a = 0,0,1,0,0 (2); the add_0 registers
    # load a = 1 and n = 0 at the end of cycle 1: q1 = 0,0,1,1,1 (1 toggle), its mux output en ? a : q1 =
    # 0,1,1,1,1 (1), q2 and its mux stay 0; a and en are inputs, not counted
    # each lane class at its own calibrated net energy
    assert spent["mul"]["switching_pj"] == pytest.approx((3 + 3 * FLOP_NET_EQUIV) * E_NET_PJ_BY_CLASS["mul"])
    assert spent["add"]["switching_pj"] == pytest.approx((2 + 1 + 1 * FLOP_NET_EQUIV) * E_NET_PJ_BY_CLASS["add"])
    assert spent["other"]["switching_pj"] == 0
    assert spent["mul"]["clock_pj"] == spent["mul"]["clock_gated_pj"] == pytest.approx(5 * CLOCK_PJ_PER_REG_BIT)
    assert spent["add"]["clock_pj"] == pytest.approx(2 * 5 * CLOCK_PJ_PER_REG_BIT)
    # gated: both registers take the one edge where en is high, and the clock gate takes all five
    assert spent["add"]["clock_gated_pj"] == pytest.approx((2 * 1 + 5) * CLOCK_PJ_PER_REG_BIT)


def test_array_gate_level_checks_results_against_golden(monkeypatch):
    import accel.golden.hmma as golden
    real = golden.hmma
    monkeypatch.setattr(golden, "hmma", lambda a, b, c, gating: real(a, b, c, gating) ^ 1)
    from accel.sim.errors import CheckFailed
    with pytest.raises(CheckFailed, match="disagrees with the golden model"):
        studies.array_gate_level(shape=(2, 2, 2), instructions=4, gatings=("hold",))


def test_cli_text_shows_the_array_gate_level_tables(capsys, monkeypatch):
    study = studies.array_gate_level(shape=(2, 2, 2), instructions=4, gatings=("none", "hold"))
    monkeypatch.setattr(studies, "array_gate_level", lambda **options: study)
    assert main(["energy", "--array-gate-level", "--ops", "2", "--instructions", "1"]) == 0
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.strip().startswith("hold / none / useful")]
    assert float(row.split()[-1]) == pytest.approx(study["ratios"]["array, clock gated"]["hold_over_ideal"], abs=5e-4)
    (mul,) = [line for line in out.splitlines() if line.split()[:2] == ["mul", "switching"] and len(line.split()) == 4]
    assert [float(v) for v in mul.split()[-2:]] == pytest.approx(
        [study["gating"][g]["by_class"]["mul"]["switching_pj"] for g in ("none", "hold")], abs=5e-4)


def test_zero_detector_charges_its_own_nets_from_reset():
    from accel.energy.model import E_NET_PJ
    # the sign bit feeds no gate (x[:15] == 0): its line toggles, the detector does not
    assert studies.zero_detector_pj([0x8000, 0x0000, 0x8000, 0x0000]) == 0
    # from reset (0) to 1.0 and back: the output falls and rises (2 toggles) and so does at least the last
    # gate of its OR tree, whatever the tree; 0x3C00 sets 4 of the 15 inputs
    one_pulse = studies.zero_detector_pj([0x3C00, 0x0000])
    assert one_pulse >= 2 * E_NET_PJ and one_pulse == pytest.approx(round(one_pulse / E_NET_PJ) * E_NET_PJ)
    assert studies.zero_detector_pj([0x3C00]) == pytest.approx(one_pulse / 2)   # the first value counts


def test_winograd_adders_are_charged_as_adds_of_their_format():
    # the transform's adder trees are AddNodes: FP16 adds in the input transform, FP32 in the output one
    from accel.hw.winograd import WinogradInput, WinogradOutput
    from accel.sim.toggles import design_of, signal_table
    for unit, cls in ((WinogradInput(m=2, precision="fp16"), "add16"), (WinogradOutput(m=2), "add")):
        classes = {s.cls for s in signal_table(design_of(unit)) if "_add_" in ".".join(s.path)}
        assert classes == {cls}
    assert energy.PJ_PER_TOGGLE["add16"] * energy.CALIBRATION["add16"]["toggles_per_op"] == pytest.approx(0.4)
