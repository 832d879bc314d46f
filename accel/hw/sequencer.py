"""The direct-convolution sequencer: the conv loop nest of :mod:`accel.golden.schedule` generated in
hardware from the layer's bounds held in registers (Gemmini's ``LoopConv``: loop counters, no ROM).

A k×k valid convolution (k = 3, or 1: a GEMM) is the im2col GEMM ``W [K, C·k²] · X [C·k², OH·OW]``, padded
to whole 4×4 tiles and walked in the schedule's ``DIRECT_LOOPS`` order: chain step ``s`` (an inner block:
d im2col rows ``(c, ky, kx)``, in one of three orders, below), row block ``r`` (4 output channels), column
block ``cb`` (4 output pixels ``p = (oy, ox)``, row-major). Each instruction becomes one *gather request*
(d = 4 inner rows a step, or 8 in ``tap_pairs`` order: a 2:4 sparse instruction):

- ``w_addr``: the weight tile ``(r, s)`` (dense tiles are stored at ``r·inner_blocks + s``; a compressed
  stream holds them in walk order, step-major);
- ``act_addr[4·kk + j]`` (kk < d): where B[kk][j] = x[c][oy + ky][ox + kx] sits in the activation buffer
  (``act_base + c·H·W + y·W + x``), with ``act_live`` clear where the element is GEMM padding (``c ≥ C`` or
  ``p ≥ OH·OW``: the sender puts a zero there);
- ``psum_addr``: the output tile ``(r, cb)`` (``r·col_blocks + cb``) whose partial sum chains through C;
- ``first``: chain step 0 (C is +0); ``new_tile``: column block 0 (the weight tile changes).

Three inner orders (:data:`accel.golden.schedule.INNER_ORDERS`):

- ``channel_major`` (golden's :func:`~accel.golden.winograd.direct_conv`): ``q = 9c + 3ky + kx``, an inner
  block is four consecutive q (it crosses taps and channels); ``⌈9C/4⌉`` blocks.
- ``tap_blocks`` (the compressed weight streams' tile order, :func:`accel.golden.sparse.conv_to_tiles`):
  block ``9·cb + 3ky + kx`` holds channels ``4cb .. 4cb + 3`` at one filter tap (a 2:4 group is a column
  of its A tile); C is padded to a multiple of 4, ``9·⌈C/4⌉`` blocks.
- ``tap_pairs`` (skip mode: the 2:4 sparse array's instructions): block ``9·cb + 3ky + kx`` holds channels
  ``8cb .. 8cb + 7`` at one tap (two 2:4 groups); C is padded to a multiple of 8, ``9·⌈C/8⌉`` blocks.

No address is multiplied per instruction. An im2col address is ``inner_offset[kk] + pixel_offset[j]``:
d *inner lanes* keep (c, ky, kx, offset) of the inner index of row kk and four *pixel lanes* keep (oy,
ox, offset) for p = 4cb + j. Moving a pixel lane on by 4 is four increments whose offset steps are 1 or 3
(the next output row starts W − OW + 1 = k further on). Moving an inner lane to the next block is four
increments of (kx, ky, c) with offset steps 1, W − 2 or H·W − 2W − 2 (``channel_major``), or one
increment with c stepping by d and offset steps 1, W − 2 or d·H·W − 2W − 2 (``tap_blocks``, ``tap_pairs``);
for 1×1 every increment moves c on, by H·W (or d·H·W).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden.schedule import INNER_ORDERS, ORDER_DEPTH, TILE

__all__ = ["LAYER_BOUNDS", "BOUND_BITS", "request_layout", "DirectSequencer", "winograd_request_layout",
           "WinogradSequencer"]

#: Width of each layer bound register (C, K, H, W).
BOUND_BITS = 16

#: The layer bounds a run takes from its CONFIG command; ``kernel``: the filter size, 3 or 1 (direct only).
LAYER_BOUNDS = data.StructLayout({"channels": BOUND_BITS, "filters": BOUND_BITS,
                                  "height": BOUND_BITS, "width": BOUND_BITS, "kernel": 2})


def request_layout(act_bits, weight_bits, psum_bits, depth=TILE):
    """Payload of one gather request (one HMMA instruction of ``depth`` inner rows), with buffer address
    widths as given. ``new_tile``: the first request of a weight tile (column block 0)."""
    return data.StructLayout({
        "w_addr": weight_bits,
        "act_addr": data.ArrayLayout(act_bits, depth * TILE),
        "act_live": depth * TILE,
        "psum_addr": psum_bits,
        "first": 1,
        "new_tile": 1,
    })


def _blocks(value, size=TILE):
    """⌈value / size⌉ of an unsigned expression (``size`` a power of two)."""
    return (value + (size - 1)) >> (size.bit_length() - 1)


def _inner_step(lane, d_ky, d_c, c_step, edge):
    """(c, ky, kx, off) of the next inner index (kx fastest, then ky, then c by ``c_step``); ``edge``: the
    last tap index (kernel − 1)."""
    kx_end, ky_end = lane["kx"] == edge, lane["ky"] == edge
    return {"kx": Mux(kx_end, 0, lane["kx"] + 1),
            "ky": Mux(kx_end, Mux(ky_end, 0, lane["ky"] + 1), lane["ky"]),
            "c": Mux(kx_end & ky_end, lane["c"] + c_step, lane["c"]),
            "off": lane["off"] + Mux(kx_end, Mux(ky_end, d_c, d_ky), 1)}


def _pixel_step(lane, out_w, edge):
    """(oy, ox, off) of the next output pixel (row-major): the next row starts ``edge`` + 1 further on."""
    row_end = lane["ox"] == out_w - 1
    return {"ox": Mux(row_end, 0, lane["ox"] + 1),
            "oy": Mux(row_end, lane["oy"] + 1, lane["oy"]),
            "off": lane["off"] + Mux(row_end, edge + 1, 1)}


def _repeat(step, lane, times):
    for _ in range(times):
        lane = step(lane)
    return lane


def _assign(lane_regs, values):
    return [lane_regs[name].eq(value) for name, value in values.items()]


class DirectSequencer(wiring.Component):
    """Gather requests of a direct convolution, one per clock while ``o`` is taken.

    ``order``: one of :data:`~accel.golden.schedule.INNER_ORDERS`. ``start`` (a one-clock pulse) restarts
    the loop nest on ``bounds`` and ``act_base`` (held steady during the run: where the layer's activations
    start in the buffer, every ``act_addr`` is that much on); ``busy`` is high until the last request has
    left; ``chain_gap``: a chain's next step comes that many requests after its previous one (row blocks ×
    column blocks). A request gathers :attr:`depth` × 4 activations.
    """

    def __init__(self, *, act_bits, weight_bits, psum_bits, order="channel_major"):
        if order not in INNER_ORDERS:
            raise ValueError(f"order must be one of {', '.join(INNER_ORDERS)}, not {order!r}")
        self._order = order
        self._bits = (act_bits, weight_bits, psum_bits)
        super().__init__({
            "bounds": In(LAYER_BOUNDS),
            "act_base": In(act_bits),
            "start": In(1),
            "busy": Out(1),
            "chain_gap": Out(2 * BOUND_BITS),
            "o": Out(stream.Signature(request_layout(act_bits, weight_bits, psum_bits, self.depth))),
        })

    @property
    def order(self):
        return self._order

    @property
    def depth(self):
        """Inner rows per request: 4, or 8 (``tap_pairs``: a 2:4 sparse instruction)."""
        return ORDER_DEPTH[self._order]

    def elaborate(self, platform):
        m = Module()
        act_bits, weight_bits, psum_bits = self._bits
        b = self.bounds
        # Derived bounds (combinational: valid as soon as the bound registers are). edge = kernel − 1.
        out_h, out_w = Signal(BOUND_BITS), Signal(BOUND_BITS)
        col_blocks, n_inner, row_blocks = Signal(2 * BOUND_BITS), Signal(BOUND_BITS + 4), Signal(BOUND_BITS)
        d_ky, d_c, edge = Signal(act_bits), Signal(act_bits), Signal(2)
        one_by_one = b.kernel == 1
        m.d.comb += [
            edge.eq(Mux(one_by_one, 0, 2)),
            out_h.eq(b.height - edge), out_w.eq(b.width - edge),
            col_blocks.eq(_blocks(out_h * out_w)),
            row_blocks.eq(_blocks(b.filters)),
            d_ky.eq(b.width - 2),
            self.chain_gap.eq(row_blocks * col_blocks),
        ]
        plane, corner = b.height * b.width, edge * b.width + edge     # corner: offset of the last tap
        if self._order == "channel_major":
            m.d.comb += [n_inner.eq(_blocks(Mux(one_by_one, b.channels, b.channels * 9))), d_c.eq(plane - corner)]
        else:
            depth = self.depth
            m.d.comb += [n_inner.eq(Mux(one_by_one, _blocks(b.channels, depth), _blocks(b.channels, depth) * 9)),
                         d_c.eq(depth * plane - corner)]

        row, step, col = Signal(BOUND_BITS), Signal(BOUND_BITS + 4), Signal(2 * BOUND_BITS)
        w_addr, row_base = Signal(weight_bits), Signal(psum_bits)
        busy = Signal()
        inner = [{"c": Signal(BOUND_BITS, name=f"inner_c_{kk}"), "ky": Signal(2, name=f"inner_ky_{kk}"),
                  "kx": Signal(2, name=f"inner_kx_{kk}"), "off": Signal(act_bits, name=f"inner_off_{kk}")}
                 for kk in range(self.depth)]
        pixel = [{"oy": Signal(BOUND_BITS, name=f"pixel_oy_{j}"), "ox": Signal(BOUND_BITS, name=f"pixel_ox_{j}"),
                  "off": Signal(act_bits, name=f"pixel_off_{j}")} for j in range(TILE)]
        # the inner lanes carry the activation base (the pixel lanes start at 0): no adder per address
        inner_origin = {"c": C(0, BOUND_BITS), "ky": C(0, 2), "kx": C(0, 2), "off": self.act_base}
        # the inner lanes move on once per step (every row block of a step shares them), the pixel lanes
        # once per column block and back to the start at each row block
        pixel_origin = {"oy": C(0, BOUND_BITS), "ox": C(0, BOUND_BITS), "off": C(0, act_bits)}
        if self._order == "channel_major":    # row kk: inner index kk, then 4 indices on per block
            inner_init = [_assign(lane, _repeat(lambda v: _inner_step(v, d_ky, d_c, 1, edge), inner_origin, kk))
                          for kk, lane in enumerate(inner)]
            inner_next = [_assign(lane, _repeat(lambda v: _inner_step(v, d_ky, d_c, 1, edge), lane, TILE))
                          for lane in inner]
        else:                                 # row kk: channel kk at tap (0, 0), then the next tap
            inner_init = [_assign(lane, {**inner_origin, "c": C(kk, BOUND_BITS), "off": self.act_base + kk * plane})
                          for kk, lane in enumerate(inner)]
            inner_next = [_assign(lane, _inner_step(lane, d_ky, d_c, self.depth, edge)) for lane in inner]
        pixel_init = [_assign(lane, _repeat(lambda v: _pixel_step(v, out_w, edge), pixel_origin, j))
                      for j, lane in enumerate(pixel)]
        pixel_next = [_assign(lane, _repeat(lambda v: _pixel_step(v, out_w, edge), lane, TILE)) for lane in pixel]

        fire = self.o.valid & self.o.ready
        with m.If(self.start):
            m.d.sync += [row.eq(0), step.eq(0), col.eq(0), w_addr.eq(0), row_base.eq(0), busy.eq(1),
                         *sum(inner_init, []), *sum(pixel_init, [])]
        with m.Elif(fire):
            with m.If(col == col_blocks - 1):
                m.d.sync += [col.eq(0), *sum(pixel_init, [])]
                with m.If(row == row_blocks - 1):
                    m.d.sync += [row.eq(0), step.eq(step + 1), w_addr.eq(step + 1), row_base.eq(0),
                                 *sum(inner_next, [])]
                    with m.If(step == n_inner - 1):
                        m.d.sync += busy.eq(0)
                with m.Else():
                    m.d.sync += [row.eq(row + 1), w_addr.eq(w_addr + n_inner), row_base.eq(row_base + col_blocks)]
            with m.Else():
                m.d.sync += [col.eq(col + 1), *sum(pixel_next, [])]

        request = self.o.payload
        m.d.comb += [self.o.valid.eq(busy), self.busy.eq(busy),
                     request.w_addr.eq(w_addr), request.psum_addr.eq(row_base + col), request.first.eq(step == 0),
                     request.new_tile.eq(col == 0)]
        for kk in range(self.depth):
            for j in range(TILE):
                e = kk * TILE + j
                m.d.comb += [request.act_addr[e].eq(inner[kk]["off"] + pixel[j]["off"]),
                             request.act_live[e].eq((inner[kk]["c"] < b.channels) & (pixel[j]["oy"] < out_h))]
        return m


def winograd_request_layout(v_bits, weight_bits, psum_bits, points):
    """Payload of one Winograd-domain instruction: the weight tile ``w_addr`` (``w_half``: the parity of its
    (row block, step) group, for a file that holds two groups of tiles), the transformed-activation tile
    (``v_addr`` in bank ``point``), the M tile ``psum_addr`` (in bank ``point``) its chain goes through,
    ``live`` (GEMM padding: channel ≥ C or tile ≥ T is a +0), ``step`` (the input-channel block it needs
    transformed) and ``first`` as in :func:`request_layout`."""
    return data.StructLayout({
        "w_addr": weight_bits,
        "w_half": 1,
        "point": range(points),
        "v_addr": v_bits,
        "live": TILE * TILE,
        "psum_addr": psum_bits,
        "step": BOUND_BITS,
        "first": 1,
    })


class WinogradSequencer(wiring.Component):
    """Instructions of a Winograd F(m×m, 3×3) convolution, one per clock while ``o`` is taken, in
    :data:`accel.golden.schedule.WINOGRAD_LOOPS` order: row block r (4 output channels), step s (4 input
    channels), column block cb (4 tiles), point p (one of the (m+2)² Winograd-domain GEMMs).

    Addresses, all by increments: the weight tile ``(r·S + s)·P + p`` (the P tiles of a (row block, step)
    group are taken in turn for each column block), the transformed activations ``s·CB + cb`` in bank p,
    the M tile ``r·CB + cb`` in bank p. ``start``, ``busy`` as in :class:`DirectSequencer`; the layer's
    tiling (``tiles_h × tiles_w`` tiles of m×m outputs, ``tiles`` in all, ``col_blocks`` = ⌈tiles / 4⌉,
    ``steps`` = ⌈C / 4⌉, ``row_blocks`` = ⌈K / 4⌉) is an output for the transform passes; ``chain_gap`` =
    CB·P.
    """

    def __init__(self, *, m, v_bits, weight_bits, psum_bits):
        if m not in (2, 4):
            raise ValueError(f"m must be 2 or 4, not {m!r}")
        self._m = m
        self._bits = (v_bits, weight_bits, psum_bits)
        super().__init__({
            "bounds": In(LAYER_BOUNDS),
            "start": In(1),
            "busy": Out(1),
            "chain_gap": Out(2 * BOUND_BITS),
            "tiles_h": Out(BOUND_BITS), "tiles_w": Out(BOUND_BITS), "tiles": Out(2 * BOUND_BITS),
            "col_blocks": Out(2 * BOUND_BITS), "steps": Out(BOUND_BITS), "row_blocks": Out(BOUND_BITS),
            "o": Out(stream.Signature(winograd_request_layout(v_bits, weight_bits, psum_bits, self.points))),
        })

    @property
    def m(self):
        return self._m

    @property
    def points(self):
        return (self._m + 2) ** 2

    def elaborate(self, platform):
        m = Module()
        b, points, shift = self.bounds, self.points, self._m.bit_length() - 1
        cols = self.col_blocks
        m.d.comb += [
            self.tiles_h.eq((b.height - 2 + self._m - 1) >> shift),
            self.tiles_w.eq((b.width - 2 + self._m - 1) >> shift),
            self.tiles.eq(self.tiles_h * self.tiles_w),
            cols.eq(_blocks(self.tiles)), self.steps.eq(_blocks(b.channels)), self.row_blocks.eq(_blocks(b.filters)),
            self.chain_gap.eq(cols * points),
        ]
        row, step, point, col = Signal(BOUND_BITS), Signal(BOUND_BITS), Signal(range(points)), Signal(2 * BOUND_BITS)
        v_bits, weight_bits, psum_bits = self._bits
        w_base, w_half, v_base, row_base = Signal(weight_bits), Signal(), Signal(v_bits), Signal(psum_bits)
        busy = Signal()
        fire = self.o.valid & self.o.ready
        with m.If(self.start):
            m.d.sync += [row.eq(0), step.eq(0), point.eq(0), col.eq(0), w_base.eq(0), w_half.eq(0), v_base.eq(0),
                         row_base.eq(0), busy.eq(1)]
        with m.Elif(fire):
            with m.If(point == points - 1):
                m.d.sync += point.eq(0)
                with m.If(col == cols - 1):         # the next (row block, step) group of weight tiles
                    m.d.sync += [col.eq(0), w_base.eq(w_base + points), w_half.eq(~w_half)]
                    with m.If(step == self.steps - 1):
                        m.d.sync += [step.eq(0), v_base.eq(0), row.eq(row + 1), row_base.eq(row_base + cols)]
                        with m.If(row == self.row_blocks - 1):
                            m.d.sync += busy.eq(0)
                    with m.Else():
                        m.d.sync += [step.eq(step + 1), v_base.eq(v_base + cols)]
                with m.Else():
                    m.d.sync += col.eq(col + 1)
            with m.Else():
                m.d.sync += point.eq(point + 1)

        request = self.o.payload
        m.d.comb += [self.o.valid.eq(busy), self.busy.eq(busy),
                     request.w_addr.eq(w_base + point), request.w_half.eq(w_half), request.point.eq(point),
                     request.v_addr.eq(v_base + col), request.psum_addr.eq(row_base + col), request.step.eq(step),
                     request.first.eq(step == 0)]
        for kk in range(TILE):
            for j in range(TILE):
                m.d.comb += request.live[kk * TILE + j].eq((Cat(C(kk, 2), step) < b.channels)
                                                           & (Cat(C(j, 2), col) < self.tiles))
        return m
