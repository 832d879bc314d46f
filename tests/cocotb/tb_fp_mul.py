"""cocotb testbench: FP16 x FP16 -> FP32 multiplier (accel.hw.fp_mul.FPMul) against accel.golden.fp.mul.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_GATING, ACCEL_TB_SEED.
"""

import random

import cocotb
import numpy as np

from accel.golden import fp
from accel.hw.fp_mul import FPMul
from accel.hw.units import mul_fields
from accel.sim.payload import pack, unpack
from streams import GATING, SEED, fp_patterns, stream_tests

UNIT = FPMul(gating=GATING)
IN_LAYOUT = UNIT.i.payload.shape()
OUT_LAYOUT = UNIT.o.payload.shape()


def stimulus(n, seed):
    """Operand words as the sender puts them out (:func:`accel.hw.units.mul_fields`): a zero flag exactly on
    ±0 operands (none with gating none); under hold a flagged operand's lines keep their last value."""
    rng = random.Random(seed)
    a = fp_patterns(rng, n, fp.FP16)
    return pack(IN_LAYOUT, mul_fields(a, fp_patterns(rng, n, fp.FP16), GATING))


def model(words):
    """Golden model: the exact product; with hold, a flagged operand gives is_zero (product don't-care)."""
    f = unpack(IN_LAYOUT, words)
    a, b = f["a.value"][:, 0].astype(np.uint16), f["b.value"][:, 0].astype(np.uint16)
    gated = ((f["a.is_zero"][:, 0] | f["b.is_zero"][:, 0]) != 0) & (GATING == "hold")
    return pack(OUT_LAYOUT, {"p": fp.mul(a, b), "is_zero": gated})


def compare(got, want, word):
    g, w = unpack(OUT_LAYOUT, [got]), unpack(OUT_LAYOUT, [want])
    if g["is_zero"][0, 0] != w["is_zero"][0, 0]:
        return f"is_zero {g['is_zero'][0, 0]} != {w['is_zero'][0, 0]}"
    if not w["is_zero"][0, 0] and g["p"][0, 0] != w["p"][0, 0]:
        return f"p {int(g['p'][0, 0]):#010x} != {int(w['p'][0, 0]):#010x}"
    return None


# The three stream scenarios of streams.stream_tests, registered here, where cocotb looks for tests.
full_rate, random_back_pressure, reset_mid_stream = (cocotb.test()(t) for t in stream_tests(
    __name__, stimulus=stimulus, model=model, compare=compare, in_width=IN_LAYOUT.size, latency=UNIT.latency,
    seed=SEED))
