"""Run HMMA instructions through the hardware on a backend and compare with the golden model.

The sender of the operand stream raises each element's ``is_zero`` flag (it is the zero detector in
front of the array); with ``hold`` it never sends a flagged zero, whose data lines keep their last value
(:func:`~accel.golden.operands.sent_operand`); with ``none`` there is no detection and every flag stays low.
A batch is ``a`` [batch, m, k], ``b`` [batch, k, n], ``c`` and ``d`` [batch, m, n].
"""

from dataclasses import dataclass, field

import numpy as np

from ..golden import hmma as golden
from ..golden.gating import Gating
from ..hw.hmma import HMMA
from ..hw.units import mul_fields
from .payload import leaves, pack, unpack
from .toggles import count_toggles


@dataclass
class HmmaRun:
    """One streamed batch: D as FP32 bit patterns, and the counters of the ``--json`` contract (the energy
    model prices ``toggles``: :func:`accel.energy.model.report`)."""

    d: np.ndarray
    cycles: int
    latency: int
    macs: int
    macs_gated: int
    macs_useful: int
    bit_exact: bool
    gating: str
    backend: str
    toggles: object = field(default=None)

    @property
    def instructions(self):
        return self.d.shape[0]

    def counters(self):
        return {"instructions": self.instructions, "cycles": self.cycles, "latency": self.latency,
                "macs": self.macs, "macs_gated": self.macs_gated, "macs_useful": self.macs_useful,
                "bit_exact": self.bit_exact, "gating": str(self.gating), "backend": self.backend}


def check_operands(a, b, c):
    """Raise ValueError unless the arrays are FP bit patterns forming D = A·B + C for a batch."""
    if a.dtype != np.uint16 or b.dtype != np.uint16 or c.dtype != np.uint32:
        raise ValueError(f"operands must be uint16, uint16, uint32 bit patterns, not {a.dtype}, {b.dtype}, {c.dtype}")
    if a.ndim != 3 or b.ndim != 3 or c.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1] \
            or c.shape != (a.shape[0], a.shape[1], b.shape[2]):
        raise ValueError(f"shapes do not form D = A·B + C: a {a.shape}, b {b.shape}, c {c.shape}")
    if a.shape[0] == 0:
        raise ValueError("no instructions: the batch is empty")
    if 0 in a.shape[1:] + b.shape[2:]:
        raise ValueError(f"an empty array: m, n, k = {a.shape[1]}, {b.shape[2]}, {a.shape[2]}; each must be at least 1")


def instruction_words(dut, a, b, c, gating):
    """One payload word per instruction, as the sender puts the batch out under ``gating``."""
    return pack(dut.i.payload.shape(), {**mul_fields(a, b, gating), "c": c.reshape(len(c), -1)})


def instruction_operands(dut, words, gating):
    """The batch (a, b, c) that payload ``words`` from :func:`instruction_words` stand for: the values on the
    lines, except that under ``hold`` a flagged element is a zero whatever its held lines carry (its
    product is skipped, so the sign of that zero does not matter)."""
    m, n, k = dut.shape
    fields, batch = unpack(dut.i.payload.shape(), words), len(words)

    def operand(name, shape):
        values = fields[f"{name}.value"].astype(np.uint16)
        if Gating.parse(gating) is Gating.HOLD:
            values[fields[f"{name}.is_zero"].astype(bool)] = 0
        return values.reshape(batch, *shape)

    return operand("a", (m, k)), operand("b", (k, n)), fields["c"].astype(np.uint32).reshape(batch, m, n)


def flag_line_toggles(shape, toggles):
    """Toggles of the zero-flag bits of the input bus (the flag lines) of an array of ``shape`` (m, n, k), from
    per-bit counts."""
    bus = toggles.per_bit["i__payload"]
    return sum(bus[leaf.offset + index * leaf.stride] for path, leaf in leaves(HMMA.input_layout(*shape)).items()
               if path.endswith(".is_zero") for index in range(leaf.count))


def sparse_instruction_words(dut, values, indices, b, c, gating):
    """One payload word per 2:4 sparse instruction for a ``sparse`` array, as the sender puts the batch out
    under ``gating``: kept ``values`` and ``b`` flagged (frozen lines under ``hold``), ``indices`` as they are."""
    batch = len(values)
    return pack(dut.i.payload.shape(), {**mul_fields(values, b, gating),
                                        "a_index": np.asarray(indices).reshape(batch, -1),
                                        "c": np.asarray(c).reshape(batch, -1)})


def result_words_to_d(dut, outputs):
    """D as FP32 bit patterns [batch, m, n] from the array's packed output payload words, one per instruction."""
    m, n, _ = dut.shape
    return unpack(dut.o.payload.shape(), outputs)["d"].astype(np.uint32).reshape(len(outputs), m, n)


def run_hmma(a, b, c, *, gating=Gating.HOLD, backend="pysim", per_bit=False, **stream_options):
    """Stream ``a`` [batch,m,k], ``b`` [batch,k,n] (FP16 bits), ``c`` [batch,m,n] (FP32 bits) through an HMMA
    array, counting toggles on every signal (``per_bit``: per bit too). ``stream_options`` go to the
    backend's ``run_stream`` (valid/ready patterns, cycle limit, a ``waveform``).
    """
    check_operands(a, b, c)
    gating = Gating.parse(gating)
    batch, m, k = a.shape
    n = b.shape[2]
    dut = HMMA(m=m, n=n, k=k, gating=gating)
    run, toggles = count_toggles(dut, instruction_words(dut, a, b, c, gating), backend=backend, per_bit=per_bit,
                                 **stream_options)
    d = result_words_to_d(dut, run.outputs)
    return HmmaRun(d=d, cycles=run.cycles, latency=dut.latency, macs=batch * m * n * k,
                   macs_gated=golden.gated_mac_count(a, b, gating),
                   macs_useful=int((~golden.skipped_products(a, b)).sum()), bit_exact=bool(np.array_equal(d, golden.hmma(a, b, c, gating))),
                   gating=gating, backend=backend, toggles=toggles)


def run_hmma_sparse(values, indices, b, c, *, gating=Gating.HOLD, backend="pysim", per_bit=False, **stream_options):
    """Stream a batch of 2:4 sparse instructions (:func:`accel.golden.hmma.hmma_sparse`'s operands: ``values``,
    ``indices`` [batch, m, k], ``b`` [batch, 2k, n], ``c`` [batch, m, n]) through a sparse HMMA array, counting
    toggles as :func:`run_hmma` does. ``macs`` counts the multiplies done (m*n*k per instruction), the dense
    equivalent is twice that."""
    values, indices = np.asarray(values, np.uint16), np.asarray(indices)
    b, c = np.asarray(b, np.uint16), np.asarray(c, np.uint32)
    gating = Gating.parse(gating)
    expected = golden.hmma_sparse(values, indices, b, c, gating)     # checks the shapes
    if len(values) == 0:
        raise ValueError("no instructions: the batch is empty")
    batch, m, k = values.shape
    dut = HMMA(m=m, n=b.shape[2], k=k, gating=gating, sparse=True)
    run, toggles = count_toggles(dut, sparse_instruction_words(dut, values, indices, b, c, gating), backend=backend,
                                 per_bit=per_bit, **stream_options)
    d = result_words_to_d(dut, run.outputs)
    skipped = golden.sparse_skipped_products(values, indices, b)
    return HmmaRun(d=d, cycles=run.cycles, latency=dut.latency, macs=int(skipped.size),
                   macs_gated=golden.sparse_gated_mac_count(values, indices, b, gating),
                   macs_useful=int((~skipped).sum()), bit_exact=bool(np.array_equal(d, expected)),
                   gating=gating, backend=backend, toggles=toggles)
