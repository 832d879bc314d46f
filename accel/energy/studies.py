"""Energy studies: experiments that run hardware through the energy model of :mod:`accel.energy.model`.

- :func:`overhead_table`: Dally's HFMA / HDP4A / HMMA energy-and-overhead table (``accel energy``).
- :func:`sparsity_check`: one multiplier's energy under each gating style on sparse data, at RTL and at gate
  level (``accel energy --sparsity [--gate-level]``).
- :func:`array_gate_level`: the 4x4x4 array at gate level, energy by lane class, clock ungated and gated.
- :func:`density_sweep`: the HMMA array's energy against operand density (``accel energy --sweep``).
- :func:`sparse_array_energy`: 2:4 weights on the dense array (zeros gated) against the sparse array (zeros
  skipped), energy per useful multiply-add (``accel energy --sparse-array``).

Long studies take a ``progress(done, total)`` callback. docs/energy.md reports their results with the
commands that produce them.
"""

import numpy as np

from ..golden import fp
from ..golden.gating import Gating
from ..golden import hmma as golden
from ..golden.operands import hmma_operands, hmma_sparse_operands
from ..hw.config import PRESETS
from ..hw.hmma import HMMA
from ..hw.operand import ZeroDetector
from ..sim.errors import CheckFailed
from ..sim.hmma import flag_line_toggles, instruction_words, result_words_to_d, run_hmma, run_hmma_sparse
from ..sim.netlist import GateNetlist
from ..sim.toggles import declared_classes, design_of
from ..synth.gates import synthesize_gates
from .gatelevel import net_equivalents, replay_mul_lane
from .measure import measure_unit, unit_fields
from .model import (CALIBRATION, CLOCK_PJ_PER_REG_BIT, DALLY_TABLE, E_NET_PJ, E_NET_PJ_BY_CLASS, FETCH_DECODE_PJ,
                    FLOP_NET_EQUIV, PJ_PER_TOGGLE, clock_pj_of, energy_pj)

__all__ = ["sparsity_check", "array_gate_level", "ARRAY_GATE_CLASSES", "OVERHEAD_SHAPES", "MATH_CLASSES",
           "overhead_table", "SWEEP_DENSITIES", "zero_detector_pj", "density_sweep", "SPARSE_ARRAY_DENSITIES",
           "sparse_array_energy"]

#: The gating styles in the order the studies run them (the ``none`` baseline first).
STUDY_GATINGS = (Gating.NONE, Gating.AND, Gating.HOLD)


def _no_progress(done, total):
    pass


def sparsity_check(*, ops=400, weight_density=0.1, act_density=0.3, seed=3, gate_level=False,
                   dense_ops=512, progress=_no_progress):
    """Multiplier energy under each gating style on the same sparse data, against the ideal fraction.

    ``ops`` multiplies with operand ``a`` (weights) non-zero with ``weight_density`` and ``b``
    (activations) with ``act_density``. Returns a dict: ``level`` ("rtl"), ``useful_fraction`` (multiplies
    with both operands non-zero), per gating the ``mul`` switching pJ, its ratio to ``none``, and
    ``hold_over_ideal`` = ratio (hold) / useful fraction (the claim: at most 2.5). Two per-op figures
    explain the ratio: ``hold_per_useful_over_dense`` (hold's energy per useful multiply against a dense
    random multiply) and ``none_per_op_over_dense`` (the ``none`` baseline's energy per multiply of this
    data against a dense random multiply); ``hold_over_ideal`` is their quotient.

    ``gate_level=True`` adds ``gate_level``: the same stimulus replayed on the multiplier lane's gate netlist
    (:func:`accel.sim.gatelevel.replay_mul_lane`), every lane net counted, flip-flop outputs weighted as
    register bits (``FLOP_NET_EQUIV`` net toggles each), the same keys at that level; its dense reference is
    ``dense_ops`` random multiplies (seed 1) through the ``none`` lane netlist. ``gate_level.with_clock`` adds
    the lane's clock to its switching, once with every flip-flop clocked every cycle (``ungated``) and once
    with clock gates on the netlist's enables (``clock_gated``, see :mod:`accel.sim.netlist`).
    """
    unit = "fp16_mul"
    values = unit_fields(unit, ops, seed=seed, density_a=weight_density, density_b=act_density)
    useful_mask = ~fp.is_zero(values["a.value"], fp.FP16) & ~fp.is_zero(values["b.value"], fp.FP16)
    useful = float(np.mean(useful_mask))
    n_useful = int(useful_mask.sum())
    result = {"level": "rtl", "unit": unit, "ops": ops, "weight_density": weight_density,
              "act_density": act_density, "seed": seed, "useful_fraction": round(useful, 4),
              "useful_ops": n_useful, "gating": {}}
    sent = {}   # the operand fields as the sender put them out, by gating
    steps = len(STUDY_GATINGS) * (2 if gate_level else 1)
    for done, gating in enumerate(STUDY_GATINGS):
        progress(done, steps)
        toggles, sent[gating] = measure_unit(unit, ops, seed=seed, gating=gating, density_a=weight_density,
                                             density_b=act_density)
        spent = energy_pj(toggles, clock_gating=False)     # the RTL tables of docs/energy.md: clock ungated
        result["gating"][gating] = {"mul_pj": spent.by_unit.get("mul", 0.0),
                                    "mul_toggles": toggles.by_unit.get("mul", 0),
                                    "flags_pj": spent.by_unit.get("flags", 0.0),
                                    "total_pj": spent.total}
    dense_pj = CALIBRATION["mul"]["target_pj"]     # the calibrated dense random multiply, per op
    _ratios(result, dense_pj, "mul_pj")
    if gate_level:
        progress(len(STUDY_GATINGS), steps)
        result["gate_level"] = _gate_sparsity(sent, ops=ops, useful=useful, n_useful=n_useful,
                                              dense_ops=dense_ops)
    progress(steps, steps)
    return result


def _ratios(result, dense_per_op, key):
    """Fill ``ratio_to_none`` (per gating), ``hold_ratio_to_none``, ``hold_over_ideal`` and the two per-op
    explanations into a sparsity result."""
    gatings = result["gating"]
    for g in gatings.values():
        g["ratio_to_none"] = _quotient(g[key], gatings["none"][key], 4)
    measures = _measure_ratios({g: v[key] for g, v in gatings.items()}, ops=result["ops"],
                               useful=result["useful_fraction"], n_useful=result["useful_ops"],
                               dense_per_op=dense_per_op)
    for name in ("hold_ratio_to_none", "hold_over_ideal", "hold_per_useful_over_dense", "none_per_op_over_dense"):
        result[name] = measures[name]


def _quotient(numerator, denominator, digits):
    """numerator / denominator rounded, or None when the denominator is 0 (nothing useful, nothing spent)."""
    return round(numerator / denominator, digits) if denominator else None


def _hold_against_none(hold, none, useful):
    """``hold_ratio_to_none`` and ``hold_over_ideal`` (that ratio over the useful fraction) of one measure."""
    return {"hold_ratio_to_none": _quotient(hold, none, 4), "hold_over_ideal": _quotient(hold, none * useful, 3)}


def _measure_ratios(spent, *, ops, useful, n_useful, dense_per_op):
    """One measure by gating (net toggles, pJ) -> ratios to ``none``, hold's quotient by the useful fraction,
    and its two per-op explanations (as :func:`_ratios`)."""
    none = spent["none"]
    return {**_hold_against_none(spent["hold"], none, useful),
            "and_ratio_to_none": _quotient(spent["and"], none, 4),
            "hold_per_useful_over_dense": _quotient(spent["hold"], n_useful * dense_per_op, 3),
            "none_per_op_over_dense": _quotient(none, ops * dense_per_op, 3)}


def _gate_switching_pj(net_toggles, dff_toggles):
    """pJ of a multiplier lane's net toggles, of which ``dff_toggles`` flip-flop outputs (each one of the
    FLOP_NET_EQUIV net toggles its register bit costs)."""
    return (net_toggles + (FLOP_NET_EQUIV - 1) * dff_toggles) * E_NET_PJ_BY_CLASS["mul"]


def _gate_sparsity(sent, *, ops, useful, n_useful, dense_ops):
    result = {"level": "gate", "ops": ops, "useful_fraction": round(useful, 4), "useful_ops": n_useful,
              "gating": {}}
    for gating in STUDY_GATINGS:
        r = replay_mul_lane(sent[gating], gating=gating)
        result["gating"][gating] = {
            "mul_pj": _gate_switching_pj(r.net_toggles, r.dff_toggles),
            "net_toggles": r.net_toggles, "dff_toggles": r.dff_toggles,
            "glitch_net_toggles": r.glitch_net_toggles,
            "glitch_mul_pj": _gate_switching_pj(r.glitch_net_toggles, r.dff_toggles),
            "gates": r.gate.gates, "dffs": r.gate.dffs,
            "rtl_mul_toggles": r.rtl.by_unit.get("mul", 0),
            "clock_pj": r.gate.dffs * r.gate.samples * CLOCK_PJ_PER_REG_BIT,
            "clock_gated_pj": r.gate.clock_loads * CLOCK_PJ_PER_REG_BIT,
            "clock_gates": r.netlist.clock_gates, "gated_dffs": r.netlist.gated_dffs}
    dense = replay_mul_lane(unit_fields("fp16_mul", dense_ops, seed=1), gating=Gating.NONE)
    dense_pj = _gate_switching_pj(dense.net_toggles, dense.dff_toggles) / dense_ops
    result["dense"] = {"ops": dense_ops, "seed": 1, "net_toggles_per_op": round(dense.net_toggles / dense_ops, 3),
                       "glitch_net_toggles_per_op": round(dense.glitch_net_toggles / dense_ops, 3),
                       "mul_pj_per_op": round(dense_pj, 4)}
    _ratios(result, dense_pj, "mul_pj")
    # flip-flop outputs change only at the clock edge, so their toggles are the same with gate delays
    dense_glitch_pj = _gate_switching_pj(dense.glitch_net_toggles, dense.dff_toggles)
    for name, key, dense_total in (("nets_only", "net_toggles", dense.net_toggles),
                                   ("with_glitches", "glitch_mul_pj", dense_glitch_pj)):
        result[name] = _measure_ratios({g: v[key] for g, v in result["gating"].items()}, ops=ops, useful=useful,
                                       n_useful=n_useful, dense_per_op=dense_total / dense_ops)
    result["with_clock"] = {}
    for clocking, key in (("ungated", "clock_pj"), ("clock_gated", "clock_gated_pj")):
        spent = {g: v["mul_pj"] + v[key] for g, v in result["gating"].items()}
        result["with_clock"][clocking] = {"mul_pj": {g: round(e, 3) for g, e in spent.items()},
                                          **_hold_against_none(spent["hold"], spent["none"], useful)}
    return result


#: The gate-level classes of the array: the multiplier lanes, the adder lanes, and everything around them.
ARRAY_GATE_CLASSES = ("mul", "add", "other")


def array_gate_level(*, shape=(4, 4, 4), instructions=16, weight_density=0.1, act_density=0.3, seed=2018,
                     gatings=STUDY_GATINGS, progress=_no_progress):
    """The HMMA array at gate level on sparse data under each gating style: where the energy goes, with the
    clock ungated and clock-gated.

    ``instructions`` HMMA instructions (:func:`~accel.golden.operands.hmma_operands`; the defaults are ``accel
    run``'s workload) stream back to back, fill and drain included, through the array synthesized to gates
    hierarchically (each net belongs to a multiplier lane, an adder lane or the array around them; netlists
    cached under ``build/gates``); the results must equal the golden model's (:class:`CheckFailed` otherwise).
    Per style and class (:data:`ARRAY_GATE_CLASSES`): ``switching_pj`` (each net toggle the class's
    ``E_NET_PJ_BY_CLASS``, ``E_NET_PJ`` for the rest, a flip-flop output toggle ``FLOP_NET_EQUIV`` of them; no
    wire model, so no long-line factor),
    ``clock_pj`` (every flip-flop every cycle) and ``clock_gated_pj`` (:mod:`accel.sim.netlist` clock
    gates); ``rtl_clock``: the same instructions' register clock at RTL, ungated and with the RTL clock gating of
    :class:`~accel.sim.toggles.Toggles` (``clock_pj``, ``clock_gated_pj``), to check the one against the other.
    A submodule's class is the energy class it declares (the lanes), ``other`` for the rest. ``ratios``: ``hold`` / ``none`` and that over the useful fraction, for the multipliers' switching,
    the multipliers with their gated clock, and the whole array with its clock ungated and gated.
    """
    m, n, k = shape
    a, b, c = hmma_operands(instructions, m=m, n=n, k=k, weight_density=weight_density,
                            act_density=act_density, seed=seed)
    useful = float(np.mean(~golden.skipped_products(a, b)))
    result = {"shape": list(shape), "instructions": instructions, "weight_density": weight_density,
              "act_density": act_density, "seed": seed, "useful_fraction": round(useful, 4), "gating": {}}
    for done, gating in enumerate(gatings):
        progress(done, len(gatings))
        dut = HMMA(m=m, n=n, k=k, gating=gating)
        classes = {path[0]: cls for path, cls in declared_classes(design_of(dut)).items()
                   if len(path) == 1 and cls in ARRAY_GATE_CLASSES}
        netlist = GateNetlist(synthesize_gates(dut, hierarchical=True, cache=True))
        words = instruction_words(dut, a, b, c, gating)
        cycles = instructions + dut.latency     # as the RTL run: N instructions in N + latency cycles
        run = netlist.simulate({"rst": [0] * cycles, "o__ready": [1] * cycles,
                                "i__valid": [int(t < instructions) for t in range(cycles)],
                                "i__payload": [int(words[min(t, instructions - 1)]) for t in range(cycles)]})
        outputs = [w for w, valid in zip(run.outputs["o__payload"], run.outputs["o__valid"]) if valid]
        if len(outputs) != instructions or \
                not np.array_equal(result_words_to_d(dut, outputs), golden.hmma(a, b, c, gating)):
            raise CheckFailed(f"gate-level netlist of the {gating} HMMA array disagrees with the golden model")
        result["gating"][str(gating)] = _array_energy(netlist, run, classes)
        result["gating"][str(gating)]["rtl_clock"] = _rtl_clock(a, b, c, gating)
    progress(len(gatings), len(gatings))
    if "none" in result["gating"] and "hold" in result["gating"]:
        result["ratios"] = _array_ratios(result["gating"], useful)
    return result


def _array_energy(netlist, run, classes):
    """Switching and clock pJ by class of one gate-level array run; ``classes``: instance -> declared class."""
    owner_class = np.array([ARRAY_GATE_CLASSES.index(classes.get(o, "other")) for o in netlist.owners])
    net_class, flop_class = owner_class[netlist.owner], owner_class[netlist.owner[netlist.dff_q]]
    own = net_equivalents(netlist, run.per_net)
    gate_class = owner_class[netlist.gate_owner]
    spent = {"gates": netlist.n_gates, "dffs": netlist.n_dffs, "clock_gates": netlist.clock_gates,
             "cycles": run.samples, "by_class": {}}
    for index, name in enumerate(ARRAY_GATE_CLASSES):
        flops = flop_class == index
        spent["by_class"][name] = {
            "switching_pj": float(own[net_class == index].sum() * E_NET_PJ_BY_CLASS.get(name, E_NET_PJ)),
            "clock_pj": float(flops.sum() * run.samples * CLOCK_PJ_PER_REG_BIT),
            "clock_gated_pj": float((run.flop_clocks[flops].sum() + (gate_class == index).sum() * run.samples)
                                    * CLOCK_PJ_PER_REG_BIT)}
    for key in ("switching_pj", "clock_pj", "clock_gated_pj"):
        spent[key] = sum(c[key] for c in spent["by_class"].values())
    return spent


def _rtl_clock(a, b, c, gating):
    """The same instructions through the RTL array (Amaranth simulator): its register clock in pJ, with the RTL
    clock gating of :class:`~accel.sim.toggles.Toggles` and without, to set against the gate level's."""
    toggles = run_hmma(a, b, c, gating=gating).toggles
    return {"reg_bits": toggles.reg_bits, "clock_gates": toggles.clock_gates, "cycles": toggles.samples,
            "clock_pj": clock_pj_of(toggles, clock_gating=False), "clock_gated_pj": clock_pj_of(toggles)}


def _array_ratios(gatings, useful):
    """hold / none, and that over the useful fraction, for the multipliers and the whole array."""
    def measures(g):
        mul = g["by_class"]["mul"]
        return {"mul switching": mul["switching_pj"],
                "mul switching + clock gated": mul["switching_pj"] + mul["clock_gated_pj"],
                "array, clock ungated": g["switching_pj"] + g["clock_pj"],
                "array, clock gated": g["switching_pj"] + g["clock_gated_pj"]}
    hold, none = measures(gatings["hold"]), measures(gatings["none"])
    return {name: {"hold_pj": round(hold[name], 3), "none_pj": round(none[name], 3),
                   **_hold_against_none(hold[name], none[name], useful)} for name in hold}


#: The talk's three instructions as HMMA array shapes (m, n, k): D[m x n] = A[m x k] . B[k x n] + C.
OVERHEAD_SHAPES = {name: config.shape for name, config in PRESETS.items()}

#: Unit classes counted as math in the overhead table: the FP16 multiplier and FP32 adder lanes' switching.
MATH_CLASSES = ("mul", "add")


def overhead_table(*, ops=64, instructions=16, seed=5, gating=Gating.NONE, progress=_no_progress):
    """Dally's HFMA / HDP4A / HMMA table from energies measured on the HMMA array.

    Each instruction is the HMMA component at its shape (:data:`OVERHEAD_SHAPES`) running ``instructions``
    dense random instructions (``hmma_operands``, ``seed``) back to back in the Amaranth simulator. Per
    instruction: ``math_pj`` = switching of the :data:`MATH_CLASSES` (multiplier and adder lanes);
    ``array_other_pj`` = the rest of the array's energy (operand / result lines, pipeline and control
    registers, flags, and the clock of every register bit, lanes included, in steady state: one cycle per
    instruction), by class in ``array_other_by_unit``; ``overhead_pj`` = Dally's 30 pJ fetch/decode per
    instruction, ``overhead_pct`` = overhead / math (his definition) and ``overhead_incl_array_pct`` =
    (overhead + array_other) / math. ``fp16_mul_pj`` / ``fp32_add_pj``: one multiply / add measured on its
    own unit (``ops`` random operations), the calibrated figures the array's lanes are charged with.
    ``progress(done, total)`` hears the instructions done of each shape's run.
    """
    mul, _ = measure_unit("fp16_mul", ops, seed=seed)
    add, _ = measure_unit("fp32_add", ops, seed=seed + 1)
    e_mul = energy_pj(mul).by_unit.get("mul", 0.0) / ops
    e_add = energy_pj(add).by_unit.get("add", 0.0) / ops
    rows = {}
    for name, (m, n, k) in OVERHEAD_SHAPES.items():
        a, b, c = hmma_operands(instructions, m=m, n=n, k=k, seed=seed)
        run = run_hmma(a, b, c, gating=gating, progress=progress)
        if not run.bit_exact:
            raise CheckFailed(f"{name}: the {m}x{n}x{k} array's results differ from the golden model")
        spent = energy_pj(run.toggles, cycles=instructions, clock_gating=False)    # clock: one cycle per instruction
        per = {cls: pj / instructions for cls, pj in spent.by_unit.items()}
        math = sum(per.get(cls, 0.0) for cls in MATH_CLASSES)
        other = {cls: pj for cls, pj in per.items() if cls not in MATH_CLASSES}
        array_other = sum(other.values())
        dally_math, dally_pct = DALLY_TABLE[name]
        rows[name] = {"shape": [m, n, k], "fmas": m * n * k,
                      "mul_pj": round(per.get("mul", 0.0), 3), "add_pj": round(per.get("add", 0.0), 3),
                      "math_pj": round(math, 3), "array_other_pj": round(array_other, 3),
                      "array_other_by_unit": {cls: round(pj, 3) for cls, pj in other.items()},
                      "overhead_pj": FETCH_DECODE_PJ,
                      "overhead_pct": round(100 * FETCH_DECODE_PJ / math, 1) if math else None,
                      "overhead_incl_array_pct": round(100 * (FETCH_DECODE_PJ + array_other) / math, 1) if math else None,
                      "dally_math_pj": dally_math, "dally_overhead_pct": dally_pct}
    return {"fp16_mul_pj": round(e_mul, 4), "fp32_add_pj": round(e_add, 4), "ops": ops,
            "instructions": instructions, "seed": seed, "gating": str(gating), "math_classes": list(MATH_CLASSES),
            "rows": rows}


# ------------------------------------------------------------------------------------------ density sweep

#: (weight density, activation density) points of the sweep.
SWEEP_DENSITIES = ((1.0, 1.0), (0.5, 0.5), (0.3, 0.5), (0.3, 0.3), (0.1, 0.5), (0.1, 0.3), (0.1, 0.1))


_ZD_NETLIST = None


def zero_detector_pj(values):
    """Switching energy of one FP16 zero detector (:class:`ZeroDetector`, synthesized to gates) fed with the
    per-cycle ``values`` of one operand slot, from reset (0): its own gate-net toggles x E_NET_PJ (its input
    is the operand line, charged where that is driven)."""
    global _ZD_NETLIST
    if _ZD_NETLIST is None:
        _ZD_NETLIST = GateNetlist(synthesize_gates(ZeroDetector()))
    result = _ZD_NETLIST.simulate({"x": [0] + [int(v) for v in values]})
    return float(_ZD_NETLIST.own_toggles(result.per_net).sum()) * E_NET_PJ


def density_sweep(*, densities=SWEEP_DENSITIES, instructions=6, seed=7, gatings=STUDY_GATINGS,
                  progress=_no_progress):
    """HMMA (4x4x4) energy per instruction against weight x activation density, per gating style.

    For each density point the same ``instructions`` random instructions run under each gating in the
    Amaranth simulator with toggle counting. Per point and gating: ``mul_pj`` (all multipliers), ``array_pj``
    (whole array: switching + clock), ``flags_pj`` (what the flags cost: the flag lines, i.e. the zero-flag
    bits of the input bus, at the ``lines`` price, the ``flags`` class of flag delay registers and the
    multipliers' zero registers; all of it already inside ``array_pj``), per instruction; per point ``useful``
    (fraction of multiplies with both operands non-zero) and ``zdet_pj`` (32 zero detectors in front of the
    array, gate level).
    """
    points = []
    for done, (w, act) in enumerate(densities):
        progress(done, len(densities))
        a, b, c = hmma_operands(instructions, weight_density=w, act_density=act, seed=seed)
        shape = (a.shape[1], b.shape[2], a.shape[2])
        useful = float(np.mean(~golden.skipped_products(a, b)))
        zdet = sum(zero_detector_pj(col) for col in np.concatenate(
            [a.reshape(instructions, -1), b.reshape(instructions, -1)], axis=1).T) / instructions
        point = {"weight_density": w, "act_density": act, "density": round(w * act, 4),
                 "useful": round(useful, 4), "zdet_pj": round(zdet, 4), "gating": {}}
        for gating in gatings:
            toggles = run_hmma(a, b, c, gating=gating, per_bit=True).toggles
            spent = energy_pj(toggles, clock_gating=False)     # as in docs/energy.md's density table
            zero_regs = sum(n for name, n in toggles.by_signal.items()
                            if name.startswith("mul") and "zero" in name.split(".")[-1])
            flags = (flag_line_toggles(shape, toggles) * PJ_PER_TOGGLE["lines"] + spent.by_unit.get("flags", 0.0)
                     + zero_regs * PJ_PER_TOGGLE["mul"])
            point["gating"][str(gating)] = {"mul_pj": round(spent.by_unit.get("mul", 0.0) / instructions, 3),
                                       "array_pj": round(spent.total / instructions, 3),
                                       "flags_pj": round(flags / instructions, 3)}
        points.append(point)
    progress(len(densities), len(densities))
    return {"instructions": instructions, "seed": seed, "points": points}


# ---------------------------------------------------------------------------------- 2:4 sparse array

#: Activation densities of :func:`sparse_array_energy` (the kept weights are all non-zero: 2:4 = 50 %).
SPARSE_ARRAY_DENSITIES = (1.0, 0.5)


def _split_dense(values, indices, b, c):
    """The dense 4x4x4 instructions doing the work of 2:4 sparse instructions (4 x 8 weights each): per sparse
    instruction two, channels 0..3 then 4..7, the second's C the first's D (the golden one), interleaved."""
    weights = golden.expand_24(values, indices)                 # [N, m, 2k]
    k = values.shape[2]
    a = np.stack([weights[:, :, :k], weights[:, :, k:]], axis=1).reshape(-1, weights.shape[1], k)
    first = golden.hmma(weights[:, :, :k], b[:, :k], c)
    bb = np.stack([b[:, :k], b[:, k:]], axis=1).reshape(-1, k, b.shape[2])
    cc = np.stack([c, first], axis=1).reshape(-1, *c.shape[1:])
    return a, bb, cc


def sparse_array_energy(*, shape=(4, 4, 4), instructions=8, act_densities=SPARSE_ARRAY_DENSITIES, seed=17,
                        gatings=(Gating.HOLD, Gating.NONE), progress=_no_progress):
    """2:4 weights on the ``shape`` (m, n, k) array two ways, per activation density and gating: ``dense`` runs each 4 x 8
    weight block (m x 2k) as two dense instructions (the pruned zeros are gated, or multiplied under ``none``),
    ``sparse`` as one 2:4 sparse instruction on the sparse array (the pruned zeros are never fetched).

    ``instructions`` sparse instructions (``hmma_sparse_operands``: kept weights all non-zero, random kept
    indices, activations non-zero with the density, ``seed``), the same work as ``2 x instructions`` dense ones;
    both runs are checked against golden and do the same useful multiplies (both operands non-zero). Per
    mode: ``cycles`` (of the run, fill and drain included), ``pj`` (array energy: switching, and the clock of a
    cycle per instruction as in steady state), ``pj_per_useful_mac``,
    ``mul_pj_per_useful_mac``; per point ``sparse_over_dense`` (energy per useful MAC) and ``useful``."""
    points, total, done = [], len(act_densities) * len(gatings), 0
    for act in act_densities:
        m, n, k = shape
        values, indices, b, c = hmma_sparse_operands(instructions, m=m, n=n, k=k, weight_density=1.0,
                                                     act_density=act, seed=seed)
        a_dense, b_dense, c_dense = _split_dense(values, indices, b, c)
        point = {"act_density": act, "gating": {}}
        for gating in gatings:
            progress(done, total)
            runs = {"dense": run_hmma(a_dense, b_dense, c_dense, gating=gating),
                    "sparse": run_hmma_sparse(values, indices, b, c, gating=gating)}
            if not all(run.bit_exact for run in runs.values()):
                raise CheckFailed(f"sparse array study: results differ from the golden model ({gating})")
            if runs["dense"].macs_useful != runs["sparse"].macs_useful:
                raise CheckFailed("sparse array study: the two modes do different useful multiplies")
            useful = runs["sparse"].macs_useful
            entry = {}
            for mode, run in runs.items():
                spent = energy_pj(run.toggles, cycles=run.instructions, clock_gating=False)    # clock: steady state, a cycle each
                entry[mode] = {"instructions": run.instructions, "cycles": run.cycles, "macs": run.macs,
                               "pj": round(spent.total, 3),
                               "pj_per_useful_mac": round(spent.total / useful, 4) if useful else None,
                               "mul_pj_per_useful_mac": round(spent.by_unit.get("mul", 0.0) / useful, 4) if useful else None}
            entry["useful_macs"] = useful
            entry["sparse_over_dense"] = _quotient(entry["sparse"]["pj"], entry["dense"]["pj"], 3)
            point["gating"][str(gating)] = entry
            done += 1
        points.append(point)
    progress(total, total)
    return {"shape": list(shape), "instructions": instructions, "seed": seed, "points": points}
