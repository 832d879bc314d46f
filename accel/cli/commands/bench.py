"""``accel bench``: simulation speed of the HMMA array on each backend, with and without toggle counting.

One run measures, on the same kind of stimulus (sparse HMMA instructions from
:func:`accel.golden.operands.hmma_operands`, streamed back to back):

* ``pysim_cycles_per_s``: the Amaranth simulator, a few instructions (it is slow);
* ``pysim_toggles_cycles_per_s``: the same with toggle counting (:class:`~accel.sim.toggles.ToggleCounter`);
* ``verilator_cycles_per_s``: the Verilator model without toggle counting, many more instructions;
* ``verilator_toggles_cycles_per_s``: the Verilator model counting toggles;

and the ratios ``verilator_speedup`` (Verilator / Amaranth simulator, both without toggles),
``verilator_toggles_speedup`` (both with toggles) and ``toggle_cost`` (Verilator without / with toggles).

Only the simulation loop is timed: elaboration and compilation are not (Verilator builds are cached in
``build/verilator/`` and timed separately as ``build_s``); for pysim the clock starts at the first cycle
and stops at the last, for Verilator the harness times its own cycle loop, best of three runs (plain and
counting runs interleaved, so that both see the same machine load). Every run is also checked
bit for bit against the golden model, and the two toggle-counting runs must agree where they overlap.
"""

import sys
import time

import numpy as np

from ...golden import hmma as golden
from ...golden.operands import hmma_operands
from ...hw.config import MAX_ARRAY_DIM
from ...hw.hmma import HMMA
from ...sim import pysim
from ...sim import verilator as vl
from ...sim.errors import CheckFailed
from ...sim.hmma import instruction_words, result_words_to_d
from ...sim.toggles import ToggleCounter
from ..errors import UserError
from ..options import add_gating, bounded_int
from ..report import print_json, print_table

REPEATS = 3
# Past these a run takes hours (pysim) or several GB (Verilator: 1,000,000 4x4x4 instructions peak at 3.7 GB).
MAX_PYSIM_INSTRUCTIONS = 100_000
MAX_VERILATOR_INSTRUCTIONS = 1_000_000

NAME = "bench"
HELP = "simulation speed (cycles/s) of the HMMA array on each backend, with and without toggle counting"


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--shape", default="4,4,4", metavar="M,N,K", help="HMMA array shape (default 4,4,4)")
    add_gating(parser)
    parser.add_argument("--pysim-instructions", type=bounded_int(2, MAX_PYSIM_INSTRUCTIONS), default=64,
                        metavar="N", help="instructions for the Amaranth simulator (default 64)")
    parser.add_argument("--verilator-instructions", type=bounded_int(2, MAX_VERILATOR_INSTRUCTIONS),
                        default=50000, metavar="N", help="instructions for Verilator (default 50000)")
    parser.add_argument("--density", type=float, default=0.3, metavar="D",
                        help="share of non-zero operands, weights and activations (default 0.3)")
    parser.add_argument("--seed", type=bounded_int(0), default=1, help="random seed of the operands (default 1)")


def _shape(text):
    try:
        shape = tuple(int(x) for x in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or max(shape) > MAX_ARRAY_DIM:
        raise UserError(f"--shape must be three integers M,N,K in 1..{MAX_ARRAY_DIM}, not {text!r}")
    return shape


def _check(args):
    shape = _shape(args.shape)
    if not 0.0 <= args.density <= 1.0:
        raise UserError(f"--density must lie in [0, 1], not {args.density}")
    return shape


def _stimulus(shape, batch, gating, density, seed):
    m, n, k = shape
    a, b, c = hmma_operands(batch, m=m, n=n, k=k, weight_density=density, act_density=density, seed=seed)
    dut = HMMA(m=m, n=n, k=k, gating=gating)
    return dut, (a, b, c), instruction_words(dut, a, b, c, gating)


def _check_outputs(dut, operands, outputs, gating, what):
    a, b, c = operands
    d = result_words_to_d(dut, outputs)
    if not np.array_equal(d, golden.hmma(a, b, c, gating)):
        raise CheckFailed(f"{what}: hardware and golden model disagree; please report this")


def _time_pysim(dut, words, counter=None):
    """Cycles per second of the Amaranth simulator over the cycles of one run (first to last cycle)."""
    stamps = []

    async def on_cycle(ctx):
        stamps.append(time.perf_counter())
        if counter is not None:
            await counter.on_cycle(ctx)

    run = pysim.run_stream(dut, words, on_cycle=on_cycle)
    seconds = stamps[-1] - stamps[0]
    return run, (len(stamps) - 1) / seconds


def _build_verilator(dut, toggles):
    start = time.perf_counter()
    model, _counter = vl.compile_for(dut, toggles=toggles)
    return model, time.perf_counter() - start


def _time_verilator(model, words):
    run = vl.run_model(model, words, max_cycles=2 * len(words) + 1000)
    if len(run.outputs) != len(words):
        raise CheckFailed(f"verilator: {len(run.outputs)} of {len(words)} outputs came out; please report this")
    return run, run.samples / run.seconds


def measure(shape=(4, 4, 4), *, gating="hold", pysim_instructions=64, verilator_instructions=50000,
            density=0.3, seed=1, progress=None):
    """The figures of ``accel bench`` as a dict (see the module docstring)."""
    say = progress or (lambda message: None)
    result = {"shape": list(shape), "gating": str(gating), "density": density}

    say(f"pysim: {pysim_instructions} instructions")
    dut, ops, words = _stimulus(shape, pysim_instructions, gating, density, seed)
    run, pysim_rate = _time_pysim(dut, words)
    _check_outputs(dut, ops, run.outputs, gating, "pysim")
    latency = dut.latency
    say(f"pysim with toggle counting: {pysim_instructions} instructions")
    dut, ops, words = _stimulus(shape, pysim_instructions, gating, density, seed)
    counter = ToggleCounter()
    run_t, pysim_toggles_rate = _time_pysim(dut, words, counter)
    pysim_toggles = counter.result()

    say(f"verilator: {verilator_instructions} instructions (builds once, cached in build/verilator)")
    dut, ops, words = _stimulus(shape, verilator_instructions, gating, density, seed)
    plain, build_plain = _build_verilator(dut, False)
    say("verilator with toggle counting (builds once too)")
    counting, build_toggles = _build_verilator(dut, True)
    # Best of REPEATS runs each, interleaved, so that both see the same machine load.
    verilator_rate = verilator_toggles_rate = 0.0
    for _ in range(REPEATS):
        vrun, rate = _time_verilator(plain, words)
        verilator_rate = max(verilator_rate, rate)
        vrun_t, rate = _time_verilator(counting, words)
        verilator_toggles_rate = max(verilator_toggles_rate, rate)
    _check_outputs(dut, ops, vrun.outputs, gating, "verilator")
    _check_outputs(dut, ops, vrun_t.outputs, gating, "verilator (toggles)")

    # The toggle-counting Verilator model on the pysim stimulus must count what pysim counted.
    dut_small, _, words_small = _stimulus(shape, pysim_instructions, gating, density, seed)
    small = vl.run_stream(dut_small, words_small, toggles=True)
    toggles_agree = small.cycles == run_t.cycles and small.toggles["by_signal"] == pysim_toggles.by_signal

    result.update({
        "latency": latency,
        "pysim_instructions": pysim_instructions,
        "pysim_cycles": run.cycles,
        "pysim_cycles_per_s": pysim_rate,
        "pysim_toggles_cycles_per_s": pysim_toggles_rate,
        "verilator_instructions": verilator_instructions,
        "verilator_cycles": vrun.cycles,
        "verilator_cycles_per_s": verilator_rate,
        "verilator_toggles_cycles_per_s": verilator_toggles_rate,
        "verilator_speedup": verilator_rate / pysim_rate,
        "verilator_toggles_speedup": verilator_toggles_rate / pysim_toggles_rate,
        "toggle_cost": verilator_rate / verilator_toggles_rate,
        "toggles_agree": toggles_agree,
        "build_s": {"verilator": build_plain, "verilator_toggles": build_toggles},
        "instructions_per_cycle": verilator_instructions / vrun.cycles,
    })
    return result


def run(args):
    shape = _check(args)
    progress = None if args.json else (lambda message: print(f"  ... {message}", file=sys.stderr, flush=True))
    figures = measure(shape, gating=args.gating, pysim_instructions=args.pysim_instructions,
                      verilator_instructions=args.verilator_instructions, density=args.density,
                      seed=args.seed, progress=progress)
    if args.json:
        print_json({"sim": {"hmma": figures}})
    else:
        m, n, k = shape
        print_table(f"accel bench: HMMA {m}x{n}x{k} ({args.gating}), simulation speed", {
            "pysim cycles/s": figures["pysim_cycles_per_s"],
            "pysim + toggles cycles/s": figures["pysim_toggles_cycles_per_s"],
            "verilator cycles/s": figures["verilator_cycles_per_s"],
            "verilator + toggles cycles/s": figures["verilator_toggles_cycles_per_s"],
            "verilator / pysim": figures["verilator_speedup"],
            "verilator / pysim (both counting toggles)": figures["verilator_toggles_speedup"],
            "toggle counting cost (verilator)": figures["toggle_cost"],
            "toggle counts agree (verilator vs pysim)": figures["toggles_agree"],
            "instructions per cycle": figures["instructions_per_cycle"],
            "verilator export + build s (cached builds: less)": figures["build_s"],
        })
    if not figures["toggles_agree"]:
        raise CheckFailed("verilator and pysim toggle counts disagree; please report this")
    return 0
