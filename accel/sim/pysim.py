"""Amaranth-simulator backend: stream packed payload words through a component, one cycle at a time.

Both backends share this contract (see :func:`run_stream`), so that the same stimulus gives the same
outputs and the same cycle count on each.
"""

from dataclasses import dataclass, field

from amaranth.sim import Simulator

from .waveform import PERIOD_NS, VcdWindow

__all__ = ["WAVEFORM_KINDS", "StreamRun", "check_waveform", "run_stream", "run_testbench", "pattern_at"]

#: The waveform kinds this backend writes (:class:`~accel.sim.waveform.Waveform`).
WAVEFORM_KINDS = ("vcd",)


@dataclass
class StreamRun:
    """What a streamed run produced: output payload words, in order, and the cycles it took."""

    outputs: list
    cycles: int
    toggles: dict = field(default=None)


def check_waveform(waveform):
    """ValueError unless this backend writes ``waveform``'s kind (VCD)."""
    waveform.check_kind(WAVEFORM_KINDS, "pysim")


def run_testbench(dut, testbench, waveform=None):
    """Run the async ``testbench(ctx)`` on ``dut`` in the Amaranth simulator, with a clock on ``sync``.

    ``waveform``: a :class:`~accel.sim.waveform.Waveform` (VCD) to write, every signal and memory of the
    design named by its hierarchy. Amaranth records from time 0 on; :class:`~accel.sim.waveform.VcdWindow`
    keeps the window's cycles of what it writes."""
    if waveform is not None:
        check_waveform(waveform)
    sim = Simulator(dut)
    sim.add_clock(PERIOD_NS * 1e-9)
    sim.add_testbench(testbench)
    if waveform is None:
        sim.run()
        return
    period = PERIOD_NS * 1_000_000                          # Amaranth's VCD time unit is the femtosecond
    window = VcdWindow(open(waveform.path, "w"), max(0, waveform.start * period - period // 2),
                       waveform.stop * period - period // 2)
    try:
        with sim.write_vcd(window):
            sim.run()
    finally:
        window.close()


def pattern_at(pattern, cycle):
    """A valid/ready pattern's value at ``cycle``: True past its end (or when there is no pattern)."""
    return pattern is None or cycle >= len(pattern) or bool(pattern[cycle])


def default_max_cycles(n_words, latency, valid_pattern, ready_pattern):
    """A cycle limit no correct run can reach, so that a hung design fails instead of running forever."""
    slack = sum(len(p) for p in (valid_pattern, ready_pattern) if p is not None)
    return 4 * (n_words + latency) + slack + 64


PROGRESS_EVERY = 64  # cycles between progress calls


def run_stream(dut, words, *, valid_pattern=None, ready_pattern=None, max_cycles=None, on_cycle=None,
               progress=None, waveform=None):
    """Feed ``words`` (packed ``dut.i.payload`` values) into ``dut`` and collect ``dut.o.payload`` words.

    ``valid_pattern``/``ready_pattern`` gate ``i.valid``/``o.ready`` cycle by cycle (True past their end).
    ``cycles`` is the index of the cycle of the last output handshake plus one, so N back-to-back
    instructions through a pipeline of latency L take N + L cycles. ``on_cycle(ctx)``, if given, is
    awaited once per cycle on settled values just before the clock edge (toggle counting hooks here).
    ``progress(done, total)``, if given, hears how many outputs have come out, now and then and at the end.
    ``waveform``: a :class:`~accel.sim.waveform.Waveform` to write (VCD only; FST is a ValueError).
    Raises RuntimeError if the design produces fewer outputs than inputs within ``max_cycles``.
    """
    words = [int(w) for w in words]
    if max_cycles is None:
        max_cycles = default_max_cycles(len(words), getattr(dut, "latency", 0), valid_pattern, ready_pattern)
    outputs = []
    last_cycle = [-1]

    async def testbench(ctx):
        sent = 0
        for cycle in range(max_cycles):
            if len(outputs) == len(words):
                break
            offering = sent < len(words) and pattern_at(valid_pattern, cycle)
            ctx.set(dut.i.valid, offering)
            if offering:
                ctx.set(dut.i.payload.as_value(), words[sent])
            ctx.set(dut.o.ready, pattern_at(ready_pattern, cycle))
            if on_cycle is not None:
                await on_cycle(ctx)
            if offering and ctx.get(dut.i.ready):
                sent += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                outputs.append(int(ctx.get(dut.o.payload.as_value())))
                last_cycle[0] = cycle
            if progress is not None and cycle % PROGRESS_EVERY == 0:
                progress(len(outputs), len(words))
            await ctx.tick()

    run_testbench(dut, testbench, waveform)
    if progress is not None:
        progress(len(outputs), len(words))
    if len(outputs) != len(words):
        raise RuntimeError(f"design produced {len(outputs)} of {len(words)} outputs in {max_cycles} cycles")
    return StreamRun(outputs=outputs, cycles=last_cycle[0] + 1)
