"""Energy model: switching energy from toggle counts, calibrated per unit class on published 45 nm figures.

energy = sum over unit classes of toggles x pJ-per-toggle(class)            (switching; a signal that is a
                                                                              plain copy of another -- a port
                                                                              connection -- is not charged)
       + register bits x clock cycles x CLOCK_PJ_PER_REG_BIT                  (clock)
       + buffer accesses x SRAM energy per access                             (buffers, where a run has them)
       + instructions x FETCH_DECODE_PJ                                       (only for the overhead table)

The per-toggle energies of ``mul`` and ``add`` are calibrated so that random-data operation of one unit
matches Horowitz (ISSCC 2014, 45 nm): the mean switching energy per FP16 multiply is 1.1 pJ and per FP32
add 0.9 pJ. :func:`calibrate` re-derives them (``accel energy --calibrate``); the results are kept below as
constants so ordinary runs do not recompute them. docs/energy.md has the method, the sources and the numbers.
"""

from dataclasses import dataclass, field

import numpy as np

from ..golden import fp
from .errors import UserError
from .toggles import UNIT_CLASSES, ToggleCounter, Toggles

__all__ = ["HOROWITZ_45NM_PJ", "FETCH_DECODE_PJ", "DALLY_TABLE", "CALIBRATION", "PJ_PER_TOGGLE",
           "CLOCK_PJ_PER_REG_BIT", "SRAM_PJ_PER_BIT", "Energy", "energy_pj", "report", "build", "unit_operands",
           "unit_words", "random_words", "measure_unit", "calibrate", "sparsity_check", "overhead_table"]

#: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V (pJ).
HOROWITZ_45NM_PJ = {"fp16_mul": 1.1, "fp16_add": 0.4, "fp32_add": 0.9, "fp32_mul": 3.7, "sram_8kb_read_64b": 10.0}

#: Dally, ScaledML 2018: instruction fetch / decode / operand overhead of a programmable core, per instruction.
FETCH_DECODE_PJ = 30.0

#: Dally's table (ScaledML 2018): op -> (math energy pJ, overhead %), overhead being the 30 pJ above.
DALLY_TABLE = {"hfma": (1.5, 2000.0), "hdp4a": (6.0, 500.0), "hmma": (110.0, 27.0)}

#: Calibration runs (``accel energy --calibrate`` prints this dict): random data, ``ops`` operations back to
#: back through one unit in the Amaranth simulator, gating ``none``; ``toggles_per_op`` counts the class's
#: signals only (the lane below the unit's stream wrapper), less plain copies (not charged, see energy_pj).
CALIBRATION = {
    "mul": {"unit": "fp16_mul", "target_pj": 1.1, "ops": 512, "seed": 1, "toggles_per_op": 104.633},
    "add": {"unit": "fp32_add", "target_pj": 0.9, "ops": 512, "seed": 1, "toggles_per_op": 160.561},
}

#: Gate-level view of the calibration (``accel energy --calibrate`` with gate-level mode): gate-net toggles
#: per random-data operation of the synthesized unit (whole unit, Yosys generic gates).
GATE_TOGGLES_PER_OP = {"fp16_mul": 407.492, "fp32_add": 587.797}

#: FP16 add (Winograd transforms): no unit yet; its class will be calibrated on 0.4 pJ when it lands.
FP16_ADD_TARGET_PJ = HOROWITZ_45NM_PJ["fp16_add"]


def _calibrated(cls):
    entry = CALIBRATION[cls]
    return entry["target_pj"] / entry["toggles_per_op"] if entry["toggles_per_op"] else 0.0


def _net_pj():
    """pJ per gate-level net toggle: the mean of the two units' calibrated figures."""
    values = [HOROWITZ_45NM_PJ[u] / t for u, t in GATE_TOGGLES_PER_OP.items() if t]
    return sum(values) / len(values) if values else 0.0


#: Energy of one register bit's data toggle, in gate-net toggles: a D flip-flop's master and slave latch
#: nodes and its output (an estimate, see docs/energy.md).
FLOP_NET_EQUIV = 4.0
#: A distribution line spans the array: one toggle of an operand / flag line costs this many gate-net toggles
#: (wire capacitance of ~0.2 mm of 45 nm wire at 0.2 fF/um against ~2 fF per gate node; docs/energy.md).
LINE_NET_EQUIV = 20.0
#: Clock energy per register bit per cycle, in gate-net toggles: the clock pin's two internal nodes toggle
#: twice per cycle, plus the bit's share of the clock tree (docs/energy.md).
CLOCK_NET_EQUIV = 2.0

E_NET_PJ = _net_pj()

#: pJ per toggle, by unit class.
PJ_PER_TOGGLE = {
    "mul": _calibrated("mul"),
    "add": _calibrated("add"),
    "zdet": E_NET_PJ,
    "flags": LINE_NET_EQUIV * E_NET_PJ,
    "lines": LINE_NET_EQUIV * E_NET_PJ,
    "pipe": FLOP_NET_EQUIV * E_NET_PJ,
    "ctl": FLOP_NET_EQUIV * E_NET_PJ,
}
CLOCK_PJ_PER_REG_BIT = CLOCK_NET_EQUIV * E_NET_PJ
#: SRAM access energy per bit (8 KB SRAM, 64-bit read 10 pJ: Horowitz ISSCC 2014), for buffer accesses.
SRAM_PJ_PER_BIT = HOROWITZ_45NM_PJ["sram_8kb_read_64b"] / 64


@dataclass
class Energy:
    """Energy of a run in pJ: ``total``, ``by_unit`` (switching by class, then ``clock``, ``buffers`` and
    ``fetch_decode`` where present)."""

    total: float
    by_unit: dict = field(default_factory=dict)

    def as_json(self, digits=3):
        return {"total": round(self.total, digits), "by_unit": {k: round(v, digits) for k, v in self.by_unit.items()}}


def energy_pj(toggles, *, cycles=None, buffer_bits=0, instructions=0, pj_per_toggle=None, clock_pj=None):
    """The :class:`Energy` of a run from its :class:`~accel.sim.toggles.Toggles`.

    ``cycles``: clock cycles for clock energy (default: the samples the toggle counter took, one per clock).
    ``buffer_bits``: bits read or written in SRAM buffers (an access of w bits costs w x SRAM_PJ_PER_BIT).
    ``instructions``: add FETCH_DECODE_PJ for each (the programmable-core comparison only).
    """
    pj = PJ_PER_TOGGLE if pj_per_toggle is None else pj_per_toggle
    clock = CLOCK_PJ_PER_REG_BIT if clock_pj is None else clock_pj
    cycles = toggles.samples if cycles is None else cycles
    copies = toggles.copies_by_unit or {}
    by_unit = {cls: (toggles.by_unit[cls] - copies.get(cls, 0)) * pj.get(cls, 0.0) for cls in toggles.by_unit}
    by_unit["clock"] = toggles.reg_bits * cycles * clock
    if buffer_bits:
        by_unit["buffers"] = buffer_bits * SRAM_PJ_PER_BIT
    if instructions:
        by_unit["fetch_decode"] = instructions * FETCH_DECODE_PJ
    return Energy(total=sum(by_unit.values()), by_unit=by_unit)


def report(toggles, **options):
    """The ``toggles`` and ``energy_pj`` members of a run command's ``--json`` object."""
    if isinstance(toggles, dict):
        raise TypeError("report() takes a Toggles; convert backend counts with toggles.toggles_from_counts")
    return {"toggles": toggles.as_json(), "energy_pj": energy_pj(toggles, **options).as_json()}


# ------------------------------------------------------------------------------------------ units

UNITS = ("fp16_mul", "fp32_add")


def build(unit, gating="none"):
    """A fresh single unit by name (``fp16_mul``, ``fp32_add``)."""
    if unit not in UNITS:
        raise UserError(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")
    from ..hw.units import build_unit
    return build_unit(unit, gating=gating)


def _sparse(rng, n, density, fmt):
    if fmt is fp.FP16:
        values = rng.standard_normal(n).astype(np.float16)
    else:
        values = rng.standard_normal(n).astype(np.float32)
    values[values == 0] = 1
    values[rng.random(n) >= density] = 0
    return fp.to_bits(values, fmt)


def unit_operands(unit, n, *, seed=1, density_a=1.0, density_b=1.0, gating="none"):
    """Random operand fields of ``n`` operations of ``unit``: normally distributed values, each operand
    non-zero with its density; zero flags raised by the sender unless gating is ``none``."""
    for name, d in (("density_a", density_a), ("density_b", density_b)):
        if not 0.0 <= d <= 1.0:
            raise UserError(f"{name} must lie in [0, 1], not {d!r}")
    rng = np.random.default_rng(seed)
    flag = gating != "none"
    if unit == "fp16_mul":
        a, b = _sparse(rng, n, density_a, fp.FP16), _sparse(rng, n, density_b, fp.FP16)
        return {"a": a, "a_zero": fp.is_zero(a, fp.FP16) & flag, "b": b, "b_zero": fp.is_zero(b, fp.FP16) & flag}
    if unit == "fp32_add":
        a, b = _sparse(rng, n, density_a, fp.FP32), _sparse(rng, n, density_b, fp.FP32)
        return {"a": a, "b": b, "b_zero": fp.is_zero(b, fp.FP32) & flag}
    raise UserError(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")


def unit_words(dut, fields):
    from .payload import pack
    return pack(dut.i.payload.shape(), fields)


def random_words(unit, dut, n, *, seed=1):
    """Packed input words of ``n`` dense random operations of ``unit`` for ``dut``."""
    return unit_words(dut, unit_operands(unit, n, seed=seed))


def measure_unit(unit, n_ops, *, seed=1, gating="none", density_a=1.0, density_b=1.0):
    """Stream ``n_ops`` random operations through one ``unit`` in the Amaranth simulator; its Toggles."""
    from .pysim import run_stream
    dut = build(unit, gating=gating)
    fields = unit_operands(unit, n_ops, seed=seed, density_a=density_a, density_b=density_b, gating=gating)
    counter = ToggleCounter(dut)
    run_stream(dut, unit_words(dut, fields), on_cycle=counter.on_cycle)
    return counter.result(), fields


def calibrate(*, ops=None, seed=None, gate_level=True):
    """Re-derive the calibration: toggles per random operation of each class's unit (and gate-level nets).

    Returns ``{"CALIBRATION": {...}, "GATE_TOGGLES_PER_OP": {...}, "PJ_PER_TOGGLE": {...}}`` with the
    values to commit in this module.
    """
    calibration = {}
    for cls, entry in CALIBRATION.items():
        n = ops or entry["ops"]
        s = seed if seed is not None else entry["seed"]
        toggles, _ = measure_unit(entry["unit"], n, seed=s)
        # per op: the run has n + latency samples; toggles of the class over n operations
        per_op = (toggles.by_unit.get(cls, 0) - toggles.copies_by_unit.get(cls, 0)) / n
        calibration[cls] = dict(entry, ops=n, seed=s, toggles_per_op=round(per_op, 3))
    gate = {}
    if gate_level:
        from .gatelevel import compare_unit
        for unit in GATE_TOGGLES_PER_OP:
            n = ops or 128
            result = compare_unit(unit, n_ops=n, seed=seed if seed is not None else 1, gating="none")
            gate[unit] = round(result["gate_toggles"] / n, 3)
    pj = {cls: round(e["target_pj"] / e["toggles_per_op"], 6) for cls, e in calibration.items()}
    return {"CALIBRATION": calibration, "GATE_TOGGLES_PER_OP": gate, "PJ_PER_TOGGLE": pj}


# ------------------------------------------------------------------------------------------ results

def sparsity_check(*, ops=400, weight_density=0.1, act_density=0.3, seed=3, unit="fp16_mul", gate_level=False,
                   dense_ops=512):
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
    ``dense_ops`` random multiplies (seed 1) through the ``none`` lane netlist.
    """
    fields = unit_operands("fp16_mul", ops, seed=seed, density_a=weight_density, density_b=act_density)
    useful_mask = ~fp.is_zero(fields["a"], fp.FP16) & ~fp.is_zero(fields["b"], fp.FP16)
    useful = float(np.mean(useful_mask))
    n_useful = int(useful_mask.sum())
    result = {"level": "rtl", "unit": unit, "ops": ops, "weight_density": weight_density,
              "act_density": act_density, "seed": seed, "useful_fraction": round(useful, 4),
              "useful_ops": n_useful, "gating": {}}
    for gating in ("none", "and", "hold"):
        toggles, _ = measure_unit(unit, ops, seed=seed, gating=gating, density_a=weight_density,
                                  density_b=act_density)
        energy = energy_pj(toggles)
        result["gating"][gating] = {"mul_pj": energy.by_unit.get("mul", 0.0),
                                    "mul_toggles": toggles.by_unit.get("mul", 0),
                                    "flags_pj": energy.by_unit.get("flags", 0.0),
                                    "total_pj": energy.total}
    dense_pj = CALIBRATION["mul"]["target_pj"]     # the calibrated dense random multiply, per op
    _ratios(result, dense_pj, "mul_pj")
    if gate_level:
        result["gate_level"] = _gate_sparsity(fields, ops=ops, useful=useful, n_useful=n_useful,
                                              dense_ops=dense_ops)
    return result


def _ratios(result, dense_per_op, key):
    """Fill ``ratio_to_none``, ``hold_over_ideal`` and the two per-op explanations into a sparsity result."""
    gatings = result["gating"]
    base = gatings["none"][key]
    for g in gatings.values():
        g["ratio_to_none"] = round(g[key] / base, 4) if base else None
    useful, ops, n_useful = result["useful_fraction"], result["ops"], result["useful_ops"]
    ratio = gatings["hold"]["ratio_to_none"]
    result["hold_over_ideal"] = round(ratio / useful, 3) if useful and ratio is not None else None
    result["hold_per_useful_over_dense"] = (round(gatings["hold"][key] / n_useful / dense_per_op, 3)
                                            if n_useful and dense_per_op else None)
    result["none_per_op_over_dense"] = round(base / ops / dense_per_op, 3) if dense_per_op else None


def _gate_switching_pj(net_toggles, dff_toggles):
    # a flip-flop output toggle is one of the FLOP_NET_EQUIV net toggles its register bit costs
    return (net_toggles + (FLOP_NET_EQUIV - 1) * dff_toggles) * E_NET_PJ


def _gate_sparsity(fields, *, ops, useful, n_useful, dense_ops):
    from .gatelevel import replay_mul_lane
    result = {"level": "gate", "ops": ops, "useful_fraction": round(useful, 4), "useful_ops": n_useful,
              "gating": {}}
    for gating in ("none", "and", "hold"):
        flag = gating != "none"
        gated = dict(fields, a_zero=fp.is_zero(fields["a"], fp.FP16) & flag,
                     b_zero=fp.is_zero(fields["b"], fp.FP16) & flag)
        r = replay_mul_lane(gated, gating=gating)
        result["gating"][gating] = {
            "mul_pj": _gate_switching_pj(r.net_toggles, r.dff_toggles),
            "net_toggles": r.net_toggles, "dff_toggles": r.dff_toggles,
            "gates": r.gate.gates, "dffs": r.gate.dffs,
            "rtl_mul_toggles": r.rtl.by_unit.get("mul", 0),
            "clock_pj": r.gate.dffs * r.gate.samples * CLOCK_PJ_PER_REG_BIT}
    dense = replay_mul_lane(unit_operands("fp16_mul", dense_ops, seed=1), gating="none")
    dense_pj = _gate_switching_pj(dense.net_toggles, dense.dff_toggles) / dense_ops
    result["dense"] = {"ops": dense_ops, "seed": 1, "net_toggles_per_op": round(dense.net_toggles / dense_ops, 3),
                       "mul_pj_per_op": round(dense_pj, 4)}
    _ratios(result, dense_pj, "mul_pj")
    nets = {g: v["net_toggles"] for g, v in result["gating"].items()}
    result["nets_only"] = {"hold_ratio_to_none": round(nets["hold"] / nets["none"], 4) if nets["none"] else None,
                           "and_ratio_to_none": round(nets["and"] / nets["none"], 4) if nets["none"] else None}
    if nets["none"] and useful:
        result["nets_only"]["hold_over_ideal"] = round(nets["hold"] / nets["none"] / useful, 3)
    return result


def overhead_table(*, ops=64, seed=5):
    """Dally's HFMA / HDP4A / HMMA table from measured energies: math (mul + add switching on random data,
    per op) and overhead (the 30 pJ fetch/decode per instruction), beside his numbers."""
    mul, _ = measure_unit("fp16_mul", ops, seed=seed)
    add, _ = measure_unit("fp32_add", ops, seed=seed + 1)
    e_mul = energy_pj(mul).by_unit.get("mul", 0.0) / ops
    e_add = energy_pj(add).by_unit.get("add", 0.0) / ops
    rows = {}
    for name, fmas in (("hfma", 1), ("hdp4a", 4), ("hmma", 64)):
        math = fmas * (e_mul + e_add)
        dally_math, dally_pct = DALLY_TABLE[name]
        rows[name] = {"fmas": fmas, "math_pj": round(math, 3), "overhead_pj": FETCH_DECODE_PJ,
                      "overhead_pct": round(100 * FETCH_DECODE_PJ / math, 1) if math else None,
                      "dally_math_pj": dally_math, "dally_overhead_pct": dally_pct}
    return {"fp16_mul_pj": round(e_mul, 4), "fp32_add_pj": round(e_add, 4), "ops": ops, "seed": seed,
            "rows": rows}


# ------------------------------------------------------------------------------------------ density sweep

#: (weight density, activation density) points of the sweep.
SWEEP_DENSITIES = ((1.0, 1.0), (0.5, 0.5), (0.3, 0.5), (0.3, 0.3), (0.1, 0.5), (0.1, 0.3), (0.1, 0.1))


def zero_detector_pj(values):
    """Switching energy of one FP16 zero detector (``value[:15] == 0``, synthesized to gates) fed with the
    per-cycle ``values`` of one operand slot: gate-net toggles x E_NET_PJ."""
    from amaranth import Module, Signal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out
    from .gatelevel import GateNetlist, synthesize_gates

    class ZeroDetector(wiring.Component):
        x: In(16)
        z: Out(1)

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.z.eq(self.x[:15] == 0)
            return m

    global _ZD_NETLIST
    if _ZD_NETLIST is None:
        _ZD_NETLIST = GateNetlist(synthesize_gates(ZeroDetector()))
    values = [int(v) for v in values]
    result = _ZD_NETLIST.simulate({"x": values})
    return result.total * E_NET_PJ


_ZD_NETLIST = None


def density_sweep(*, densities=SWEEP_DENSITIES, instructions=6, seed=7, gatings=("none", "and", "hold")):
    """HMMA (4x4x4) energy per instruction against weight x activation density, per gating style.

    For each density point the same ``instructions`` random instructions run under each gating in the
    Amaranth simulator with toggle counting. Per point and gating: ``mul_pj`` (all multipliers), ``array_pj``
    (whole array: switching + clock), ``flags_pj`` (flag wires and flag registers: the ``flags`` class plus
    the multipliers' zero registers), per instruction; per point ``useful`` (fraction of multiplies with
    both operands non-zero) and ``zdet_pj`` (32 zero detectors in front of the array, gate level).
    """
    from ..golden.hmma import skipped_products
    from .hmma import run_hmma
    from .workloads import hmma_operands
    points = []
    for w, act in densities:
        a, b, c = hmma_operands(instructions, weight_density=w, act_density=act, seed=seed)
        useful = float(np.mean(~skipped_products(a, b)))
        zdet = sum(zero_detector_pj(col) for col in np.concatenate(
            [a.reshape(instructions, -1), b.reshape(instructions, -1)], axis=1).T) / instructions
        point = {"weight_density": w, "act_density": act, "density": round(w * act, 4),
                 "useful": round(useful, 4), "zdet_pj": round(zdet, 4), "gating": {}}
        for gating in gatings:
            toggles = run_hmma(a, b, c, gating=gating).toggles
            energy = energy_pj(toggles)
            zero_regs = sum(n for name, n in toggles.by_signal.items()
                            if name.startswith("mul") and "zero" in name.split(".")[-1])
            flags = energy.by_unit.get("flags", 0.0) + zero_regs * PJ_PER_TOGGLE["mul"]
            point["gating"][gating] = {"mul_pj": round(energy.by_unit.get("mul", 0.0) / instructions, 3),
                                       "array_pj": round(energy.total / instructions, 3),
                                       "flags_pj": round(flags / instructions, 3)}
        points.append(point)
    return {"instructions": instructions, "seed": seed, "points": points}


def plot_sweep(sweep, path):
    """Plot multiplier and array energy per instruction against density, with the ideal line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = sorted(sweep["points"], key=lambda p: p["useful"])
    x = [p["useful"] for p in points]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    dense = max(points, key=lambda p: p["useful"])
    for ax, key, title in ((axes[0], "mul_pj", "64 multipliers"), (axes[1], "array_pj", "whole 4x4x4 array")):
        for gating, style in (("none", "o-"), ("and", "s--"), ("hold", "^-")):
            ax.plot(x, [p["gating"][gating][key] for p in points], style, label=f"gating {gating}")
        top = dense["gating"]["none"][key] / dense["useful"]
        ax.plot(x, [top * u for u in x], "k:", label="ideal (∝ useful multiplies)")
        ax.plot(x, [p["gating"]["hold"]["flags_pj"] + p["zdet_pj"] for p in points], "x-.",
                label="flag wires + zero detectors (hold)")
        ax.set_xlabel("useful multiplies (weight x activation density)")
        ax.set_ylabel("pJ per HMMA instruction")
        ax.set_title(title)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"HMMA energy vs density ({sweep['instructions']} random instructions per point, seed {sweep['seed']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
