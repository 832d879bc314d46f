"""cocotb testbench: FP32 adder (accel.hw.fp_add.FPAdd) against accel.golden.fp.add / add_gated.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_GATING, ACCEL_TB_SEED.
"""

import random

import cocotb
import numpy as np

from accel.golden import fp
from accel.hw.fp_add import FPAdd
from accel.sim.payload import pack, unpack
from streams import GATING, SEED, fp_patterns, stream_tests

UNIT = FPAdd(gating=GATING)
IN_LAYOUT = UNIT.i.payload.shape()
OUT_LAYOUT = UNIT.o.payload.shape()


def stimulus(n, seed):
    """Operand words; ``b_zero`` is raised on ±0 addends (and on a few others: the flag, not the value,
    decides the skip)."""
    rng = random.Random(seed)
    a, b = fp_patterns(rng, n, fp.FP32), fp_patterns(rng, n, fp.FP32)
    b_zero = fp.is_zero(b, fp.FP32) | (np.array([rng.random() for _ in range(n)]) < 0.05)
    return pack(IN_LAYOUT, {"a": a, "b.value": b, "b.is_zero": b_zero})


def model(words):
    f = unpack(IN_LAYOUT, words)
    a, b = f["a"][:, 0].astype(np.uint32), f["b.value"][:, 0].astype(np.uint32)
    b_zero = f["b.is_zero"][:, 0] != 0
    s = fp.add_gated(a, b, b_zero) if GATING == "hold" else fp.add(a, b)
    return pack(OUT_LAYOUT, {"s": s})


def compare(got, want, word):
    return None if got == want else f"s {got:#010x} != {want:#010x}"


# The three stream scenarios of streams.stream_tests, registered here, where cocotb looks for tests.
full_rate, random_back_pressure, reset_mid_stream = (cocotb.test()(t) for t in stream_tests(
    __name__, stimulus=stimulus, model=model, compare=compare, in_width=IN_LAYOUT.size, latency=UNIT.latency,
    seed=SEED))
