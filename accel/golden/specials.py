"""Special operand values every FP test pairs up: ±0, min/max subnormal, min/max normal, ±Inf, quiet and
signalling NaNs, ±1 and its neighbours (for cancellation), and values that overflow when combined."""

import numpy as np

from . import fp

SPECIAL_FP16 = [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400, 0x7BFF, 0xFBFF,
                0x7C00, 0xFC00, 0x7E00, 0xFE00, 0x7C01, 0x7D55, 0x3C00, 0xBC00, 0x3C01, 0xBBFF, 0x0200]
SPECIAL_FP32 = [0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF, 0x807FFFFF, 0x00800000,
                0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000,
                0x7F800001, 0x7FA00000, 0x3F800000, 0xBF800000, 0x3F800001, 0xBF7FFFFF, 0x7F000000,
                0x00400000, 0x33800000, 0xB3800000, 0x4B800000]

SPECIALS = {fp.FP16: SPECIAL_FP16, fp.FP32: SPECIAL_FP32}


def special_pairs(fmt):
    """Every ordered pair of the format's special values, as two bit-pattern arrays."""
    values = np.array(SPECIALS[fmt], fmt.dtype)
    return np.repeat(values, len(values)), np.tile(values, len(values))


def mix_specials(rng, bits, fmt, fraction):
    """Overwrite about ``fraction`` of the elements of ``bits`` (in place) with random special values."""
    mask = rng.random(bits.shape) < fraction
    bits[mask] = rng.choice(np.array(SPECIALS[fmt], bits.dtype), mask.sum())
    return bits
