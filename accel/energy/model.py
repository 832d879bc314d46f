"""Energy model: switching energy from toggle counts, calibrated per unit class on published 45 nm figures.

energy = sum over unit classes of toggles x pJ-per-toggle(class)            (switching; a signal that is only
                                                                              wiring of others -- a port
                                                                              connection -- is not charged)
       + register-bit clock loads x CLOCK_PJ_PER_REG_BIT                      (clock: with clock gating, each
                                                                              register of 2+ bits clocked only
                                                                              when it takes a new value, plus
                                                                              its gate every cycle; without,
                                                                              every bit every cycle; both are
                                                                              reported, gated counts)
       + buffer accesses x SRAM energy per access                             (buffers, where a run has them)
       + instructions x FETCH_DECODE_PJ                                       (only for the overhead table)

The per-toggle energies of ``mul`` and ``add`` are calibrated so that random-data operation of one unit
matches Horowitz (ISSCC 2014, 45 nm): the mean switching energy per FP16 multiply is 1.1 pJ and per FP32
add 0.9 pJ. :func:`calibrate` re-derives them (``accel energy --calibrate``); the results are kept below as
constants so ordinary runs do not recompute them. docs/energy.md has the method, the sources and the numbers.

This module is the model and its constants; :mod:`accel.energy.calibration` re-derives the constants, and
the experiments that use the model (the overhead table, the density sweep, the sparsity check) are in
:mod:`accel.energy.studies`.
"""

from dataclasses import dataclass, field

__all__ = ["HOROWITZ_45NM_PJ", "FETCH_DECODE_PJ", "DALLY_TABLE", "CALIBRATION", "GATE_CALIBRATION", "PJ_PER_TOGGLE",
           "E_NET_PJ", "E_NET_PJ_BY_CLASS", "FLOP_NET_EQUIV", "LINE_NET_EQUIV", "CLOCK_NET_EQUIV",
           "CLOCK_PJ_PER_REG_BIT", "SRAM_PJ_PER_BIT", "Energy", "clock_pj_of", "energy_pj", "report"]

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
    "add16": {"unit": "fp16_add", "target_pj": 0.4, "ops": 512, "seed": 1, "toggles_per_op": 75.053},
}

#: Gate-level calibration (``accel energy --calibrate``): gate-net toggle equivalents per random-data operation
#: of each class's lane (:func:`accel.energy.gatelevel.lane_net_equivalents_per_op`: the unit synthesized
#: hierarchically to Yosys generic gates, the nets its lane drives, a flip-flop output toggle counting
#: FLOP_NET_EQUIV), 128 operations, seed 1, gating none. The net energy of the model (E_NET_PJ) rests on
#: these two classes, the multiplier and the FP32 adder.
GATE_CALIBRATION = {"mul": 471.961, "add": 573.102}


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
    "add16": _calibrated("add16"),
    "zdet": E_NET_PJ,
    "logic": E_NET_PJ,                      # control and datapath logic of other blocks (the decompressor)
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
    ``fetch_decode`` where present), and the clock both ways (``clock``: ``{"gated": pJ or None, "ungated":
    pJ}``) with ``clock_gating`` saying which of them ``by_unit["clock"]`` and the total count."""

    total: float
    by_unit: dict = field(default_factory=dict)
    clock: dict = field(default_factory=dict)
    clock_gating: bool = False

    def as_json(self, digits=3):
        return {"total": round(self.total, digits), "by_unit": {k: round(v, digits) for k, v in self.by_unit.items()},
                "clock_gating": self.clock_gating,
                "clock": {k: None if v is None else round(v, digits) for k, v in self.clock.items()}}


def clock_pj_of(toggles, *, cycles=None, clock_gating=True, clock=CLOCK_PJ_PER_REG_BIT):
    """Register clock energy of a run in pJ: with ``clock_gating``, its register-bit clock loads under RTL clock
    gating (:class:`~accel.sim.toggles.Toggles` ``reg_clock_loads``: the sampled cycles only); without, every
    register bit every one of ``cycles`` (default the samples)."""
    if clock_gating:
        if cycles is not None:
            raise ValueError("clock gating follows the sampled cycles; cycles= needs clock_gating=False")
        if toggles.reg_clock_loads is None:
            raise ValueError("these toggles carry no register change counts, so no clock-gated figure")
        return toggles.reg_clock_loads * clock
    return toggles.reg_bits * (toggles.samples if cycles is None else cycles) * clock


def energy_pj(toggles, *, cycles=None, clock_gating=True, buffer_bits=0, instructions=0, pj_per_toggle=None,
              clock_pj=None):
    """The :class:`Energy` of a run from its :class:`~accel.sim.toggles.Toggles`.

    ``clock_gating``: count the clock with RTL clock gating (:func:`clock_pj_of`, the default; the ungated
    figure is reported beside it); False: every register bit every cycle. ``cycles``: clock cycles for the
    ungated clock (default: the samples the toggle counter took, one per clock; only with
    ``clock_gating=False``).
    ``buffer_bits``: bits read or written in SRAM buffers (an access of w bits costs w x SRAM_PJ_PER_BIT).
    ``instructions``: add FETCH_DECODE_PJ for each (the programmable-core comparison only).
    A class without a price is a KeyError: every class the toggle counter knows is priced.
    """
    pj = PJ_PER_TOGGLE if pj_per_toggle is None else pj_per_toggle
    clock = CLOCK_PJ_PER_REG_BIT if clock_pj is None else clock_pj
    can_gate = cycles is None and toggles.reg_clock_loads is not None
    copies = toggles.copies_by_unit or {}
    by_unit = {cls: (toggles.by_unit[cls] - copies.get(cls, 0)) * pj[cls] for cls in toggles.by_unit}
    both = {"gated": clock_pj_of(toggles, clock_gating=True, clock=clock) if can_gate else None,
            "ungated": clock_pj_of(toggles, cycles=cycles, clock_gating=False, clock=clock)}
    by_unit["clock"] = clock_pj_of(toggles, cycles=cycles, clock_gating=clock_gating, clock=clock)
    if buffer_bits:
        by_unit["buffers"] = buffer_bits * SRAM_PJ_PER_BIT
    if instructions:
        by_unit["fetch_decode"] = instructions * FETCH_DECODE_PJ
    return Energy(total=sum(by_unit.values()), by_unit=by_unit, clock=both, clock_gating=clock_gating)


def report(toggles, **options):
    """The ``toggles`` and ``energy_pj`` members of a run command's ``--json`` object."""
    if isinstance(toggles, dict):
        raise TypeError("report() takes a Toggles; convert backend counts with toggles.toggles_from_counts")
    return {"toggles": toggles.as_json(), "energy_pj": energy_pj(toggles, **options).as_json()}
