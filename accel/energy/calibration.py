"""Re-deriving the energy model's calibration (``accel energy --calibrate``): the toggles of each class's
calibration unit per random operation, at RTL (:func:`~accel.energy.measure.measure_unit`) and at gate level
(:func:`~accel.energy.gatelevel.lane_net_equivalents_per_op`), turned into the constants
:mod:`accel.energy.model` keeps.
"""

from .gatelevel import lane_net_equivalents_per_op
from .measure import measure_unit
from .model import CALIBRATION, GATE_CALIBRATION

__all__ = ["calibrate"]


def calibrate(*, ops=None, seed=None, gate_level=True):
    """Re-derive the calibration: toggles per random operation of each class's unit (and gate-level nets).

    Returns ``{"CALIBRATION": {...}, "GATE_CALIBRATION": {...}, "PJ_PER_TOGGLE": {...}}`` with the
    values to commit in :mod:`accel.energy.model`.
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
        for cls in GATE_CALIBRATION:
            gate[cls] = round(lane_net_equivalents_per_op(CALIBRATION[cls]["unit"], n_ops=ops or 128,
                                                          seed=seed if seed is not None else 1), 3)
    pj = {cls: round(e["target_pj"] / e["toggles_per_op"], 6) for cls, e in calibration.items()}
    return {"CALIBRATION": calibration, "GATE_CALIBRATION": gate, "PJ_PER_TOGGLE": pj}
