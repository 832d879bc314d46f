"""Energy model: switching energy from toggle counts, calibrated per unit class on published 45 nm figures.

energy = sum over unit classes of toggles x pJ-per-toggle(class)            (switching; a signal that is only
                                                                              wiring of others -- a port
                                                                              connection -- is not charged)
       + register bits x clock cycles x CLOCK_PJ_PER_REG_BIT                  (clock)
       + buffer accesses x SRAM energy per access                             (buffers, where a run has them)
       + instructions x FETCH_DECODE_PJ                                       (only for the overhead table)

The per-toggle energies of ``mul`` and ``add`` are calibrated so that random-data operation of one unit
matches Horowitz (ISSCC 2014, 45 nm): the mean switching energy per FP16 multiply is 1.1 pJ and per FP32
add 0.9 pJ. :func:`calibrate` re-derives them (``accel energy --calibrate``); the results are kept below as
constants so ordinary runs do not recompute them. docs/energy.md has the method, the sources and the numbers.

This module is the model and the unit measurements its calibration rests on; the experiments that use it
(the overhead table, the density sweep, the sparsity check) are in :mod:`accel.sim.studies`.
"""

from dataclasses import dataclass, field

import numpy as np

from ..golden import fp
from ..hw.units import build_unit
from .errors import UserError
from .payload import pack
from .toggles import count_toggles
from .workloads import sent_operand, sparse_bits

__all__ = ["HOROWITZ_45NM_PJ", "FETCH_DECODE_PJ", "DALLY_TABLE", "CALIBRATION", "GATE_CALIBRATION", "PJ_PER_TOGGLE",
           "E_NET_PJ", "E_NET_PJ_BY_CLASS",
           "CLOCK_PJ_PER_REG_BIT", "SRAM_PJ_PER_BIT", "Energy", "energy_pj", "report", "build", "mul_fields", "unit_operands",
           "unit_words", "random_words", "measure_unit", "calibrate"]

#: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm, 0.9 V (pJ).
HOROWITZ_45NM_PJ = {"fp16_mul": 1.1, "fp16_add": 0.4, "fp32_add": 0.9, "fp32_mul": 3.7, "sram_8kb_read_64b": 10.0}

#: Dally, ScaledML 2018: instruction fetch / decode / operand overhead of a programmable core, per instruction.
FETCH_DECODE_PJ = 30.0

#: Dally's table (ScaledML 2018): op -> (math energy pJ, overhead %), overhead being the 30 pJ above.
DALLY_TABLE = {"hfma": (1.5, 2000.0), "hdp4a": (6.0, 500.0), "hmma": (110.0, 27.0)}

#: Calibration runs (``accel energy --calibrate`` prints this dict): random data, ``ops`` operations back to
#: back through one unit in the Amaranth simulator, gating ``none``; ``toggles_per_op`` counts the class's
#: signals only (the lane below the unit's stream wrapper), less copies (wiring, not charged: see energy_pj).
CALIBRATION = {
    "mul": {"unit": "fp16_mul", "target_pj": 1.1, "ops": 512, "seed": 1, "toggles_per_op": 92.023},
    "add": {"unit": "fp32_add", "target_pj": 0.9, "ops": 512, "seed": 1, "toggles_per_op": 159.502},
}

#: Gate-level calibration (``accel energy --calibrate``): gate-net toggle equivalents per random-data operation
#: of each class's lane (:func:`accel.sim.gatelevel.lane_net_equivalents_per_op`: the unit synthesized
#: hierarchically to Yosys generic gates, the nets its lane drives, a flip-flop output toggle counting
#: FLOP_NET_EQUIV), 128 operations, seed 1, gating none.
GATE_CALIBRATION = {"mul": 471.961, "add": 573.102}

#: FP16 add (Winograd transforms): no unit yet; its class will be calibrated on 0.4 pJ when it lands.
FP16_ADD_TARGET_PJ = HOROWITZ_45NM_PJ["fp16_add"]


def _calibrated(cls):
    entry = CALIBRATION[cls]
    return entry["target_pj"] / entry["toggles_per_op"] if entry["toggles_per_op"] else 0.0


def _net_pj(cls):
    """pJ per gate-net toggle in class ``cls``'s lane: its published target over its gate-level calibration."""
    return CALIBRATION[cls]["target_pj"] / GATE_CALIBRATION[cls]


#: Energy of one register bit's data toggle, in gate-net toggles: a D flip-flop's master and slave latch
#: nodes and its output (an estimate, see docs/energy.md).
FLOP_NET_EQUIV = 4.0
#: A distribution line spans the array: one toggle of an operand line (a value or zero-flag bit of the array's
#: input bus, charged once however many lanes it feeds) costs this many gate-net toggles (wire capacitance of
#: ~0.2 mm of 45 nm wire at 0.2 fF/um against ~2 fF per gate node; docs/energy.md).
LINE_NET_EQUIV = 20.0
#: Clock energy per register bit per cycle, in gate-net toggles: the clock pin's two internal nodes toggle
#: twice per cycle, plus the bit's share of the clock tree (docs/energy.md).
CLOCK_NET_EQUIV = 2.0

#: pJ per gate-net toggle at gate level, by lane class; elsewhere (the array around the lanes, the estimates
#: below) the mean of the two.
E_NET_PJ_BY_CLASS = {cls: _net_pj(cls) for cls in GATE_CALIBRATION}
E_NET_PJ = sum(E_NET_PJ_BY_CLASS.values()) / len(E_NET_PJ_BY_CLASS)

#: pJ per toggle, by unit class.
PJ_PER_TOGGLE = {
    "mul": _calibrated("mul"),
    "add": _calibrated("add"),
    "zdet": E_NET_PJ,
    "flags": FLOP_NET_EQUIV * E_NET_PJ,     # flag delay registers: register bits like ``pipe``'s
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
    return build_unit(unit, gating=gating)


def mul_fields(a, b, gating):
    """An FP16 multiplier's operand fields (``a``, ``a_zero``, ``b``, ``b_zero``) as the sender puts FP16 bit
    patterns ``a`` and ``b`` out under ``gating`` (:func:`~accel.sim.workloads.sent_operand`)."""
    (a, a_zero), (b, b_zero) = sent_operand(a, fp.FP16, gating), sent_operand(b, fp.FP16, gating)
    return {"a": a, "a_zero": a_zero, "b": b, "b_zero": b_zero}


def unit_operands(unit, n, *, seed=1, density_a=1.0, density_b=1.0, gating="none"):
    """Random operand fields of ``n`` operations of ``unit``: normally distributed values, each operand
    non-zero with its density, as the sender puts them out under ``gating``
    (:func:`~accel.sim.workloads.sent_operand`: zero flags unless ``none``; with ``hold`` a flagged value's
    lines keep their last value). The values drawn depend on ``seed`` only, not on ``gating``."""
    for name, d in (("density_a", density_a), ("density_b", density_b)):
        if not 0.0 <= d <= 1.0:
            raise UserError(f"{name} must lie in [0, 1], not {d!r}")
    rng = np.random.default_rng(seed)
    if unit == "fp16_mul":
        a, b = sparse_bits(n, density_a, rng, fp.FP16), sparse_bits(n, density_b, rng, fp.FP16)
        return mul_fields(a, b, gating)
    if unit == "fp32_add":
        a, b = sparse_bits(n, density_a, rng, fp.FP32), sparse_bits(n, density_b, rng, fp.FP32)
        b, b_zero = sent_operand(b, fp.FP32, gating)
        return {"a": a, "b": b, "b_zero": b_zero}
    raise UserError(f"unknown unit {unit!r}; choose one of: {', '.join(UNITS)}")


def unit_words(dut, fields):
    return pack(dut.i.payload.shape(), fields)


def random_words(unit, dut, n, *, seed=1):
    """Packed input words of ``n`` dense random operations of ``unit`` for ``dut``."""
    return unit_words(dut, unit_operands(unit, n, seed=seed))


def measure_unit(unit, n_ops, *, seed=1, gating="none", density_a=1.0, density_b=1.0):
    """Stream ``n_ops`` random operations through one ``unit`` in the Amaranth simulator; its Toggles."""
    dut = build(unit, gating=gating)
    fields = unit_operands(unit, n_ops, seed=seed, density_a=density_a, density_b=density_b, gating=gating)
    _, toggles = count_toggles(dut, unit_words(dut, fields))
    return toggles, fields


def calibrate(*, ops=None, seed=None, gate_level=True):
    """Re-derive the calibration: toggles per random operation of each class's unit (and gate-level nets).

    Returns ``{"CALIBRATION": {...}, "GATE_CALIBRATION": {...}, "PJ_PER_TOGGLE": {...}}`` with the
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
        from .gatelevel import lane_net_equivalents_per_op
        for cls, entry in CALIBRATION.items():
            per_op = lane_net_equivalents_per_op(entry["unit"], lane=cls, n_ops=ops or 128,
                                                 seed=seed if seed is not None else 1)
            gate[cls] = round(per_op, 3)
    pj = {cls: round(e["target_pj"] / e["toggles_per_op"], 6) for cls, e in calibration.items()}
    return {"CALIBRATION": calibration, "GATE_CALIBRATION": gate, "PJ_PER_TOGGLE": pj}
