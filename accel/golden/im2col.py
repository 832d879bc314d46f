"""Direct convolution as an im2col GEMM in either inner order the hardware sequencer walks.

The GEMM is ``W [K, inner] · X [inner, OH·OW]``; row ``q`` of X (column ``q`` of W) is the input element
``(c, ky, kx)`` given by the inner order:

- ``channel_major``: ``q = 9c + 3ky + kx`` (golden's :func:`~accel.golden.winograd.direct_conv`), inner
  ``9C``;
- ``tap_blocks``: inner block ``b = 9·cb + 3ky + kx`` holds channels ``4cb .. 4cb + 3`` at one tap, row
  ``q = 4b + kk`` is channel ``4cb + kk``: the tile order of the compressed weight streams
  (:func:`accel.golden.sparse.conv_to_tiles`), where a 2:4 group (four input channels at one tap) is one
  column of a tile. C is padded to a multiple of 4: inner ``9·4·⌈C/4⌉``.

Both run on :func:`~accel.golden.winograd.run_gemms` (the schedule of :mod:`accel.golden.schedule`); the
order changes the chain order of each output's sum, hence its rounding.
"""

import numpy as np

from .gating import Gating
from .schedule import TILE, GemmShape
from .winograd import run_gemms

__all__ = ["INNER_ORDERS", "inner_rows", "im2col_shape", "im2col_operands", "im2col_conv"]

INNER_ORDERS = ("channel_major", "tap_blocks")


def inner_rows(channels, order):
    """(c, ky, kx) int arrays, one entry per inner row q (padding rows have c ≥ ``channels``)."""
    if order == "channel_major":
        q = np.arange(9 * channels)
        c, tap = q // 9, q % 9
    elif order == "tap_blocks":
        q = np.arange(9 * TILE * -(-channels // TILE))
        block, kk = q // TILE, q % TILE
        c, tap = TILE * (block // 9) + kk, block % 9
    else:
        raise ValueError(f"order must be one of {', '.join(INNER_ORDERS)}, not {order!r}")
    return c, tap // 3, tap % 3


def im2col_shape(channels, filters, out_h, out_w, order):
    """The GEMM shape of a direct conv in ``order``."""
    return GemmShape(gemms=1, rows=filters, cols=out_h * out_w, inner=len(inner_rows(channels, order)[0]))


def im2col_operands(x, w, order):
    """The GEMM of a direct conv in ``order``: (shape, A uint16 [K, inner], B uint16 [inner, OH·OW]) for
    FP16 x [C,H,W], w [K,C,3,3] (padding rows +0)."""
    x, w = np.asarray(x, np.uint16), np.asarray(w, np.uint16)
    if x.ndim != 3 or w.ndim != 4 or w.shape[1:] != (x.shape[0], 3, 3) or min(x.shape[1:]) < 3:
        raise ValueError(f"need x [C,H,W] (H, W >= 3) and w [K,C,3,3]; got x {x.shape}, w {w.shape}")
    (chans, h, wd), filters = x.shape, w.shape[0]
    oh, ow = h - 2, wd - 2
    c, ky, kx = inner_rows(chans, order)
    live = c < chans
    cc = np.where(live, c, 0)
    a = np.where(live, w[:, cc, ky, kx], 0).astype(np.uint16)
    oy, ox = np.divmod(np.arange(oh * ow), ow)
    b = np.where(live[:, None], x[cc[:, None], ky[:, None] + oy, kx[:, None] + ox], 0).astype(np.uint16)
    return im2col_shape(chans, filters, oh, ow, order), a, b


def im2col_conv(x, w, order, gating=Gating.HOLD):
    """Valid 3×3 correlation as the im2col GEMM in ``order`` on HMMA instructions: FP16 x [C,H,W],
    w [K,C,3,3] → FP32 [K,H−2,W−2]. ``channel_major`` equals ``direct_conv``."""
    shape, a, b = im2col_operands(x, w, order)
    oh, ow = np.asarray(x).shape[1] - 2, np.asarray(x).shape[2] - 2
    return run_gemms(shape, a[None], b[None], gating).reshape(shape.rows, oh, ow)
