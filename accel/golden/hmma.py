"""Golden model of the HMMA instruction D = A·B + C (A, B FP16; C, D FP32), every gating style.

Accumulation follows the numerics contract (``chain`` mode): ``(((C + p0) + p1) + p2) + p3`` in FP32
with a round-to-nearest-even after every add. Products are exact (FP16 x FP16 fits FP32).
"""

import numpy as np

from . import fp

GATING_STYLES = ("hold", "and", "none")


def check_gating(gating):
    if gating not in GATING_STYLES:
        raise ValueError(f"gating must be one of {', '.join(GATING_STYLES)}, not {gating!r}")
    return gating


def skipped_products(a, b):
    """Boolean [N, M, N', K]: products with a zero-flagged operand (A or B element is ±0)."""
    a_zero = fp.is_zero(a, fp.FP16)  # [N, M, K]
    b_zero = fp.is_zero(b, fp.FP16)  # [N, K, N']
    return a_zero[:, :, None, :] | np.swapaxes(b_zero, 1, 2)[:, None, :, :]


def hmma(a, b, c, gating="hold"):
    """D for a batch: ``a`` uint16 [N, M, K], ``b`` uint16 [N, K, P], ``c`` uint32 [N, M, P] bit patterns.

    With ``hold`` a product whose operand carries a zero flag is skipped: the running sum passes
    unchanged. With ``and`` and ``none`` the result is IEEE (equal to numpy float32 in chain order).
    """
    check_gating(gating)
    a, b, c = np.asarray(a, np.uint16), np.asarray(b, np.uint16), np.asarray(c, np.uint32)
    if a.ndim != 3 or b.ndim != 3 or c.ndim != 3 or a.shape[2] != b.shape[1] \
            or c.shape != (a.shape[0], a.shape[1], b.shape[2]) or a.shape[0] != b.shape[0]:
        raise ValueError(f"shapes do not form D = A·B + C: a {a.shape}, b {b.shape}, c {c.shape}")
    skip = skipped_products(a, b)
    acc = c
    for k in range(a.shape[2]):
        product = fp.mul(a[:, :, k, None], b[:, None, k, :], fp.FP16, fp.FP32)
        if gating == "hold":
            acc = fp.add_gated(acc, product, skip[..., k], fp.FP32)
        else:
            acc = fp.add(acc, product, fp.FP32)
    return acc.astype(np.uint32)


def gated_mac_count(a, b, gating="hold"):
    """Multiplier slots whose product is skipped: those with a zero operand under ``hold``, else none."""
    return int(skipped_products(a, b).sum()) if check_gating(gating) == "hold" else 0
