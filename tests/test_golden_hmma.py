"""golden/hmma.py against SoftFloat in chain order and against numpy float32."""

import numpy as np
import pytest
import softfloatpy as sf

from accel.golden import hmma as golden
from accel.golden import fp
from accel.golden.gating import GATING_STYLES
from accel.golden.operands import hmma_operands

from accel.golden.specials import mix_specials


def softfloat_hmma(a, b, c, gating):
    """The chain order done element by element with SoftFloat; skipped products per the contract."""
    n, m, kk = a.shape
    p = b.shape[2]
    d = np.zeros((n, m, p), np.uint32)
    f16 = lambda bits: sf.f16_to_f32(sf.Float16.from_bytes(int(bits).to_bytes(2, "big")))  # noqa: E731
    for s in range(n):
        for i in range(m):
            for j in range(p):
                acc = sf.Float32.from_bytes(int(c[s, i, j]).to_bytes(4, "big"))
                for k in range(kk):
                    if gating == "hold" and (a[s, i, k] & 0x7FFF == 0 or b[s, k, j] & 0x7FFF == 0):
                        continue
                    acc = sf.f32_add(acc, sf.f32_mul(f16(a[s, i, k]), f16(b[s, k, j])))
                d[s, i, j] = int.from_bytes(acc.to_bytes(), "big")
    # every NaN result is the canonical one: SoftFloat makes it so for each add; a NaN C passed through
    # skipped products has had no add
    return np.where(fp.is_nan(d, fp.FP32), np.uint32(0x7FC00000), d)


def with_specials(a, b, c, seed):
    """Overwrite a fifth of the elements with special values (±0, subnormals, ±Inf, NaN, extremes)."""
    rng = np.random.default_rng(seed)
    return tuple(mix_specials(rng, array, fmt, 0.2) for array, fmt in ((a, fp.FP16), (b, fp.FP16), (c, fp.FP32)))


@pytest.mark.parametrize("gating", GATING_STYLES)
def test_hmma_matches_softfloat_chain(gating):
    a, b, c = with_specials(*hmma_operands(200, weight_density=0.5, act_density=0.6, seed=7), seed=8)
    np.testing.assert_array_equal(golden.hmma(a, b, c, gating), softfloat_hmma(a, b, c, gating))


@pytest.mark.parametrize("gating", ["and", "none"])
def test_ungated_hmma_equals_numpy_float32_chain(gating):
    a, b, c = hmma_operands(2000, weight_density=0.3, act_density=0.5, seed=9)
    acc = fp.from_bits(c, fp.FP32).copy()
    a32, b32 = fp.from_bits(a, fp.FP16).astype(np.float32), fp.from_bits(b, fp.FP16).astype(np.float32)
    for k in range(4):
        acc = acc + a32[:, :, k, None] * b32[:, None, k, :]
    np.testing.assert_array_equal(golden.hmma(a, b, c, gating), fp.to_bits(acc, fp.FP32))


def test_hold_differs_from_ieee_only_where_the_contract_says():
    # 0 * Inf: IEEE gives NaN, hold skips the product.
    a = np.zeros((1, 4, 4), np.uint16)
    a[0, 0, 0] = 0x0000
    b = np.full((1, 4, 4), 0x3C00, np.uint16)
    b[0, 0, 0] = 0x7C00
    c = np.full((1, 4, 4), 0x3F800000, np.uint32)
    assert golden.hmma(a, b, c, "none")[0, 0, 0] == 0x7FC00000
    assert golden.hmma(a, b, c, "hold")[0, 0, 0] == 0x3F800000
    # Signed zero: C = -0 with all products +0 stays -0 when skipped, becomes +0 in IEEE.
    c[...] = 0x80000000
    b[0, 0, 0] = 0x3C00
    assert golden.hmma(a, b, c, "hold")[0, 0, 0] == 0x80000000
    assert golden.hmma(a, b, c, "none")[0, 0, 0] == 0x00000000
    # A NaN C of any payload or sign passed through skipped products leaves canonical, as IEEE's does.
    c[0, 0, :] = [0x7F800001, 0xFFC00000, 0x7FC00001, 0xFFFFFFFF]
    assert list(golden.hmma(a, b, c, "hold")[0, 0]) == [0x7FC00000] * 4 == list(golden.hmma(a, b, c, "none")[0, 0])


def test_every_hold_deviation_is_one_of_the_contracts_two():
    """On special-heavy batches, every element where hold and IEEE (none) differ is a skipped 0 x Inf/NaN
    product or a -0 kept where IEEE gives +0; both occur, and every NaN hold gives is canonical."""
    a, b, c = with_specials(*hmma_operands(3000, weight_density=0.5, act_density=0.5, seed=21), seed=22)
    hold, ieee = golden.hmma(a, b, c, "hold"), golden.hmma(a, b, c, "none")
    a_zero, b_zero = fp.is_zero(a, fp.FP16), fp.is_zero(b, fp.FP16)
    a_special = fp.is_inf(a, fp.FP16) | fp.is_nan(a, fp.FP16)
    b_special = fp.is_inf(b, fp.FP16) | fp.is_nan(b, fp.FP16)
    # [n, i, j]: some k where one side is zero and the other Inf or NaN
    zero_times_special = ((a_zero[:, :, :, None] & b_special[:, None, :, :]) |
                          (a_special[:, :, :, None] & b_zero[:, None, :, :])).any(axis=2)
    signed_zero = (hold == 0x80000000) & (ieee == 0x00000000)
    differs = hold != ieee
    assert not (differs & ~zero_times_special & ~signed_zero).any()
    assert (differs & zero_times_special).any() and (differs & signed_zero).any()
    assert (hold[fp.is_nan(hold, fp.FP32)] == 0x7FC00000).all()


def test_gated_mac_count_counts_zero_operand_products():
    a = np.full((1, 4, 4), 0x3C00, np.uint16)
    b = np.full((1, 4, 4), 0x4000, np.uint16)
    a[0, 1, :] = 0x8000  # row 1 of A zero: 4 columns x 4 k = 16 products
    b[0, 2, 3] = 0x0000  # B[2][3] zero: 4 rows, one of them (row 1) already counted
    assert golden.gated_mac_count(a, b, "hold") == 16 + 3
    assert golden.gated_mac_count(a, b, "and") == 0
    assert golden.gated_mac_count(a, b, "none") == 0


def test_bad_parameters():
    a, b, c = hmma_operands(2, seed=1)
    with pytest.raises(ValueError, match="gating"):
        golden.hmma(a, b, c, "sometimes")
    with pytest.raises(ValueError, match="shapes"):
        golden.hmma(a, b[:, :3], c)
