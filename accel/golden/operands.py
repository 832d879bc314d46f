"""Operands as a sender puts them out: random operands with a chosen density of non-zero values (seeded,
reproducible), and the values a ``hold`` sender drives onto the data lines (DESIGN.md: frozen lines).

The sender is part of the reference: what it flags and what it leaves on the lines decide both the golden
result (a flagged product is skipped under ``hold``) and the switching activity of the hardware.
"""

import numpy as np

from . import fp
from .gating import Gating

__all__ = ["SPARSE_FORMATS", "sparse_bits", "held_lines", "sent_operand", "hmma_operands", "index_pairs",
           "hmma_sparse_operands"]

#: Formats :func:`sparse_bits` draws (those with a numpy float type).
SPARSE_FORMATS = (fp.FP16, fp.FP32)


def sparse_bits(shape, density, rng, fmt=fp.FP16):
    """``fmt`` bit patterns of normally distributed values, each non-zero with probability ``density``.

    Draws ``rng.standard_normal(shape)`` then ``rng.random(shape)`` (in that order, whatever the format), so a
    seed gives the same values in every caller.
    """
    if fmt not in SPARSE_FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(f.name for f in SPARSE_FORMATS)}, not {fmt!r}")
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], not {density!r}")
    bits = fp.to_bits(rng.standard_normal(shape), fmt)
    bits[fp.is_zero(bits, fmt)] = fp.to_bits(1.0, fmt)  # a zero only where the density says so
    bits[rng.random(shape) >= density] = 0
    return bits


def held_lines(bits, flags):
    """The values a ``hold`` sender drives onto the data lines, one row per transfer (axis 0): ``bits``,
    except that a flagged element is never sent and its lines keep the value last sent on them (0 before
    the first), so only its ``is_zero`` flag changes (DESIGN.md: frozen lines)."""
    bits, flags = np.asarray(bits), np.asarray(flags, bool)
    if bits.shape != flags.shape:
        raise ValueError(f"values {bits.shape} and flags {flags.shape} differ in shape")
    rows = np.arange(len(bits)).reshape((-1,) + (1,) * (bits.ndim - 1))
    last_sent = np.maximum.accumulate(np.where(flags, -1, rows), axis=0)
    held = np.take_along_axis(bits, np.maximum(last_sent, 0), axis=0)
    return np.where(last_sent >= 0, held, 0).astype(bits.dtype)


def sent_operand(bits, fmt, gating):
    """What the sender in front of a unit puts out for operand ``bits`` (rows = transfers) under ``gating``:
    (values on the data lines, ``is_zero`` flags). Flags mark ±0 unless gating is ``none``; with ``hold``
    a flagged value is not sent (:func:`held_lines`)."""
    gating = Gating.parse(gating)
    flags = fp.is_zero(bits, fmt) & gating.flags_zeros
    return (held_lines(bits, flags) if gating is Gating.HOLD else bits), flags


def hmma_operands(batch, *, m=4, n=4, k=4, weight_density=1.0, act_density=1.0, seed=0):
    """``batch`` HMMA instructions: A activations [batch, m, k], B weights [batch, k, n] (FP16), C [batch, m, n]
    (FP32), as bit patterns."""
    rng = np.random.default_rng(seed)
    a = sparse_bits((batch, m, k), act_density, rng)
    b = sparse_bits((batch, k, n), weight_density, rng)
    c = fp.to_bits(rng.standard_normal((batch, m, n)).astype(np.float32), fp.FP32)
    return a, b, c


#: Every ascending pair of positions in a 2:4 group (the kept indices a group can have).
INDEX_PAIRS = np.array([(lo, hi) for lo in range(4) for hi in range(lo + 1, 4)], np.uint8)


def index_pairs(shape, rng):
    """Random kept indices of 2:4 groups: uint8 ``shape + (2,)``, each group's pair drawn uniformly from the six
    ascending pairs."""
    return INDEX_PAIRS[rng.integers(0, len(INDEX_PAIRS), shape)]


def hmma_sparse_operands(batch, *, m=4, n=4, k=4, weight_density=1.0, act_density=1.0, seed=0):
    """``batch`` 2:4 sparse instructions (:func:`accel.golden.hmma.hmma_sparse`): kept weight values [batch, m, k]
    (FP16, each non-zero with ``weight_density``) and their indices [batch, m, k] (random ascending pairs per
    group), activations B [batch, 2k, n] (FP16, non-zero with ``act_density``), C [batch, m, n] (FP32)."""
    if k % 2:
        raise ValueError(f"k (kept values per row) must be even, not {k}")
    rng = np.random.default_rng(seed)
    values = sparse_bits((batch, m, k), weight_density, rng)
    indices = index_pairs((batch, m, k // 2), rng).reshape(batch, m, k)
    b = sparse_bits((batch, 2 * k, n), act_density, rng)
    c = fp.to_bits(rng.standard_normal((batch, m, n)).astype(np.float32), fp.FP32)
    return values, indices, b, c
