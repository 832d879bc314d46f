"""Golden model of the HMMA instruction D = A·B + C (A, B FP16; C, D FP32), every gating style.

Accumulation follows the numerics contract (``chain`` mode): ``(((C + p0) + p1) + p2) + p3`` in FP32
with a round-to-nearest-even after every add. Products are exact (FP16 x FP16 fits FP32).
"""

import numpy as np

from . import fp
from .gating import Gating


def skipped_products(a, b):
    """Boolean [batch, m, n, k]: products with a zero-flagged operand (A or B element is ±0)."""
    a_zero = fp.is_zero(a, fp.FP16)  # [batch, m, k]
    b_zero = fp.is_zero(b, fp.FP16)  # [batch, k, n]
    return a_zero[:, :, None, :] | np.swapaxes(b_zero, 1, 2)[:, None, :, :]


def hmma(a, b, c, gating=Gating.HOLD):
    """D for a batch: ``a`` uint16 [batch, m, k], ``b`` uint16 [batch, k, n], ``c`` uint32 [batch, m, n] bit
    patterns.

    With ``hold`` a product whose operand carries a zero flag is skipped: the running sum passes
    unchanged. With ``and`` and ``none`` the result is IEEE (equal to numpy float32 in chain order).
    """
    gating = Gating.parse(gating)
    a, b, c = np.asarray(a, np.uint16), np.asarray(b, np.uint16), np.asarray(c, np.uint32)
    if a.ndim != 3 or b.ndim != 3 or c.ndim != 3 or a.shape[2] != b.shape[1] \
            or c.shape != (a.shape[0], a.shape[1], b.shape[2]) or a.shape[0] != b.shape[0]:
        raise ValueError(f"shapes do not form D = A·B + C: a {a.shape}, b {b.shape}, c {c.shape}")
    skip = skipped_products(a, b)
    acc = c
    for k in range(a.shape[2]):
        product = fp.mul(a[:, :, k, None], b[:, None, k, :], fp.FP16, fp.FP32)
        if gating is Gating.HOLD:
            acc = fp.add_gated(acc, product, skip[..., k], fp.FP32)
        else:
            acc = fp.add(acc, product, fp.FP32)
    return acc.astype(np.uint32)


def gated_mac_count(a, b, gating=Gating.HOLD):
    """Multiplier slots whose product is skipped: those with a zero operand under ``hold``, else none."""
    return int(skipped_products(a, b).sum()) if Gating.parse(gating) is Gating.HOLD else 0
