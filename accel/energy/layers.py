"""The summary of one conv layer run on the accelerator: counters, energy by block, bit-exactness and
accuracy, as ``accel conv`` prints it and as each row of ``accel sweep`` holds it."""

import hashlib

import numpy as np

from ..golden import fp
from ..golden.winograd import reference_conv
from ..hw.accelerator import BufferConfig
from .model import report

__all__ = ["output_digest", "layer_summary"]


def output_digest(y_bits):
    """SHA-256 of an output's bit patterns (its shape included): equal outputs, equal digests."""
    y_bits = np.ascontiguousarray(y_bits, np.uint32)
    return hashlib.sha256(repr(y_bits.shape).encode() + y_bits.tobytes()).hexdigest()


def layer_summary(x_bits, w_bits, result, *, algo, fmt, buffers=None):
    """The summary of ``result`` (a :class:`~accel.sim.conv.ConvRun` of ``x_bits`` [C, H, W] and ``w_bits``
    [K, C, 3, 3], FP16 bit patterns): the layer's sizes, ``algo``, ``fmt``, the run's counters
    (:meth:`~accel.sim.conv.ConvRun.as_json`), toggles and energy by block (:func:`accel.energy.model.report`,
    buffer accesses priced from ``buffers``, default the standard :class:`~accel.hw.accelerator.BufferConfig`
    running ``algo`` on ``fmt`` weights), the output's digest and its accuracy against a float64 direct
    convolution."""
    buffers = buffers or BufferConfig(weight_format=fmt, algo=algo)
    y = fp.from_bits(result.y, fp.FP32).astype(np.float64)
    reference = reference_conv(x_bits, w_bits)
    error = y - reference
    rms = float(np.sqrt(np.mean(reference ** 2)))
    return {"layer": {"C": x_bits.shape[0], "K": w_bits.shape[0], "H": x_bits.shape[1], "W": x_bits.shape[2]},
            "algo": algo, "format": fmt, **result.as_json(),
            **report(result.toggles, buffer_bits=buffers.buffer_bits(result.counters)),
            "output_sha256": output_digest(result.y),
            "accuracy": {"max_abs": float(np.abs(error).max()),
                         "rel_rms": float(np.sqrt(np.mean(error ** 2)) / rms) if rms else 0.0}}
