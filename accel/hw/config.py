"""The accelerator's configuration: one frozen, checked object with named presets (cvfpu's ``fpnew_pkg``,
Gemmini's config dataclass with ``require``-style checks).

It holds what a design point is made of: the HMMA array's shape ``m x n x k`` (D[m x n] = A[m x k] . B[k x n]
+ C), the zero-gating style, the number formats and whether the array runs 2:4 sparse instructions
(``sparse``: A is 2:4-compressed weights, ``k`` kept values per row standing for ``2k`` reduction channels). It is validated on construction, so a bad value fails
where it is given, with a ValueError or TypeError naming it; hardware builders (:meth:`HMMA.from_config
<accel.hw.hmma.HMMA.from_config>`) and the command line take it as it is.
"""

from dataclasses import dataclass, field, replace

from ..golden.fp import FP16, FP32, FloatFormat
from ..golden.gating import Gating
from .fp_mul import check_exact_product

__all__ = ["MAX_ARRAY_DIM", "AcceleratorConfig", "PRESETS"]

#: The largest m, n or k an array is built with (8x8x8: 512 multiplier and 512 adder lanes).
MAX_ARRAY_DIM = 8


def _check_dim(what, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, not {value!r}")
    if value > MAX_ARRAY_DIM:
        raise ValueError(f"{what} must be at most {MAX_ARRAY_DIM}, not {value!r}")


@dataclass(frozen=True)
class AcceleratorConfig:
    """A checked design point. ``gating`` may be given as its name; it is kept as a :class:`Gating`."""

    m: int = 4
    n: int = 4
    k: int = 4
    gating: Gating = Gating.HOLD
    fmt_in: FloatFormat = field(default=FP16)
    fmt_acc: FloatFormat = field(default=FP32)
    sparse: bool = False

    def __post_init__(self):
        for what in ("m", "n", "k"):
            _check_dim(what, getattr(self, what))
        if not isinstance(self.sparse, bool):
            raise TypeError(f"sparse must be a bool, not {self.sparse!r}")
        if self.sparse and self.k % 2:
            raise ValueError(f"a 2:4 sparse array keeps 2 values per group of 4 channels: k must be even, not {self.k}")
        object.__setattr__(self, "gating", Gating.parse(self.gating))
        for what in ("fmt_in", "fmt_acc"):
            if not isinstance(getattr(self, what), FloatFormat):
                raise TypeError(f"{what} must be a FloatFormat (e.g. FP16, FP32), not {getattr(self, what)!r}")
        check_exact_product(self.fmt_in, self.fmt_acc)

    @property
    def shape(self):
        """(m, n, k)."""
        return self.m, self.n, self.k

    @property
    def macs_per_instruction(self):
        """Multiplies one instruction does (m*n*k in either mode)."""
        return self.m * self.n * self.k

    @property
    def reduction(self):
        """Reduction channels one instruction covers: ``k`` dense, ``2k`` sparse (2 kept of every 4)."""
        return 2 * self.k if self.sparse else self.k

    @property
    def dense_macs_per_instruction(self):
        """Dense-equivalent multiply-adds of one instruction: m*n*reduction (twice the multiplies when sparse)."""
        return self.m * self.n * self.reduction

    def replace(self, **changes):
        """A copy with ``changes``, checked like a new one."""
        return replace(self, **changes)


#: Named design points: the talk's three instructions as arrays (HFMA, HDP4A, and HMMA: the tensor core).
PRESETS = {
    "hfma": AcceleratorConfig(m=1, n=1, k=1),
    "hdp4a": AcceleratorConfig(m=1, n=1, k=4),
    "hmma": AcceleratorConfig(),
}
