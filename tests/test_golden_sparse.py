"""Golden sparse weight formats (accel.golden.sparse) and the .acw container (accel.golden.acw)."""

import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from accel.golden import acw, fp, sparse
from accel.golden.specials import SPECIAL_FP16

DENSITIES = [0.0, 0.05, 0.1, 0.5, 1.0]
ONE, TWO, MINUS_TWO = 0x3C00, 0x4000, 0xC000


def weights(shape, density, fmt, seed):
    """Magnitude-pruned FP16 bits with -0 among the zeros and special values among the non-zeros."""
    rng = np.random.default_rng(seed)
    w = sparse.magnitude_prune(shape, density, rng, fmt)
    w[(w == 0) & (rng.random(shape) < 0.3)] = 0x8000
    specials = np.array([v for v in SPECIAL_FP16 if not fp.is_zero(v, fp.FP16)], np.uint16)
    swap = (w != 0) & (w != 0x8000) & (rng.random(shape) < 0.2)
    w[swap] = rng.choice(specials, swap.sum())
    return w


def test_conv_tiles_follow_the_documented_order_and_round_trip():
    w = np.arange(5 * 7 * 3 * 2, dtype=np.uint16).reshape(5, 7, 3, 2) + 1
    tiles = sparse.conv_to_tiles(w)
    kb_count, cb_count = 2, 2
    assert tiles.shape == (kb_count * cb_count * 3 * 2, 4, 4)
    t = ((1 * cb_count + 0) * 3 + 2) * 2 + 1             # kb 1, cb 0, r 2, s 1
    assert tiles[t, 2, 0] == w[4, 2, 2, 1]                 # tile[kk][j] = w[4kb + j, 4cb + kk, r, s]
    assert (tiles[t, :, 1:] == 0).all()                    # K padded with zeros
    assert np.array_equal(sparse.tiles_to_conv(tiles, w.shape), w)
    assert sparse.conv_group_name(w.shape)(t, 0) == "w[4, 0:4, 2, 1]"


@pytest.mark.parametrize("fmt, density", [(fmt, density) for fmt in sparse.FORMATS for density in DENSITIES
                                          if fmt != "nm24" or density <= 0.5])   # 2:4 is at most 50% dense
def test_round_trip_flags_zeros_as_plus_zero(fmt, density):
    w = weights((8, 12, 3, 3), density, fmt, seed=int(100 * density))
    tiles = sparse.conv_to_tiles(w)
    payload, nbits = sparse.encode(tiles, fmt)
    assert nbits == sparse.tile_bits(tiles, fmt).sum() and len(payload) == -(-nbits // 8)
    decoded, zero = sparse.decode(payload, fmt, len(tiles), nbits)
    flags = fp.is_zero(tiles, fp.FP16)
    assert np.array_equal(zero, flags) and np.array_equal(decoded, np.where(flags, 0, tiles))
    assert density == 1.0 or (w == 0x8000).any()            # -0 was there, and came back as flagged +0


def test_bitmask_layout():
    tile = np.zeros((1, 4, 4), np.uint16)
    tile[0, 0, 0], tile[0, 1, 1] = ONE, MINUS_TWO          # elements 0 and 5
    assert sparse.encode(tile, "bitmask") == (bytes([0x21, 0x00, 0x00, 0x3C, 0x00, 0xC0]), 48)


def test_rle_layout():
    tile = np.zeros((1, 4, 4), np.uint16)
    tile[0, 0, 0], tile[0, 1, 1] = ONE, MINUS_TWO          # elements 0 and 5: runs 0 and 4
    stream = 2 | 0 << 5 | ONE << 9 | 4 << 25 | MINUS_TWO << 29
    assert sparse.encode(tile, "rle") == (stream.to_bytes(6, "little"), 45)


def test_nm24_layout():
    tile = np.zeros((1, 4, 4), np.uint16)
    tile[0, 1, 0], tile[0, 3, 0] = ONE, TWO                # column 0: rows 1 and 3 -> nibble 0b1101
    tile[0, 0, 2] = MINUS_TWO                              # column 2: row 0 only -> (0, 3): 0b1100
    meta = 0xD | 0xE << 4 | 0xC << 8 | 0xE << 12           # empty columns: (2, 3) = 0b1110
    values = [ONE, TWO, 0, 0, MINUS_TWO, 0, 0, 0]
    stream = meta | sum(v << (16 + 16 * i) for i, v in enumerate(values))
    assert sparse.encode(tile, "nm24") == (stream.to_bytes(18, "little"), 144)


# PyTorch's table in torch/sparse/_semi_structured_conversions.py (_sparse_semi_structured_from_dense):
# non-zero pattern of a group of four -> metadata nibble.
PYTORCH_NIBBLES = {(1, 1, 0, 0): 0b0100, (1, 0, 1, 0): 0b1000, (0, 1, 1, 0): 0b1001, (1, 0, 0, 1): 0b1100,
                   (0, 1, 0, 1): 0b1101, (0, 0, 1, 1): 0b1110, (0, 0, 0, 0): 0b1110, (0, 0, 0, 1): 0b1110,
                   (0, 0, 1, 0): 0b1110, (0, 1, 0, 0): 0b1101, (1, 0, 0, 0): 0b1100}


def test_nm24_metadata_matches_pytorch():
    patterns = np.array(list(PYTORCH_NIBBLES), np.uint16)            # [11, kk]
    tiles = np.repeat((patterns * ONE)[:, :, None], 4, axis=2)          # every column the same group
    low, high = sparse.nm24_meta(tiles)
    assert (low | high << 2)[:, 0].tolist() == list(PYTORCH_NIBBLES.values())


def test_nm24_refuses_weights_that_are_not_2_to_4_naming_the_group():
    w = np.zeros((8, 8, 3, 3), np.float16)
    w[5, 4:7, 1, 2] = 1.0
    with pytest.raises(ValueError, match=r"not 2:4 sparse: w\[5, 4:8, 1, 2\] has 3 non-zeros"):
        acw.dumps(w, "nm24")
    tile = np.zeros((1, 4, 4), np.uint16)
    tile[0, :, 1] = ONE
    with pytest.raises(ValueError, match="not 2:4 sparse: tile 0 column 1 has 4 non-zeros"):
        sparse.encode(tile, "nm24")


def test_rle_padding_zero_follows_eie():
    # EIE (Han et al., ISCA 2016): [0,0,1,2, 0 x 18, 3] -> values [1,2,0,3], runs [2,0,15,2]. The brief wrote
    # "0 x 15": fifteen zeros still fit one 4-bit run, so that vector needs no padding zero.
    row, run, value = sparse.rle_entries([0, 0, 1, 2] + [0] * 18 + [3])
    assert value.tolist() == [1, 2, 0, 3] and run.tolist() == [2, 0, 15, 2] and (row == 0).all()
    _, run, value = sparse.rle_entries([0, 0, 1, 2] + [0] * 15 + [3])
    assert value.tolist() == [1, 2, 3] and run.tolist() == [2, 0, 15]
    _, run, value = sparse.rle_entries([0] * 33 + [7])              # 33 zeros: two paddings, then run 1
    assert value.tolist() == [0, 0, 7] and run.tolist() == [15, 15, 1]


def stream_of(fields):
    stream, at = 0, 0
    for value, bits in fields:
        stream, at = stream | value << at, at + bits
    return stream.to_bytes(-(-at // 8), "little"), at


@pytest.mark.parametrize("fmt, fields, count, match", [
    ("bitmask", [(0b111, 16), (ONE, 16), (ONE, 16)], 1, "truncated"),
    ("bitmask", [(0b1, 16), (ONE, 16), (ONE, 16)], 1, "too long"),
    ("rle", [(17, 5)] + [(0, 20)] * 17, 1, "count 17 is above 16"),
    ("rle", [(2, 5), (9, 4), (ONE, 16), (9, 4), (ONE, 16)], 1, "run ends past element 15"),
    ("nm24", [(0x4445, 16)] + [(ONE, 16)] * 8, 1, r"indices \(1, 1\) are not ascending"),
    ("nm24", [(0x4441, 16)] + [(ONE, 16)] * 8, 1, r"indices \(1, 0\) are not ascending"),
    ("nm24", [(0x4444, 16)] + [(ONE, 16)] * 8, 2, "truncated"),
])
def test_decoder_refuses_malformed_streams(fmt, fields, count, match):
    payload, nbits = stream_of(fields)
    with pytest.raises(ValueError, match=match):
        sparse.decode(payload, fmt, count, nbits)


def test_stream_words_header_and_packing():
    payload = bytes(range(1, 20))
    words = sparse.stream_words(payload, 150, 3, width=64)
    assert words[0] == 3 | 150 << 32
    assert b"".join(w.to_bytes(8, "little") for w in words[1:]) == payload + bytes(5)


def test_density_sweep_sizes_follow_the_formats():
    rows = {(r["format"], r["density"]): r for r in sparse.density_sweep(densities=(0.0, 0.1, 0.5, 1.0),
                                                                         shape=(16, 16, 3, 3))}
    assert ("nm24", 1.0) not in rows
    for density in (0.0, 0.1, 0.5, 1.0):
        # whole tiles only, so the sizes are exact: a tile's header over its 16 weights, plus the non-zeros
        nz = round(density * 16 * 16 * 9) / (16 * 16 * 9)
        assert rows["bitmask", density]["bits_per_weight"] == pytest.approx(1 + 16 * nz)
        assert rows["rle", density]["bits_per_weight"] == pytest.approx(5 / 16 + 20 * nz)
    assert rows["nm24", 0.5]["bits_per_weight"] == 9
    assert rows["bitmask", 0.1]["tiles_per_cycle"] > 0.97 and rows["bitmask", 1.0]["tiles_per_cycle"] <= 64 / 272


def test_decoder_cycles_model():
    assert sparse.decoder_cycles([16] * 20, "bitmask", 64) == 20 + 3          # N + latency
    assert sparse.decoder_cycles([272] * 20, "bitmask", 64) > 20 * 272 / 64   # input-bound


# --- .acw ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["bitmask", "rle", "nm24"])
def test_acw_round_trip(fmt):
    bits = weights((5, 8, 3, 3), 0.3, fmt, seed=4)
    data = acw.dumps(fp.from_bits(bits, fp.FP16), fmt)
    w = acw.loads(data)
    assert w.dtype == np.float16 and w.shape == (5, 8, 3, 3)
    assert np.array_equal(fp.to_bits(w, fp.FP16), np.where(fp.is_zero(bits, fp.FP16), 0, bits))


def test_acw_header_layout():
    w = np.zeros((5, 6, 3, 3), np.float16)
    w[0, 0, 0, 0], w[4, 5, 2, 2] = 1.0, -0.0
    data = acw.dumps(w, "rle")
    assert data[:4] == b"ACW\x00" and len(data) == 40 + 25 + 4       # 36 tiles of 5 bits, one entry of 20
    assert struct.unpack_from("<HBB4IIIQ", data, 4) == (1, 2, 1, 5, 6, 3, 3, 36, 1, 36 * 5 + 20)
    assert struct.unpack_from("<I", data, len(data) - 4)[0] == zlib.crc32(data[:-4])


def valid_file():
    return acw.dumps(fp.from_bits(weights((4, 8, 3, 3), 0.3, "bitmask", seed=6), fp.FP16), "bitmask")


def with_header(data, **fields):
    """``data`` with header fields replaced (by name) and the CRC recomputed."""
    body, at = b"", 0
    for name, code in acw.HEADER:
        value = fields.get(name, struct.unpack_from("<" + code, data, at))
        body += struct.pack("<" + code, *(value if isinstance(value, tuple) else [value]))
        at += struct.calcsize("<" + code)
    body += data[acw.HEADER_SIZE:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def field_at(offset):
    at = 0
    for name, code in acw.HEADER:
        at += struct.calcsize("<" + code)
        if offset < at:
            return name


@pytest.mark.parametrize("cut", range(acw.HEADER_SIZE))
def test_acw_refuses_a_file_truncated_in_the_header(cut):
    with pytest.raises(acw.AcwError, match=f"truncated in header field '{field_at(cut)}'"):
        acw.loads(valid_file()[:cut])


@pytest.mark.parametrize("corrupt, match", [
    (lambda d: d[:50] + bytes([d[50] ^ 0x10]) + d[51:], "CRC mismatch"),
    (lambda d: d[:-5] + d[-4:], r"payload is \d+ bytes, the header declares \d+ \(truncated\)"),
    (lambda d: d[:-2], r"\(truncated\)"),
    (lambda d: d + b"\x00", r"\(trailing bytes\)"),
    (lambda d: b"ACX\x00" + d[4:], "not an .acw file: magic"),
    (lambda d: with_header(d, version=2), "unsupported .acw version 2"),
    (lambda d: with_header(d, format=9), "unknown format code 9"),
    (lambda d: with_header(d, dtype=2), "unknown dtype code 2"),
    (lambda d: with_header(d, shape=(4, 8, 3, 0)), "zero dimension"),
    (lambda d: with_header(d, nonzeros=1), "non-zero weights, the header says 1"),
    (lambda d: with_header(d, payload_bits=17), "cannot make a 17-bit stream"),
    (lambda d: with_header(d, shape=(10 ** 6, 10 ** 6, 1, 1)), r"makes 62500000000 tiles, the header says 18"),
])
def test_acw_refuses_corrupt_files(corrupt, match):
    with pytest.raises(acw.AcwError, match=match):
        acw.loads(corrupt(valid_file()))


def test_acw_refuses_a_huge_declared_shape_without_allocating():
    # 4.3e9 tiles (6.9e10 weights) with matching tile count and stream length: only the payload size can tell
    huge = with_header(valid_file(), shape=(4 * 65535, 4 * 65535, 1, 1), tiles=65535 ** 2,
                       payload_bits=16 * 65535 ** 2)
    tracemalloc.start()
    try:
        with pytest.raises(acw.AcwError, match="payload is .* bytes, the header declares 8589672450"):
            acw.loads(huge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_acw_error_is_a_value_error_and_dumps_checks_its_input():
    assert issubclass(acw.AcwError, ValueError)
    with pytest.raises(ValueError, match="float16 array"):
        acw.dumps(np.zeros((4, 4, 3, 3), np.float32), "bitmask")
    with pytest.raises(ValueError, match="unknown sparse format 'csr'"):
        acw.dumps(np.zeros((4, 4, 3, 3), np.float16), "csr")
