"""Compressed sparse weight formats: golden encoders and decoders, conv tile order, sizes, decoder timing.

The unit of compression is a **tile**: the HMMA array's 4x4 B operand of FP16 bit patterns, row-major
``B[kk][j]`` (rows ``kk`` = 4 input channels, columns ``j`` = 4 output channels); element ``p = 4*kk + j``
is entry ``p`` of the array of ``accel.hw.operand.Flagged(FP16)`` operands. A tile stream is a bit sequence written
**LSB-first**: every field is written least significant bit first, fields follow each other without gaps
and tiles follow each other without gaps. Packed into bytes (bit ``i`` of the stream is bit ``i % 8`` of
byte ``i // 8``) or into W-bit words (bit ``i % W`` of word ``i // W``, little-endian) it is the same
stream, so the ``.acw`` payload bytes are the decompressor's input words for every W that is a multiple of 8.

Formats (per tile, in stream order; ``nz`` = non-zero elements, ±0 counting as zero):

- ``bitmask``: ``mask`` (16 bits, bit ``p`` set when element ``p`` is stored), then the stored FP16 values
  in increasing ``p`` (16 bits each). 16 + 16·nz bits.
- ``rle``: ``count`` (5 bits, 0..16: stored entries), then ``count`` entries of ``run`` (4 bits: zeros in
  front of the value, counted from the previous entry or the tile start) and ``value`` (16 bits). The
  run-length walk restarts at every tile, so a tile decodes on its own, its end is known from its first 5
  bits, and a run can never exceed 15 (EIE's padding zero, :func:`rle_entries`, is never needed inside a
  16-element tile). Malformed: ``count > 16``, or an entry that lands past element 15. 5 + 20·nz bits.
- ``nm24``: ``meta`` (16 bits: nibble ``j`` = bits ``4j+3:4j`` describes column ``j``, its lower index in
  bits 1:0 and its upper index in bits 3:2), then per column ``j`` the value at the lower index and the value
  at the upper index (8 values). A column is a 2:4 group: the 4 input channels ``w[k, 4g:4g+4, r, s]`` of
  one output channel. 144 bits. Malformed: a nibble whose indices are not strictly ascending.

A decoder flags every element that is not stored or is stored as ±0, and returns it as +0.
"""

from dataclasses import dataclass

import numpy as np

from . import fp
from .schedule import TILE      # a tile is TILE x TILE weights: the array's operand

__all__ = ["SparseFormat", "FORMATS", "format_by_name", "TILE", "TILE_ELEMENTS",
           "conv_to_tiles", "tiles_to_conv", "conv_group_name", "rle_entries", "nm24_meta",
           "encode", "tile_bits", "decode", "stream_words", "decode_words",
           "magnitude_prune", "decoder_buffer_bits", "decoder_cycles", "density_sweep"]

TILE_ELEMENTS = TILE * TILE
HEADER_FIELD_BITS = 32        # the decompressor's header word: tile count (bits 31:0), stream bits (63:32)


@dataclass(frozen=True)
class SparseFormat:
    """A tile format: ``code`` (the ``.acw`` format byte), ``header_bits`` (the bits at a tile's start
    that give its length; 0: a fixed length), ``min_tile_bits`` and ``max_tile_bits`` (shortest, longest)."""

    name: str
    code: int
    header_bits: int
    min_tile_bits: int
    max_tile_bits: int


BITMASK = SparseFormat("bitmask", 1, 16, 16, 16 + 16 * TILE_ELEMENTS)
RLE = SparseFormat("rle", 2, 5, 5, 5 + 20 * TILE_ELEMENTS)
NM24 = SparseFormat("nm24", 3, 0, 144, 144)
FORMATS = {f.name: f for f in (BITMASK, RLE, NM24)}


def format_by_name(name):
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown sparse format {name!r}; known: {', '.join(FORMATS)}") from None


# --- conv weights <-> tiles ------------------------------------------------------------------------------

def conv_to_tiles(w):
    """FP16 bit patterns ``w[K, C, R, S]`` -> tiles ``[T, 4, 4]`` in the sequencer's order.

    K and C are padded with zeros to multiples of 4. Tile ``t = ((kb * CB + cb) * R + r) * S + s`` (output
    channel block outermost, filter tap innermost) holds ``tile[kk][j] = w[4*kb + j, 4*cb + kk, r, s]``.
    """
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"conv weights must be 4-D [K, C, R, S], not shape {w.shape}")
    k, c, r, s = w.shape
    kp, cp = -(-k // TILE) * TILE, -(-c // TILE) * TILE
    padded = np.zeros((kp, cp, r, s), w.dtype)
    padded[:k, :c] = w
    blocks = padded.reshape(kp // TILE, TILE, cp // TILE, TILE, r, s)        # [KB, j, CB, kk, R, S]
    return blocks.transpose(0, 2, 4, 5, 3, 1).reshape(-1, TILE, TILE)


def tiles_to_conv(tiles, shape):
    """Inverse of :func:`conv_to_tiles`: the ``[K, C, R, S]`` weights (padding dropped)."""
    k, c, r, s = shape
    kb, cb = -(-k // TILE), -(-c // TILE)
    tiles = np.asarray(tiles)
    if tiles.shape != (kb * cb * r * s, TILE, TILE):
        raise ValueError(f"{tiles.shape[0] if tiles.ndim else 0} tiles do not make weights of shape {tuple(shape)}")
    blocks = tiles.reshape(kb, cb, r, s, TILE, TILE).transpose(0, 5, 1, 4, 2, 3)
    return blocks.reshape(kb * TILE, cb * TILE, r, s)[:k, :c]


def conv_group_name(shape):
    """``name(t, j)``: the 2:4 group that column ``j`` of tile ``t`` holds, as ``w[k, c0:c0+4, r, s]``."""
    k, c, r, s = shape
    cb = -(-c // TILE)

    def name(t, j):
        kb, rest = divmod(t, cb * r * s)
        c_block, tap = divmod(rest, r * s)
        return f"w[{TILE * kb + j}, {TILE * c_block}:{TILE * c_block + TILE}, {tap // s}, {tap % s}]"
    return name


# --- per-format pieces -----------------------------------------------------------------------------------

def rle_entries(rows, max_run=15):
    """EIE relative indexing of each row of ``rows`` (FP16 bit patterns, [N, L]).

    Every non-zero value becomes an entry ``(run, value)`` with ``run`` = zeros since the previous entry of
    its row (or the row start); a gap longer than ``max_run`` first emits padding entries ``(max_run, +0)``,
    each standing for ``max_run + 1`` elements. Returns ``(row, run, value)`` arrays in stream order.
    Example (Han et al., EIE, ISCA 2016): ``[0,0,1,2, 0 x 18, 3]`` -> values ``[1,2,0,3]``, runs
    ``[2,0,15,2]``.
    """
    rows = np.atleast_2d(np.asarray(rows, np.uint16))
    row, pos = np.nonzero(~fp.is_zero(rows, fp.FP16))
    first = np.r_[True, row[1:] != row[:-1]] if len(row) else np.zeros(0, bool)
    gap = pos - np.where(first, -1, np.r_[0, pos[:-1]]) - 1
    pads = gap // (max_run + 1)
    per_value = pads + 1                                         # padding entries + the value's entry
    owner = np.repeat(np.arange(len(pos)), per_value)
    index = np.arange(per_value.sum()) - np.repeat(np.cumsum(per_value) - per_value, per_value)
    is_value = index == pads[owner]
    run = np.where(is_value, gap[owner] % (max_run + 1), max_run)
    value = np.where(is_value, rows[row, pos][owner], 0).astype(np.uint16)
    return row[owner], run, value


def nm24_meta(tiles, name=None):
    """2:4 index pairs of every column of ``tiles`` [T, 4, 4]: (lower, upper) int arrays [T, 4].

    Refuses a column with more than two non-zeros (ValueError naming it via ``name(t, j)``). Indices are
    chosen exactly as PyTorch's ``torch.sparse._semi_structured_conversions._sparse_semi_structured_from_dense``
    chooses them (its Espresso-minimised ``bit0..bit3`` formulas): two non-zeros give their own indices;
    fewer give explicit zeros at (0, 3) for one non-zero at 0, (1, 3) for one at 1, (2, 3) for one at 2
    or 3 and for none.
    """
    tiles = np.asarray(tiles, np.uint16)
    nz = ~fp.is_zero(tiles, fp.FP16)                         # [T, kk, j]
    too_many = nz.sum(axis=1) > 2
    if too_many.any():
        t, j = (int(x) for x in np.argwhere(too_many)[0])
        where = name(t, j) if name else f"tile {t} column {j}"
        raise ValueError(f"weights are not 2:4 sparse: {where} has {int(nz[t, :, j].sum())} non-zeros "
                         f"in its group of 4 input channels")
    m0, m1, m2 = nz[:, 0], nz[:, 1], nz[:, 2]
    bit0, bit1 = ~m0 & m1, ~m0 & ~m1
    bit2, bit3 = bit1 | ~m2, bit0 | ~m1 | m2
    return bit0 + 2 * bit1.astype(np.int64), bit2 + 2 * bit3.astype(np.int64)


# --- bit streams -----------------------------------------------------------------------------------------

def _pack(values, widths):
    """LSB-first concatenation of ``values[n]`` in ``widths[n]`` bits: (payload bytes, bit count)."""
    values, widths = np.asarray(values, np.uint64), np.asarray(widths, np.int64)
    place = np.arange(16)
    bits = ((values[:, None] >> place.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)
    stream = bits[place < widths[:, None]]
    return np.packbits(stream, bitorder="little").tobytes(), len(stream)


def _fields(tiles, fmt, name=None):
    """The stream's fields in order, as (values, widths) arrays."""
    flat = np.asarray(tiles, np.uint16).reshape(-1, TILE_ELEMENTS)
    count = len(flat)
    nz = ~fp.is_zero(flat, fp.FP16)
    if fmt is BITMASK:
        mask = (nz.astype(np.uint64) << np.arange(TILE_ELEMENTS, dtype=np.uint64)).sum(axis=1)
        slots = np.concatenate([mask[:, None], flat], axis=1).ravel()
        keep = np.concatenate([np.ones((count, 1), bool), nz], axis=1).ravel()
        return slots[keep], np.full(keep.sum(), 16)
    if fmt is RLE:
        row, run, value = rle_entries(flat)
        entries = np.bincount(row, minlength=count)
        start = np.arange(count) + 2 * (np.cumsum(entries) - entries)          # field index of each count
        first_entry = np.repeat(np.cumsum(entries) - entries, entries)
        slot = start[row] + 1 + 2 * (np.arange(len(row)) - first_entry)
        values, widths = np.zeros(count + 2 * len(row), np.uint64), np.zeros(count + 2 * len(row), np.int64)
        values[start], widths[start] = entries, 5
        values[slot], widths[slot] = run, 4
        values[slot + 1], widths[slot + 1] = value, 16
        return values, widths
    low, high = nm24_meta(np.asarray(tiles).reshape(-1, TILE, TILE), name)
    meta = ((low | (high << 2)) << (4 * np.arange(TILE))).sum(axis=1)
    cols = flat.reshape(count, TILE, TILE)
    pairs = np.stack([np.take_along_axis(cols, low[:, None, :], 1)[:, 0],
                      np.take_along_axis(cols, high[:, None, :], 1)[:, 0]], axis=2).reshape(count, 8)
    return np.concatenate([meta[:, None], pairs], axis=1).ravel(), np.full(count * 9, 16)


def encode(tiles, fmt, name=None):
    """Tiles ``[T, 4, 4]`` (FP16 bit patterns) -> ``(payload, nbits)``: the stream LSB-first in bytes, the
    last byte zero-padded, and its exact length in bits. ``name(t, j)`` names a non-2:4 group (nm24)."""
    return _pack(*_fields(tiles, format_by_name(fmt), name))


def tile_bits(tiles, fmt):
    """Encoded length of every tile in bits (int array [T])."""
    fmt = format_by_name(fmt)
    nz = (~fp.is_zero(np.asarray(tiles, np.uint16), fp.FP16)).reshape(-1, TILE_ELEMENTS).sum(axis=1)
    return {"bitmask": 16 + 16 * nz, "rle": 5 + 20 * nz, "nm24": np.full(len(nz), 144)}[fmt.name]


def _read(bits, offsets, width):
    """Fields of ``width`` bits at bit ``offsets`` (an int array of any shape) of a bit array."""
    offsets, value = np.asarray(offsets, np.int64), 0
    for k in range(width):
        value = value | (bits[offsets + k].astype(np.int64) << k)
    return value


def _tile_length(payload, at, fmt):
    """The length in bits of the tile at bit ``at`` of ``payload``, from its header field."""
    header = int.from_bytes(payload[at // 8:at // 8 + 4], "little") >> at % 8 & ((1 << fmt.header_bits) - 1)
    return {"bitmask": 16 + 16 * header.bit_count(), "rle": 5 + 20 * header, "nm24": 144}[fmt.name]


def decode(payload, fmt, count, nbits=None):
    """Stream -> ``(tiles uint16 [count, 4, 4], is_zero bool [count, 4, 4])``; flagged elements are +0.

    The stream must hold exactly ``count`` tiles: ``nbits`` bits when given, else all of ``payload`` up to
    its last byte's padding. ValueError names the first problem (truncated, too long, an rle count above 16
    or a run past the tile end, an nm24 index pair that is not ascending).
    """
    fmt = format_by_name(fmt)
    bits = np.unpackbits(np.frombuffer(payload, np.uint8), bitorder="little")
    total = len(bits) if nbits is None else nbits
    if nbits is not None and len(payload) != -(-nbits // 8):
        raise ValueError(f"payload of {len(payload)} bytes for a stream of {nbits} bits "
                         f"({'truncated' if len(payload) < -(-nbits // 8) else 'too long'})")
    bits = np.concatenate([bits, np.zeros(32, np.uint8)])    # fields read past a tile's end see zeros
    offsets, at = [], 0
    for t in range(count):
        end = at + _tile_length(payload, at, fmt)
        if at + fmt.header_bits > total or end > total:
            raise ValueError(f"stream truncated: tile {t} of {count} ends past bit {total}")
        offsets.append(at)
        at = end
    if (nbits is None and -(-at // 8) != len(payload)) or (nbits is not None and at != nbits):
        raise ValueError(f"stream too long: {count} tiles end at bit {at}, the stream has {total} bits")
    offsets = np.array(offsets, np.int64).reshape(count)
    values, present = _decode_tiles(bits, offsets, fmt)
    zero = ~present | fp.is_zero(values, fp.FP16)
    return np.where(zero, 0, values).astype(np.uint16).reshape(count, TILE, TILE), zero.reshape(count, TILE, TILE)


def _decode_tiles(bits, offsets, fmt):
    """(stored values [T, 16], stored flags [T, 16]) of the tiles starting at ``offsets``."""
    count, p = len(offsets), np.arange(TILE_ELEMENTS)
    header = _read(bits, offsets, 5 if fmt is RLE else 16)          # rle count, bitmask mask, nm24 meta
    if fmt is BITMASK:
        present = ((header[:, None] >> p) & 1).astype(bool)
        rank = np.cumsum(present, axis=1) - present
        return np.where(present, _read(bits, offsets[:, None] + 16 + 16 * rank * present, 16), 0), present
    if fmt is NM24:
        low, high = (header[:, None] >> (4 * np.arange(TILE))) & 3, (header[:, None] >> (4 * np.arange(TILE) + 2)) & 3
        bad = np.argwhere(low >= high)
        if len(bad):
            t, j = bad[0]
            raise ValueError(f"tile {t} column {j}: 2:4 indices ({low[t, j]}, {high[t, j]}) are not ascending")
        pair = _read(bits, offsets[:, None, None] + 16 + 32 * np.arange(TILE)[:, None] + 16 * np.arange(2), 16)
        kk = np.arange(TILE)[:, None]                                        # tile rows, broadcast over j
        present = (kk == low[:, None, :]) | (kk == high[:, None, :])         # [T, kk, j]
        values = np.where(kk == low[:, None, :], pair[:, None, :, 0], np.where(present, pair[:, None, :, 1], 0))
        return values.reshape(count, -1), present.reshape(count, -1)
    if (header > TILE_ELEMENTS).any():
        t = int(np.argmax(header > TILE_ELEMENTS))
        raise ValueError(f"tile {t}: rle count {header[t]} is above {TILE_ELEMENTS}")
    live = p < header[:, None]                                               # [T, entry]
    entry_at = offsets[:, None] + 5 + 20 * p * live
    run, value = _read(bits, entry_at, 4), _read(bits, entry_at + 4, 16)
    pos = np.cumsum(np.where(live, run + 1, 0), axis=1) - 1
    if (live & (pos >= TILE_ELEMENTS)).any():
        t = int(np.argmax((live & (pos >= TILE_ELEMENTS)).any(axis=1)))
        raise ValueError(f"tile {t}: an rle run ends past element {TILE_ELEMENTS - 1}")
    values, present = np.zeros((count, TILE_ELEMENTS), np.int64), np.zeros((count, TILE_ELEMENTS), bool)
    t, e = np.nonzero(live)
    values[t, pos[t, e]], present[t, pos[t, e]] = value[t, e], True
    return values, present


def decode_words(words, fmt, width=64):
    """What the decompressor makes of ``words`` (:func:`stream_words`'s layout): :func:`decode` of the payload,
    after checking that the words end with the word that holds the stream's last bit."""
    count, nbits = words[0] & ((1 << HEADER_FIELD_BITS) - 1), words[0] >> HEADER_FIELD_BITS
    if len(words) != 1 + -(-nbits // width):
        raise ValueError(f"{len(words) - 1} payload words for a stream of {nbits} bits in {width}-bit words")
    payload = b"".join(int(word).to_bytes(width // 8, "little") for word in words[1:])
    return decode(payload[:-(-nbits // 8)], fmt, count, nbits)


def stream_words(payload, nbits, count, width=64):
    """The decompressor's input words: a header word holding the tile ``count`` (bits 31:0) and the stream
    length ``nbits`` (bits 63:32; the rest 0), then the payload as ``width``-bit little-endian words, the
    last one zero-padded."""
    if width % 8 or width < 2 * HEADER_FIELD_BITS:
        raise ValueError(f"width must be a multiple of 8 of at least {2 * HEADER_FIELD_BITS}, not {width!r}")
    if not (0 <= count < 1 << HEADER_FIELD_BITS and 0 <= nbits < 1 << HEADER_FIELD_BITS):
        raise ValueError(f"tile count {count} or stream length {nbits} does not fit the header word")
    step = width // 8
    return [count | nbits << HEADER_FIELD_BITS] + [int.from_bytes(payload[i:i + step], "little")
                                                   for i in range(0, len(payload), step)]


# --- sizes and timing ------------------------------------------------------------------------------------

def magnitude_prune(shape, density, rng, fmt="bitmask"):
    """Random normal FP16 weights ``shape`` [K, C, R, S] pruned by magnitude to ``density`` (the kept
    fraction). For ``nm24`` the two smallest of every group ``w[k, 4g:4g+4, r, s]`` go first (2:4), then
    the global threshold; densities above 0.5 are refused there."""
    if not 0.0 <= density <= 1.0:
        raise ValueError(f"density must lie in [0, 1], not {density!r}")
    w = rng.standard_normal(shape).astype(np.float16)
    w[w == 0] = np.float16(1.0)
    magnitude = np.abs(w.astype(np.float32))
    if format_by_name(fmt) is NM24:
        if density > 0.5:
            raise ValueError(f"2:4 weights have at most 50% density, not {density:.0%}")
        groups = magnitude.reshape(shape[0], -1, TILE, *shape[2:])            # C must divide by 4
        rank = groups.argsort(axis=2).argsort(axis=2)
        magnitude = np.where(rank >= 2, groups, 0).reshape(shape)
    keep = round(density * w.size)
    order = np.argsort(-magnitude, axis=None, kind="stable")
    pruned = np.zeros(w.size, np.float16)
    pruned[order[:keep]] = w.ravel()[order[:keep]]
    return fp.to_bits(pruned.reshape(shape), fp.FP16)


def decoder_buffer_bits(fmt, width):
    """Bit buffer of the hardware decompressor: the longest tile plus two input words. The decompressor
    takes a word when ``fill + width <= buffer`` (a registered decision); a tile leaves when the buffer
    holds all of it, so at full rate the fill before a cycle stays below a tile plus one word and the
    input is never refused while the output flows."""
    return format_by_name(fmt).max_tile_bits + 2 * width


def decoder_cycles(lengths, fmt, width=64):
    """Cycles the hardware decompressor (``accel.hw.decompressor``) takes for a stream of tiles of
    ``lengths`` bits, with the input always valid and the output always ready: the index of the last
    output handshake plus one, counted from the header word's cycle. Per cycle it takes a word when the
    buffer has room for it (``fill + width <= buffer``) and decodes a tile when the buffer holds all of it;
    a word reaches the buffer and a tile the output register one cycle later."""
    lengths = [int(n) for n in lengths]
    size, words = decoder_buffer_bits(fmt, width), 1 + -(-sum(lengths) // width)
    fill, taken, tile, cycle = 0, 1, 0, 1                  # cycle 0 took the header word
    while tile < len(lengths):
        decode = fill >= lengths[tile]
        accept = taken < words and fill + width <= size
        fill += (width if accept else 0) - (lengths[tile] if decode else 0)
        tile, taken, cycle = tile + decode, taken + accept, cycle + 1
    return cycle + 1


DENSITIES = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def density_sweep(densities=DENSITIES, shape=(64, 64, 3, 3), width=64, seed=0):
    """Compressed size and decompressor throughput of every format over weight densities.

    Rows ``{format, density, bits_per_weight, tiles_per_cycle}``: the encoded stream's bits per weight
    (dense FP16 = 16) and tiles per clock (:func:`decoder_cycles`, ``width``-bit input) for weights
    magnitude-pruned from random normal ones; nm24 rows only up to 50% density.
    """
    rows = []
    for name in FORMATS:
        for density in densities:
            if name == "nm24" and density > 0.5:
                continue
            tiles = conv_to_tiles(magnitude_prune(shape, density, np.random.default_rng(seed), name))
            lengths = tile_bits(tiles, name)
            rows.append({"format": name, "density": density,
                         "bits_per_weight": float(lengths.sum() / np.prod(shape)),
                         "tiles_per_cycle": len(tiles) / decoder_cycles(lengths, name, width)})
    return rows
