"""The registry of hardware units: the one list of blocks that can be built by name.

Each :class:`Unit` knows how to build its component for a gating style, the gating styles it has, the
stimulus of ``n`` random operations as its sender would put them out (payload fields by leaf path,
:mod:`accel.golden.operands`), and the energy class one of its operations is calibrated in. The synthesis
driver, the Verilog export, the energy model and the cocotb tests read it; :func:`unit` is the one place
that says "unknown unit".
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..golden import fp, sparse
from ..golden.gating import Gating
from ..golden.operands import hmma_operands, hmma_sparse_operands, sent_operand, sparse_bits
from .decompressor import Decompressor
from .fp_add import ADD_GATINGS, FPAdd
from .fp_mul import FPMul
from .hmma import HMMA
from .winograd import WinogradInput, WinogradOutput

__all__ = ["Unit", "UNITS", "unit", "build_unit", "flagged_fields", "mul_fields"]


@dataclass(frozen=True)
class Unit:
    """A buildable block: ``build(gating)`` makes it, ``gatings`` are the styles it has (``none`` means no zero
    gating), ``stimulus(n, seed=, densities=, gating=)`` gives the payload fields of ``n`` random operations
    (each operand non-zero with its density), ``energy_class`` is the class one operation is calibrated in
    (None for a block of several classes)."""

    name: str
    build: Callable
    gatings: tuple
    stimulus: Callable
    energy_class: str = None

    @property
    def can_gate(self):
        return any(gating.flags_zeros for gating in self.gatings)

    @property
    def can_ungate(self):
        return Gating.NONE in self.gatings

    def __call__(self, gating=Gating.HOLD):
        gating = Gating.parse(gating)
        if gating not in self.gatings:
            raise ValueError(f"unit {self.name} has no gating {str(gating)!r}; it has "
                             f"{', '.join(repr(str(g)) for g in self.gatings)}")
        return self.build(gating=gating)


def flagged_fields(name, bits, fmt, gating):
    """Payload fields ``<name>.value`` and ``<name>.is_zero`` of operand ``bits`` as the sender puts it out
    under ``gating`` (:func:`~accel.golden.operands.sent_operand`), one row per transfer."""
    lines, flags = sent_operand(bits, fmt, gating)
    return {f"{name}.value": lines.reshape(len(bits), -1), f"{name}.is_zero": flags.reshape(len(bits), -1)}


def mul_fields(a, b, gating):
    """An FP16 multiplier's operand fields as the sender puts FP16 bit patterns ``a`` and ``b`` out under
    ``gating``."""
    return {**flagged_fields("a", a, fp.FP16, gating), **flagged_fields("b", b, fp.FP16, gating)}


def _mul_stimulus(n, *, seed=1, densities=(1.0, 1.0), gating=Gating.NONE):
    rng = np.random.default_rng(seed)
    a, b = (sparse_bits(n, density, rng, fp.FP16) for density in densities)
    return mul_fields(a, b, gating)


def _add_stimulus(fmt):
    def stimulus(n, *, seed=1, densities=(1.0, 1.0), gating=Gating.NONE):
        rng = np.random.default_rng(seed)
        a, b = (sparse_bits(n, density, rng, fmt) for density in densities)
        return {"a": a, **flagged_fields("b", b, fmt, gating)}
    return stimulus


def _hmma_stimulus(n, *, seed=1, densities=(1.0, 1.0), gating=Gating.NONE):
    """``n`` 4x4x4 instructions: activations A with ``densities[0]``, weights B with ``densities[1]``."""
    a, b, c = hmma_operands(n, act_density=densities[0], weight_density=densities[1], seed=seed)
    return {**mul_fields(a, b, gating), "c": c.reshape(n, -1)}


def _hmma_sparse_stimulus(n, *, seed=1, densities=(1.0, 1.0), gating=Gating.NONE):
    """``n`` 2:4 sparse 4x4x(4 kept of 8) instructions: activations B with ``densities[0]``, kept weight values A
    with ``densities[1]`` (as for ``hmma``: activations first), random kept indices."""
    values, indices, b, c = hmma_sparse_operands(n, act_density=densities[0], weight_density=densities[1], seed=seed)
    return {**mul_fields(values, b, gating), "a_index": indices.reshape(n, -1), "c": c.reshape(n, -1)}


def _decompressor_stimulus(fmt):
    def stimulus(n, *, seed=1, densities=(1.0, 1.0), gating=Gating.NONE):
        """One compressed stream of ``n`` 4x4 weight tiles magnitude-pruned to ``densities[1]`` (at most 2:4
        for nm24): its input words, the last one marked (``n`` tiles come out; the gating acts on the output)."""
        density = min(densities[1], 0.5) if fmt == "nm24" else densities[1]
        weights = sparse.magnitude_prune((sparse.TILE, sparse.TILE, n, 1), density, np.random.default_rng(seed), fmt)
        payload, nbits = sparse.encode(sparse.conv_to_tiles(weights), fmt)
        words = sparse.stream_words(payload, nbits, n)
        return {"data": np.array(words, dtype=object), "last": np.arange(len(words)) == len(words) - 1}
    return stimulus


def _tile_stimulus(field, count, fmt):
    def stimulus(n, *, seed=1, densities=(1.0, 1.0), gating=Gating.NONE):
        """``n`` random tiles of ``count`` ``fmt`` values, each non-zero with ``densities[0]``."""
        return {field: sparse_bits((n, count), densities[0], np.random.default_rng(seed), fmt)}
    return stimulus


UNITS = {u.name: u for u in (
    Unit("fp16_mul", lambda gating: FPMul(gating=gating), tuple(Gating), _mul_stimulus, "mul"),
    Unit("fp32_add", lambda gating: FPAdd(fmt=fp.FP32, gating=gating), ADD_GATINGS, _add_stimulus(fp.FP32), "add"),
    Unit("fp16_add", lambda gating: FPAdd(fmt=fp.FP16, gating=gating), ADD_GATINGS, _add_stimulus(fp.FP16), "add16"),
    Unit("hmma", lambda gating: HMMA(gating=gating), tuple(Gating), _hmma_stimulus),
    Unit("hmma_sparse", lambda gating: HMMA(gating=gating, sparse=True), tuple(Gating), _hmma_sparse_stimulus),
    *(Unit(f"decompress_{fmt}", lambda gating, fmt=fmt: Decompressor(format=fmt, gating=gating), tuple(Gating),
           _decompressor_stimulus(fmt), "logic") for fmt in sparse.FORMATS),
    # the Winograd transforms have no zero gating of their own: the input transform flags the zeros it makes
    *(Unit(f"winograd_in{m}", lambda gating, m=m: WinogradInput(m=m), (Gating.NONE,),
           _tile_stimulus("d", (m + 2) ** 2, fp.FP16)) for m in (2, 4)),
    *(Unit(f"winograd_out{m}", lambda gating, m=m: WinogradOutput(m=m), (Gating.NONE,),
           _tile_stimulus("m", (m + 2) ** 2, fp.FP32)) for m in (2, 4)),
)}


def unit(name):
    """The :class:`Unit` called ``name``; ValueError listing the known units when the name is unknown."""
    if not isinstance(name, str) or name not in UNITS:
        raise ValueError(f"unknown unit {name!r}; choose one of {', '.join(sorted(UNITS))}")
    return UNITS[name]


def build_unit(name, gating=Gating.HOLD):
    """Build unit ``name`` with ``gating`` (ValueError for an unknown unit or a style it does not have)."""
    return unit(name)(gating)
