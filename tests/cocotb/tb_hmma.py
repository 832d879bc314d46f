"""cocotb testbench: HMMA array (accel.hw.hmma.HMMA), D = A·B + C, against accel.golden.hmma.

Configuration from the environment (set by test_cocotb.py): ACCEL_TB_GATING, ACCEL_TB_SHAPE ("m,n,k"),
ACCEL_TB_SEED. Operands are sparse (zeros on about a third of the elements, so the zero flags and the
frozen lines are exercised) with special values mixed in; the sender raises ``is_zero`` on ±0 elements
(none with gating ``none``), as :func:`accel.sim.hmma.instruction_words` does.
"""

import os
import random

import cocotb
import numpy as np

from accel.golden import fp
from accel.golden import hmma as golden
from accel.hw.hmma import HMMA
from accel.sim.hmma import instruction_words
from accel.sim.payload import pack, unpack
from streams import StreamTestbench, fp_patterns, scenario

GATING = os.environ.get("ACCEL_TB_GATING", "hold")
SEED = int(os.environ.get("ACCEL_TB_SEED", "1"))
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
    f = unpack(IN_LAYOUT, words)
    count = len(words)
    a = f["a.value"].astype(np.uint16).reshape(count, M, K)
    b = f["b.value"].astype(np.uint16).reshape(count, K, N)
    c = f["c"].astype(np.uint32).reshape(count, M, N)
    return pack(OUT_LAYOUT, {"d": golden.hmma(a, b, c, GATING).reshape(count, M * N)})


def compare(got, want, word):
    if got == want:
        return None
    g = unpack(OUT_LAYOUT, [got])["d"][0]
    w = unpack(OUT_LAYOUT, [want])["d"][0]
    bad = [(i, int(x), int(y)) for i, (x, y) in enumerate(zip(g, w)) if x != y]
    return "d[" + ", ".join(f"{i}]={x:#010x} want {y:#010x}" for i, x, y in bad[:4])


def bench(dut, seed, **probs):
    return StreamTestbench(dut, model=model, compare=compare, in_width=IN_LAYOUT.size, latency=UNIT.latency,
                           seed=seed, **probs)


@cocotb.test()
async def full_rate(dut):
    """Back-to-back instructions: every D right, one instruction per clock."""
    tb = bench(dut, SEED)
    await scenario(tb, stimulus(120, SEED))
    tb.assert_clean(120)
    assert tb.last_out_cycle - tb.first_out_cycle == 119, "not one instruction per clock at full rate"


@cocotb.test()
async def random_back_pressure(dut):
    """Random idle cycles on the input, random back-pressure (a global stall) on the output."""
    tb = bench(dut, SEED + 1, valid_prob=0.6, ready_prob=0.5)
    await scenario(tb, stimulus(150, SEED + 1))
    tb.assert_clean(150)


@cocotb.test()
async def reset_mid_stream(dut):
    """Reset twice under traffic: in-flight instructions are lost, the array restarts empty and correct."""
    tb = bench(dut, SEED + 2, valid_prob=0.8, ready_prob=0.7)
    await scenario(tb, stimulus(150, SEED + 2), reset_after=(29, 71))
    tb.assert_clean(150 - tb.dropped)
    assert tb.resets == 2 and tb.dropped > 0 and tb.checked + tb.dropped == 150
