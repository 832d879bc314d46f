"""The HMMA array in the Amaranth simulator against the golden HMMA (chain order), every gating style.

pysim runs the 4x4x4 array at roughly a hundred cycles per second after a couple of seconds of
elaboration, so the full-size check streams only a few instructions; smaller shapes take the
random back-pressure and the reset test.
"""

import gc

import numpy as np
import pytest

from accel.golden import fp
from accel.golden import hmma as golden_hmma
from accel.hw.hmma import HMMA
from accel.sim.hmma import instruction_operands, instruction_words, result_words_to_d
from accel.sim.payload import unpack
from hwcheck import assert_bits_equal, check_hmma, hmma_operands, stream_with_reset

GATINGS = ["hold", "and", "none"]


@pytest.mark.parametrize("gating", GATINGS)
def test_hmma_4x4x4_matches_golden_in_n_plus_latency_cycles(gating):
    check_hmma(gating, seed=21, m=4, n=4, k=4, instructions=3, with_backpressure=False)


@pytest.mark.parametrize("gating", GATINGS)
@pytest.mark.parametrize("m, n, k", [(2, 2, 2), (2, 3, 1), (1, 2, 3)])
def test_hmma_small_shapes_under_backpressure(gating, m, n, k):
    check_hmma(gating, seed=22, m=m, n=n, k=k, instructions=16, with_backpressure=True)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("gating", GATINGS)
def test_instruction_words_stand_for_their_operands(gating):
    # the cocotb checker recovers the batch from the words: under hold a flagged element's lines carry the
    # last value sent, which must still stand for a zero (the golden result is the same); otherwise exact
    rng = np.random.default_rng(24)
    a, b, c = hmma_operands(rng, 12, 2, 3, 2)
    dut = HMMA(m=2, n=2, k=3, gating=gating)
    words = instruction_words(dut, a, b, c, gating)
    back = instruction_operands(dut, words, gating)
    assert back[2].dtype == np.uint32 and np.array_equal(back[2], c)
    if gating == "hold":
        lines = unpack(dut.i.payload.shape(), words)["a.value"].reshape(a.shape)
        assert (~fp.is_zero(lines[fp.is_zero(a, fp.FP16)], fp.FP16)).any()   # held lines carried values, not zeros
        assert np.array_equal(golden_hmma.skipped_products(*back[:2]), golden_hmma.skipped_products(a, b))
    else:
        assert np.array_equal(back[0], a) and np.array_equal(back[1], b)
    assert_bits_equal(golden_hmma.hmma(*back, gating), golden_hmma.hmma(a, b, c, gating))
    del dut
    gc.collect()     # the layout-only array warns when collected: here, under this test's filter


def test_hmma_reset_mid_stream_empties_the_pipeline():
    rng = np.random.default_rng(23)
    dut = HMMA(m=2, n=2, k=2, gating="hold")
    a, b, c = hmma_operands(rng, 14, 2, 2, 2)
    words = instruction_words(dut, a, b, c, "hold")
    expected = golden_hmma.hmma(a, b, c, "hold")
    reset_cycle, sent_before = dut.latency + 2, 8      # two results out, six in flight when reset hits
    before, after = stream_with_reset(dut, words[:sent_before], words[sent_before:], reset_cycle)
    assert_bits_equal(result_words_to_d(dut, before), expected[:reset_cycle - dut.latency])
    assert_bits_equal(result_words_to_d(dut, after), expected[sent_before:])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("kwargs, error, match", [
    ({"m": 0}, ValueError, "m must be at least 1, not 0"),
    ({"n": 2.0}, TypeError, "n must be an integer, not 2.0"),
    ({"k": True}, TypeError, "k must be an integer, not True"),
    ({"gating": "zero"}, ValueError, "'zero'"),
])
def test_hmma_parameters_are_validated(kwargs, error, match):
    with pytest.raises(error, match=match):
        HMMA(**kwargs)
    gc.collect()
