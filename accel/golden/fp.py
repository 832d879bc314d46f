"""Bit-exact floating-point reference: one format table, raw exact arithmetic, one rounding step.

All functions are vectorised over numpy integer arrays of raw bit patterns (``uint16`` for FP16,
``uint32`` for FP32), so golden models of whole arrays run at numpy speed. Arithmetic follows the
HardFloat split: ``*_raw`` functions return an exact (or rounding-equivalent, with a sticky bit) raw
result, and :func:`round_pack` is the only place that rounds (IEEE 754 round-to-nearest-even,
subnormals kept, overflow to infinity, NaN results canonical). The hardware in ``accel.hw`` uses the
same format table and the same algorithm, stage for stage.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "FloatFormat", "FP16", "FP32", "BF16", "FORMATS", "format_by_name",
    "Raw", "unpack", "is_zero", "is_nan", "is_inf",
    "round_pack", "mul_raw", "mul", "add_raw", "add", "add_gated",
    "to_bits", "from_bits",
]


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754-style binary format given by its exponent and fraction widths (HardFloat style)."""

    name: str
    exp_bits: int
    man_bits: int

    def __post_init__(self):
        if not (isinstance(self.exp_bits, int) and 2 <= self.exp_bits <= 11):
            raise ValueError(f"exp_bits must be an integer in 2..11, not {self.exp_bits!r}")
        if not (isinstance(self.man_bits, int) and 1 <= self.man_bits <= 52):
            raise ValueError(f"man_bits must be an integer in 1..52, not {self.man_bits!r}")

    @property
    def width(self):
        return 1 + self.exp_bits + self.man_bits

    @property
    def sig_bits(self):
        """Significand precision including the hidden bit."""
        return self.man_bits + 1

    @property
    def bias(self):
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def exp_max_field(self):
        return (1 << self.exp_bits) - 1

    @property
    def emin(self):
        """Unbiased exponent of the smallest normal number."""
        return 1 - self.bias

    @property
    def emax(self):
        return self.bias

    @property
    def canonical_nan(self):
        """Positive quiet NaN with only the top fraction bit set (FP32: 0x7FC00000)."""
        return (self.exp_max_field << self.man_bits) | (1 << (self.man_bits - 1))

    @property
    def sign_mask(self):
        return 1 << (self.width - 1)

    @property
    def dtype(self):
        """Smallest numpy unsigned dtype that holds one bit pattern."""
        return np.uint16 if self.width <= 16 else np.uint32 if self.width <= 32 else np.uint64


FP16 = FloatFormat("fp16", 5, 10)
FP32 = FloatFormat("fp32", 8, 23)
BF16 = FloatFormat("bf16", 8, 7)
FORMATS = {f.name: f for f in (FP16, FP32, BF16)}


def format_by_name(name):
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown float format {name!r}; known: {', '.join(FORMATS)}") from None


def to_bits(values, fmt):
    """numpy float16/float32 values -> raw bit patterns of ``fmt``."""
    native = {FP16: np.float16, FP32: np.float32}[fmt]
    return np.asarray(values, dtype=native).view(fmt.dtype)


def from_bits(bits, fmt):
    """Raw bit patterns -> numpy float16/float32 values."""
    native = {FP16: np.float16, FP32: np.float32}[fmt]
    return np.asarray(bits, dtype=fmt.dtype).view(native)


def unpack(bits, fmt):
    """Split bit patterns into (sign, exponent field, fraction field) as int64 arrays."""
    bits = np.asarray(bits).astype(np.int64)
    sign = (bits >> (fmt.width - 1)) & 1
    exp = (bits >> fmt.man_bits) & fmt.exp_max_field
    man = bits & ((1 << fmt.man_bits) - 1)
    return sign, exp, man


def is_zero(bits, fmt):
    """True for +0 and -0: the zero flag a sender raises instead of sending the value."""
    _, exp, man = unpack(bits, fmt)
    return (exp == 0) & (man == 0)


def is_nan(bits, fmt):
    _, exp, man = unpack(bits, fmt)
    return (exp == fmt.exp_max_field) & (man != 0)


def is_inf(bits, fmt):
    _, exp, man = unpack(bits, fmt)
    return (exp == fmt.exp_max_field) & (man == 0)


@dataclass
class Raw:
    """A raw result: value = (-1)**sign * sig * 2**lsb_exp, unless nan / inf / zero say otherwise.

    ``sig`` is a non-negative integer; where it came from an alignment shift its least significant bit
    is a sticky bit (OR of everything shifted out), which rounds exactly as the infinite-precision value.
    """

    sign: np.ndarray
    lsb_exp: np.ndarray
    sig: np.ndarray
    nan: np.ndarray
    inf: np.ndarray
    zero: np.ndarray


def _significand(exp, man, fmt):
    """(integer significand with hidden bit, exponent of its LSB) for finite numbers."""
    normal = exp != 0
    sig = np.where(normal, man | (1 << fmt.man_bits), man)
    lsb_exp = np.where(normal, exp, 1) - fmt.bias - fmt.man_bits
    return sig, lsb_exp


def _operands(a, b, fmt):
    """For each operand: (sign, significand, LSB exponent, is NaN, is Inf, is zero)."""
    result = []
    for bits in (a, b):
        sign, exp, man = unpack(bits, fmt)
        sig, lsb_exp = _significand(exp, man, fmt)
        special = exp == fmt.exp_max_field
        result.append((sign, sig, lsb_exp, special & (man != 0), special & (man == 0), (exp == 0) & (man == 0)))
    return result


def _bit_length(x):
    """Vectorised int.bit_length for non-negative int64 values below 2**53."""
    _, e = np.frexp(x.astype(np.float64))
    return np.where(x == 0, 0, e).astype(np.int64)


def round_pack(raw, fmt):
    """Round a raw result to ``fmt`` (round-to-nearest-even) and pack it into bit patterns."""
    sig = np.asarray(raw.sig, dtype=np.int64)
    lead_exp = raw.lsb_exp + _bit_length(sig) - 1
    out_lsb = np.maximum(lead_exp, fmt.emin) - fmt.man_bits
    shift = out_lsb - raw.lsb_exp
    right = np.clip(shift, 0, 62)
    quotient = np.where(shift > 0, sig >> right, sig << np.clip(-shift, 0, 62))
    remainder = sig & ((np.int64(1) << right) - 1)
    half = np.where(right > 0, np.int64(1) << np.maximum(right - 1, 0), 0)
    round_up = (shift > 0) & ((remainder > half) | ((remainder == half) & ((quotient & 1) == 1)))
    quotient = quotient + round_up
    carried = quotient >> fmt.sig_bits != 0
    quotient = np.where(carried, quotient >> 1, quotient)
    out_lsb = out_lsb + carried
    normal = quotient >> fmt.man_bits != 0
    exp_field = np.where(normal, out_lsb + fmt.man_bits + fmt.bias, 0)
    man = quotient & ((1 << fmt.man_bits) - 1)
    overflow = exp_field >= fmt.exp_max_field
    inf = raw.inf | (overflow & ~raw.zero)
    exp_field = np.where(inf, fmt.exp_max_field, exp_field)
    man = np.where(inf | raw.zero | (sig == 0), 0, man)
    exp_field = np.where(raw.zero | (sig == 0) & ~inf, 0, exp_field)
    bits = (raw.sign << (fmt.width - 1)) | (exp_field << fmt.man_bits) | man
    bits = np.where(raw.nan, fmt.canonical_nan, bits)
    return bits.astype(fmt.dtype)


def mul_raw(a, b, fmt):
    """Exact product of two ``fmt`` bit-pattern arrays (no rounding happens here)."""
    (sa, siga, lsba, nan_a, inf_a, zero_a), (sb, sigb, lsbb, nan_b, inf_b, zero_b) = _operands(a, b, fmt)
    nan = nan_a | nan_b | (inf_a & zero_b) | (inf_b & zero_a)
    inf = (inf_a | inf_b) & ~nan
    zero = (zero_a | zero_b) & ~nan
    return Raw(sign=sa ^ sb, lsb_exp=lsba + lsbb, sig=siga * sigb, nan=nan, inf=inf, zero=zero)


def mul(a, b, fmt_in=FP16, fmt_out=FP32):
    """Product of ``fmt_in`` operands delivered in ``fmt_out`` (FP16 x FP16 -> FP32 is exact)."""
    return round_pack(mul_raw(a, b, fmt_in), fmt_out)


GUARD_BITS = 3  # guard, round and sticky: enough to round an aligned sum exactly


def add_raw(a, b, fmt):
    """Sum of two ``fmt`` operands, exact up to a sticky bit (a rounding-equivalent raw result)."""
    (sa, siga, lsba, nan_a, inf_a, _), (sb, sigb, lsbb, nan_b, inf_b, _) = _operands(a, b, fmt)
    nan = nan_a | nan_b | (inf_a & inf_b & (sa != sb))
    inf = (inf_a | inf_b) & ~nan
    inf_sign = np.where(inf_a, sa, sb)

    # Order by magnitude so that the larger operand is never shifted.
    a_bigger = (lsba > lsbb) | ((lsba == lsbb) & (siga >= sigb))
    s_big, sig_big, lsb_big = (np.where(a_bigger, x, y) for x, y in ((sa, sb), (siga, sigb), (lsba, lsbb)))
    s_small, sig_small, lsb_small = (np.where(a_bigger, y, x) for x, y in ((sa, sb), (siga, sigb), (lsba, lsbb)))
    distance = np.minimum(lsb_big - lsb_small, fmt.sig_bits + GUARD_BITS)
    big = sig_big << GUARD_BITS
    small_full = sig_small << GUARD_BITS
    small = small_full >> distance
    sticky = (small << distance) != small_full
    small = small | sticky
    total = np.where(s_big == s_small, big + small, big - small)
    exact_zero = total == 0
    # IEEE: an exact zero sum is +0 in round-to-nearest, except (-0) + (-0).
    sign = np.where(exact_zero, sa & sb, s_big)
    sign = np.where(inf, inf_sign, sign)
    return Raw(sign=sign, lsb_exp=lsb_big - GUARD_BITS, sig=total, nan=nan, inf=inf,
               zero=exact_zero & ~nan & ~inf)


def add(a, b, fmt=FP32):
    """IEEE sum of two ``fmt`` operands, round-to-nearest-even."""
    return round_pack(add_raw(a, b, fmt), fmt)


def add_gated(a, b, b_zero, fmt=FP32):
    """The zero-gated adder of the contract: a flagged ``b`` is skipped and ``a`` passes unchanged, except
    that a NaN ``a`` becomes the canonical NaN, as every NaN result does."""
    a = np.asarray(a).astype(fmt.dtype)
    passed = np.where(is_nan(a, fmt), fmt.canonical_nan, a).astype(fmt.dtype)
    return np.where(np.asarray(b_zero, dtype=bool), passed, add(a, b, fmt))
