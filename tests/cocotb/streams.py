"""cocotb side of the testbenches: driver, back-pressure, monitor, model and checker for one stream unit.

The shape follows cocotb's ``examples/matrix_multiplier``: a *driver* puts input transactions on
``i__valid``/``i__payload`` (with random idle cycles and random garbage on the payload while not valid),
a *back-pressure* driver raises ``o__ready`` at random, a *monitor* on each side turns handshakes into
transactions, the *model* (the golden numpy model, given by the testbench) predicts the output of every
accepted input, and the *checker* compares what came out with the predictions, in order. A *reset*
driver can pulse ``rst`` in the middle of traffic: everything in flight is then lost, so the model's
pending predictions are dropped, the monitors ignore the cycles under reset, and the checker verifies
that the unit comes out of reset empty (``o__valid`` low) and carries on correctly.

Timing: inputs change just after a rising edge; handshakes are sampled at the falling edge, when the
combinational logic has settled (a transfer happens at the next rising edge).
"""

import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

__all__ = ["GATING", "SEED", "StreamTestbench", "fp_patterns", "scenario", "stream_tests"]

#: The configuration every testbench reads from the environment (set by test_cocotb.py).
GATING = os.environ.get("ACCEL_TB_GATING", "hold")
SEED = int(os.environ.get("ACCEL_TB_SEED", "1"))


class StreamDriver:
    """Offers queued payload words on ``i``, each cycle with probability ``valid_prob``."""

    def __init__(self, tb, valid_prob):
        self.tb = tb
        self.dut = tb.dut
        self.valid_prob = valid_prob
        self.queue = deque()
        self.sent = 0

    async def run(self):
        dut, rng = self.dut, self.tb.rng
        while True:
            await RisingEdge(dut.clk)
            if self.queue and not self.tb.in_reset and rng.random() < self.valid_prob:
                dut.i__valid.value = 1
                dut.i__payload.value = self.queue[0]
            else:
                dut.i__valid.value = 0
                # The payload is don't-care while not valid: make sure the unit ignores it.
                dut.i__payload.value = rng.getrandbits(self.tb.in_width)
            await FallingEdge(dut.clk)
            if not self.tb.in_reset and int(dut.i__valid.value) and int(dut.i__ready.value):
                word = self.queue.popleft()
                self.sent += 1
                self.tb.accepted(word)


class BackPressure:
    """Drives ``o__ready`` high with probability ``ready_prob`` each cycle."""

    def __init__(self, tb, ready_prob):
        self.tb = tb
        self.ready_prob = ready_prob

    async def run(self):
        dut, rng = self.tb.dut, self.tb.rng
        while True:
            await RisingEdge(dut.clk)
            dut.o__ready.value = 1 if rng.random() < self.ready_prob else 0


class OutputMonitor:
    """Reports every output handshake's payload to the checker."""

    def __init__(self, tb):
        self.tb = tb

    async def run(self):
        dut = self.tb.dut
        while True:
            await FallingEdge(dut.clk)
            if not self.tb.in_reset and int(dut.o__valid.value) and int(dut.o__ready.value):
                self.tb.check(int(dut.o__payload.value))


class StreamTestbench:
    """One unit under test with its driver, back-pressure, monitors, model and checker.

    ``model(words) -> expected`` maps a list of input words to a list of expected output words;
    ``compare(got, expected, word_in) -> str | None`` returns a mismatch description (None when the
    output is right; it may ignore don't-care fields); ``latency`` is the unit's pipeline depth.
    """

    def __init__(self, dut, *, model, compare, in_width, latency, seed, valid_prob=1.0, ready_prob=1.0):
        self.dut = dut
        self.model = model
        self.compare = compare
        self.in_width = in_width
        self.latency = latency
        self.rng = random.Random(seed)
        self.in_reset = False
        self.expected = deque()     # (input word, predicted output word), oldest first
        self.mismatches = []
        self.checked = 0
        self.dropped = 0
        self.resets = 0
        self.driver = StreamDriver(self, valid_prob)
        self.back_pressure = BackPressure(self, ready_prob)
        self.monitor = OutputMonitor(self)
        self.first_out_cycle = None
        self.last_out_cycle = None
        self.cycle = 0

    # model side -------------------------------------------------------------------------------
    def accepted(self, word):
        self.expected.append((word, self.model([word])[0]))

    # checker ------------------------------------------------------------------------------------
    def check(self, got):
        if not self.expected:
            self.mismatches.append(f"unexpected output {got:#x} (nothing in flight)")
            return
        word, want = self.expected.popleft()
        problem = self.compare(got, want, word)
        if problem:
            self.mismatches.append(f"input {word:#x}: {problem}")
        self.checked += 1
        if self.first_out_cycle is None:
            self.first_out_cycle = self.cycle
        self.last_out_cycle = self.cycle

    # running ------------------------------------------------------------------------------------
    async def _count_cycles(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def start(self):
        dut = self.dut
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.o__ready.value = 0
        dut.i__payload.value = 0
        Clock(dut.clk, 10, unit="ns").start(start_high=False)
        self.in_reset = True
        await ClockCycles(dut.clk, 2)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        self.in_reset = False
        for part in (self.driver, self.back_pressure, self.monitor):
            cocotb.start_soon(part.run())
        cocotb.start_soon(self._count_cycles())

    def send(self, words):
        self.driver.queue.extend(words)

    async def reset(self, cycles=2):
        """Pulse ``rst`` for ``cycles`` clocks mid-traffic; what was in flight is lost."""
        dut = self.dut
        await FallingEdge(dut.clk)
        self.in_reset = True
        dut.rst.value = 1
        await ClockCycles(dut.clk, cycles)
        await FallingEdge(dut.clk)
        # Out of reset the pipeline must be empty.
        if int(dut.o__valid.value):
            self.mismatches.append("o__valid high right after reset")
        self.dropped += len(self.expected)
        self.expected.clear()
        dut.rst.value = 0
        self.in_reset = False
        self.resets += 1

    async def drain(self, limit):
        """Wait until every queued input went in and every prediction was checked (``limit`` cycles)."""
        for _ in range(limit):
            if not self.driver.queue and not self.expected:
                return True
            await RisingEdge(self.dut.clk)
        return False

    def assert_clean(self, at_least):
        assert not self.mismatches, f"{len(self.mismatches)} mismatches, first: {self.mismatches[:3]}"
        assert self.checked >= at_least, f"only {self.checked} outputs checked (wanted >= {at_least})"


async def scenario(tb, words, *, reset_after=(), limit=None):
    """Start ``tb``, send ``words``, pulse reset after each number of cycles in ``reset_after``, drain.

    Returns once every input went through (or ``limit`` cycles passed: then the drain check fails).
    """
    await tb.start()
    tb.send(words)
    for cycles in reset_after:
        await ClockCycles(tb.dut.clk, cycles)
        await tb.reset()
    limit = limit or 20 * (len(words) + tb.latency) + 200
    drained = await tb.drain(limit)
    await ClockCycles(tb.dut.clk, tb.latency + 2)   # nothing more may come out
    assert drained, f"not drained after {limit} cycles: {len(tb.driver.queue)} unsent, " \
                    f"{len(tb.expected)} in flight"


def stream_tests(module, *, stimulus, model, compare, in_width, latency, seed, full_count=200, count=300,
                 reset_after=(37, 91), item="result"):
    """The three scenarios every stream-unit testbench runs, as test coroutines to register.

    Returns ``(full_rate, random_back_pressure, reset_mid_stream)``; the testbench module ``module``
    (pass ``__name__``) decorates each with ``cocotb.test()`` at module level, where cocotb finds them:

    * *full rate*: ``full_count`` back-to-back inputs (seed ``seed``), every output right and one
      ``item`` per clock;
    * *random back-pressure*: ``count`` inputs (seed ``seed + 1``) with random idle cycles in
      (``valid_prob`` 0.6) and random ``o__ready`` (0.5);
    * *reset mid-stream*: ``count`` inputs (seed ``seed + 2``, 0.8 / 0.7), ``rst`` pulsed after each
      number of cycles in ``reset_after``: in-flight work is lost, the unit restarts empty and correct.

    ``stimulus(n, seed)`` gives ``n`` input words; ``model``, ``compare``, ``in_width`` and ``latency``
    are as for :class:`StreamTestbench`.
    """

    def bench(dut, seed, **probs):
        return StreamTestbench(dut, model=model, compare=compare, in_width=in_width, latency=latency,
                               seed=seed, **probs)

    async def full_rate(dut):
        tb = bench(dut, seed)
        await scenario(tb, stimulus(full_count, seed))
        tb.assert_clean(full_count)
        assert tb.last_out_cycle - tb.first_out_cycle == full_count - 1, \
            f"not one {item} per clock at full rate"

    async def random_back_pressure(dut):
        tb = bench(dut, seed + 1, valid_prob=0.6, ready_prob=0.5)
        await scenario(tb, stimulus(count, seed + 1))
        tb.assert_clean(count)

    async def reset_mid_stream(dut):
        tb = bench(dut, seed + 2, valid_prob=0.8, ready_prob=0.7)
        await scenario(tb, stimulus(count, seed + 2), reset_after=reset_after)
        tb.assert_clean(count - tb.dropped)
        assert tb.resets == len(reset_after) and tb.dropped > 0 and tb.checked + tb.dropped == count

    docs = {
        full_rate: f"Back-to-back inputs: every {item} right, one per clock.",
        random_back_pressure: "Random idle cycles on the input, random back-pressure on the output.",
        reset_mid_stream: "Reset under traffic: in-flight inputs are lost, the unit restarts empty, correct.",
    }
    for test, doc in docs.items():
        # cocotb names a test by its function's module and __qualname__: keep the testbench's names.
        test.__module__, test.__qualname__, test.__doc__ = module, test.__name__, doc
    return full_rate, random_back_pressure, reset_mid_stream


# ----------------------------------------------------------------------------------------- stimulus

def fp_patterns(rng, n, fmt, zero_share=0.2):
    """``n`` bit patterns of ``fmt``: random, plus ±0, the shared special values (accel.golden.specials) and
    random subnormals (numpy array)."""
    import numpy as np
    from accel.golden.specials import SPECIALS
    width, man = fmt.width, fmt.man_bits
    sign = 1 << (width - 1)
    specials = SPECIALS[fmt]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < zero_share:
            out.append(rng.choice((0, sign)))
        elif r < zero_share + 0.15:
            out.append(rng.choice(specials))
        elif r < zero_share + 0.25:
            out.append(rng.getrandbits(man) | (rng.getrandbits(1) << (width - 1)))  # subnormal
        else:
            out.append(rng.getrandbits(width))
    return np.array(out, dtype=fmt.dtype)
