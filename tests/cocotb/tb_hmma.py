"""cocotb testbench: HMMA array (accel.hw.hmma.HMMA), D = A·B + C, against accel.golden.hmma.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_GATING, ACCEL_TB_SHAPE ("m,n,k"),
ACCEL_TB_SEED. Operands are sparse (zeros on about a third of the elements, so the zero flags and the
frozen lines are exercised) with special values mixed in, put out as :func:`accel.sim.hmma.instruction_words`
does: ``is_zero`` on ±0 elements (none with gating ``none``), and under ``hold`` a flagged element's lines
keep their last value.
"""

import os
import random

import cocotb

from accel.golden import fp
from accel.golden import hmma as golden
from accel.hw.hmma import HMMA
from accel.sim.hmma import instruction_operands, instruction_words
from accel.sim.payload import pack, unpack
from streams import GATING, SEED, fp_patterns, stream_tests

M, N, K = (int(x) for x in os.environ.get("ACCEL_TB_SHAPE", "2,2,2").split(","))
UNIT = HMMA(m=M, n=N, k=K, gating=GATING)
IN_LAYOUT = UNIT.i.payload.shape()
OUT_LAYOUT = UNIT.o.payload.shape()


def stimulus(count, seed):
    rng = random.Random(seed)
    a = fp_patterns(rng, count * M * K, fp.FP16, zero_share=0.35).reshape(count, M, K)
    b = fp_patterns(rng, count * K * N, fp.FP16, zero_share=0.35).reshape(count, K, N)
    c = fp_patterns(rng, count * M * N, fp.FP32, zero_share=0.1).reshape(count, M, N)
    return instruction_words(UNIT, a, b, c, GATING)


def model(words):
    """Golden D for each instruction word (operands recovered from the word itself)."""
    a, b, c = instruction_operands(UNIT, words, GATING)
    return pack(OUT_LAYOUT, {"d": golden.hmma(a, b, c, GATING).reshape(len(words), M * N)})


def compare(got, want, word):
    if got == want:
        return None
    g = unpack(OUT_LAYOUT, [got])["d"][0]
    w = unpack(OUT_LAYOUT, [want])["d"][0]
    bad = [(i, int(x), int(y)) for i, (x, y) in enumerate(zip(g, w)) if x != y]
    return "d[" + ", ".join(f"{i}]={x:#010x} want {y:#010x}" for i, x, y in bad[:4])


# The three stream scenarios of streams.stream_tests, registered here, where cocotb looks for tests.
full_rate, random_back_pressure, reset_mid_stream = (cocotb.test()(t) for t in stream_tests(
    __name__, stimulus=stimulus, model=model, compare=compare, in_width=IN_LAYOUT.size, latency=UNIT.latency,
    seed=SEED, full_count=120, count=150, reset_after=(29, 71), item="instruction"))
