"""The summary of one conv layer run on the accelerator: counters, energy by block, bit-exactness and
accuracy, as ``accel conv`` prints it and as each row of ``accel sweep`` holds it."""

import hashlib

import numpy as np

from ..golden import fp
from ..golden.winograd import reference_conv
from ..hw.accelerator import BufferConfig
from .model import PJ_PER_TOGGLE, SRAM_PJ_PER_BIT, clock_pj_of, report

__all__ = ["output_digest", "energy_by_block", "layer_summary"]

#: Top-level instances of the accelerator that are blocks of their own in ``energy_pj.by_block``; the array's
#: multipliers and adders are two more; the rest is charged by class (zero detectors, lines, registers, other
#: logic), then the clock and each buffer's accesses.
INSTANCE_BLOCKS = {"decompressor": "decompressor", "winograd_in": "input_transform",
                   "winograd_out": "output_transform"}
ARRAY_BLOCKS = {"mul": "array_multipliers", "add": "array_adders"}
CLASS_BLOCKS = {"zdet": "zero_detectors", "lines": "lines", "pipe": "registers", "flags": "registers",
                "ctl": "registers"}


def _block(instance, cls):
    if instance in INSTANCE_BLOCKS:
        return INSTANCE_BLOCKS[instance]
    if instance == "array" and cls in ARRAY_BLOCKS:
        return ARRAY_BLOCKS[cls]
    return CLASS_BLOCKS.get(cls, "logic")


def energy_by_block(toggles, buffer_bits, *, clock_gating=True):
    """The accelerator's energy in pJ by block (the same total as :func:`~accel.energy.model.energy_pj`):
    switching of the decompressor, the input and output transforms, the array's multipliers and adders,
    then by class the zero detectors, lines, registers and other logic; ``clock`` (the registers' clock, with
    RTL clock gating or without: :func:`~accel.energy.model.clock_pj_of`); ``buffer_<name>`` for each buffer's accesses (``buffer_bits``: bits by buffer,
    :meth:`~accel.hw.accelerator.BufferConfig.buffer_bits_by_buffer`)."""
    by_block = {}
    for instance, classes in toggles.charged_by_block.items():
        for cls, count in classes.items():
            block = _block(instance, cls)
            by_block[block] = by_block.get(block, 0.0) + count * PJ_PER_TOGGLE[cls]
    by_block["clock"] = clock_pj_of(toggles, clock_gating=clock_gating)
    by_block.update({f"buffer_{name}": bits * SRAM_PJ_PER_BIT for name, bits in buffer_bits.items()})
    return by_block


def output_digest(y_bits):
    """SHA-256 of an output's bit patterns (its shape included): equal outputs, equal digests."""
    y_bits = np.ascontiguousarray(y_bits, np.uint32)
    return hashlib.sha256(repr(y_bits.shape).encode() + y_bits.tobytes()).hexdigest()


def layer_summary(x_bits, w_bits, result, *, algo, fmt, buffers=None):
    """The summary of ``result`` (a :class:`~accel.sim.conv.ConvRun` of ``x_bits`` [C, H, W] and ``w_bits``
    [K, C, 3, 3], FP16 bit patterns): the layer's sizes, ``algo``, ``fmt``, the run's counters
    (:meth:`~accel.sim.conv.ConvRun.as_json`), toggles and energy by class and by block
    (:func:`accel.energy.model.report`, :func:`energy_by_block`; buffer accesses priced from ``buffers``,
    default the standard :class:`~accel.hw.accelerator.BufferConfig` running ``algo`` on ``fmt`` weights),
    the output's digest and its accuracy against a float64 direct convolution."""
    buffers = buffers or BufferConfig(weight_format=fmt, algo=algo)
    y = fp.from_bits(result.y, fp.FP32).astype(np.float64)
    reference = reference_conv(x_bits, w_bits)
    error = y - reference
    rms = float(np.sqrt(np.mean(reference ** 2)))
    buffer_bits = buffers.buffer_bits_by_buffer(result.counters)
    energy = report(result.toggles, buffer_bits=sum(buffer_bits.values()))
    energy["energy_pj"]["by_block"] = {block: round(pj, 3)
                                       for block, pj in energy_by_block(result.toggles, buffer_bits).items()}
    return {"layer": {"C": x_bits.shape[0], "K": w_bits.shape[0], "H": x_bits.shape[1], "W": x_bits.shape[2]},
            "algo": algo, "format": fmt, **result.as_json(),
            **energy,
            "output_sha256": output_digest(result.y),
            "accuracy": {"max_abs": float(np.abs(error).max()),
                         "rel_rms": float(np.sqrt(np.mean(error ** 2)) / rms) if rms else 0.0}}
