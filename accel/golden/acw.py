"""The ``.acw`` file: conv weights ``w[K, C, R, S]`` compressed in one of the sparse tile formats.

Layout (little-endian, a fixed 40-byte header, the payload, a CRC trailer)::

    offset size  field
     0     4    magic          b"ACW\\x00"
     4     2    version        u16, 1
     6     1    format         u8: 1 bitmask, 2 rle, 3 nm24 (accel.golden.sparse.FORMATS codes)
     7     1    dtype          u8: 1 = IEEE 754 binary16
     8    16    shape          4 x u32: K, C, R, S (each at least 1)
    24     4    tiles          u32: tile count, ceil(K/4) * ceil(C/4) * R * S
    28     4    nonzeros       u32: weights that are not ±0
    32     8    payload_bits   u64: exact length of the tile stream in bits
    40     n    payload        the tile stream (accel.golden.sparse), n = ceil(payload_bits / 8), zero-padded
    40+n   4    crc32          u32: zlib.crc32 of bytes 0 .. 40+n-1

:func:`loads` checks, in this order and before allocating anything sized by the header: every header field
is present (truncation), the magic, the version, the format and dtype codes, the shape, the tile count
against the shape, the payload length against ``payload_bits`` and against the shortest and longest
streams ``tiles`` tiles can make, the file length, the CRC; then decodes and checks ``nonzeros``. Each
failure is one :class:`AcwError` with a one-line message.
"""

import struct
import zlib

import numpy as np

from . import fp, sparse

__all__ = ["AcwError", "MAGIC", "VERSION", "HEADER", "HEADER_SIZE", "dumps", "loads"]

MAGIC = b"ACW\x00"
VERSION = 1
DTYPE_FP16 = 1
#: (name, struct code) of the header fields, in file order.
HEADER = (("magic", "4s"), ("version", "H"), ("format", "B"), ("dtype", "B"), ("shape", "4I"),
          ("tiles", "I"), ("nonzeros", "I"), ("payload_bits", "Q"))
HEADER_FORMAT = "<" + "".join(code for _, code in HEADER)
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)
CRC_SIZE = 4
FORMAT_BY_CODE = {f.code: f for f in sparse.FORMATS.values()}


class AcwError(ValueError):
    """A ``.acw`` file that cannot be read: the message names the problem in one line."""


def dumps(w, format):
    """float16 weights ``w[K, C, R, S]`` -> the bytes of an ``.acw`` file in ``format``.

    ValueError for weights of another dtype or rank, or (nm24) weights that are not 2:4 sparse.
    """
    w = np.asarray(w)
    if w.dtype != np.float16 or w.ndim != 4 or 0 in w.shape:
        raise ValueError(f"weights must be a non-empty float16 array [K, C, R, S], not {w.dtype} {w.shape}")
    fmt = sparse.format_by_name(format)
    bits = fp.to_bits(w, fp.FP16)
    tiles = sparse.conv_to_tiles(bits)
    payload, nbits = sparse.encode(tiles, fmt.name, sparse.conv_group_name(w.shape))
    header = struct.pack(HEADER_FORMAT, MAGIC, VERSION, fmt.code, DTYPE_FP16, *w.shape, len(tiles),
                         int((~fp.is_zero(bits, fp.FP16)).sum()), nbits)
    body = header + payload
    return body + struct.pack("<I", zlib.crc32(body))


def header(data):
    """The header fields as a dict; AcwError at the first one that is missing, or a bad magic/version."""
    fields, at = {}, 0
    for name, code in HEADER:
        size = struct.calcsize("<" + code)
        if len(data) < at + size:
            raise AcwError(f"file truncated in header field {name!r} (bytes {at}..{at + size - 1}; "
                           f"the file has {len(data)} bytes)")
        value = struct.unpack_from("<" + code, data, at)
        fields[name] = value if len(value) > 1 else value[0]
        at += size
        if name == "magic" and fields["magic"] != MAGIC:
            raise AcwError(f"not an .acw file: magic {fields['magic']!r}, expected {MAGIC!r}")
        if name == "version" and fields["version"] != VERSION:
            raise AcwError(f"unsupported .acw version {fields['version']} (this reader knows version {VERSION})")
    return fields


def loads(data):
    """The bytes of an ``.acw`` file -> float16 weights ``[K, C, R, S]`` (zeros of either sign as +0)."""
    data = bytes(data)
    head = header(data)
    fmt = FORMAT_BY_CODE.get(head["format"])
    if fmt is None:
        raise AcwError(f"unknown format code {head['format']} (known: "
                       f"{', '.join(f'{f.code} {f.name}' for f in FORMAT_BY_CODE.values())})")
    if head["dtype"] != DTYPE_FP16:
        raise AcwError(f"unknown dtype code {head['dtype']} (known: {DTYPE_FP16} float16)")
    k, c, r, s = shape = head["shape"]
    if 0 in shape:
        raise AcwError(f"shape {list(shape)} has a zero dimension")
    tiles = -(-k // sparse.TILE) * -(-c // sparse.TILE) * r * s
    if head["tiles"] != tiles:
        raise AcwError(f"shape {list(shape)} makes {tiles} tiles, the header says {head['tiles']}")
    nbits, nbytes = head["payload_bits"], len(data) - HEADER_SIZE - CRC_SIZE
    if not tiles * fmt.min_tile_bits <= nbits <= tiles * fmt.max_tile_bits:
        raise AcwError(f"{tiles} {fmt.name} tiles cannot make a {nbits}-bit stream "
                       f"({tiles * fmt.min_tile_bits}..{tiles * fmt.max_tile_bits} bits)")
    if nbytes != -(-nbits // 8):
        raise AcwError(f"payload is {max(nbytes, 0)} bytes, the header declares {-(-nbits // 8)} "
                       f"({'truncated' if nbytes < -(-nbits // 8) else 'trailing bytes'})")
    (crc,) = struct.unpack_from("<I", data, len(data) - CRC_SIZE)
    if crc != zlib.crc32(data[:-CRC_SIZE]):
        raise AcwError(f"CRC mismatch: stored {crc:#010x}, computed {zlib.crc32(data[:-CRC_SIZE]):#010x}")
    try:
        decoded, zero = sparse.decode(data[HEADER_SIZE:-CRC_SIZE], fmt.name, tiles, nbits)
    except ValueError as error:
        raise AcwError(f"malformed {fmt.name} payload: {error}") from None
    if int((~zero).sum()) != head["nonzeros"]:
        raise AcwError(f"payload holds {int((~zero).sum())} non-zero weights, the header says {head['nonzeros']}")
    return fp.from_bits(sparse.tiles_to_conv(decoded, shape), fp.FP16).copy()
