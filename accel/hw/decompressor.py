"""Sparse weight decompressor: a compressed tile stream in, one 4x4 tile of flagged FP16 weights per clock out.

Input stream ``i``: words ``{data: width, last: 1}``; the stream layout is ``accel.golden.sparse``'s (LSB-first
fields). A stream is a header word (tile count in bits 31:0, stream length in bits in bits 63:32, the rest
reserved as 0; ``sparse.stream_words``) followed by the encoded tiles packed into words, the final one
zero-padded and marked ``last``. Output stream ``o``: an
``ArrayLayout(Flagged(FP16), 16)`` tile, element ``p = 4*kk + j`` of ``B[kk][j]`` (the HMMA ``b`` operand).

Structure: one front end for every format (a bit buffer that aligns words to a tile boundary, its fill
count, the stream checks, the output register) around a per-format combinational tile decoder that reads
the buffer's low bits: the tile's length, each element's stored flag and value, and whether it is malformed.
Per cycle: a word is taken when ``fill + width <= buffer_bits`` (decided from registers only); a tile is
decoded and its bits shifted out when the buffer holds all of it and the output register is free.

Errors (``error``, sticky until reset): an rle count above 16, an rle run past element 15, an nm24 index
pair that is not ascending (each as soon as the tile's bits are in); a tile longer than the bits the header
says are left (a mask or count that claims more values than follow); a truncated stream (``last`` taken and
the next tile is not complete); a stream longer than its tiles (bits left over after the last tile, or words
after the word that ends it). After an error the
input is drained up to ``last`` and the next stream starts; no tile is decoded from a malformed one.

Output lines (``gating``): ``hold`` never puts a zero on the lines (a flagged element's ``value`` keeps the
value last sent at its position, 0 after reset: the frozen-line sender); ``and`` drives +0 beside the
flag; ``none`` drives +0 and no flags.

Kept mode (``kept=True``, ``nm24`` only: the 2:4 sparse array's weights, not expanded): the output is a
tile's 8 kept values and their 2-bit indices (:func:`kept_layout`): element ``2j + r`` is column ``j``'s
value at its lower (``r = 0``) or upper (``r = 1``) index, flagged when it is ±0; the lines follow the
gating style as above (under ``hold`` a flagged element's value and index keep the last ones sent).
"""

import operator
from functools import reduce
from typing import NamedTuple

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..golden import sparse
from ..golden.fp import FP16
from .fp_common import node
from .operand import Flagged
from .pipeline import check_choice, check_count, check_gating, data_load, load_when

__all__ = ["Decompressor", "kept_layout"]

ELEMENTS = sparse.TILE_ELEMENTS


class Decoded(NamedTuple):
    """A tile decoder's view of the buffer: ``need`` (tile bits, valid once the header is in),
    ``present``/``values`` per element, ``bad_header`` (malformed from the header alone) and ``bad``;
    ``kept`` (nm24): (value, index) per kept element ``2j + r``."""

    need: Value
    present: list
    values: list
    bad_header: Value
    bad: Value
    kept: list = None


def _bitmask(m, window):
    """Mask, then the stored values in element order: element p's value is number popcount(mask[:p])."""
    mask, rank, ranks = window[:16], C(0, 5), []
    for p in range(ELEMENTS):
        ranks.append(rank)
        rank = node(m, f"rank_{p + 1}", rank + mask[p], 5)
    values = [window[16:].word_select(ranks[p], FP16.width) for p in range(ELEMENTS)]
    return Decoded(16 + 16 * rank, list(mask), values, C(0), C(0))


def _rle(m, window):
    """Count, then (run, value) entries; entry e lands on element (sum of run_i + 1 for i <= e) - 1."""
    count, end, ends = window[:5], C(0, 9), []
    for e in range(ELEMENTS):
        end = node(m, f"end_{e}", end + window[5 + 20 * e:9 + 20 * e] + 1, 9)
        ends.append(Mux(e < count, end, 0))           # 0: no entry
    hits = [node(m, f"hit_{p}", Cat(end == p + 1 for end in ends), ELEMENTS) for p in range(ELEMENTS)]
    stored = [window[9 + 20 * e:25 + 20 * e] for e in range(ELEMENTS)]
    values = [node(m, f"value_{p}", reduce(operator.or_, (Mux(hit[e], stored[e], 0) for e in range(ELEMENTS))),
                    FP16.width) for p, hit in enumerate(hits)]        # hits are one-hot: an OR of the hit
    bad = Cat(end > ELEMENTS for end in ends).any()
    return Decoded(5 + 20 * count, [hit.any() for hit in hits], values, count > ELEMENTS, bad)


def _nm24(m, window):
    """Meta (nibble j: lower index in bits 1:0, upper in 3:2), then per column j the two values."""
    present, values, kept, bad = [None] * ELEMENTS, [None] * ELEMENTS, [], C(0)
    for j in range(sparse.TILE):
        low, high = window[4 * j:4 * j + 2], window[4 * j + 2:4 * j + 4]
        first, second = window[16 + 32 * j:32 + 32 * j], window[32 + 32 * j:48 + 32 * j]
        bad = bad | (low >= high)
        kept += [(first, low), (second, high)]
        for kk in range(sparse.TILE):
            p = sparse.TILE * kk + j
            present[p] = (low == kk) | (high == kk)
            values[p] = Mux(low == kk, first, Mux(high == kk, second, 0))
    return Decoded(C(144), present, values, C(0), bad, kept)


DECODERS = {"bitmask": _bitmask, "rle": _rle, "nm24": _nm24}

#: Kept values per nm24 tile: two per column.
KEPT_ELEMENTS = ELEMENTS // 2


def kept_layout():
    """Kept mode's output tile: ``values`` (element ``2j + r``: column j's kept value r, flagged) and ``index``
    (its 2-bit index within the column's group of 4 input channels)."""
    return data.StructLayout({"values": data.ArrayLayout(Flagged(FP16), KEPT_ELEMENTS),
                              "index": data.ArrayLayout(2, KEPT_ELEMENTS)})


class Decompressor(wiring.Component):
    """``Decompressor(format="bitmask", width=64, gating="hold", kept=False)``: ports ``i``, ``o`` and
    ``error``; ``kept``: nm24 tiles leave as kept values and indices (module docstring).

    Charged as logic by the energy model, whatever its instance is called."""

    energy_class = "logic"

    def __init__(self, *, format="bitmask", width=64, gating="hold", kept=False):
        self._format = sparse.FORMATS[check_choice("format", format, tuple(sparse.FORMATS))]
        self._width = check_count("width", width)
        if width % 8 or width < 2 * sparse.HEADER_FIELD_BITS:
            raise ValueError(f"width must be a multiple of 8 of at least {2 * sparse.HEADER_FIELD_BITS}, "
                             f"not {width!r}")
        self._gating = check_gating(gating)
        if not isinstance(kept, bool):
            raise TypeError(f"kept must be a bool, not {kept!r}")
        if kept and format != "nm24":
            raise ValueError(f"kept mode is for nm24 weights, not {format}")
        self._kept = kept
        super().__init__({
            "i": In(stream.Signature(data.StructLayout({"data": width, "last": 1}))),
            "o": Out(stream.Signature(kept_layout() if kept else data.ArrayLayout(Flagged(FP16), ELEMENTS))),
            "error": Out(1),
        })

    @property
    def format(self):
        return self._format.name

    @property
    def width(self):
        return self._width

    @property
    def gating(self):
        return self._gating

    @property
    def kept(self):
        return self._kept

    @property
    def buffer_bits(self):
        return sparse.decoder_buffer_bits(self._format.name, self._width)

    @property
    def latency(self):
        """Cycles from the header word to the first tile when the first payload word completes it (the
        header word's cycle, the buffer, the output register): N such tiles take N + latency cycles."""
        return 3

    @property
    def peak_tiles_per_cycle(self):
        """One tile per clock while the input delivers the bits (``width`` per cycle)."""
        return 1

    def tiles_per_cycle(self, tile_bits):
        """Steady-state tiles per clock for tiles of ``tile_bits`` bits on average: input- or output-bound."""
        return min(self.peak_tiles_per_cycle, self._width / tile_bits)

    def elaborate(self, platform):
        m = Module()
        fmt, width, size = self._format, self._width, self.buffer_bits
        buf, fill = Signal(size), Signal(range(size + 1))
        tiles_left, bits_left = Signal(sparse.HEADER_FIELD_BITS), Signal(sparse.HEADER_FIELD_BITS)
        last_seen = Signal()
        decoded = DECODERS[fmt.name](m, buf[:fmt.max_tile_bits])

        header_in = fill >= fmt.header_bits
        complete = Signal()
        m.d.comb += complete.eq(header_in & (fill >= decoded.need))
        malformed = (header_in & (decoded.bad_header | (decoded.need > bits_left))) | (complete & decoded.bad)
        take = Signal()          # decode a tile and shift its bits out
        accept = self.i.valid & self.i.ready
        error = Signal()         # raised this cycle: drain (or, once ``last`` is in, restart)

        with m.FSM():
            with m.State("header"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [Cat(tiles_left, bits_left).eq(self.i.payload.data),
                                 last_seen.eq(self.i.payload.last), buf.eq(0), fill.eq(0)]
                    m.next = "body"
            with m.State("body"):
                m.d.comb += self.i.ready.eq((tiles_left != 0) & ~last_seen & ~error & (fill + width <= size))
                with m.If(tiles_left == 0):     # the word that ends the last tile must be the last word
                    m.d.comb += error.eq((bits_left != 0) | ~last_seen | (fill >= width))
                with m.Else():
                    m.d.comb += [error.eq(malformed | (last_seen & ~complete)),
                                 take.eq(complete & ~malformed & (~self.o.valid | self.o.ready))]
                with m.If(error & ~last_seen):
                    m.next = "drain"
                with m.Elif(error | (tiles_left == 0)):
                    m.next = "header"
                merged = buf | (Mux(accept, self.i.payload.data, 0) << fill)[:size]
                m.d.sync += [buf.eq(merged >> Mux(take, decoded.need, 0)),
                             fill.eq(fill + Mux(accept, width, 0) - Mux(take, decoded.need, 0)),
                             tiles_left.eq(tiles_left - take),
                             bits_left.eq(bits_left - Mux(take, decoded.need, 0)),
                             last_seen.eq(last_seen | (accept & self.i.payload.last))]
            with m.State("drain"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & self.i.payload.last):
                    m.next = "header"

        with m.If(error):
            m.d.sync += self.error.eq(1)
        with m.If(take):
            m.d.sync += self.o.valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        if self._kept:
            lanes = [(value, value[:FP16.width - 1] == 0, self.o.payload.values[e], self.o.payload.index[e], index)
                     for e, (value, index) in enumerate(decoded.kept)]
        else:
            lanes = [(value, ~present | (value[:FP16.width - 1] == 0), self.o.payload[p], None, None)
                     for p, (value, present) in enumerate(zip(decoded.values, decoded.present))]
        for value, is_zero, lane, lane_index, index in lanes:
            load = data_load(take, is_zero, self._gating)
            load_when(m, lane.is_zero, is_zero if self._gating.flags_zeros else 0, take)
            load_when(m, lane.value, Mux(is_zero, 0, value), load)
            if lane_index is not None:
                load_when(m, lane_index, index, load)
        return m
