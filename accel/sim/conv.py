"""Run convolution layers (3×3, or 1×1 = a GEMM, direct only) on the accelerator
(:class:`accel.hw.accelerator.Accelerator`) and compare each with golden's same schedule.

The host side of the command stream, per layer: CONFIG with the layer's bounds, the activations (one
LOAD_ACT per 16 FP16 elements, ``c·H·W + y·W + x``, the last padded with zeros), the weights (unless the buffer holds them already), RUN,
one STORE per output tile (direct: a 4×4 psum tile ``(r, cb)``; Winograd: an m×m output tile of one
output channel) and one COUNTER per performance counter (the counters run on: a layer's figures are the
differences). Each command has one response. Weights (:func:`layer_weights`): ``dense``: the 4×4 A
tiles of the im2col GEMM ``W [K, C·k²]`` (golden's ``channel_major`` order), tile ``(r, s)`` at
``r·inner_blocks + s``, or of the transformed filters U (Winograd); compressed: the 64-bit words of the
:mod:`accel.golden.sparse` stream of :func:`~accel.golden.sparse.conv_to_tiles` (the ``tap_blocks``
order), one LOAD_WGT per word.

The reference is golden's same schedule (:func:`golden_conv`): the direct convolution in the sequencer's
inner order, or the Winograd convolution on the transformed filters, on the weights as the hardware holds
them (compressed: a stored −0 decodes to +0).

A layer larger than the on-chip buffers is cut into *passes* by the host (:func:`plan_passes`): groups of
output channels, bands of output rows and of output columns (whole m×m tiles for Winograd), each pass a
layer of its own in the same command stream (its input window with the 2-pixel halo loaded again, a
group's weights loaded once for its passes). When not even one output over all input channels fits (a
512-channel 3×3 layer's 4 filters are 1,152 weight tiles), the input channels are split into groups too
(multiples of 4, of 8 in skip mode, but the last): a region's groups run one after the other on the same
psum tiles, each after the first with CONFIG's accumulate bit (its chains go on from the sums the previous
group left in the psum buffer), and only the last one STOREs. Every inner order is channel-block major, so
the groups' chains are the unsplit chains' steps in order: every output's chain still runs over all input
channels and taps in the schedule's order, and the passes together equal golden's unsplit layer bit for
bit; the reloaded halos and weights are counted as off-chip traffic (a channel-split region loads each
group's weights for each of its row and column bands).

Double buffering (:func:`conv_stream`): the accelerator takes loads while it runs, so the host issues the
next pass's loads (of the next pass, image or layer) right after the current pass's RUN, into the other end
of the buffer from the region the running pass reads (CONFIG gives each pass its activation and weight
bases). A layer of several passes is planned on half the activation buffer so that two windows fit side by
side; a layer that fits whole is one pass on the whole buffer. The hardware counts a load in the counters
of the pass during whose commands it is taken; the host moves the early loads back to their own pass, so
every pass's and layer's figures are as without overlap.
"""

from dataclasses import dataclass, field, replace

import numpy as np

from ..golden import sparse
from ..golden.gating import Gating
from ..golden.schedule import SPARSE_DEPTH, TILE, direct_gemms
from ..golden.winograd import direct_conv, filter_transform, winograd_conv_transformed
from ..hw.accelerator import (ALGORITHMS, COUNTERS, SPARSE_MODES, STREAM_WIDTH, WEIGHT_FORMATS, Accelerator,
                              BufferConfig, Op)
from .payload import pack, unpack
from .toggles import count_toggles

__all__ = ["ALGORITHMS", "FORMATS", "SPARSE_MODES", "WALKS", "ConvRun", "Pass", "check_layer", "weight_stream",
           "layer_weights", "plan_passes", "golden_conv", "conv_commands", "conv_stream", "run_convs", "run_conv"]

FORMATS = WEIGHT_FORMATS
ELEMENTS = TILE * TILE
CHUNKS = STREAM_WIDTH // 16     # 16-bit data fields of a LOAD_WGT that carry one stream word


@dataclass
class ConvRun:
    """One layer on the hardware: ``y`` FP32 bits [K, H−2, W−2], ``cycles`` (clocks of the run itself,
    the ``cycles`` counter), ``stream_cycles`` (the whole command stream: loads, run, stores),
    ``counters`` (every :data:`~accel.hw.accelerator.COUNTERS` entry), ``ideal_cycles`` (MACs of the
    unpadded layer / the array's dense-equivalent MACs an instruction: 64, 128 in skip mode), ``latency``
    (the accelerator's: gather request to D written), off-chip traffic in bytes, ``bit_exact`` against
    golden, the toggles and the sparse mode (:data:`SPARSE_MODES`)."""

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
    sparse_mode: str = "gate"
    passes: int = 1

    def as_json(self):
        return {"cycles": self.cycles, "stream_cycles": self.stream_cycles, "ideal_cycles": self.ideal_cycles,
                "macs": self.counters["macs"], "macs_gated": self.counters["macs_gated"],
                "counters": dict(self.counters), "offchip_bytes": dict(self.offchip_bytes),
                "bit_exact": self.bit_exact, "gating": str(self.gating), "sparse_mode": self.sparse_mode,
                "passes": self.passes,
                "backend": self.backend, "toggles": self.toggles.as_json() if self.toggles is not None else None}


def check_layer(x_bits, w_bits, kernels=(3,)):
    """ValueError unless ``x`` is uint16 [C, H, W] and ``w`` uint16 [K, C, k, k] with k one of ``kernels``
    (3, or 1 for a 1×1 convolution) and H, W ≥ k."""
    for name, array, ndim in (("x", x_bits, 3), ("w", w_bits, 4)):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint16:
            kind = getattr(array, "dtype", type(array).__name__)
            raise ValueError(f"{name} must be a uint16 array of FP16 bit patterns, not {kind}")
        if array.ndim != ndim or 0 in array.shape:
            raise ValueError(f"{name} must be a non-empty {ndim}-d array, not shape {array.shape}")
    kernel = w_bits.shape[2] if w_bits.shape[2] in kernels else kernels[0]
    if w_bits.shape[1:] != (x_bits.shape[0], kernel, kernel):
        sizes = " or ".join(f"[K, {x_bits.shape[0]}, {k}, {k}]" for k in kernels)
        raise ValueError(f"w must be {sizes} for x {x_bits.shape}, not {w_bits.shape}")
    if min(x_bits.shape[1:]) < kernel:
        raise ValueError(f"x must be at least {kernel}x{kernel}, not {x_bits.shape[1]}x{x_bits.shape[2]}")


def _command(op, addr=0, data=None):
    return op.value, addr, np.zeros(ELEMENTS, np.uint16) if data is None else data


#: Tile orders of a weight stream (:func:`weight_stream`): the 4-channel tiles a chain step of the direct walk
#: takes (0: not a direct walk, row block major).
WALKS = {"rows": 0, "steps": 1, "pairs": 2}


def weight_stream(w_bits, fmt, walk="rows"):
    """The compressed stream of ``w_bits`` [K, C, k, k] in format ``fmt``: (64-bit words, header first;
    the weights it decodes to). Tiles in the order the accelerator walks them (``walk``): ``rows``:
    :func:`~accel.golden.sparse.conv_to_tiles` order (row block major: the Winograd walk); ``steps``: every
    row block of a step, then the next step (the direct walk); ``pairs`` (skip mode, C padded to 8): per
    step (8 channels at one tap) and row block the tile of channels 8cb..8cb+3, then that of 8cb+4..8cb+7.
    ValueError when the weights do not fit the format (nm24: a group with more than two non-zeros, named
    as in the weights)."""
    if walk not in WALKS:
        raise ValueError(f"walk must be one of {', '.join(WALKS)}, not {walk!r}")
    pair = max(1, WALKS[walk])
    filters, chans = w_bits.shape[:2]
    padded = np.pad(w_bits, ((0, 0), (0, -chans % (TILE * pair)), (0, 0), (0, 0)))
    tiles = sparse.conv_to_tiles(padded)
    rows = -(-filters // TILE)
    taps = w_bits.shape[2] * w_bits.shape[3]
    # stream position t holds tile order[t] of conv_to_tiles ([row block, channel block, tap])
    order = np.arange(len(tiles))
    if WALKS[walk]:
        order = order.reshape(rows, -1, pair, taps).transpose(1, 3, 0, 2).ravel()
    group = sparse.conv_group_name(padded.shape)
    payload, nbits = sparse.encode(tiles[order], fmt, lambda t, j: group(int(order[t]), j))
    decoded, _ = sparse.decode(payload, fmt, len(tiles), nbits)
    held = np.empty_like(decoded)
    held[order] = decoded
    return (sparse.stream_words(payload, nbits, len(tiles), STREAM_WIDTH),
            sparse.tiles_to_conv(held, padded.shape)[:, :chans].astype(np.uint16))


def _dense_tiles(w_bits, rows, inner):
    """The A tiles of the channel-major im2col GEMM, [rows·inner, 16] (A[i][kk] row-major)."""
    filters, chans, kernel = w_bits.shape[:3]
    a = np.zeros((rows * TILE, inner * TILE), np.uint16)
    a[:filters, :chans * kernel * kernel] = w_bits.reshape(filters, -1)
    return a.reshape(rows, TILE, inner, TILE).transpose(0, 2, 1, 3).reshape(rows * inner, ELEMENTS)


def _store_addresses(buffers, filters, tiles, rows, cols):
    """STORE addresses of the layer's results: every psum tile (r, cb) (direct), or the output-buffer word
    ``16·(r·CB + cb) + 4i + j`` of each output channel k = 4r + i < K and tile t = 4cb + j < T (Winograd)."""
    if buffers.winograd_m is None:
        return list(range(rows * cols))
    k, t = np.meshgrid(np.arange(filters), np.arange(tiles), indexing="ij")
    return list((ELEMENTS * ((k // TILE) * cols + t // TILE) + TILE * (k % TILE) + t % TILE).ravel())


def layer_weights(w_bits, buffers, check_fit=True):
    """(the LOAD_WGT data [words, 16], the weights as the hardware holds them) of ``w_bits`` [K, C, k, k]:
    dense direct: the A tiles of the channel-major im2col GEMM; Winograd: the transformed filters U =
    G·g·Gᵀ [K, C, m+2, m+2] as A tiles in the walk order (r, s, point); compressed: the 64-bit words of
    the stream (of U for Winograd), held as the stream decodes (a stored −0 decodes to +0). ValueError
    when the weights do not fit the format or (``check_fit``) a compressed stream the weight buffer."""
    mt = buffers.winograd_m
    weights = w_bits if mt is None else filter_transform(w_bits, mt)
    if buffers.compressed:
        walk = "rows" if mt is not None else "pairs" if buffers.skip else "steps"
        words, held = weight_stream(weights, buffers.weight_format, walk)
        if check_fit:
            buffers.check_weight_words(len(words))
        return [np.array([(word >> 16 * k) & 0xFFFF for k in range(CHUNKS)] + [0] * (ELEMENTS - CHUNKS),
                         np.uint16) for word in words], held
    if mt is None:
        filters, chans, kernel = w_bits.shape[:3]
        shape = direct_gemms(chans, filters, 1, 1, "channel_major", kernel)
        return _dense_tiles(w_bits, shape.blocks(shape.rows), shape.blocks(shape.inner)), w_bits
    # A[i][kk] = U[4r + i, 4s + kk, point]
    return sparse.conv_to_tiles(weights).transpose(0, 2, 1).reshape(-1, ELEMENTS), weights


@dataclass(frozen=True)
class Pass:
    """One pass of a layer: output channels ``k0:k1``, output rows ``r0:r1`` and columns ``c0:c1``, over input
    channels ``ci0:ci1``."""

    k0: int
    k1: int
    r0: int
    r1: int
    c0: int
    c1: int
    ci0: int
    ci1: int

    @property
    def accumulate(self):
        """Whether the pass goes on from the partial sums of the previous channel group (CONFIG's accumulate)."""
        return self.ci0 > 0

    def operands(self, x_bits, w_group):
        """The pass's layer: its channels' input window (outputs and the kernel's halo) and its group's weights
        (``w_group``: w[k0:k1, ci0:ci1])."""
        halo = w_group.shape[2] - 1
        return x_bits[self.ci0:self.ci1, self.r0:self.r1 + halo, self.c0:self.c1 + halo], w_group


def _halvings(size, unit):
    """size, then about half, a quarter, ... down to ``unit``, each a multiple of ``unit`` (or ``size``)."""
    sizes = [size]
    while sizes[-1] > unit:
        sizes.append(max(unit, -(-sizes[-1] // 2 // unit) * unit))
    return sizes


def _spans(size, step):
    """(start, end) of the pieces of ``step`` that cut ``range(size)``."""
    return [(start, min(start + step, size)) for start in range(0, size, step)]


def _fits(check, *args):
    """Whether ``check(*args)`` (a buffer check) passes."""
    try:
        check(*args)
        return True
    except ValueError:
        return False


def plan_passes(x_bits, w_bits, buffers, double_buffer=True):
    """The passes of a layer on ``buffers``: the whole layer when it fits, else the fewest of output-channel
    groups (multiples of 4), then row bands, then column bands (multiples of m for Winograd), trying halves
    of each in that order; every group's weights are checked (a compressed stream's length depends on
    them). Only when no pass over all input channels fits are the input channels split too
    (:func:`_plan`). With ``double_buffer`` a layer of several passes is planned on half the activation
    buffer, so the next pass's window loads beside the running one's (:func:`conv_stream`), unless even its
    smallest pass needs more than half (then on the whole buffer, its loads not overlapped); there too the
    input channels are split only if they are on the whole buffer. ValueError when the weights do not fit
    the format (:func:`layer_weights`), or naming the buffer that even the smallest pass (4 filters, 4 input
    channels, 8 in skip mode, one output, an m×m tile for Winograd) does not fit."""
    layer_weights(w_bits, buffers, check_fit=False)
    passes = _plan(x_bits, w_bits, buffers)
    if len(passes) == 1 or not double_buffer or buffers.act_words < 2 * ELEMENTS:
        return passes
    try:
        return _plan(x_bits, w_bits, replace(buffers, act_words=buffers.act_words // 2),
                     split=passes[0].ci1 < len(x_bits))
    except ValueError:
        return passes


def _plan(x_bits, w_bits, buffers, split=True):
    """The passes over all input channels (:func:`_plan_outputs`), else (``split``) the fewest over groups of
    input channels (halvings of C, multiples of a chain step's channel block: 4, 8 in skip mode; the last
    group may be smaller), ties to the smaller groups (so fewer output-channel groups and bands: the input is
    loaded fewer times, the weights as often or less); the channel groups of one output region (output-channel
    group, row band, column band) are consecutive passes. Every inner order is channel-block major
    (:func:`~accel.golden.schedule.inner_rows`; Winograd: channels in steps of 4), so a region's channel
    groups run the steps of the unsplit layer's chains in order, each carrying on from the psum buffer's sums
    (CONFIG's accumulate), and the passes equal golden's unsplit layer bit for bit."""
    chans, filters, kernel = x_bits.shape[0], w_bits.shape[0], w_bits.shape[2]
    passes = _plan_outputs(x_bits, w_bits, buffers, chans)
    if passes is not None:
        return passes
    unit_c = SPARSE_DEPTH if buffers.skip else TILE
    for group in _halvings(chans, unit_c)[1:] if split else []:
        if passes is not None and -(-chans // group) > len(passes):    # a pass a group at least: no better
            break
        plan = _plan_outputs(x_bits, w_bits, buffers, group)
        if plan is not None and (passes is None or len(plan) <= len(passes)):
            passes = plan
    if passes is not None:
        return passes
    # the smallest pass does not fit: its own error names the buffer
    unit, unit_c = buffers.winograd_m or 1, min(unit_c, chans)
    out_h, out_w = x_bits.shape[1] - kernel + 1, x_bits.shape[2] - kernel + 1
    buffers.layer_tiles(unit_c, min(TILE, filters), min(unit, out_h) + kernel - 1, min(unit, out_w) + kernel - 1,
                        kernel)
    layer_weights(w_bits[:TILE, :unit_c], buffers)
    raise ValueError("the layer's smallest pass does not fit the buffers")


def _plan_outputs(x_bits, w_bits, buffers, group_c):
    """The passes over input-channel groups of ``group_c`` channels: the fewest of output-channel groups, row
    bands and column bands, by halvings (:func:`plan_passes`); None when even the smallest does not fit."""
    (chans, height, width), filters, kernel = x_bits.shape, w_bits.shape[0], w_bits.shape[2]
    out_h, out_w = height - kernel + 1, width - kernel + 1
    unit = buffers.winograd_m or 1
    bands = _halvings(out_h, unit)
    for group in _halvings(filters, TILE):
        # a compressed group's stream depends on its weights (each group once); the window's buffers on the
        # sizes only (the first group is the largest)
        if buffers.compressed and not all(_fits(layer_weights, w_bits[k0:k1, c0:c1], buffers)
                                          for k0, k1 in _spans(filters, group) for c0, c1 in _spans(chans, group_c)):
            continue
        for band in bands:
            for cols in _halvings(out_w, unit) if band == bands[-1] else [out_w]:   # columns: last resort
                if _fits(buffers.layer_tiles, group_c, min(group, filters), band + kernel - 1, cols + kernel - 1,
                         kernel):
                    return [Pass(*k, *r, *c, *ci) for k in _spans(filters, group) for r in _spans(out_h, band)
                            for c in _spans(out_w, cols) for ci in _spans(chans, group_c)]
    return None


def golden_conv(x_bits, w_bits, buffers, held=None):
    """Golden's same schedule as the accelerator built from ``buffers`` (FP32 bits): the Winograd
    convolution on the transformed filters it holds, or the direct convolution in its sequencer's inner
    order on the weights it holds (``held``, from :func:`layer_weights` when not given)."""
    if held is None:
        held = layer_weights(w_bits, buffers)[1]
    if buffers.winograd_m is not None:
        return winograd_conv_transformed(x_bits, held, buffers.winograd_m, gating=buffers.gating)
    return direct_conv(x_bits, held, buffers.gating, buffers.order)


def _pass_commands(x_bits, w_bits, buffers, load_weights=True, weights=None, act_base=0, weight_base=0,
                   accumulate=False, store=True):
    """The commands of one layer in groups: {"config", "act", "weights", "run", "results"} (lists of
    commands), the layer's (row, inner, col) blocks and the weights as the hardware holds them
    (:func:`conv_commands`). ``accumulate``: CONFIG's accumulate bit (the chains go on from the psum
    buffer's sums); ``store``: STOREs of the results before the COUNTERs."""
    chans, height, width = x_bits.shape
    filters, kernel = w_bits.shape[0], w_bits.shape[2]
    rows, inner, cols = buffers.layer_tiles(chans, filters, height, width, kernel)
    weight_data, held = weights if weights is not None else layer_weights(w_bits, buffers)
    mt = buffers.winograd_m
    config = [chans, filters, height, width, len(weight_data) & 0xFFFF, len(weight_data) >> 16, kernel,
              act_base & 0xFFFF, act_base >> 16, weight_base & 0xFFFF, weight_base >> 16, int(accumulate)]
    flat = x_bits.ravel()
    flat = np.pad(flat, (0, -len(flat) % ELEMENTS)).reshape(-1, ELEMENTS)          # 16 elements a command
    tiles = None if mt is None else -(-(height - 2) // mt) * -(-(width - 2) // mt)
    stores = _store_addresses(buffers, filters, tiles, rows, cols)
    parts = {
        "config": [_command(Op.CONFIG, data=np.array(config + [0] * (ELEMENTS - len(config)), np.uint16))],
        "act": [_command(Op.LOAD_ACT, act_base + ELEMENTS * i, row) for i, row in enumerate(flat)],
        "weights": [_command(Op.LOAD_WGT, weight_base + addr, word) for addr, word in enumerate(weight_data)]
                   if load_weights else [],
        "run": [_command(Op.RUN)],
        "results": ([_command(Op.STORE, addr) for addr in stores] if store else [])
                   + [_command(Op.COUNTER, index) for index in range(len(COUNTERS))],
    }
    return parts, (rows, inner, cols), held


def conv_commands(x_bits, w_bits, buffers, load_weights=True, weights=None, act_base=0, weight_base=0):
    """The command list of one layer: [(op, addr, data[16])], the layer's (row, inner, col) blocks and the
    weights as the hardware holds them (compressed: as the stream decodes; Winograd: the transformed
    filters U [K, C, m+2, m+2]). ``load_weights``: False when the weight buffer already holds them (a
    batch of inputs through one layer); ``weights``: :func:`layer_weights` of ``w_bits``, when known;
    ``act_base``, ``weight_base``: where the layer's activations and weights sit in their buffers (given
    in CONFIG). Order: CONFIG, loads, RUN, STOREs, COUNTERs (no overlap: :func:`conv_stream` overlaps)."""
    parts, blocks, held = _pass_commands(x_bits, w_bits, buffers, load_weights, weights, act_base, weight_base)
    return [c for key in ("config", "act", "weights", "run", "results") for c in parts[key]], blocks, held


def _place(previous, words, capacity, overlap):
    """(base, early) of a pass's region of ``words`` words in a buffer of ``capacity``: at the other end of
    the buffer from the region the previous pass reads (``previous``: (base, words), or None), loaded early
    (while the previous pass runs), when both fit side by side and ``overlap``; else at 0, loaded after."""
    if overlap and previous is not None and previous[1] + words <= capacity:
        return (capacity - words if previous[0] == 0 else 0), True
    return 0, False


def conv_stream(layers, buffers, overlap=True):
    """The command stream of ``layers`` [(x_bits, w_bits)] on ``buffers`` (already :meth:`~accel.hw.
    accelerator.BufferConfig.running`): each layer cut into :func:`plan_passes`, every pass a layer of its
    own. Double buffering (``overlap``): the next pass's loads (of the next layer or image too) follow the
    current pass's RUN, before its STOREs and COUNTERs, so the accelerator takes them while the pass
    computes; they go to the other end of the buffer from the region the running pass reads (the host's
    contract: the hardware does not check it), which the plan's half-buffer passes make possible; a region
    that does not fit beside the running one is loaded at 0 after the run (weights of a new group, a layer
    that takes the whole buffer). A pass that keeps the previous pass's weights loads none. The channel
    groups of an output region after the first accumulate (CONFIG), and only its last one STOREs (each
    output is stored once). Returns (commands, the passes of each layer, per pass: (first command, command
    count, blocks, weights as held, x, w, early act_writes, early weight_writes: the counts of its loads
    issued in the previous pass's commands))."""
    kernels = (3,) if buffers.winograd_m else (3, 1)
    pieces, parts, previous = [], [], None
    act_region = weight_region = None
    for x_bits, w_bits in layers:
        check_layer(x_bits, w_bits, kernels)
        passes = plan_passes(x_bits, w_bits, buffers)
        # one array a group of output and input channels
        groups = {(p.k0, p.ci0): w_bits if len(passes) == 1 else w_bits[p.k0:p.k1, p.ci0:p.ci1] for p in passes}
        parts.append(passes)
        for part in passes:
            x_part, w_part = part.operands(x_bits, groups[part.k0, part.ci0])
            load_weights = w_part is not previous
            if load_weights:        # a batch's or a group's weights: encoded once
                weights = layer_weights(w_part, buffers)
            act_words = -(-x_part.size // ELEMENTS) * ELEMENTS
            act_base, act_early = _place(act_region, act_words, buffers.act_words, overlap)
            act_region = (act_base, act_words)
            weight_early = False
            if load_weights:
                weight_base, weight_early = _place(weight_region, len(weights[0]), buffers.weight_words, overlap)
                weight_region = (weight_base, len(weights[0]))
            commands, blocks, held = _pass_commands(x_part, w_part, buffers, load_weights, weights, act_region[0],
                                                    weight_region[0], part.accumulate, part.ci1 == len(x_bits))
            previous = w_part
            pieces.append((commands, act_early, weight_early, blocks, held, x_part, w_part))
    stream, plans = [], []
    for j, (commands, act_early, weight_early, blocks, held, x_part, w_part) in enumerate(pieces):
        start = len(stream)
        stream += commands["config"]
        stream += [] if act_early else commands["act"]
        stream += [] if weight_early else commands["weights"]
        stream += commands["run"]
        if j + 1 < len(pieces):        # the next pass's early loads, while this one runs
            following, next_act, next_weight = pieces[j + 1][:3]
            stream += (following["act"] if next_act else []) + (following["weights"] if next_weight else [])
        stream += commands["results"]
        plans.append((start, len(stream) - start, blocks, held, x_part, w_part,
                      ELEMENTS * len(commands["act"]) if act_early else 0,
                      len(commands["weights"]) if weight_early else 0))
    return stream, parts, plans


def _results(out, buffers, filters, out_h, out_w, rows, cols):
    """y FP32 bits [K, OH, OW] from the STORE responses ``out`` [stores, 16]."""
    mt = buffers.winograd_m
    if mt is None:
        d = out.reshape(rows, cols, TILE, TILE).transpose(0, 2, 1, 3)
        return d.reshape(rows * TILE, cols * TILE)[:filters, :out_h * out_w].reshape(filters, out_h, out_w)
    th, tw = -(-out_h // mt), -(-out_w // mt)
    y = out[:, :mt * mt].reshape(filters, th, tw, mt, mt).transpose(0, 1, 3, 2, 4)
    return y.reshape(filters, th * mt, tw * mt)[:, :out_h, :out_w]


def _ideal_cycles(x_bits, w_bits, buffers):
    """MACs of the unpadded layer (direct MACs, or Winograd-domain MACs: points × K × C × tiles) over the
    dense-equivalent MACs of an instruction (64; 128 in skip mode)."""
    (chans, height, width), filters, kernel = x_bits.shape, w_bits.shape[0], w_bits.shape[2]
    mt, per_instruction = buffers.winograd_m, buffers.array_config.dense_macs_per_instruction
    if mt is None:
        return filters * chans * kernel * kernel * (height - kernel + 1) * (width - kernel + 1) / per_instruction
    return buffers.points * filters * chans * -(-(height - 2) // mt) * -(-(width - 2) // mt) / per_instruction


def run_convs(layers, *, algo="direct", fmt="dense", gating=Gating.HOLD, sparse_mode="gate", backend="pysim",
              buffers=None, per_bit=False, ready_pattern=None, waveform=None, overlap=True):
    """Run the layers ``[(x_bits, w_bits), ...]`` (uint16 FP16 bit patterns, x [C, H, W], w [K, C, k, k],
    k = 3, or 1 for direct convolution) one after another on one accelerator on ``backend``, in one
    command stream (a layer whose weights are the previous layer's array does not load them again);
    returns ([:class:`ConvRun` per layer, with ``toggles`` None], the toggles of the whole stream).
    ``buffers``: a :class:`~accel.hw.accelerator.BufferConfig` (its gating, weight format, algorithm and
    sparse mode are replaced by ``gating``, ``fmt``, ``algo`` and ``sparse_mode``: ``skip`` runs ``nm24``
    weights on the 2:4 sparse array). ``per_bit``: count toggles per bit too.
    ``ready_pattern``: the host's ``o.ready``, cycle by cycle (True past its end): back-pressure on the
    responses. ``waveform``: a :class:`~accel.sim.waveform.Waveform` of the command stream to write.
    ``overlap``: double buffering (:func:`conv_stream`; False: the same passes, every load before its RUN).
    Each pass's and layer's ``act_writes`` and ``weight_writes`` are its own loads wherever they were issued."""
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {', '.join(ALGORITHMS)}, not {algo!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
    gating = Gating.parse(gating)
    buffers = buffers or BufferConfig()
    if not isinstance(buffers, BufferConfig):
        raise TypeError(f"buffers must be a BufferConfig, not {buffers!r}")
    buffers = buffers.running(algo=algo, weight_format=fmt, gating=gating, sparse_mode=sparse_mode)
    commands, parts, plans = conv_stream(layers, buffers, overlap)
    dut = Accelerator(buffers)
    ops = np.array([c[0] for c in commands])
    words = pack(dut.i.payload.shape(), {"op": ops, "addr": np.array([c[1] for c in commands]),
                                         "data": np.stack([c[2] for c in commands])})
    work = sum(rows * inner * cols * buffers.points * (dut.latency + 2) + 2 * x.size + 40 * rows * cols
               for _, _, (rows, inner, cols), _, x, _, _, _ in plans)
    max_cycles = len(words) + work + 1000 + (0 if ready_pattern is None else len(ready_pattern))
    run, toggles = count_toggles(dut, words, backend=backend, per_bit=per_bit, max_cycles=max_cycles,
                                 ready_pattern=ready_pattern, waveform=waveform)
    out = unpack(dut.o.payload.shape(), run.outputs)["data"].astype(np.uint32)
    results, before = [], dict.fromkeys(COUNTERS, 0)
    for j, (start, length, (rows, _, cols), held, x_part, w_part, early_act, early_weight) in enumerate(plans):
        layer_ops, layer_out = ops[start:start + length], out[start:start + length]
        total = {name: int(v) for name, v in zip(COUNTERS, layer_out[layer_ops == Op.COUNTER.value][:, 0])}
        counters = {name: total[name] - before[name] for name in COUNTERS}    # the counters run on
        before = total
        # the loads of the next pass issued during this one are counted here by the hardware: they are the
        # next pass's (and this pass's early loads, counted in the previous pass's window, are its own)
        following = plans[j + 1][6:] if j + 1 < len(plans) else (0, 0)
        counters["act_writes"] += early_act - following[0]
        counters["weight_writes"] += early_weight - following[1]
        kernel = w_part.shape[2]
        out_h, out_w = x_part.shape[1] - kernel + 1, x_part.shape[2] - kernel + 1
        stored = layer_out[layer_ops == Op.STORE.value]      # none from a channel group that accumulates on
        y = _results(stored, buffers, w_part.shape[0], out_h, out_w, rows, cols) if len(stored) else None
        results.append((y, counters, held))
    runs = []
    for (x_bits, w_bits), passes in zip(layers, parts):
        done, results = results[:len(passes)], results[len(passes):]
        kernel = w_bits.shape[2]
        y = np.empty((w_bits.shape[0], x_bits.shape[1] - kernel + 1, x_bits.shape[2] - kernel + 1), np.uint32)
        groups = {}         # the weights as held, by output-channel group and input-channel group
        for part, (y_part, _, held) in zip(passes, done):
            if y_part is not None:
                y[part.k0:part.k1, part.r0:part.r1, part.c0:part.c1] = y_part
            groups.setdefault(part.k0, {})[part.ci0] = held
        counters = {name: sum(c[name] for _, c, _ in done) for name in COUNTERS}
        held = np.concatenate([np.concatenate([row[c0] for c0 in sorted(row)], axis=1)
                               for _, row in sorted(groups.items())])
        mt = buffers.winograd_m
        offchip = {"act_load": 2 * counters["act_writes"],
                   "weight_load": buffers.weight_word_bits // 8 * counters["weight_writes"],
                   "store": 4 * (mt * mt if mt else ELEMENTS) * counters["stores"]}
        offchip["total"] = sum(offchip.values())
        runs.append(ConvRun(y=y, cycles=counters["cycles"], stream_cycles=run.cycles, counters=counters,
                            ideal_cycles=_ideal_cycles(x_bits, w_bits, buffers), latency=dut.latency,
                            offchip_bytes=offchip,
                            bit_exact=bool(np.array_equal(y, golden_conv(x_bits, w_bits, buffers, held))),
                            gating=gating, backend=backend, sparse_mode=buffers.sparse_mode, passes=len(passes)))
    return runs, toggles


def run_conv(x_bits, w_bits, *, algo="direct", fmt="dense", gating=Gating.HOLD, sparse_mode="gate", backend="pysim",
             buffers=None, per_bit=False, ready_pattern=None, waveform=None, overlap=True):
    """Run one layer (see :func:`run_convs`) on the accelerator; returns its :class:`ConvRun` with the
    toggles of its command stream."""
    (result,), toggles = run_convs([(x_bits, w_bits)], algo=algo, fmt=fmt, gating=gating, sparse_mode=sparse_mode,
                                   backend=backend, buffers=buffers, per_bit=per_bit, ready_pattern=ready_pattern,
                                   waveform=waveform, overlap=overlap)
    return replace(result, toggles=toggles)
