"""cocotb testbench: the Winograd transform units (accel.hw.winograd) against accel.golden.winograd.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_UNIT (``in`` for the input transform
V = Bᵀ·d·B, ``out`` for the output transform Y = Aᵀ·M·A), ACCEL_TB_TILE (m = 2 or 4), ACCEL_TB_SEED. Tiles
mix random values over a wide range, ReLU-like tiles, zeros (partial tiles are zero-padded), subnormals and
the shared special values (±0, ±Inf, NaN, values that overflow when scaled and added); the input transform's
``is_zero`` flags must mark exactly the ±0 results.
"""

import os
import random

import cocotb
import numpy as np

from accel.golden import fp
from accel.golden import winograd as golden
from accel.hw.winograd import WinogradInput, WinogradOutput
from accel.sim.payload import pack, unpack
from streams import SEED, fp_patterns, stream_tests

KIND = os.environ.get("ACCEL_TB_UNIT", "in")
M = int(os.environ.get("ACCEL_TB_TILE", "2"))
N = M + 2
UNIT = WinogradInput(m=M) if KIND == "in" else WinogradOutput(m=M)
FMT = fp.FP16 if KIND == "in" else fp.FP32
IN_FIELD, OUT_FIELD = ("d", "v") if KIND == "in" else ("m", "y")
IN_LAYOUT = UNIT.i.payload.shape()
OUT_LAYOUT = UNIT.o.payload.shape()


def stimulus(count, seed):
    """Tiles of wide-range random and special values; every fourth ReLU-like (about half zeros, the rest
    positive), as partial tiles at a layer's edge are (their padding is zeros)."""
    rng = random.Random(seed)
    tiles = fp_patterns(rng, count * N * N, FMT, zero_share=0.15).reshape(count, N * N)
    relu = tiles[::4]
    relu[(relu >> (FMT.width - 1)) == 1] = 0
    return pack(IN_LAYOUT, {IN_FIELD: tiles})


def model(words):
    tiles = unpack(IN_LAYOUT, words)[IN_FIELD].reshape(len(words), N, N)
    if KIND == "in":
        v = golden.input_transform(tiles.astype(np.uint16), M).reshape(len(words), N * N)
        return pack(OUT_LAYOUT, {"v.value": v, "v.is_zero": fp.is_zero(v, fp.FP16)})
    y = golden.output_transform(tiles.astype(np.uint32), M).reshape(len(words), M * M)
    return pack(OUT_LAYOUT, {"y": y})


def compare(got, want, word):
    if got == want:
        return None
    g, w = unpack(OUT_LAYOUT, [got]), unpack(OUT_LAYOUT, [want])
    bad = {path: (g[path][0], w[path][0]) for path in g if not np.array_equal(g[path], w[path])}
    return "; ".join(f"{path}: {[hex(int(x)) for x in got_]} want {[hex(int(x)) for x in want_]}"
                     for path, (got_, want_) in list(bad.items())[:2])


full_rate, random_back_pressure, reset_mid_stream = (cocotb.test()(t) for t in stream_tests(
    __name__, stimulus=stimulus, model=model, compare=compare, in_width=IN_LAYOUT.size, latency=UNIT.latency,
    seed=SEED, full_count=120, count=150, reset_after=(23, 57), item="tile"))
