"""Stimulus generators: random operands with a chosen density of non-zero values (seeded, reproducible)."""

import numpy as np

from ..golden import fp


def sparse_fp16(shape, density, rng):
    """FP16 bit patterns of normally distributed values, each non-zero with probability ``density``."""
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], not {density!r}")
    values = rng.standard_normal(shape).astype(np.float16)
    values[values == 0] = np.float16(1.0)  # a zero only where the density says so
    values[rng.random(shape) >= density] = 0
    return fp.to_bits(values, fp.FP16)


def hmma_operands(n, *, m=4, k=4, p=4, weight_density=1.0, act_density=1.0, seed=0):
    """``n`` HMMA instructions: A activations [n, m, k], B weights [n, k, p] (FP16), C [n, m, p] (FP32)."""
    rng = np.random.default_rng(seed)
    a = sparse_fp16((n, m, k), act_density, rng)
    b = sparse_fp16((n, k, p), weight_density, rng)
    c = fp.to_bits(rng.standard_normal((n, m, p)).astype(np.float32), fp.FP32)
    return a, b, c
