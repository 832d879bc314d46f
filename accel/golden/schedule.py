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

A chain step covers ``GemmShape.depth`` inner rows: 4 (a dense 4×4×4 instruction), or 8 for the 2:4
sparse instruction (skip mode, :func:`accel.golden.hmma.hmma_24`): A [4, 8] holds two 2:4 groups per row
(inner rows 0..3 and 4..7), of which the instruction multiplies the kept two of each.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["TILE", "Instruction", "GemmShape", "DIRECT_LOOPS", "WINOGRAD_LOOPS", "gemm_schedule", "chain_gap",
           "INNER_ORDERS", "ORDER_DEPTH", "SPARSE_DEPTH", "KERNELS", "inner_rows", "direct_gemms", "winograd_gemms",
           "multiplier_slots"]

TILE = 4   # the array is 4×4×4: A 4×4, B 4×4, C and D 4×4
SPARSE_DEPTH = 2 * TILE   # inner rows of a 2:4 sparse instruction: two groups of 4, two kept of each


@dataclass(frozen=True)
class Instruction:
    """One HMMA: A = A[gemm][row:row+4, inner:inner+d], B = B[gemm][inner:inner+d, col:col+4] (d: the
    shape's ``depth``)."""

    gemm: int
    row: int
    col: int
    inner: int
    step: int     # position in its chain: C is +0 when 0, else the previous step's D
    last: bool    # D is the result of the output tile (row, col) of this GEMM


@dataclass(frozen=True)
class GemmShape:
    """``gemms`` GEMMs of ``rows`` × ``inner`` by ``inner`` × ``cols`` (before padding to whole tiles);
    ``depth``: inner rows per chain step, 4 (dense) or :data:`SPARSE_DEPTH` (2:4 sparse instructions)."""

    gemms: int
    rows: int
    cols: int
    inner: int
    depth: int = TILE

    def __post_init__(self):
        if self.depth not in (TILE, SPARSE_DEPTH):
            raise ValueError(f"depth must be {TILE} or {SPARSE_DEPTH}, not {self.depth!r}")

    def blocks(self, size):
        return -(-size // TILE)

    @property
    def steps(self):
        """Chain steps: ⌈inner / depth⌉."""
        return -(-self.inner // self.depth)

    @property
    def padded(self):
        """(rows, cols, inner) rounded up to whole tiles (inner: to whole steps)."""
        return self.blocks(self.rows) * TILE, self.blocks(self.cols) * TILE, self.steps * self.depth


DIRECT_LOOPS = ("gemm", "step", "row", "col")
WINOGRAD_LOOPS = ("row", "step", "col", "gemm")


def gemm_schedule(shape, loops=DIRECT_LOOPS):
    """The instructions of ``shape`` in schedule order (a list of :class:`Instruction`); ``loops``: the loop
    order, outermost first (:data:`DIRECT_LOOPS` or :data:`WINOGRAD_LOOPS`)."""
    if loops not in (DIRECT_LOOPS, WINOGRAD_LOOPS):
        raise ValueError(f"loops must be DIRECT_LOOPS or WINOGRAD_LOOPS, not {loops!r}")
    counts = {"gemm": shape.gemms, "row": shape.blocks(shape.rows), "step": shape.steps,
              "col": shape.blocks(shape.cols)}
    return [Instruction(i["gemm"], i["row"] * TILE, i["col"] * TILE, i["step"] * shape.depth, i["step"],
                        i["step"] == shape.steps - 1)
            for i in (dict(zip(loops, index)) for index in np.ndindex(*(counts[name] for name in loops)))]


def chain_gap(shape, loops=DIRECT_LOOPS):
    """Instructions from one step of a chain to its next: the loops inside the chain-step loop."""
    inside = loops[loops.index("step") + 1:]
    counts = {"gemm": shape.gemms, "col": shape.blocks(shape.cols), "row": shape.blocks(shape.rows)}
    return int(np.prod([counts[name] for name in inside]))


#: The orders of a direct convolution's im2col inner index (see :func:`inner_rows`), and the inner rows
#: one chain step of each covers.
INNER_ORDERS = ("channel_major", "tap_blocks", "tap_pairs")
ORDER_DEPTH = {"channel_major": TILE, "tap_blocks": TILE, "tap_pairs": SPARSE_DEPTH}


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
      one column of a tile. C is padded to a multiple of 4 (padding rows have c ≥ ``channels``);
    - ``tap_pairs`` (skip mode, 2:4 sparse instructions of :data:`SPARSE_DEPTH` rows): block
      ``b = T·cb + tap`` holds channels ``8cb .. 8cb + 7`` at one tap (two 2:4 groups: two ``tap_blocks``
      blocks), row ``q = 8b + kk`` is channel ``8cb + kk``. C is padded to a multiple of 8.

    The order decides the chain order of each output's sum, hence its rounding."""
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(map(str, KERNELS))}, not {kernel!r}")
    taps = kernel * kernel
    if order == "channel_major":
        q = np.arange(taps * channels)
        c, tap = q // taps, q % taps
    elif order in ORDER_DEPTH:
        depth = ORDER_DEPTH[order]
        q = np.arange(taps * depth * -(-channels // depth))
        block, kk = q // depth, q % depth
        c, tap = depth * (block // taps) + kk, block % taps
    else:
        raise ValueError(f"order must be one of {', '.join(INNER_ORDERS)}, not {order!r}")
    return c, tap // kernel, tap % kernel


def direct_gemms(channels, filters, out_h, out_w, order="channel_major", kernel=3):
    """Direct convolution as one im2col GEMM: [K, inner] · [inner, out_h·out_w], inner rows in ``order``
    (``tap_pairs``: 2:4 sparse instructions, 8 inner rows a step)."""
    return GemmShape(gemms=1, rows=filters, cols=out_h * out_w, inner=len(inner_rows(channels, order, kernel)[0]),
                     depth=ORDER_DEPTH[order])


def winograd_gemms(channels, filters, out_h, out_w, m):
    """F(m×m, 3×3): (m+2)² GEMMs [K, C] · [C, tiles], one per Winograd-domain position."""
    tiles = -(-out_h // m) * -(-out_w // m)
    return GemmShape(gemms=(m + 2) ** 2, rows=filters, cols=tiles, inner=channels)


def multiplier_slots(schedule):
    """Multiplier slots issued: 64 per instruction (padding zeros included)."""
    return len(schedule) * TILE ** 3
