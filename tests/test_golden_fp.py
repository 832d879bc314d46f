"""golden/fp.py against Berkeley SoftFloat (softfloatpy) and numpy, bit for bit."""

import numpy as np
import pytest
import softfloatpy as sf

from accel.golden import fp
from accel.golden.specials import special_pairs

RANDOM_PAIRS = 1_000_000


def random_pairs(dtype, bits, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 1 << bits, RANDOM_PAIRS, dtype=dtype),
            rng.integers(0, 1 << bits, RANDOM_PAIRS, dtype=dtype))


def softfloat_map(op, a, b, to_operand, result_bytes):
    """Apply a SoftFloat operation pairwise to big-endian bit patterns; return uint bit patterns."""
    width = a.dtype.itemsize
    a_bytes, b_bytes = a.astype(f">u{width}").tobytes(), b.astype(f">u{width}").tobytes()
    out = bytearray()
    for i in range(0, len(a_bytes), width):
        out += op(to_operand(a_bytes[i:i + width]), to_operand(b_bytes[i:i + width])).to_bytes()
    return np.frombuffer(bytes(out), dtype=f">u{result_bytes}").astype(f"u{result_bytes}")


def softfloat_mul16_to32(a, b):
    widen = lambda raw: sf.f16_to_f32(sf.Float16.from_bytes(raw))  # noqa: E731
    return softfloat_map(sf.f32_mul, a, b, widen, 4)


def softfloat_add32(a, b):
    return softfloat_map(sf.f32_add, a, b, sf.Float32.from_bytes, 4)


def softfloat_add16(a, b):
    return softfloat_map(sf.f16_add, a, b, sf.Float16.from_bytes, 2)


def check_against(golden, reference):
    mismatches = np.nonzero(golden != reference)[0]
    assert mismatches.size == 0, (
        f"{mismatches.size} mismatches, first at {mismatches[0]}: "
        f"golden {int(golden[mismatches[0]]):#x} reference {int(reference[mismatches[0]]):#x}")


@pytest.mark.parametrize("pairs", ["special", "random"])
def test_mul_fp16_exact_in_fp32_matches_softfloat(pairs):
    a, b = special_pairs(fp.FP16) if pairs == "special" else random_pairs(np.uint16, 16, 1)
    check_against(fp.mul(a, b, fp.FP16, fp.FP32), softfloat_mul16_to32(a, b))


@pytest.mark.parametrize("pairs", ["special", "random", "cancelling"])
def test_add_fp32_matches_softfloat(pairs):
    if pairs == "special":
        a, b = special_pairs(fp.FP32)
    elif pairs == "random":
        a, b = random_pairs(np.uint32, 32, 2)
    else:  # opposite signs, nearly equal magnitudes: massive cancellation and exact zeros
        a, _ = random_pairs(np.uint32, 32, 3)
        b = a ^ np.uint32(0x80000000) ^ np.random.default_rng(4).integers(0, 64, a.size, dtype=np.uint32)
    check_against(fp.add(a, b, fp.FP32), softfloat_add32(a, b))


@pytest.mark.parametrize("pairs", ["special", "random"])
def test_add_fp16_matches_softfloat(pairs):
    a, b = special_pairs(fp.FP16) if pairs == "special" else random_pairs(np.uint16, 16, 5)
    check_against(fp.add(a, b, fp.FP16), softfloat_add16(a, b))


def test_add_fp32_matches_numpy_float32():
    a, b = random_pairs(np.uint32, 32, 6)
    with np.errstate(all="ignore"):
        reference = (a.view(np.float32) + b.view(np.float32)).view(np.uint32)
    reference = np.where(np.isnan(reference.view(np.float32)), np.uint32(fp.FP32.canonical_nan), reference)
    check_against(fp.add(a, b, fp.FP32), reference)


def test_nan_results_are_canonical():
    inf, ninf = np.uint32(0x7F800000), np.uint32(0xFF800000)
    assert fp.add(np.array([inf]), np.array([ninf]))[0] == 0x7FC00000
    assert fp.mul(np.array([0x7C00], np.uint16), np.array([0x0000], np.uint16))[0] == 0x7FC00000
    assert fp.mul(np.array([0xFE01], np.uint16), np.array([0x3C00], np.uint16))[0] == 0x7FC00000


def test_signed_zero_sums():
    pz, nz = 0x00000000, 0x80000000
    a = np.array([pz, nz, pz, nz, 0x3F800000], np.uint32)
    b = np.array([pz, nz, nz, pz, 0xBF800000], np.uint32)
    assert fp.add(a, b).tolist() == [pz, nz, pz, pz, pz]


def test_add_gated_skips_flagged_operand():
    a = np.array([0x3F800000, 0x80000000, 0x7F800000], np.uint32)
    b = np.array([0x80000000, 0x00000000, 0xFF800000], np.uint32)
    flags = np.array([True, True, False])
    # Skipping keeps a's -0 (IEEE would give +0) and is the only deviation besides 0*Inf.
    assert fp.add_gated(a, b, flags).tolist() == [0x3F800000, 0x80000000, 0x7FC00000]


def test_format_table():
    assert (fp.FP16.width, fp.FP16.bias, fp.FP16.canonical_nan) == (16, 15, 0x7E00)
    assert (fp.FP32.width, fp.FP32.bias, fp.FP32.canonical_nan) == (32, 127, 0x7FC00000)
    assert (fp.BF16.exp_bits, fp.BF16.man_bits) == (8, 7)
    assert fp.format_by_name("fp16") is fp.FP16
    with pytest.raises(ValueError, match="fp64"):
        fp.format_by_name("fp64")
    with pytest.raises(ValueError, match="exp_bits"):
        fp.FloatFormat("bad", 1, 10)
