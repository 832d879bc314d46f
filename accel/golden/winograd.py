"""Winograd convolution F(m×m, 3×3), m = 2 or 4: transform matrices, the three transforms, the
convolution on 4×4×4 HMMA instructions, its accuracy against float64 and its effect on sparsity.

Matrices (Cook–Toom, exact rationals). For finite points a_0..a_{n-2} plus ∞ (n = m + 2), correlation
``y = Aᵀ[(G g) ⊙ (Bᵀ d)]`` is the transpose of polynomial multiplication evaluated at the points:

- ``Aᵀ[i][j] = a_j**i`` (the ∞ column is the unit vector e_{m−1});
- ``G[j][k] = a_j**k / f_j`` with ``f_j = Π_{l≠j}(a_j − a_l)`` (the ∞ row is e_2);
- row j of ``Bᵀ`` holds the coefficients (ascending) of ``Π_{l≠j}(x − a_l)`` (the ∞ row: ``Π_l(x − a_l)``).

The 1/f_j of the Lagrange basis sits in G (offline), so Bᵀ and Aᵀ keep small dyadic constants. With the
default points every constant is ±2^a or ±(2^a ± 2^b): one or two power-of-two terms (an exponent
adjustment, plus an add).

Transform order (the hardware follows it stage for stage). A 2-D transform ``M·X·Mᵀ`` is a row pass
``T = M·X`` (output row i = Σ_j M[i][j]·X[j, :]) then the same 1-D pass on the columns of T. In a 1-D
pass each constant is split into its power-of-two terms (:func:`pow2_terms`); an output's terms, listed
by source index then by falling exponent, are scaled (an exact scale by 2^e with the sign applied, then
one rounding; with e = 0 only the sign bit flips) and summed by :func:`reduce_tree`: neighbours are added
pairwise, level by level, an odd last item passing to the next level.
"""

from fractions import Fraction
from typing import NamedTuple

import numpy as np

from . import fp
from .gating import Gating
from .hmma import hmma, hmma_24
from .schedule import KERNELS, TILE, direct_gemms, gemm_schedule, inner_rows, winograd_gemms

__all__ = ["POINT_SETS", "DEFAULT_POINTS", "PRECISIONS", "DEFAULT_PRECISION", "points_for", "matrices",
           "pow2_terms", "Term", "pass_plan", "tree_level", "tree_depth", "reduce_tree", "convert",
           "transform_2d", "input_transform", "filter_transform", "output_transform", "fraction_to_bits",
           "run_gemms", "direct_conv", "winograd_conv", "winograd_operands", "winograd_conv_transformed",
           "reference_conv", "ALGORITHMS", "LAYERS", "random_layer", "run_algorithm", "accuracy", "zero_fraction",
           "sparsity"]

# Finite interpolation points (∞ is always added). F2 needs 3, F4 needs 5.
POINT_SETS = {
    "f2": (0, 1, -1),
    "f4": (0, 1, -1, Fraction(1, 2), -2),
    "lavin4": (0, 1, -1, 2, -2),
}
DEFAULT_POINTS = {2: "f2", 4: "f4"}
PRECISIONS = ("fp16", "fp32")
DEFAULT_PRECISION = "fp16"   # docs/winograd.md: FP32 adds cut the F4 error 1.4x for twice the unit's area


def points_for(m, points=None):
    """The finite points (as Fractions) for F(m×m, 3×3): a name of :data:`POINT_SETS` or a sequence."""
    if m not in DEFAULT_POINTS:
        raise ValueError(f"m must be 2 or 4, not {m!r}")
    points = DEFAULT_POINTS[m] if points is None else points
    if isinstance(points, str):
        if points not in POINT_SETS:
            raise ValueError(f"unknown point set {points!r}; known: {', '.join(POINT_SETS)}")
        points = POINT_SETS[points]
    points = tuple(Fraction(p) for p in points)
    if len(points) != m + 1 or len(set(points)) != len(points):
        raise ValueError(f"F({m}x{m},3x3) needs {m + 1} distinct finite points, not {points!r}")
    return points


def _poly_from_roots(roots):
    """Ascending coefficients of Π(x − r)."""
    coeffs = [Fraction(1)]
    for r in roots:
        coeffs = [shifted - r * c for c, shifted in zip(coeffs + [0], [0] + coeffs)]
    return coeffs


def matrices(points, r=3):
    """(AT, G, BT) as lists of Fraction rows for the finite ``points`` (plus ∞), filter size ``r``."""
    points = [Fraction(p) for p in points]
    n = len(points) + 1
    m = n - r + 1
    at = [[a ** i for a in points] + [Fraction(int(i == m - 1))] for i in range(m)]
    g, bt = [], []
    for j, a in enumerate(points):
        others = points[:j] + points[j + 1:]
        f = np.prod([a - b for b in others], dtype=object)
        g.append([a ** k / f for k in range(r)])
        bt.append(_poly_from_roots(others) + [Fraction(0)])
    g.append([Fraction(int(k == r - 1)) for k in range(r)])
    bt.append(_poly_from_roots(points))
    return at, g, bt


def pow2_terms(c):
    """Signed power-of-two terms of dyadic ``c`` (non-adjacent form): [(negative, exponent)], largest
    first. ``3/2`` → ``[(False, 1), (True, -1)]`` (2 − ½). ValueError if ``c`` is not dyadic."""
    c = Fraction(c)
    den = c.denominator
    if den & (den - 1):
        raise ValueError(f"{c} is not a sum of powers of two")
    num, low, terms = c.numerator, -(den.bit_length() - 1), []
    while num:
        if num & 1:
            digit = 2 - (num & 3)        # +1 or −1, chosen so that the next digit is 0
            terms.append((digit < 0, low))
            num -= digit
        num >>= 1
        low += 1
    return terms[::-1]


class Term(NamedTuple):
    """One scaled source of a 1-D pass output: ``±source · 2**shift``."""

    source: int
    negate: bool
    shift: int


def pass_plan(matrix):
    """Per output row of ``matrix``: its terms, by source index, then by falling exponent."""
    return [[Term(j, neg, e) for j, c in enumerate(row) for neg, e in pow2_terms(c)] for row in matrix]


def tree_level(items, add):
    """One level of the sum order: neighbours added pairwise, an odd last item passed on unchanged."""
    return [add(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)] + items[len(items) & ~1:]


def tree_depth(count):
    """Levels :func:`reduce_tree` needs for ``count`` items."""
    return (count - 1).bit_length()


def reduce_tree(items, add):
    """Sum ``items`` in the fixed order: :func:`tree_level` until one item is left."""
    while len(items) > 1:
        items = tree_level(items, add)
    return items[0]


def _raw(bits, fmt):
    """Exact raw value of ``fmt`` bit patterns (for :func:`fp.round_pack`)."""
    sign, exp, man = fp.unpack(bits, fmt)
    normal = exp != 0
    special = exp == fmt.exp_max_field
    return fp.Raw(sign=sign, lsb_exp=np.where(normal, exp, 1) - fmt.bias - fmt.man_bits,
                  sig=np.where(normal, man | (1 << fmt.man_bits), man), nan=special & (man != 0),
                  inf=special & (man == 0), zero=~normal & (man == 0))


def convert(bits, fmt_in, fmt_out, shift=0, negate=False):
    """``±bits · 2**shift`` from ``fmt_in`` to ``fmt_out``: exact scale, then one rounding (RNE,
    subnormals kept, overflow to ±Inf, NaN canonical). Same format and ``shift`` 0: only the sign flips."""
    bits = np.asarray(bits).astype(fmt_in.dtype)
    if fmt_in == fmt_out and shift == 0:
        return bits ^ fmt_in.dtype(fmt_in.sign_mask if negate else 0)
    raw = _raw(bits, fmt_in)
    raw.sign = raw.sign ^ int(negate)
    raw.lsb_exp = raw.lsb_exp + shift
    return fp.round_pack(raw, fmt_out)


def _pass(x, plan, fmt_in, fmt):
    """1-D pass over the rows of ``x`` [..., n, n]: output row i = Σ terms of plan[i], in ``fmt``."""
    rows = [x[..., j, :] for j in range(x.shape[-2])]
    return np.stack([reduce_tree([convert(rows[t.source], fmt_in, fmt, t.shift, t.negate) for t in terms],
                                 lambda a, b: fp.add(a, b, fmt)) for terms in plan], axis=-2)


def transform_2d(x, plan, fmt_in, fmt):
    """``M·x·Mᵀ`` for ``plan = pass_plan(M)``: row pass (``fmt_in`` → ``fmt``), then column pass."""
    t = _pass(x, plan, fmt_in, fmt)
    return np.swapaxes(_pass(np.swapaxes(t, -1, -2), plan, fmt, fmt), -1, -2)


def input_transform(d, m, points=None, precision=DEFAULT_PRECISION):
    """V = Bᵀ·d·B on FP16 tiles ``d`` [..., n, n] → FP16 [..., n, n]. ``fp16``: every scale and add rounds
    to FP16. ``fp32``: operands widened exactly to FP32, FP32 adds, one rounding to FP16 at the end."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    plan = pass_plan(matrices(points_for(m, points))[2])
    d = np.asarray(d, np.uint16)
    if precision == "fp16":
        return transform_2d(d, plan, fp.FP16, fp.FP16)
    return convert(transform_2d(d, plan, fp.FP16, fp.FP32), fp.FP32, fp.FP16)


def output_transform(mt, m, points=None):
    """Y = Aᵀ·M·A in FP32 on Winograd-domain tiles ``mt`` uint32 [..., n, n] → [..., m, m]."""
    plan = pass_plan(matrices(points_for(m, points))[0])
    return transform_2d(np.asarray(mt, np.uint32), plan, fp.FP32, fp.FP32)


def fraction_to_bits(q, fmt=fp.FP16):
    """Exact rational ``q`` rounded once to ``fmt`` (nearest, ties to even; subnormals; overflow to Inf)."""
    q = Fraction(q)
    sign = int(q < 0) << (fmt.width - 1)
    q = abs(q)
    if q == 0:
        return sign
    exp = max(q.numerator.bit_length() - q.denominator.bit_length(), fmt.emin)
    if exp > fmt.emin and q < Fraction(2) ** exp:      # the estimate can be one too high
        exp -= 1
    sig = round(q / Fraction(2) ** (exp - fmt.man_bits))   # Fraction rounds half to even
    if sig >> fmt.sig_bits:
        sig, exp = sig >> 1, exp + 1                  # rounding carried to the next binade (exact)
    if exp > fmt.emax:
        return sign | (fmt.exp_max_field << fmt.man_bits)
    field = exp + fmt.bias if sig >> fmt.man_bits else 0
    return sign | (field << fmt.man_bits) | (sig & ((1 << fmt.man_bits) - 1))


def filter_transform(g, m, points=None):
    """U = G·g·Gᵀ offline: exact rationals from FP16 ``g`` [..., 3, 3], one rounding to FP16 [..., n, n]."""
    g = np.asarray(g, np.uint16)
    if not np.all(np.isfinite(fp.from_bits(g, fp.FP16))):
        raise ValueError("filter_transform needs finite weights (no Inf or NaN)")
    gm = np.array(matrices(points_for(m, points))[1], dtype=object)
    exact = np.vectorize(Fraction, otypes=[object])(fp.from_bits(g, fp.FP16).astype(np.float64))
    u = gm @ exact @ gm.T
    return np.vectorize(fraction_to_bits, otypes=[np.uint16])(u).astype(np.uint16)


def run_gemms(shape, a, b, gating=Gating.HOLD):
    """Execute the schedule of ``shape`` on golden HMMA: ``a`` FP16 [G, rows, inner], ``b`` FP16
    [G, inner, cols] → D FP32 [G, rows, cols]. Instructions of one chain step run as one batch: they
    belong to different chains, so this equals running them one by one in schedule order. A shape of
    depth 8 runs 2:4 sparse instructions (:func:`~accel.golden.hmma.hmma_24`: ``a`` must be 2:4 in every
    group of 4 inner rows)."""
    rows, cols, inner = shape.padded
    pad = lambda x, r, c: np.pad(x, ((0, 0), (0, r - x.shape[1]), (0, c - x.shape[2])))  # noqa: E731
    a, b = pad(np.asarray(a, np.uint16), rows, inner), pad(np.asarray(b, np.uint16), inner, cols)
    tile, depth = np.arange(TILE), np.arange(shape.depth)
    instruction = hmma if shape.depth == TILE else hmma_24
    d = np.zeros((shape.gemms, rows, cols), np.uint32)
    schedule = gemm_schedule(shape)
    for step in sorted({ins.step for ins in schedule}):
        batch = [ins for ins in schedule if ins.step == step]
        g, r, c, k = (np.array([getattr(ins, f) for ins in batch]) for f in ("gemm", "row", "col", "inner"))
        ri, ci, ki = r[:, None] + tile, c[:, None] + tile, k[:, None] + depth
        acc = d[g[:, None, None], ri[:, :, None], ci[:, None, :]]
        out = instruction(a[g[:, None, None], ri[:, :, None], ki[:, None, :]],
                   b[g[:, None, None], ki[:, :, None], ci[:, None, :]], acc, gating)
        d[g[:, None, None], ri[:, :, None], ci[:, None, :]] = out
    return d[:, :shape.rows, :shape.cols]


def _check_layer(x, w, kernels=(3,)):
    x, w = np.asarray(x, np.uint16), np.asarray(w, np.uint16)
    k = w.shape[2] if w.ndim == 4 else 0
    if x.ndim != 3 or w.ndim != 4 or w.shape[1] != x.shape[0] or k not in kernels or w.shape[3] != k \
            or min(x.shape[1:]) < k:
        sizes = " or ".join(f"{n}x{n}" for n in kernels)
        raise ValueError(f"need x [C,H,W] and w [K,C,k,k] ({sizes}, H, W >= k); got x {x.shape}, w {w.shape}")
    return x, w


def im2col_operands(x, w, order="channel_major"):
    """The GEMM of a direct convolution with inner rows in ``order`` (:func:`~accel.golden.schedule.inner_rows`):
    (shape, A uint16 [K, inner], B uint16 [inner, OH·OW]) for FP16 x [C,H,W], w [K,C,k,k] (k = 3 or 1;
    padding +0)."""
    x, w = _check_layer(x, w, KERNELS)
    (chans, h, wd), filters, kernel = x.shape, w.shape[0], w.shape[2]
    oh, ow = h - kernel + 1, wd - kernel + 1
    c, ky, kx = inner_rows(chans, order, kernel)
    live = c < chans
    cc = np.where(live, c, 0)
    a = np.where(live, w[:, cc, ky, kx], 0).astype(np.uint16)
    oy, ox = np.divmod(np.arange(oh * ow), ow)
    b = np.where(live[:, None], x[cc[:, None], ky[:, None] + oy, kx[:, None] + ox], 0).astype(np.uint16)
    return direct_gemms(chans, filters, oh, ow, order, kernel), a, b


def direct_conv(x, w, gating=Gating.HOLD, order="channel_major"):
    """Valid correlation as an im2col GEMM on HMMA instructions: FP16 x [C,H,W], w [K,C,k,k] (k = 3 or 1)
    → FP32 [K,H−k+1,W−k+1]. Inner rows in ``order`` (``channel_major``: (c, ky, kx), c-major); each output
    is one chain."""
    shape, a, b = im2col_operands(x, w, order)
    kernel = np.shape(w)[2]
    oh, ow = np.shape(x)[1] - kernel + 1, np.shape(x)[2] - kernel + 1
    return run_gemms(shape, a[None], b[None], gating).reshape(shape.rows, oh, ow)


def winograd_conv(x, w, m, points=None, precision=DEFAULT_PRECISION, gating=Gating.HOLD):
    """Valid 3×3 correlation by F(m×m, 3×3): FP16 x [C,H,W], w [K,C,3,3] → FP32 [K,H−2,W−2].

    The input is padded with +0 to whole tiles and the output cropped. V (input transform) and U
    (filter transform) feed (m+2)² GEMMs U[ξν] [K,C] · V[ξν] [C,tiles] on HMMA instructions; the
    Winograd-domain results go through the FP32 output transform.
    """
    x, w = _check_layer(x, w)
    return winograd_conv_transformed(x, filter_transform(w, m, points), m, points, precision, gating)


def winograd_operands(x, u, m, points=None, precision=DEFAULT_PRECISION):
    """The Winograd-domain GEMMs of x [C,H,W] and transformed filters ``u`` FP16 [K, C, m+2, m+2]:
    (shape, A uint16 [(m+2)², K, C] = U, B uint16 [(m+2)², C, tiles] = V of the input tiles, row-major
    tile order, the input padded with +0 to whole tiles)."""
    x, u = np.asarray(x, np.uint16), np.asarray(u, np.uint16)
    (chans, h, wd), filters, n = x.shape, u.shape[0], m + 2
    if u.ndim != 4 or u.shape[1:] != (chans, n, n) or min(h, wd) < 3:
        raise ValueError(f"need x [C,H,W] (H, W >= 3) and u [K,C,{n},{n}]; got x {x.shape}, u {u.shape}")
    oh, ow = h - 2, wd - 2
    th, tw = -(-oh // m), -(-ow // m)
    xp = np.pad(x, ((0, 0), (0, th * m + 2 - h), (0, tw * m + 2 - wd)))
    tiles = np.stack([xp[:, ty * m:ty * m + n, tx * m:tx * m + n] for ty in range(th) for tx in range(tw)], 1)
    v = input_transform(tiles, m, points, precision)                         # [C, T, n, n]
    a = u.reshape(filters, chans, n * n).transpose(2, 0, 1)                  # [n², K, C]
    b = v.reshape(chans, th * tw, n * n).transpose(2, 0, 1)                  # [n², C, T]
    return winograd_gemms(chans, filters, oh, ow, m), a, b


def winograd_conv_transformed(x, u, m, points=None, precision=DEFAULT_PRECISION, gating=Gating.HOLD):
    """:func:`winograd_conv` on filters already transformed: ``u`` FP16 [K, C, m+2, m+2] (as the
    accelerator's weight buffer holds them: a compressed stream decodes a stored −0 to +0)."""
    shape, a, b = winograd_operands(x, u, m, points, precision)
    (oh, ow), n = (s - 2 for s in np.shape(x)[1:]), m + 2
    th, tw = -(-oh // m), -(-ow // m)
    mt = run_gemms(shape, a, b, gating)                                      # [n², K, T]
    y = output_transform(mt.transpose(1, 2, 0).reshape(shape.rows, th, tw, n, n), m, points)
    return y.transpose(0, 1, 3, 2, 4).reshape(shape.rows, th * m, tw * m)[:, :oh, :ow]


def reference_conv(x, w):
    """float64 valid 3×3 correlation of the FP16 values (the accuracy reference)."""
    x64, w64 = (fp.from_bits(np.asarray(v, np.uint16), fp.FP16).astype(np.float64) for v in (x, w))
    oh, ow = x64.shape[1] - 2, x64.shape[2] - 2
    return sum(np.einsum("kc,chw->khw", w64[:, :, ky, kx], x64[:, ky:ky + oh, kx:kx + ow])
               for ky in range(3) for kx in range(3))


ALGORITHMS = [("direct", None, None, None)] + [
    (f"winograd{m}", m, points, precision) for m, points in ((2, "f2"), (4, "f4"), (4, "lavin4"))
    for precision in PRECISIONS]
LAYERS = ((8, 8, 18, 18), (5, 6, 13, 11), (16, 16, 34, 34))   # (C, K, H, W)


def random_layer(rng, chans, filters, h, w, kind):
    """FP16 bits of x (``normal``: N(0,1); ``relu``: max(N(0,1), 0), about half zeros) and w ~ N(0, 1/9C)."""
    x = rng.standard_normal((chans, h, w))
    if kind == "relu":
        x = np.maximum(x, 0)
    weights = rng.standard_normal((filters, chans, 3, 3)) / np.sqrt(9 * chans)
    return fp.to_bits(x, fp.FP16), fp.to_bits(weights, fp.FP16)


def run_algorithm(x, w, algo, gating=Gating.HOLD):
    """FP32 bits of one :data:`ALGORITHMS` entry on the layer."""
    _, m, points, precision = algo
    return direct_conv(x, w, gating) if m is None else winograd_conv(x, w, m, points, precision, gating)


def accuracy(layers=LAYERS, kinds=("normal", "relu"), seed=0):
    """Error against the float64 direct convolution, per data kind and algorithm label
    (``direct``, ``winograd4/f4/fp16``, ...): ``max_abs`` and ``rel_rms`` (RMS error / RMS of the
    reference), pooled over ``layers``."""
    result = {}
    for kind in kinds:
        rng = np.random.default_rng(seed)
        data = [random_layer(rng, *layer, kind) for layer in layers]
        refs = [reference_conv(x, w) for x, w in data]
        for algo in ALGORITHMS:
            errors = np.concatenate([(fp.from_bits(run_algorithm(x, w, algo), fp.FP32) - ref).ravel()
                                     for (x, w), ref in zip(data, refs)])
            rms_ref = np.sqrt(np.mean(np.concatenate([r.ravel() for r in refs]) ** 2))
            label = algo[0] if algo[1] is None else f"{algo[0]}/{algo[2]}/{algo[3]}"
            result.setdefault(kind, {})[label] = {"max_abs": float(np.abs(errors).max()),
                                                  "rel_rms": float(np.sqrt(np.mean(errors ** 2)) / rms_ref)}
    return result


def zero_fraction(bits):
    return float(np.mean(fp.is_zero(bits, fp.FP16)))


def sparsity(weight_density=0.1, act_density=0.5, chans=16, filters=16, size=18, seed=0):
    """What the transforms do to zeros, per point set: zero fractions of g vs U (weights pruned at random
    to ``weight_density``) and of d vs V (ReLU-like activations, ``act_density`` non-zero), and the useful
    multiplies (both operands non-zero: what ``hold`` gating leaves) per output value, direct vs Winograd.
    ``size − 2`` must be a multiple of 4, so that every tile is whole."""
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal((chans, size, size))) * (rng.random((chans, size, size)) < act_density)
    w = rng.standard_normal((filters, chans, 3, 3)) * (rng.random((filters, chans, 3, 3)) < weight_density)
    x, w = fp.to_bits(x, fp.FP16), fp.to_bits(w, fp.FP16)
    out = size - 2
    live = lambda bits: ~fp.is_zero(bits, fp.FP16)  # noqa: E731
    w_live = live(w).sum(axis=0)                                         # [C, 3, 3]: filters per weight slot
    direct = sum(int(w_live[:, ky, kx] @ live(x[:, ky:ky + out, kx:kx + out]).sum(axis=(1, 2)))
                 for ky in range(3) for kx in range(3))
    result = {"g": zero_fraction(w), "d": zero_fraction(x), "direct_useful_per_output": direct / (filters * out * out),
              "direct_slots_per_output": 9 * chans}
    for name in POINT_SETS:
        m = len(POINT_SETS[name]) - 1
        n = m + 2
        tiles = np.stack([x[:, i:i + n, j:j + n] for i in range(0, out, m) for j in range(0, out, m)], 1)
        u, v = filter_transform(w, m, name), input_transform(tiles, m, name)
        useful = int(np.sum(live(u).sum(axis=0) * live(v).sum(axis=1)))      # Σ over (c, ξ, ν)
        result[name] = {"U": zero_fraction(u), "V": zero_fraction(v), "d_tiles": zero_fraction(tiles),
                        "useful_per_output": useful / (filters * out * out),
                        "slots_per_output": n * n * chans / (m * m)}
    return result
