"""Registry of buildable hardware units: name -> factory(gating=...), with the gatings each supports.

``UNITS[name](gating=...)`` builds a unit; ``UNITS[name].gatings`` lists its zero-gating styles, and
``can_gate`` / ``can_ungate`` say whether it can be built with and without zero gating.
"""

from dataclasses import dataclass
from typing import Callable

from .fp_add import ADD_GATINGS, FPAdd
from .fp_mul import FPMul
from .hmma import HMMA
from .pipeline import GATING_STYLES

__all__ = ["Unit", "UNITS", "build_unit"]


@dataclass(frozen=True)
class Unit:
    """A unit factory and the gating styles it accepts (``"none"`` means no zero gating)."""

    factory: Callable
    gatings: tuple

    @property
    def can_gate(self):
        return any(gating != "none" for gating in self.gatings)

    @property
    def can_ungate(self):
        return "none" in self.gatings

    def __call__(self, gating="hold"):
        return self.factory(gating=gating)


UNITS = {
    "fp16_mul": Unit(FPMul, GATING_STYLES),
    "fp32_add": Unit(FPAdd, ADD_GATINGS),
    "hmma": Unit(HMMA, GATING_STYLES),
}


def build_unit(name, gating="hold"):
    """Build unit ``name``; ValueError listing the known units when the name is unknown."""
    if name not in UNITS:
        raise ValueError(f"unknown unit {name!r}; known units: {', '.join(sorted(UNITS))}")
    return UNITS[name](gating=gating)
