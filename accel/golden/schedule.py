"""The conv-layer schedule: which 4×4×4 HMMA instructions run, in which order, on which operand tiles.

A convolution is a batch of GEMMs ``D[g] = A[g] · B[g]`` (``A`` weights: rows = output channels,
``B`` activations: columns = output pixels or Winograd tiles; inner index = input channels, or
(channel, ky, kx) for im2col). Each GEMM is padded with zeros to whole 4×4 tiles and cut into
instructions; an output tile's instructions form a *chain*: step 0 takes C = +0, step s > 0 takes the
D of step s − 1, and the last step's D is the result.

Order (one place, walked by golden and by a hardware sequencer): GEMM, row block, chain step, column
block. Consecutive instructions share their A tile (weights stay put across the columns) and belong to
different chains, so a chain's next step comes ``col_blocks`` instructions after its previous one,
which hides the array's latency when there are at least ``latency`` column blocks.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["TILE", "Instruction", "GemmShape", "gemm_schedule", "INNER_ORDERS", "inner_rows", "direct_gemms",
           "winograd_gemms", "multiplier_slots"]

TILE = 4   # the array is 4×4×4: A 4×4, B 4×4, C and D 4×4


@dataclass(frozen=True)
class Instruction:
    """One HMMA: A = A[gemm][row:row+4, inner:inner+4], B = B[gemm][inner:inner+4, col:col+4]."""

    gemm: int
    row: int
    col: int
    inner: int
    step: int     # position in its chain: C is +0 when 0, else the previous step's D
    last: bool    # D is the result of the output tile (row, col) of this GEMM


@dataclass(frozen=True)
class GemmShape:
    """``gemms`` GEMMs of ``rows`` × ``inner`` by ``inner`` × ``cols`` (before padding to whole tiles)."""

    gemms: int
    rows: int
    cols: int
    inner: int

    def blocks(self, size):
        return -(-size // TILE)

    @property
    def padded(self):
        """(rows, cols, inner) rounded up to whole tiles."""
        return tuple(self.blocks(s) * TILE for s in (self.rows, self.cols, self.inner))


def gemm_schedule(shape):
    """The instructions of ``shape`` in schedule order (a list of :class:`Instruction`)."""
    rows, cols, inner = (shape.blocks(s) for s in (shape.rows, shape.cols, shape.inner))
    return [Instruction(g, r * TILE, c * TILE, s * TILE, s, s == inner - 1)
            for g in range(shape.gemms) for r in range(rows) for s in range(inner) for c in range(cols)]


#: The two orders of a direct convolution's im2col inner index (see :func:`inner_rows`).
INNER_ORDERS = ("channel_major", "tap_blocks")


def inner_rows(channels, order):
    """(c, ky, kx) int arrays, one entry per im2col inner row q, in ``order``:

    - ``channel_major``: ``q = 9c + 3ky + kx``, inner ``9C`` (dense weights);
    - ``tap_blocks``: inner block ``b = 9·cb + 3ky + kx`` holds channels ``4cb .. 4cb + 3`` at one tap, row
      ``q = 4b + kk`` is channel ``4cb + kk``: the tile order of the compressed weight streams
      (:func:`accel.golden.sparse.conv_to_tiles`), where a 2:4 group (four input channels at one tap) is
      one column of a tile. C is padded to a multiple of 4 (padding rows have c ≥ ``channels``).

    The order decides the chain order of each output's sum, hence its rounding."""
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


def direct_gemms(channels, filters, out_h, out_w, order="channel_major"):
    """Direct 3×3 convolution as one im2col GEMM: [K, inner] · [inner, out_h·out_w], inner rows in ``order``."""
    return GemmShape(gemms=1, rows=filters, cols=out_h * out_w, inner=len(inner_rows(channels, order)[0]))


def winograd_gemms(channels, filters, out_h, out_w, m):
    """F(m×m, 3×3): (m+2)² GEMMs [K, C] · [C, tiles], one per Winograd-domain position."""
    tiles = -(-out_h // m) * -(-out_w // m)
    return GemmShape(gemms=(m + 2) ** 2, rows=filters, cols=tiles, inner=channels)


def multiplier_slots(schedule):
    """Multiplier slots issued: 64 per instruction (padding zeros included)."""
    return len(schedule) * TILE ** 3
