"""Measuring single units: ``n`` random operations of a unit of the registry (:data:`accel.hw.units.UNITS`)
back to back in the Amaranth simulator, with the unit's registered stimulus, counting toggles."""

from ..golden.gating import Gating
from ..hw.units import unit
from ..sim.payload import pack
from ..sim.toggles import count_toggles

__all__ = ["unit_fields", "unit_words", "measure_unit"]


def unit_fields(name, n, *, seed=1, density_a=1.0, density_b=1.0, gating=Gating.NONE):
    """Payload fields of ``n`` random operations of unit ``name``: normally distributed values, operand ``a``
    non-zero with ``density_a`` and ``b`` with ``density_b``, as the sender puts them out under ``gating``
    (zero flags unless ``none``; with ``hold`` a flagged value's lines keep their last value). The values
    drawn depend on ``seed`` only, not on ``gating``."""
    for what, density in (("density_a", density_a), ("density_b", density_b)):
        if not 0.0 <= density <= 1.0:
            raise ValueError(f"{what} must lie in [0, 1], not {density!r}")
    return unit(name).stimulus(n, seed=seed, densities=(density_a, density_b), gating=gating)


def unit_words(dut, fields):
    """The packed input payload words of ``fields`` for ``dut``."""
    return pack(dut.i.payload.shape(), fields)


def measure_unit(name, n_ops, *, seed=1, gating=Gating.NONE, density_a=1.0, density_b=1.0):
    """Stream ``n_ops`` random operations through unit ``name`` in the Amaranth simulator; (its Toggles, the
    payload fields it was fed)."""
    dut = unit(name)(gating)
    fields = unit_fields(name, n_ops, seed=seed, density_a=density_a, density_b=density_b, gating=gating)
    _, toggles = count_toggles(dut, unit_words(dut, fields))
    return toggles, fields
