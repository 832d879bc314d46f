"""Shared checks for the FP units and the HMMA array: stimulus with special values, random valid/ready
back-pressure, a streamed run in the Amaranth simulator and a bit-for-bit comparison with accel.golden;
the requests a conv sequencer issues; and hand-written gate netlists for the gate-level tests.
"""

import numpy as np
from amaranth import Module, ResetInserter, Signal

from accel.golden import fp
from accel.golden import hmma as golden_hmma
from accel.golden.operands import index_pairs
from accel.golden.specials import mix_specials, special_pairs
from accel.hw.fp_add import FPAdd
from accel.hw.fp_mul import FPMul
from accel.hw.hmma import HMMA
from accel.sim.hmma import instruction_words, result_words_to_d, sparse_instruction_words
from accel.sim.payload import pack, unpack
from accel.sim.pysim import run_stream, run_testbench

def sequencer_requests(dut, bounds, limit, take):
    """Start the conv sequencer ``dut`` on ``bounds`` and collect ``take(request)`` for each request taken,
    with back-pressure every third clock (a request must hold while not taken); returns (the list, the
    ``chain_gap`` the sequencer reported)."""
    got, gap = [], []

    async def testbench(ctx):
        ctx.set(dut.bounds, bounds)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        gap.append(ctx.get(dut.chain_gap))
        for cycle in range(limit):
            ready = cycle % 3 != 1
            ctx.set(dut.o.ready, ready)
            if not ctx.get(dut.busy):
                break
            if ready and ctx.get(dut.o.valid):
                got.append(take(ctx.get(dut.o.payload)))
            await ctx.tick()

    run_testbench(dut, testbench)
    return got, gap[0]


def random_bits(rng, shape, fmt):
    return rng.integers(0, 1 << fmt.width, shape, dtype=np.uint64).astype(fmt.dtype)


def near_pairs(rng, n, fmt):
    """Pairs with exponents a few apart and random signs: alignment, sticky bits and cancellation."""
    a = random_bits(rng, n, fmt).astype(np.int64)
    exp = (a >> fmt.man_bits) & fmt.exp_max_field
    b_exp = np.clip(exp + rng.integers(-fmt.sig_bits - 4, fmt.sig_bits + 5, n), 0, fmt.exp_max_field - 1)
    b = (random_bits(rng, n, fmt).astype(np.int64) & (fmt.sign_mask | ((1 << fmt.man_bits) - 1))) \
        | (b_exp << fmt.man_bits)
    cancel = rng.random(n) < 0.3                    # b = -a, or -a one ulp away
    b = np.where(cancel, (a ^ fmt.sign_mask) + rng.integers(-1, 2, n), b) & ((1 << fmt.width) - 1)
    return a.astype(fmt.dtype), b.astype(fmt.dtype)


def operand_pairs(rng, fmt, n_random):
    """Special pairs, uniformly random pairs and near pairs, shuffled together."""
    pairs = [special_pairs(fmt), (random_bits(rng, n_random, fmt), random_bits(rng, n_random, fmt)),
             near_pairs(rng, n_random, fmt)]
    a, b = (np.concatenate(side) for side in zip(*pairs))
    order = rng.permutation(len(a))
    return a[order], b[order]


def sender_flags(rng, bits, fmt, gating):
    """Zero flags as a sender may raise them: ``and`` only on zeros (some left low), ``hold`` also on a
    few non-zero values (a flagged product is skipped whatever its value), ``none`` at random (ignored)."""
    zeros = fp.is_zero(bits, fmt) & (rng.random(bits.shape) < 0.8)
    noise = rng.random(bits.shape) < (0.05 if gating == "hold" else 0.5 if gating == "none" else 0.0)
    return zeros | noise


def backpressure(rng, n):
    """Random ``valid_pattern`` / ``ready_pattern`` of about 3n cycles (True 70% of the time)."""
    return {"valid_pattern": list(rng.random(3 * n) < 0.7), "ready_pattern": list(rng.random(3 * n) < 0.7)}


def stream(dut, fields, rng=None, **options):
    """Run packed ``fields`` through ``dut`` (random back-pressure when ``rng`` is given): (outputs, run)."""
    words = pack(dut.i.payload.shape(), fields)
    if rng is not None:
        options.update(backpressure(rng, len(words)))
    run = run_stream(dut, words, **options)
    return {path: column[:, 0] if column.shape[1] == 1 else column
            for path, column in unpack(dut.o.payload.shape(), run.outputs).items()}, run


def check_fp_mul(gating, seed, n_random=150):
    """FPMul against fp.mul; with ``hold`` is_zero must equal the OR of the flags and p is then don't-care."""
    rng = np.random.default_rng(seed)
    a, b = operand_pairs(rng, fp.FP16, n_random)
    a_zero, b_zero = sender_flags(rng, a, fp.FP16, gating), sender_flags(rng, b, fp.FP16, gating)
    out, _ = stream(FPMul(gating=gating), {"a.value": a, "a.is_zero": a_zero, "b.value": b, "b.is_zero": b_zero}, rng)
    skipped = (a_zero | b_zero) if gating == "hold" else np.zeros(len(a), bool)
    np.testing.assert_array_equal(out["is_zero"].astype(bool), skipped)
    assert_bits_equal(np.where(skipped, 0, out["p"]), np.where(skipped, 0, fp.mul(a, b)), a, b)


def check_fp_add(gating, seed, n_random=150):
    """FPAdd against fp.add_gated (``hold``: a flagged b is skipped) or fp.add (``none``)."""
    rng = np.random.default_rng(seed)
    a, b = operand_pairs(rng, fp.FP32, n_random)
    b_zero = sender_flags(rng, b, fp.FP32, gating)
    out, _ = stream(FPAdd(gating=gating), {"a": a, "b.value": b, "b.is_zero": b_zero}, rng)
    expected = fp.add_gated(a, b, b_zero) if gating == "hold" else fp.add(a, b)
    assert_bits_equal(out["s"], expected, a, b)


def assert_bits_equal(actual, expected, *operands):
    """Bit-pattern equality per row; the message shows the first mismatching rows (and operands) in hex."""
    actual, expected = np.asarray(actual, np.uint64), np.asarray(expected, np.uint64)
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    bad = np.flatnonzero((actual != expected).reshape(len(actual), -1).any(axis=1))
    hexes = lambda row: " ".join(hex(int(x)) for x in np.ravel(row))  # noqa: E731
    detail = [f"#{i}: {' '.join(hexes(op[i]) for op in operands)} -> {hexes(actual[i])}, expected {hexes(expected[i])}"
              for i in bad[:5]]
    assert not len(bad), f"{len(bad)} of {len(actual)} results differ:\n" + "\n".join(detail)


def hmma_operands(rng, n, m, k, p, special_fraction=0.15):
    """Sparse random A, B (about half zeros) and C, with a fraction of special values mixed in."""
    a = np.where(rng.random((n, m, k)) < 0.5, random_bits(rng, (n, m, k), fp.FP16), 0).astype(np.uint16)
    b = np.where(rng.random((n, k, p)) < 0.5, random_bits(rng, (n, k, p), fp.FP16), 0).astype(np.uint16)
    c = random_bits(rng, (n, m, p), fp.FP32)
    for array, fmt in ((a, fp.FP16), (b, fp.FP16), (c, fp.FP32)):
        mix_specials(rng, array, fmt, special_fraction)
    return a, b, c


def normal_operands(rng, n, m, k, p):
    """A, B (FP16) and C (FP32) of normally distributed values spread over several binades, as in real data
    (uniformly random bit patterns are mostly huge or tiny, and rarely make the order of adds matter)."""
    scale = lambda shape, spread: rng.standard_normal(shape) * 2.0 ** rng.integers(-spread, spread + 1, shape)  # noqa: E731
    return (fp.to_bits(scale((n, m, k), 6), fp.FP16), fp.to_bits(scale((n, k, p), 6), fp.FP16),
            fp.to_bits(scale((n, m, p), 10).astype(np.float32), fp.FP32))


def reorderings(k):
    """Orders of the k products other than the chain's: reversed, and each pair of neighbours swapped."""
    orders = {tuple(reversed(range(k)))} | {tuple(range(i)) + (i + 1, i) + tuple(range(i + 2, k)) for i in range(k - 1)}
    return sorted(orders - {tuple(range(k))})


def order_sensitive_operands(rng, n, m, k, p, gating):
    """``n`` instructions chosen so that the chain order decides the result: for every other order of the
    products (:func:`reorderings`) at least one of them gives another D (asserted)."""
    chosen, uncovered = [], set(reorderings(k))
    while uncovered or len(chosen) < n:
        a, b, c = normal_operands(rng, 64, m, k, p)
        chain = golden_hmma.hmma(a, b, c, gating)
        for i in range(64):
            caught = {order for order in reorderings(k)
                      if not np.array_equal(golden_hmma.hmma(a[i:i + 1][:, :, order], b[i:i + 1][:, order, :],
                                                             c[i:i + 1], gating), chain[i:i + 1])}
            if caught & uncovered or (caught and not uncovered and len(chosen) < n):
                chosen.append((a[i], b[i], c[i]))
                uncovered -= caught
            if not uncovered and len(chosen) >= n:
                break
    return tuple(np.stack(x) for x in zip(*chosen))


def check_hmma(gating, seed, *, m, n, k, instructions, with_backpressure):
    """HMMA against golden hmma (chain order) on special-heavy random bit patterns, normally distributed
    values and directed instructions whose result depends on the chain order; without back-pressure also
    N + latency cycles."""
    rng = np.random.default_rng(seed)
    batches = [hmma_operands(rng, instructions, m, k, n), normal_operands(rng, instructions, m, k, n)]
    if k > 1:
        batches.append(order_sensitive_operands(rng, 4, m, k, n, gating))
    a, b, c = (np.concatenate(parts) for parts in zip(*batches))
    instructions = len(a)
    dut = HMMA(m=m, n=n, k=k, gating=gating)
    options = backpressure(rng, instructions) if with_backpressure else {}
    run = run_stream(dut, instruction_words(dut, a, b, c, gating), **options)
    assert_bits_equal(result_words_to_d(dut, run.outputs), golden_hmma.hmma(a, b, c, gating))
    if not with_backpressure:
        assert run.cycles == instructions + dut.latency


def sparse_hmma_operands(rng, n, m, k, p, special_fraction=0.15):
    """``n`` 2:4 sparse instructions (kept values [n, m, k], indices [n, m, k], B [n, 2k, p], C [n, m, p]):
    special-heavy like :func:`hmma_operands` (about half the kept values and activations zero), random
    ascending kept indices."""
    values, b, c = hmma_operands(rng, n, m, 2 * k, p, special_fraction)
    return values[:, :, :k].copy(), index_pairs((n, m, k // 2), rng).reshape(n, m, k), b, c


def sparse_normal_operands(rng, n, m, k, p):
    """As :func:`normal_operands` for 2:4 sparse instructions (values spread over binades: the order of adds
    matters), with random kept indices."""
    values, b, c = normal_operands(rng, n, m, 2 * k, p)
    return values[:, :, :k].copy(), index_pairs((n, m, k // 2), rng).reshape(n, m, k), b, c


def check_hmma_sparse(gating, seed, *, m, n, k, instructions, with_backpressure):
    """The sparse HMMA array against golden hmma_sparse on special-heavy and normally distributed instructions;
    without back-pressure also N + latency cycles."""
    rng = np.random.default_rng(seed)
    batches = [sparse_hmma_operands(rng, instructions, m, k, n), sparse_normal_operands(rng, instructions, m, k, n)]
    values, indices, b, c = (np.concatenate(parts) for parts in zip(*batches))
    dut = HMMA(m=m, n=n, k=k, gating=gating, sparse=True)
    options = backpressure(rng, len(values)) if with_backpressure else {}
    run = run_stream(dut, sparse_instruction_words(dut, values, indices, b, c, gating), **options)
    assert_bits_equal(result_words_to_d(dut, run.outputs), golden_hmma.hmma_sparse(values, indices, b, c, gating))
    if not with_backpressure:
        assert run.cycles == len(values) + dut.latency


def stream_with_reset(dut, before, after, reset_cycle):
    """Send words ``before`` back to back, pulse reset at ``reset_cycle`` (output not taken), then send
    ``after``. Returns (outputs taken before the reset, outputs taken after it)."""
    reset = Signal()
    top = Module()
    top.submodules.dut = ResetInserter(reset)(dut)
    taken = ([], [])

    async def testbench(ctx):
        queue, phase = list(before), 0
        for cycle in range(reset_cycle + len(after) + 4 * dut.latency):
            if cycle == reset_cycle:
                queue, phase = list(after), 1
            resetting = cycle == reset_cycle
            ctx.set(reset, resetting)
            ctx.set(dut.i.valid, bool(queue) and not resetting)
            if queue:
                ctx.set(dut.i.payload.as_value(), queue[0])
            ctx.set(dut.o.ready, not resetting)
            if queue and not resetting and ctx.get(dut.i.ready):
                queue.pop(0)
            if ctx.get(dut.o.valid) and not resetting:
                taken[phase].append(ctx.get(dut.o.payload.as_value()))
            await ctx.tick()

    run_testbench(top, testbench)
    return taken


def register_trace(dut, fields, registers):
    """Values of ``registers`` sampled every cycle (just before the edge) while ``fields`` stream through."""
    trace = []

    async def on_cycle(ctx):
        trace.append(tuple(ctx.get(register) for register in registers))

    stream(dut, fields, on_cycle=on_cycle)
    return trace


def random_words(rng, dut, n):
    """``n`` random payload words for ``dut.i`` (any bits: for timing checks)."""
    width = len(dut.i.payload.as_value())
    return [int.from_bytes(rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1) for _ in range(n)]


def hand_netlist(cells, ports):
    """A hand-written Yosys JSON netlist of one-bit nets: ``cells`` = name -> (type, {pin: net}),
    ``ports`` = name -> (direction, net). Nets are integers from 2 (0 and 1 are the constants)."""
    return {"modules": {"top": {
        "ports": {n: {"direction": d, "bits": [b]} for n, (d, b) in ports.items()},
        "cells": {n: {"type": t, "connections": {p: [b] for p, b in pins.items()}} for n, (t, pins) in cells.items()},
        "netnames": {n: {"bits": [b]} for n, (_, b) in ports.items()}}}}
