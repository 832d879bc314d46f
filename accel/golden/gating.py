"""The zero-gating styles: one enum for golden, hardware, synthesis, energy studies and the command line.

``Gating`` is a ``str`` enum, so a member equals its name (``Gating.HOLD == "hold"``) and prints as it;
:meth:`Gating.parse` turns user text or a member into a member, with a ValueError naming the choices.
"""

from enum import StrEnum

__all__ = ["Gating", "GATING_STYLES"]


class Gating(StrEnum):
    """What the hardware does with an operand's ``is_zero`` flag (docs/numerics.md)."""

    HOLD = "hold"   #: frozen lines: a flagged zero is never sent, its product is skipped (default)
    AND = "and"     #: operand isolation: the zero is multiplied with its significand inputs forced to 0
    NONE = "none"   #: no zero detection at all

    @classmethod
    def parse(cls, value, what="gating"):
        """The member named ``value``; ValueError naming ``what`` and the choices otherwise."""
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{what} must be one of {', '.join(GATING_STYLES)}, not {value!r}") from None

    @property
    def flags_zeros(self):
        """Whether the sender raises ``is_zero`` flags at all (every style but ``none``)."""
        return self is not Gating.NONE


#: The style names in report order.
GATING_STYLES = tuple(g.value for g in Gating)
