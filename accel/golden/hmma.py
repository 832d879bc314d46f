"""Golden model of the HMMA instruction D = A·B + C (A, B FP16; C, D FP32), every gating style, dense and
2:4 sparse.

Accumulation follows the numerics contract (``chain`` mode): ``(((C + p0) + p1) + p2) + p3`` in FP32
with a round-to-nearest-even after every add. Products are exact (FP16 x FP16 fits FP32).

**The 2:4 sparse instruction** (:func:`hmma_sparse`, like Ampere's ``mma.sp``): A holds the weights, ``m``
rows (output channels) by ``K`` reduction indices (input channels), given 2:4-compressed along the
reduction: the ``K`` indices of a row form ``K/4`` groups of 4 (channels ``4g..4g+3``), each group keeps 2
values and their 2-bit indices within the group, ascending. So A is ``values`` [m, K/2] and ``indices``
[m, K/2] (kept element ``t`` of row ``i`` sits at channel ``4*(t//2) + indices[i, t]``); B is [K, n] and C, D
are [m, n]. Each output is C plus the ``K/2`` kept products ``values[i, t] * B[channel(i, t), j]``, chained in
ascending channel order exactly as the dense instruction chains its products (numerics contract: "2:4
sparse instructions (skip mode)"), with the same gating: under ``hold`` a kept product whose value or
activation is ±0 is skipped. For ``K = 8`` that is 4 kept products per output, the work of a dense 4x4x4
instruction, standing for 8 dense-equivalent reduction channels.

:func:`compress_24` turns a dense 2:4 A into (values, indices) and :func:`expand_24` back. Which
positions a group with fewer than two non-zeros keeps (as explicit zeros) is decided in one place,
:func:`accel.golden.sparse.nm24_meta` (PyTorch's semi-structured choice: one non-zero at 0 keeps (0, 3),
one at 1 keeps (1, 3), one at 2 or 3, or none, keeps (2, 3)), so the ``nm24`` weight format's metadata
nibbles are these indices unchanged. The choice matters only under ``and``/``none`` when B holds Inf or
NaN at a kept zero's channel (0 x Inf is NaN); under ``hold`` a kept zero is skipped.
"""

import numpy as np

from . import fp
from .gating import Gating
from .sparse import nm24_meta

__all__ = ["skipped_products", "hmma", "gated_mac_count", "GROUP", "KEPT", "kept_channels", "compress_24",
           "expand_24", "sparse_skipped_products", "hmma_sparse", "hmma_24", "sparse_gated_mac_count"]

GROUP = 4   #: reduction indices per 2:4 group
KEPT = 2    #: values kept per group


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
    return _chain(c, a[:, :, None, :], np.swapaxes(b, 1, 2)[:, None, :, :], gating)


def _chain(c, a_terms, b_terms, gating):
    """C [batch, m, n] plus the products ``a_terms[..., t] * b_terms[..., t]`` (broadcast to [batch, m, n, k])
    for t = 0, 1, ... in that order, one FP32 rounding per add; under ``hold`` a product with a ±0 operand
    is skipped (:func:`fp.add_gated`)."""
    acc = c
    for t in range(np.broadcast_shapes(a_terms.shape, b_terms.shape)[-1]):
        a_t, b_t = a_terms[..., t], b_terms[..., t]
        product = fp.mul(a_t, b_t, fp.FP16, fp.FP32)
        if gating is Gating.HOLD:
            acc = fp.add_gated(acc, product, fp.is_zero(a_t, fp.FP16) | fp.is_zero(b_t, fp.FP16), fp.FP32)
        else:
            acc = fp.add(acc, product, fp.FP32)
    return np.asarray(acc).astype(np.uint32)


def gated_mac_count(a, b, gating=Gating.HOLD):
    """Multiplier slots whose product is skipped: those with a zero operand under ``hold``, else none."""
    return int(skipped_products(a, b).sum()) if Gating.parse(gating) is Gating.HOLD else 0


# --- 2:4 sparse ------------------------------------------------------------------------------------------

def _batched(array, ndim, what):
    """``array`` with a batch axis in front when it has ``ndim - 1`` axes; (array, whether one was added)."""
    array = np.asarray(array)
    if array.ndim == ndim - 1:
        return array[None], True
    if array.ndim != ndim:
        raise ValueError(f"{what} must have {ndim - 1} or {ndim} axes, not shape {array.shape}")
    return array, False


def compress_24(a):
    """Dense 2:4 weights ``a`` uint16 [m, K] or [batch, m, K] (K a multiple of 4) -> (``values`` uint16,
    ``indices`` uint8), each [..., m, K/2]: per group of 4 channels the two kept values and their indices
    within the group, ascending (module docstring; a group with fewer non-zeros keeps explicit zeros where
    :func:`~accel.golden.sparse.nm24_meta` puts them). ValueError naming the first group with more than two
    non-zeros (±0 counts as zero)."""
    a, single = _batched(np.asarray(a, np.uint16), 3, "a")
    batch, m, channels = a.shape
    if channels % GROUP or channels == 0:
        raise ValueError(f"a must have a multiple of {GROUP} reduction indices, not {channels}")
    groups = channels // GROUP
    # nm24_meta reads groups along axis 1: [batch, 4 (within the group), m * groups]
    by_group = a.reshape(batch, m, groups, GROUP).transpose(0, 3, 1, 2).reshape(batch, GROUP, m * groups)

    def name(s, column):
        i, g = divmod(column, groups)
        return (f"instruction {s} " if not single else "") + \
            f"row {i} group {g} (channels {GROUP * g}..{GROUP * g + GROUP - 1})"

    low, high = nm24_meta(by_group, name)
    indices = np.stack([low, high], axis=-1).reshape(batch, m, groups * KEPT).astype(np.uint8)
    values = np.take_along_axis(a, kept_channels(indices).astype(np.int64), axis=2)
    return (values[0], indices[0]) if single else (values, indices)


def kept_channels(indices):
    """The reduction index (channel) of each kept element: ``4 * (t // 2) + indices[..., t]``."""
    indices = np.asarray(indices).astype(np.int64)
    return GROUP * (np.arange(indices.shape[-1]) // KEPT) + indices


def _check_compressed(values, indices):
    values, indices = np.asarray(values, np.uint16), np.asarray(indices)
    if values.shape != indices.shape or values.ndim < 2 or values.shape[-1] % KEPT or values.shape[-1] == 0:
        raise ValueError(f"values {values.shape} and indices {indices.shape} must have one shape [..., m, K/2] "
                         f"with K/2 a multiple of {KEPT}")
    if not np.issubdtype(indices.dtype, np.integer) or ((indices < 0) | (indices >= GROUP)).any():
        raise ValueError(f"indices must be integers in 0..{GROUP - 1}")
    pairs = indices.reshape(*indices.shape[:-1], -1, KEPT)
    bad = np.argwhere(pairs[..., 0] >= pairs[..., 1])
    if len(bad):
        *where, g = (int(x) for x in bad[0])
        raise ValueError(f"indices of group {g} at {tuple(where)} are not strictly ascending: "
                         f"{list(pairs[tuple(bad[0])])}")
    return values, indices.astype(np.uint8)


def expand_24(values, indices):
    """The dense A [..., m, K] of compressed (``values``, ``indices``) [..., m, K/2]: each kept value at its
    channel, zeros elsewhere. ValueError for indices outside 0..3 or not strictly ascending in a group."""
    values, indices = _check_compressed(values, indices)
    dense = np.zeros((*values.shape[:-1], values.shape[-1] * GROUP // KEPT), np.uint16)
    np.put_along_axis(dense, kept_channels(indices), values, axis=-1)
    return dense


def _sparse_terms(values, indices, b, c):
    """Checked operands of a sparse batch and the chain's terms: (values, b selected per kept element
    [batch, m, n, K/2], c)."""
    values, indices = _check_compressed(values, indices)
    b, c = np.asarray(b, np.uint16), np.asarray(c, np.uint32)
    if values.ndim != 3 or b.ndim != 3 or c.ndim != 3 or b.shape[1] != values.shape[2] * GROUP // KEPT \
            or len({len(values), len(b), len(c)}) != 1 or c.shape[1:] != (values.shape[1], b.shape[2]):
        raise ValueError(f"shapes do not form a 2:4 sparse D = A·B + C: values {values.shape}, "
                         f"indices {indices.shape}, b {b.shape}, c {c.shape}")
    channels = kept_channels(indices)                                   # [batch, m, K/2]
    selected = np.take_along_axis(b[:, None, :, :], channels[..., None], axis=2)  # [batch, m, K/2, n]
    return values, np.swapaxes(selected, 2, 3), c


def hmma_sparse(values, indices, b, c, gating=Gating.HOLD):
    """D of a batch of 2:4 sparse instructions: ``values`` uint16 and ``indices`` [batch, m, K/2] (compressed
    A, :func:`compress_24`), ``b`` uint16 [batch, K, n], ``c`` uint32 [batch, m, n]; uint32 [batch, m, n].

    Per output the kept products in ascending channel order, chained as :func:`hmma` chains its products,
    with the same gating (module docstring)."""
    gating = Gating.parse(gating)
    values, b_sel, c = _sparse_terms(values, indices, b, c)
    return _chain(c, values[:, :, None, :], b_sel, gating)


def hmma_24(a, b, c, gating=Gating.HOLD):
    """:func:`hmma_sparse` of dense 2:4 weights ``a`` uint16 [batch, m, K] (compressed by :func:`compress_24`,
    which refuses a group with more than two non-zeros), ``b`` [batch, K, n], ``c`` [batch, m, n]."""
    return hmma_sparse(*compress_24(a), b, c, gating)


def sparse_skipped_products(values, indices, b):
    """Boolean [batch, m, n, K/2]: kept products with a zero-flagged operand (kept value or its activation ±0)."""
    values, b_sel, _ = _sparse_terms(values, indices, b, np.zeros((len(b), np.shape(values)[1], np.shape(b)[2]),
                                                                  np.uint32))
    return fp.is_zero(values, fp.FP16)[:, :, None, :] | fp.is_zero(b_sel, fp.FP16)


def sparse_gated_mac_count(values, indices, b, gating=Gating.HOLD):
    """Multiplier slots of a sparse batch whose product is skipped: with a zero operand under ``hold``, else none."""
    if Gating.parse(gating) is not Gating.HOLD:
        return 0
    return int(sparse_skipped_products(values, indices, b).sum())
