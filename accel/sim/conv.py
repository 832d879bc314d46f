"""Run a 3×3 convolution layer on the accelerator (:class:`accel.hw.accelerator.Accelerator`) and compare
it with golden's same schedule.

The host side of the command stream: CONFIG with the layer's bounds, the activations (one LOAD_ACT per
FP16 element, ``c·H·W + y·W + x``), the weights, RUN, one STORE per output tile ``(r, cb)`` and one
COUNTER per performance counter. Each command has one response; the STORE responses are D tiles, the
COUNTER responses the counters. Weights (``fmt``): ``dense``: the 4×4 A tiles of the im2col GEMM
``W [K, C·9]`` (golden's ``channel_major`` order) padded with zeros, one LOAD_WGT per tile, tile
``(r, s)`` at ``r·inner_blocks + s``; compressed: the 64-bit words of the :mod:`accel.golden.sparse`
stream of :func:`~accel.golden.sparse.conv_to_tiles` (the ``tap_blocks`` order), one LOAD_WGT per word.

The reference is golden's same schedule: :func:`accel.golden.winograd.direct_conv` (dense) or
:func:`~accel.golden.winograd.direct_conv` in the ``tap_blocks`` order on the weights the stream decodes to
(compressed: a stored −0 decodes to +0).
"""

from dataclasses import dataclass, field, replace

import numpy as np

from ..golden import sparse
from ..golden.gating import Gating
from ..golden.schedule import TILE
from ..golden.winograd import direct_conv
from ..hw.accelerator import COUNTERS, STREAM_WIDTH, WEIGHT_FORMATS, Accelerator, BufferConfig, Op
from .payload import pack, unpack
from .toggles import count_toggles

__all__ = ["ALGORITHMS", "FORMATS", "ConvRun", "check_layer", "weight_stream", "conv_commands", "run_conv"]

ALGORITHMS = ("direct",)
FORMATS = WEIGHT_FORMATS
ELEMENTS = TILE * TILE
CHUNKS = STREAM_WIDTH // 16     # 16-bit data fields of a LOAD_WGT that carry one stream word


@dataclass
class ConvRun:
    """One layer on the hardware: ``y`` FP32 bits [K, H−2, W−2], ``cycles`` (clocks of the run itself,
    the ``cycles`` counter), ``stream_cycles`` (the whole command stream: loads, run, stores),
    ``counters`` (every :data:`~accel.hw.accelerator.COUNTERS` entry), ``ideal_cycles`` (MACs / 64 of the
    unpadded layer), ``latency`` (the accelerator's: gather request to D written), off-chip traffic in
    bytes, ``bit_exact`` against golden and the toggles."""

    y: np.ndarray
    cycles: int
    stream_cycles: int
    counters: dict
    ideal_cycles: float
    latency: int
    offchip_bytes: dict
    bit_exact: bool
    gating: str
    backend: str
    toggles: object = field(default=None)

    def as_json(self):
        return {"cycles": self.cycles, "stream_cycles": self.stream_cycles, "ideal_cycles": self.ideal_cycles,
                "macs": self.counters["macs"], "macs_gated": self.counters["macs_gated"],
                "counters": dict(self.counters), "offchip_bytes": dict(self.offchip_bytes),
                "bit_exact": self.bit_exact, "gating": str(self.gating), "backend": self.backend,
                "toggles": self.toggles.as_json() if self.toggles is not None else None}


def check_layer(x_bits, w_bits):
    """ValueError unless ``x`` is uint16 [C, H, W] (H, W ≥ 3) and ``w`` uint16 [K, C, 3, 3]."""
    for name, array, ndim in (("x", x_bits, 3), ("w", w_bits, 4)):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint16:
            kind = getattr(array, "dtype", type(array).__name__)
            raise ValueError(f"{name} must be a uint16 array of FP16 bit patterns, not {kind}")
        if array.ndim != ndim or 0 in array.shape:
            raise ValueError(f"{name} must be a non-empty {ndim}-d array, not shape {array.shape}")
    if w_bits.shape[1:] != (x_bits.shape[0], 3, 3):
        raise ValueError(f"w must be [K, {x_bits.shape[0]}, 3, 3] for x {x_bits.shape}, not {w_bits.shape}")
    if min(x_bits.shape[1:]) < 3:
        raise ValueError(f"x must be at least 3x3, not {x_bits.shape[1]}x{x_bits.shape[2]}")


def _command(op, addr=0, data=None):
    return op.value, addr, np.zeros(ELEMENTS, np.uint16) if data is None else data


def weight_stream(w_bits, fmt):
    """The compressed stream of ``w_bits`` [K, C, 3, 3] in format ``fmt``: (64-bit words, header first;
    the weights it decodes to). ValueError when the weights do not fit the format (nm24: a group with
    more than two non-zeros)."""
    tiles = sparse.conv_to_tiles(w_bits)
    payload, nbits = sparse.encode(tiles, fmt, sparse.conv_group_name(w_bits.shape))
    decoded, _ = sparse.decode(payload, fmt, len(tiles), nbits)
    return (sparse.stream_words(payload, nbits, len(tiles), STREAM_WIDTH),
            sparse.tiles_to_conv(decoded, w_bits.shape).astype(np.uint16))


def _dense_tiles(w_bits, rows, inner):
    """The A tiles of the channel-major im2col GEMM, [rows·inner, 16] (A[i][kk] row-major)."""
    filters, chans = w_bits.shape[:2]
    a = np.zeros((rows * TILE, inner * TILE), np.uint16)
    a[:filters, :chans * 9] = w_bits.reshape(filters, chans * 9)
    return a.reshape(rows, TILE, inner, TILE).transpose(0, 2, 1, 3).reshape(rows * inner, ELEMENTS)


def conv_commands(x_bits, w_bits, buffers):
    """The command list of one layer: [(op, addr, data[16])], the layer's (row, inner, col) blocks and the
    weights as the hardware holds them (compressed: as the stream decodes)."""
    chans, height, width = x_bits.shape
    filters = w_bits.shape[0]
    rows, inner, cols = buffers.layer_tiles(chans, filters, height, width)
    if buffers.compressed:
        words, held = weight_stream(w_bits, buffers.weight_format)
        buffers.check_weight_words(len(words))
        weight_data = [np.array([(word >> 16 * k) & 0xFFFF for k in range(CHUNKS)] + [0] * (ELEMENTS - CHUNKS),
                                np.uint16) for word in words]
    else:
        weight_data, held = _dense_tiles(w_bits, rows, inner), w_bits
    config = [chans, filters, height, width, len(weight_data) & 0xFFFF, len(weight_data) >> 16]
    commands = [_command(Op.CONFIG, data=np.array(config + [0] * (ELEMENTS - len(config)), np.uint16))]
    commands += [_command(Op.LOAD_ACT, addr, np.array([v] + [0] * 15, np.uint16))
                 for addr, v in enumerate(x_bits.ravel())]
    commands += [_command(Op.LOAD_WGT, addr, word) for addr, word in enumerate(weight_data)]
    commands.append(_command(Op.RUN))
    commands += [_command(Op.STORE, addr) for addr in range(rows * cols)]
    commands += [_command(Op.COUNTER, index) for index in range(len(COUNTERS))]
    return commands, (rows, inner, cols), held


def run_conv(x_bits, w_bits, *, algo="direct", fmt="dense", gating=Gating.HOLD, backend="pysim", buffers=None,
             per_bit=False, ready_pattern=None):
    """Run the layer ``x_bits`` uint16 [C, H, W], ``w_bits`` uint16 [K, C, 3, 3] (FP16 bit patterns) on the
    accelerator on ``backend``; returns a :class:`ConvRun`. ``buffers``: a
    :class:`~accel.hw.accelerator.BufferConfig` (its gating and weight format are replaced by ``gating``
    and ``fmt``). ``per_bit``: count toggles per bit too. ``ready_pattern``: the host's ``o.ready``, cycle
    by cycle (True past its end): back-pressure on the responses."""
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {', '.join(ALGORITHMS)} (the hardware runs these so far), not {algo!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
    check_layer(x_bits, w_bits)
    gating = Gating.parse(gating)
    buffers = buffers or BufferConfig()
    if not isinstance(buffers, BufferConfig):
        raise TypeError(f"buffers must be a BufferConfig, not {buffers!r}")
    buffers = replace(buffers, array=buffers.array.replace(gating=gating), weight_format=fmt)
    commands, (rows, inner, cols), held = conv_commands(x_bits, w_bits, buffers)
    dut = Accelerator(buffers)
    ops = np.array([c[0] for c in commands])
    words = pack(dut.i.payload.shape(), {"op": ops, "addr": np.array([c[1] for c in commands]),
                                         "data": np.stack([c[2] for c in commands])})
    max_cycles = len(words) + rows * inner * cols * (dut.latency + 2) + 1000
    max_cycles += 0 if ready_pattern is None else len(ready_pattern)
    run, toggles = count_toggles(dut, words, backend=backend, per_bit=per_bit, max_cycles=max_cycles,
                                 ready_pattern=ready_pattern)
    out = unpack(dut.o.payload.shape(), run.outputs)["data"].astype(np.uint32)
    counters = {name: int(v) for name, v in zip(COUNTERS, out[ops == Op.COUNTER.value][:, 0])}
    d = out[ops == Op.STORE.value].reshape(rows, cols, TILE, TILE).transpose(0, 2, 1, 3)
    chans, height, width = x_bits.shape
    filters, out_h, out_w = w_bits.shape[0], height - 2, width - 2
    y = d.reshape(rows * TILE, cols * TILE)[:filters, :out_h * out_w].reshape(filters, out_h, out_w)
    golden = direct_conv(x_bits, held, gating, buffers.order) if buffers.compressed \
        else direct_conv(x_bits, w_bits, gating)
    bit_exact = bool(np.array_equal(y, golden))
    offchip = {"act_load": 2 * counters["act_writes"],
               "weight_load": buffers.weight_word_bits // 8 * counters["weight_writes"],
               "store": 4 * ELEMENTS * counters["stores"]}
    offchip["total"] = sum(offchip.values())
    return ConvRun(y=y, cycles=counters["cycles"], stream_cycles=run.cycles, counters=counters,
                   ideal_cycles=filters * chans * 9 * out_h * out_w / TILE ** 3, latency=dut.latency,
                   offchip_bytes=offchip,
                   bit_exact=bit_exact, gating=gating, backend=backend, toggles=toggles)
