"""The sparse weight decompressor in the Amaranth simulator: golden encode -> hardware decode, bit for bit.

Each run streams a few tens of tiles (the simulator is slow), under random valid/ready back-pressure
unless the test counts cycles.
"""

import gc

import numpy as np
import pytest
from amaranth.sim import Simulator

from accel.golden import sparse
from accel.golden.hmma import compress_24
from accel.golden.operands import held_lines
from accel.golden.specials import SPECIAL_FP16
from accel.hw.decompressor import Decompressor

DENSITIES = [0.0, 0.05, 0.1, 0.5, 1.0]
SHAPE = (8, 8, 3, 2)      # 24 tiles in the sequencer's order


def run_words(dut, *streams, rng=None, max_cycles=2000):
    """Offer the ``streams`` (lists of words; ``last`` on the final word of each) to ``dut`` one after the
    other and take its tiles, with random valid/ready (70%) when ``rng`` is given. Stops once every word is
    taken and no tile has come for a few cycles. Returns (tiles: {value, is_zero, index} arrays [N, 16],
    or [N, 8] in kept mode (index: the kept values' indices; 0 otherwise), cycles to the last tile + 1, words
    taken, error)."""
    outputs, result = [], {}
    words = [word for stream in streams for word in stream]
    last = set(np.cumsum([len(stream) for stream in streams]) - 1)

    async def testbench(ctx):
        sent, quiet, last_tile = 0, 0, -1
        for cycle in range(max_cycles):
            offer = sent < len(words) and (rng is None or rng.random() < 0.7)
            ready = rng is None or rng.random() < 0.7
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload.data, words[sent] if offer else 0)
            ctx.set(dut.i.payload.last, offer and sent in last)
            ctx.set(dut.o.ready, ready)
            if offer and ctx.get(dut.i.ready):
                sent += 1
            if ready and ctx.get(dut.o.valid):
                tile = ctx.get(dut.o.payload)
                lanes = zip(tile.values, tile.index) if dut.kept else ((lane, 0) for lane in tile)
                outputs.append([(lane.value, lane.is_zero, index) for lane, index in lanes])
                last_tile = cycle
            quiet = quiet + 1 if sent == len(words) and not ctx.get(dut.o.valid) else 0
            if quiet > 8:
                break
            await ctx.tick()
        result.update(cycles=last_tile + 1, sent=sent, error=bool(ctx.get(dut.error)))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    lanes = np.array(outputs, np.uint16).reshape(-1, 8 if dut.kept else 16, 3)
    return ({"value": lanes[..., 0], "is_zero": lanes[..., 1].astype(bool), "index": lanes[..., 2]},
            result["cycles"], result["sent"], result["error"])


def golden_case(fmt, density, seed, shape=SHAPE):
    """(tiles [T, 4, 4], stream words) for magnitude-pruned random weights, with some -0 among the zeros and
    special values (subnormals, Inf, NaN) among the non-zeros."""
    rng = np.random.default_rng(seed)
    w = sparse.magnitude_prune(shape, density, rng, fmt)
    specials = np.array([v for v in SPECIAL_FP16 if v & 0x7FFF], np.uint16)
    swap = (w != 0) & (rng.random(shape) < 0.2)
    w[swap] = rng.choice(specials, swap.sum())
    w[(w == 0) & (rng.random(shape) < 0.3)] = 0x8000
    tiles = sparse.conv_to_tiles(w)
    payload, nbits = sparse.encode(tiles, fmt)
    return tiles, sparse.stream_words(payload, nbits, len(tiles))


def check_round_trip(fmt, density, seed, gating="hold"):
    tiles, words = golden_case(fmt, density, seed)
    expected, zero = sparse.decode_words(words, fmt)
    dut = Decompressor(format=fmt, gating=gating)
    out, _, sent, error = run_words(dut, words, rng=np.random.default_rng(seed))
    assert not error and sent == len(words) and len(out["value"]) == len(tiles)
    flags, values = zero.reshape(-1, 16), expected.reshape(-1, 16)
    assert np.array_equal(out["is_zero"], flags & (gating != "none"))
    lines = held_lines(values, flags) if gating == "hold" else values
    assert np.array_equal(out["value"], lines)
    assert np.array_equal(np.where(flags, 0, out["value"]).reshape(tiles.shape),
                          np.where(zero, 0, tiles))     # the stored values, ±0 as flagged +0


@pytest.mark.parametrize("density", DENSITIES)
@pytest.mark.parametrize("fmt", ["bitmask", "rle"])
def test_round_trip_under_backpressure(fmt, density):
    check_round_trip(fmt, density, seed=int(density * 100) + len(fmt))


@pytest.mark.parametrize("density", [0.0, 0.05, 0.1, 0.5])
def test_nm24_round_trip_under_backpressure(density):
    check_round_trip("nm24", density, seed=int(density * 100) + 7)


@pytest.mark.parametrize("gating", ["hold", "and"])
def test_nm24_kept_mode_hands_over_values_and_indices_unexpanded(gating):
    # skip mode's weights: per column j its two kept values (lower index first) and their 2-bit indices, as
    # golden's compress_24 chooses them (explicit zeros included); a kept ±0 is flagged, and under hold its
    # value and index lines keep what was last sent there
    tiles, words = golden_case("nm24", 0.3, seed=23)
    dut = Decompressor(format="nm24", gating=gating, kept=True)
    out, _, sent, error = run_words(dut, words, rng=np.random.default_rng(24))
    assert not error and sent == len(words) and out["value"].shape == (len(tiles), 8)
    values, indices = compress_24(tiles.transpose(0, 2, 1))           # rows j = columns of the tiles
    values, indices = values.reshape(-1, 8), indices.reshape(-1, 8)
    flags = (values & 0x7FFF) == 0
    assert flags.any() and np.array_equal(out["is_zero"], flags)
    if gating == "hold":
        values, indices = held_lines(values, flags), held_lines(indices, flags)
    assert np.array_equal(out["value"], np.where(flags & (gating != "hold"), 0, values))
    assert np.array_equal(out["index"], indices)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_kept_mode_is_nm24_only():
    with pytest.raises(ValueError, match="kept mode is for nm24"):
        Decompressor(format="bitmask", kept=True)
    gc.collect()


@pytest.mark.parametrize("gating", ["and", "none"])
def test_other_gatings_drive_zeros(gating):
    check_round_trip("bitmask", 0.5, seed=5, gating=gating)


def test_bitmask_at_10_percent_sustains_one_tile_per_clock():
    tiles, words = golden_case("bitmask", 0.1, seed=3, shape=(16, 16, 3, 1))    # 48 tiles
    dut = Decompressor(format="bitmask", width=64)
    out, cycles, _, error = run_words(dut, words)
    assert not error and len(out["value"]) == len(tiles)
    assert cycles == sparse.decoder_cycles(sparse.tile_bits(tiles, "bitmask"), "bitmask", 64)
    assert cycles <= len(tiles) + dut.latency + 1       # + 1: this stream's first tile spans two words


@pytest.mark.parametrize("fmt, density", [("rle", 0.5), ("nm24", 0.3), ("bitmask", 1.0)])
def test_cycle_counts_match_the_golden_timing_model(fmt, density):
    tiles, words = golden_case(fmt, density, seed=9)
    dut = Decompressor(format=fmt)
    out, cycles, _, error = run_words(dut, words)
    assert not error and len(out["value"]) == len(tiles)
    assert cycles == sparse.decoder_cycles(sparse.tile_bits(tiles, fmt), fmt, 64)


def words_of(fields, count, width=64):
    """Stream words holding ``count`` tiles written as raw (value, bits) fields, LSB-first."""
    stream, at = 0, 0
    for value, bits in fields:
        stream, at = stream | value << at, at + bits
    return sparse.stream_words(stream.to_bytes(-(-at // 8), "little"), at, count, width)


ONE = 0x3C00
# case: (format, stream words, tiles the hardware emits before the problem shows)
MALFORMED = {
    "bitmask mask claims more values than follow": ("bitmask", words_of([(0b111, 16), (ONE, 16), (ONE, 16)], 1), 0),
    "bitmask mask claims fewer values than follow": ("bitmask", words_of([(0b1, 16)] + [(ONE, 16)] * 5, 1), 1),
    "bitmask stream truncated": ("bitmask", words_of([(0xFFFF, 16)] + [(ONE, 16)] * 16, 3), 1),
    "rle count above 16": ("rle", words_of([(17, 5)] + [(0, 20)] * 17, 1), 0),
    "rle run past the tile end": ("rle", words_of([(2, 5), (9, 4), (ONE, 16), (9, 4), (ONE, 16)], 1), 0),
    "rle stream truncated": ("rle", words_of([(1, 5), (0, 4), (ONE, 16)], 2), 1),
    "nm24 equal indices": ("nm24", words_of([(0x4445, 16)] + [(ONE, 16)] * 8, 1), 0),       # column 0: (1, 1)
    "nm24 descending indices": ("nm24", words_of([(0x4441, 16)] + [(ONE, 16)] * 8, 1), 0),  # column 0: (1, 0)
    "nm24 stream truncated": ("nm24", words_of([(0x4444, 16)] + [(ONE, 16)] * 8, 2), 1),
    "stream longer than its tiles": ("rle", words_of([(0, 5)] * 40, 1), 1),
    "a word after the one that ends the stream": ("bitmask", words_of([(0, 16)], 1) + [0], 1),
    "no tiles after a header marked last": ("bitmask", [5 | 16 << 32], 0),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_stream_raises_error_and_drains(case):
    fmt, words, emitted = MALFORMED[case]
    with pytest.raises(ValueError):                        # the golden decoder refuses it too
        sparse.decode_words(words, fmt)
    dut = Decompressor(format=fmt)
    good_tiles, good_words = golden_case(fmt, 0.3, seed=1, shape=(4, 4, 2, 1))
    out, _, sent, error = run_words(dut, words, good_words, rng=np.random.default_rng(2))
    assert error and sent == len(words) + len(good_words)       # flagged, every word taken: no hang
    assert len(out["value"]) == emitted + len(good_tiles)       # nothing from the bad tile, the next stream whole
    assert np.array_equal(out["is_zero"][emitted:], sparse.decode_words(good_words, fmt)[1].reshape(-1, 16))


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kwargs, error, match", [
    ({"format": "csr"}, ValueError, "format must be one of .*'csr'"),
    ({"width": 60}, ValueError, "width must be a multiple of 8 .* not 60"),
    ({"width": 32}, ValueError, "not 32"),
    ({"width": 64.0}, TypeError, "width must be an integer, not 64.0"),
    ({"gating": "zero"}, ValueError, "'zero'"),
])
def test_parameters_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        Decompressor(**kwargs)
    gc.collect()


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_derived_facts():
    dut = Decompressor(format="nm24", width=128)
    assert (dut.format, dut.width, dut.latency, dut.buffer_bits) == ("nm24", 128, 3, 144 + 256)
    assert dut.tiles_per_cycle(64) == 1 and Decompressor(format="nm24").tiles_per_cycle(144) == 64 / 144
    del dut
    gc.collect()
