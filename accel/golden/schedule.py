"""The conv-layer schedule: which 4×4×4 HMMA instructions run, in which order, on which operand tiles.

A convolution is a batch of GEMMs ``D[g] = A[g] · B[g]`` (``A`` weights: rows = output channels,
``B`` activations: columns = output pixels or Winograd tiles; inner index = input channels, or
(channel, ky, kx) for im2col). Each GEMM is padded with zeros to whole 4×4 tiles and cut into
instructions; an output tile's instructions form a *chain*: step 0 takes C = +0, step s > 0 takes the
D of step s − 1, and the last step's D is the result.

Loop orders (one place, walked by golden and by the hardware sequencers), outermost first:

- ``DIRECT_LOOPS``: GEMM, chain step, row block, column block (the direct convolution's single GEMM,
  and the classifier's): all row blocks of one step before the next step, so a chain's next step comes
  ``row_blocks × col_blocks`` instructions later, which hides the array's latency on small layers too;
- ``WINOGRAD_LOOPS``: row block, chain step, column block, GEMM: the (m+2)² Winograd-domain GEMMs of one
  column block run back to back, so an instruction group needs the transformed inputs of one column
  block of one channel block only (16 input transforms feed (m+2)² ≥ 16 instructions: the input
  transform keeps up from the first column block on), and a column block's results are complete as soon
  as its last step's (m+2)² instructions are (its output transform runs beside the next column block's
  GEMMs). The (m+2)² A tiles of one (row block, chain step) are used in turn across its column blocks.

In the direct order consecutive instructions share their A tile (weights stay put across the columns);
in both, consecutive instructions belong to different chains, and a chain's next step comes
:func:`chain_gap` instructions after its previous one, which hides the array's latency when the gap
exceeds it. The order of the steps in a chain, and so every rounding, is the same in both orders.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["TILE", "Instruction", "GemmShape", "DIRECT_LOOPS", "WINOGRAD_LOOPS", "gemm_schedule", "chain_gap",
           "INNER_ORDERS", "KERNELS", "inner_rows", "direct_gemms", "winograd_gemms", "multiplier_slots"]

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


DIRECT_LOOPS = ("gemm", "step", "row", "col")
WINOGRAD_LOOPS = ("row", "step", "col", "gemm")


def gemm_schedule(shape, loops=DIRECT_LOOPS):
    """The instructions of ``shape`` in schedule order (a list of :class:`Instruction`); ``loops``: the loop
    order, outermost first (:data:`DIRECT_LOOPS` or :data:`WINOGRAD_LOOPS`)."""
    if loops not in (DIRECT_LOOPS, WINOGRAD_LOOPS):
        raise ValueError(f"loops must be DIRECT_LOOPS or WINOGRAD_LOOPS, not {loops!r}")
    counts = {"gemm": shape.gemms, "row": shape.blocks(shape.rows), "step": shape.blocks(shape.inner),
              "col": shape.blocks(shape.cols)}
    inner = counts["step"]
    return [Instruction(i["gemm"], i["row"] * TILE, i["col"] * TILE, i["step"] * TILE, i["step"],
                        i["step"] == inner - 1)
            for i in (dict(zip(loops, index)) for index in np.ndindex(*(counts[name] for name in loops)))]


def chain_gap(shape, loops=DIRECT_LOOPS):
    """Instructions from one step of a chain to its next: the loops inside the chain-step loop."""
    inside = loops[loops.index("step") + 1:]
    counts = {"gemm": shape.gemms, "col": shape.blocks(shape.cols), "row": shape.blocks(shape.rows)}
    return int(np.prod([counts[name] for name in inside]))


#: The two orders of a direct convolution's im2col inner index (see :func:`inner_rows`).
INNER_ORDERS = ("channel_major", "tap_blocks")


#: Filter sizes a direct convolution takes: 3×3, and 1×1 (a GEMM: a fully connected layer is a 1×1
#: convolution of its inputs as channels and its batch as pixels).
KERNELS = (3, 1)


def inner_rows(channels, order, kernel=3):
    """(c, ky, kx) int arrays, one entry per im2col inner row q, in ``order``, for a ``kernel``×``kernel``
    filter (T = kernel² taps, tap = ky·kernel + kx):

    - ``channel_major``: ``q = T·c + tap``, inner ``T·C`` (dense weights);
    - ``tap_blocks``: inner block ``b = T·cb + tap`` holds channels ``4cb .. 4cb + 3`` at one tap, row
      ``q = 4b + kk`` is channel ``4cb + kk``: the tile order of the compressed weight streams
      (:func:`accel.golden.sparse.conv_to_tiles`), where a 2:4 group (four input channels at one tap) is
      one column of a tile. C is padded to a multiple of 4 (padding rows have c ≥ ``channels``).

    The order decides the chain order of each output's sum, hence its rounding."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(map(str, KERNELS))}, not {kernel!r}")
    taps = kernel * kernel
    if order == "channel_major":
        q = np.arange(taps * channels)
        c, tap = q // taps, q % taps
    elif order == "tap_blocks":
        q = np.arange(taps * TILE * -(-channels // TILE))
        block, kk = q // TILE, q % TILE
        c, tap = TILE * (block // taps) + kk, block % taps
    else:
        raise ValueError(f"order must be one of {', '.join(INNER_ORDERS)}, not {order!r}")
    return c, tap // kernel, tap % kernel


def direct_gemms(channels, filters, out_h, out_w, order="channel_major", kernel=3):
    """Direct convolution as one im2col GEMM: [K, inner] · [inner, out_h·out_w], inner rows in ``order``."""
    return GemmShape(gemms=1, rows=filters, cols=out_h * out_w, inner=len(inner_rows(channels, order, kernel)[0]))


def winograd_gemms(channels, filters, out_h, out_w, m):
    """F(m×m, 3×3): (m+2)² GEMMs [K, C] · [C, tiles], one per Winograd-domain position."""
    tiles = -(-out_h // m) * -(-out_w // m)
    return GemmShape(gemms=(m + 2) ** 2, rows=filters, cols=tiles, inner=channels)


def multiplier_slots(schedule):
    """Multiplier slots issued: 64 per instruction (padding zeros included)."""
    return len(schedule) * TILE ** 3
