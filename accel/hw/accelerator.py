"""The accelerator's top level: a 3×3 convolution layer, direct (im2col) or Winograd F(2×2, 3×3) /
F(4×4, 3×3), dense or compressed weights: on-chip buffers, the sequencer, the weight decompressor, the
Winograd transform units, the operand senders and the HMMA array, behind one command stream and one
response stream. The algorithm and the weight format are build parameters (:class:`BufferConfig`).

::

    i (commands) ─┬─ LOAD_ACT ──▶ activation buffer ══ 16 im2col reads ══▶ B sender ─┐   (direct)
                  ├─ LOAD_WGT ──▶ weight buffer ══ dense: 1 tile read ══▶ A sender ─┼─▶ HMMA ─ D ─▶ psum buffer
                  │                            ╚═ compressed: words ═▶ decompressor ┤       C ◀── psum buffer
                  ├─ CONFIG (C, K, H, W, weight words) ─▶ sequencer ── requests ──┘
                  ├─ RUN ─▶ response when the layer is done
                  ├─ STORE ─▶ response: one psum tile                       o (responses, one per command)
                  └─ COUNTER ─▶ response: one performance counter

Every command gets exactly one response (like a bus's write response): loads and CONFIG get an empty one at
once, RUN gets its one when the last D is in the partial-sum buffer, STORE and COUNTER carry their data.
Commands are taken one per clock; during a run only LOAD_ACT and LOAD_WGT are (double buffering: the host
loads the next layer into a part of the buffers the running layer does not read, given by CONFIG's
activation and weight bases; the hardware does not check it). Responses come in command order, except that a
load taken during a run answers at once, ahead of the RUN's response: all of them are empty, so the stream of
responses is the one the commands would get in order. When the run ends on a clock whose response register
is taken (by a load's response, or held by the host) its response follows as soon as the register is free,
and no command is taken meanwhile.

Issue pipeline (one instruction per clock): the sequencer's request reads the weight tile, the 16 im2col
activations and, from chain step 1 on (from step 0 on in an accumulating run, below), the partial sum
(stage 0: the reads of the next instruction run while the array computes the current one); stage 1 holds
the read data, the senders raise the zero flags and the array takes the instruction. D goes back to the
partial-sum buffer at the address that travelled with it (a FIFO beside the array). A chain's step s > 0
leaves stage 0 only once the D of step s − 1 is written (or is being written: the C read port is
transparent), so the schedule's interleaving of ``chain_gap`` chains hides the array's latency when
``chain_gap ≥ latency + 1``; otherwise the wait is counted as ``idle_dependency``.

Accumulate (CONFIG ``data[11]`` bit 0): the host runs a layer whose input channels it splits into groups
(:func:`accel.sim.conv.plan_passes`) as one run per group on the same output tiles; in the runs after the
first, step 0 of every chain takes C from the partial-sum buffer at its psum address (like steps s > 0)
instead of +0, so the chain goes on from the sum the previous run left there (nothing clears the buffer
between runs, and that run has finished: step 0 waits for nothing). The reads count in ``psum_reads``.
Under Winograd the psum banks carry the Winograd-domain sums from run to run; each run's output pass still
transforms them into the output buffer, which the group's last run overwrites (work done, and counted, in
vain).

Winograd (``BufferConfig.algo``): the host loads the transformed filters U = G·g·Gᵀ (golden's offline
filter transform) as the weights, tile ``(r·S + s)·P + p`` for row block r, channel block s and point p
(P = (m+2)²). Three things run at once from RUN on:

- the *input pass* walks (channel block, tile, channel), reads the tile's (m+2)×(m+2) patch from the
  activation buffer (one read port per element), transforms it in a :class:`~accel.hw.winograd.WinogradInput`
  and writes point p of V into bank p of the transformed-activation buffer, flags included;
- the :class:`~accel.hw.sequencer.WinogradSequencer` issues the P GEMMs in ``WINOGRAD_LOOPS`` order (the
  P instructions of a column block back to back); an instruction waits until the input pass has written
  its V word (4 channels × 4 tiles: ``idle_activations``), so from the first column block on 16 transforms
  feed P ≥ 16 instructions; B is one word of V bank p, its zero flags the input transform's; C and D live
  in psum bank p; compressed weights go through a file of two groups of P decompressed tiles;
- the *output pass* takes each column block as soon as its last step is written (beside the GEMMs of the
  next), reads the P banks at once, feeds 16 Winograd-domain tiles to a
  :class:`~accel.hw.winograd.WinogradOutput` one per clock and writes the m×m output tiles to the output
  buffer, which STORE reads.

Senders: each operand element has a :class:`~accel.hw.operand.ZeroDetector`; under ``hold`` a flagged
element is never sent (its lines keep the value last sent on them, only ``is_zero`` changes:
:func:`accel.golden.operands.sent_operand`), under ``and`` the zero is sent with its flag, under ``none``
nothing is flagged. GEMM padding is a +0 activation (flagged like any zero).

Weights (``BufferConfig.weight_format``): ``dense``: the weight buffer holds 4×4 A tiles, one read per
instruction, the inner order is golden's ``channel_major``. Compressed (``bitmask``, ``rle``, ``nm24``):
the weight buffer holds the 64-bit words of one :mod:`accel.golden.sparse` stream (header word first),
read in order into the :class:`~accel.hw.decompressor.Decompressor`, which is the A sender (its output
lines follow the gating style); a tile is taken at each weight tile's first instruction and held in a
register for the column blocks that reuse it. The stream's tile order (:func:`~accel.golden.sparse.
conv_to_tiles`) is the ``tap_blocks`` inner order, so the sequencer walks that order. An instruction that
needs a tile the decompressor has not finished waits (``idle_weights``).

Skip mode (``BufferConfig.sparse_mode``, ``nm24`` direct only): the array is the 2:4 sparse one
(``HMMA(sparse=True)``: A the kept weights [4][4] with their indices, B 8 × 4 activations), the sequencer
walks ``tap_pairs`` (8 input channels at one tap a step: half the instructions) with 32 im2col reads an
instruction, and the decompressor, in kept mode, hands over each ``nm24`` tile's kept values and indices
unexpanded: the stream holds the two tiles of a step (channels 8cb..8cb+3, 8cb+4..8cb+7) one after the
other, the first waits in a staging register, both enter the A register together (:meth:`Accelerator.
_kept_weights`). ``macs`` counts dense-equivalent multiply-adds (128 an instruction), ``macs_gated`` the
ones not multiplied (the 64 pruned, and under ``hold`` kept ones with a ±0 operand).
"""

from dataclasses import dataclass, field, replace

from amaranth import *
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..golden import sparse
from ..golden.fp import FP16, FP32
from ..golden.gating import Gating
from ..golden.hmma import GROUP, KEPT
from ..golden.schedule import KERNELS, TILE, direct_gemms, winograd_gemms
from .config import AcceleratorConfig
from .decompressor import Decompressor, kept_layout
from .hmma import HMMA
from .operand import Flagged, ZeroDetector
from .pipeline import check_choice, check_count, data_load, load_when
from .sequencer import BOUND_BITS, LAYER_BOUNDS, DirectSequencer, WinogradSequencer
from .winograd import WinogradInput, WinogradOutput

__all__ = ["Op", "COUNTERS", "COUNTER_BITS", "WEIGHT_FORMATS", "ALGORITHMS", "SPARSE_MODES", "BufferConfig",
           "command_layout", "response_layout", "Accelerator"]

ELEMENTS = TILE * TILE
COUNTER_BITS = 32
STREAM_WIDTH = 64           # bits of a compressed weight word (the decompressor's input width)

#: How the weight buffer holds the weights: plain tiles, or a compressed stream of one of these formats.
WEIGHT_FORMATS = ("dense",) + tuple(sparse.FORMATS)

#: Convolution algorithms: direct (im2col), Winograd F(2×2, 3×3) and F(4×4, 3×3).
ALGORITHMS = ("direct", "winograd2", "winograd4")

#: How 2:4 (``nm24``) weights use the array: ``gate`` expands them and gates the pruned zeros (a dense
#: instruction per 4 channels), ``skip`` feeds them compressed to the 2:4 sparse array (an instruction per 8
#: channels; direct convolution only).
SPARSE_MODES = ("gate", "skip")

#: Performance counters, in COUNTER address order. ``cycles`` counts the clocks of runs; a clock of a run
#: in which the array takes no instruction is counted in exactly one ``idle_*`` counter. ``act_writes`` and
#: ``weight_writes`` count loads on the clock they are taken, during a run or not (a host that overlaps
#: the next layer's loads with a run reads them in the running layer's counters and moves them).
COUNTERS = (
    "cycles", "instructions", "macs", "macs_gated",
    "act_reads", "act_writes", "weight_reads", "weight_writes", "psum_reads", "psum_writes", "stores",
    "v_reads", "v_writes", "out_writes",     # Winograd: transformed activations (tiles; elements), outputs
    "weight_file_reads", "weight_file_writes",  # Winograd, compressed: the file of decompressed weight tiles
    "transforms_in", "transforms_out",       # Winograd: tiles through the input and the output transform
    "idle_operands",      # no instruction in stage 1 yet: its buffer reads are in flight (first clock of a run)
    "idle_weights",       # the decompressor had not finished the weight tile an instruction needed
    "idle_activations",   # Winograd: the input transform had not finished the column block it needed
    "idle_dependency",    # a chain's previous D not back: the array's latency not hidden
    "idle_output_full",   # the array did not take the instruction (its output was not taken)
    "idle_drain",         # every instruction issued, the last D's still in the array
)


class Op(enum.Enum, shape=3):
    """Command opcodes. ``addr`` and ``data`` per op: LOAD_ACT: element address, ``data`` 16 FP16 for it and
    the 15 addresses after it (the activation buffer takes a whole command per clock);
    LOAD_WGT: word address, ``data`` the 4×4 A tile row-major (A[i][kk], i = output channel; dense) or
    ``data[0..3]`` one 64-bit stream word, least significant part first (compressed); CONFIG: ``data[0..3]``
    = C, K, H, W, ``data[4..5]`` = the stream's word count (compressed), ``data[6]`` = the filter size (3,
    or 1 for a 1×1 convolution, i.e. a GEMM: direct only), ``data[7..8]`` = the activation base (the
    address of the layer's element 0: ``base + c·H·W + y·W + x``), ``data[9..10]`` = the weight base (the
    address of its tile or stream word 0), each least significant part first, ``data[11]`` bit 0 =
    accumulate (chain step 0 takes C from the psum buffer instead of +0: the module docstring); RUN: none;
    STORE: psum tile address; COUNTER: index in :data:`COUNTERS`. The hardware does not check the bounds:
    the host gives a layer that :meth:`BufferConfig.layer_tiles` accepts (C, K ≥ 1, H, W ≥ 3, fitting the
    buffers), and loads taken during a run go where the running layer does not read
    (:func:`accel.sim.conv.conv_stream`)."""

    LOAD_ACT = 0
    LOAD_WGT = 1
    CONFIG = 2
    RUN = 3
    STORE = 4
    COUNTER = 5


def command_layout(addr_bits):
    """One command: ``op``, ``addr`` and ``data`` (16 × 16 bits; per op: :class:`Op`, CONFIG's accumulate bit
    in ``data[11]`` bit 0 included)."""
    return data.StructLayout({"op": Op, "addr": addr_bits, "data": data.ArrayLayout(16, ELEMENTS)})


def response_layout():
    """One response: a 4×4 FP32 tile row-major (D[i][j], i = output channel, j = pixel), or a counter in
    ``data[0]``, or zeros."""
    return data.StructLayout({"data": data.ArrayLayout(32, ELEMENTS)})


@dataclass(frozen=True)
class BufferConfig:
    """An :class:`AcceleratorConfig` plus the convolution algorithm (:data:`ALGORITHMS`), the weight format
    (:data:`WEIGHT_FORMATS`), the sparse mode (:data:`SPARSE_MODES`; ``skip`` needs ``nm24`` and ``direct``;
    the array's ``sparse`` follows it) and the on-chip buffer sizes: activations (FP16 elements), weights
    (in 4×4 FP16 tiles' worth of bits: compressed, four 64-bit words a tile), partial sums / outputs (4×4 FP32
    tiles; Winograd: split into one bank per Winograd-domain point), the Winograd buffers (transformed
    activations: words of 4×4 flagged FP16 per point bank; outputs: words of one m×m FP32 output tile),
    and the depth of the FIFO that carries each instruction's psum address beside the array (it must
    exceed the array's latency: checked by :class:`Accelerator`). Checked on construction."""

    array: AcceleratorConfig = field(default_factory=AcceleratorConfig)
    weight_format: str = "dense"
    algo: str = "direct"
    sparse_mode: str = "gate"
    act_words: int = 1 << 15
    weight_tiles: int = 1024
    psum_tiles: int = 4096
    v_words: int = 256
    out_words: int = 4096
    addr_fifo_depth: int = 16

    def __post_init__(self):
        if not isinstance(self.array, AcceleratorConfig):
            raise TypeError(f"array must be an AcceleratorConfig, not {self.array!r}")
        if self.array.shape != (TILE, TILE, TILE):
            raise ValueError(f"the conv sequencer drives a {TILE}x{TILE}x{TILE} array, not {self.array.shape}")
        if (self.array.fmt_in, self.array.fmt_acc) != (FP16, FP32):
            raise ValueError(f"the buffers hold FP16 operands and FP32 sums, not {self.array.fmt_in.name}, "
                             f"{self.array.fmt_acc.name}")
        check_choice("weight_format", self.weight_format, WEIGHT_FORMATS)
        check_choice("algo", self.algo, ALGORITHMS)
        check_choice("sparse_mode", self.sparse_mode, SPARSE_MODES)
        if self.skip and (self.weight_format, self.algo) != ("nm24", "direct"):
            raise ValueError(f"sparse_mode skip needs nm24 weights and direct convolution, not "
                             f"{self.weight_format} weights and {self.algo}")
        if self.array.sparse:
            raise ValueError("the array's sparse mode follows sparse_mode: give BufferConfig a dense array")
        for what in ("act_words", "weight_tiles", "psum_tiles", "v_words", "out_words", "addr_fifo_depth"):
            check_count(what, getattr(self, what))
            if getattr(self, what) > 1 << BOUND_BITS + 8:
                raise ValueError(f"{what} must be at most {1 << BOUND_BITS + 8}, not {getattr(self, what)}")
        if self.psum_tiles < self.points:
            raise ValueError(f"psum_tiles must be at least {self.points} (one bank per Winograd point), "
                             f"not {self.psum_tiles}")

    @property
    def gating(self):
        return self.array.gating

    def running(self, *, algo, weight_format, gating, sparse_mode="gate"):
        """These buffers in an accelerator built for ``algo``, ``weight_format`` weights, ``gating`` and
        ``sparse_mode``."""
        return replace(self, array=self.array.replace(gating=gating), weight_format=weight_format, algo=algo,
                       sparse_mode=sparse_mode)

    @property
    def skip(self):
        """Whether 2:4 weights are skipped: the array runs 2:4 sparse instructions."""
        return self.sparse_mode == "skip"

    @property
    def array_config(self):
        """The array the accelerator builds: :attr:`array`, sparse in skip mode."""
        return self.array.replace(sparse=self.skip)

    @property
    def compressed(self):
        return self.weight_format != "dense"

    @property
    def winograd_m(self):
        """m of F(m×m, 3×3), or None for direct convolution."""
        return {"direct": None, "winograd2": 2, "winograd4": 4}[self.algo]

    @property
    def points(self):
        """Winograd-domain points (m+2)², one GEMM and one psum bank each; 1 for direct convolution."""
        return 1 if self.winograd_m is None else (self.winograd_m + 2) ** 2

    @property
    def order(self):
        """The im2col inner order the direct sequencer walks (:data:`accel.golden.schedule.INNER_ORDERS`)."""
        return "tap_pairs" if self.skip else "tap_blocks" if self.compressed else "channel_major"

    @property
    def weight_words(self):
        """Depth of the weight buffer: tiles (dense) or stream words (compressed)."""
        return self.weight_tiles * (ELEMENTS * FP16.width // STREAM_WIDTH if self.compressed else 1)

    @property
    def weight_word_bits(self):
        return STREAM_WIDTH if self.compressed else ELEMENTS * FP16.width

    @property
    def psum_bank_tiles(self):
        return self.psum_tiles // self.points

    @property
    def out_word_bits(self):
        """Bits of an output-buffer word: one m×m FP32 output tile (Winograd)."""
        return 0 if self.winograd_m is None else self.winograd_m ** 2 * self.array.fmt_acc.width

    @property
    def bits(self):
        """Address widths (activation, weight, psum bank, transformed activations, outputs)."""
        return tuple(max(1, ceil_log2(n)) for n in (self.act_words, self.weight_words, self.psum_bank_tiles,
                                                    self.v_words, self.out_words))

    @property
    def addr_bits(self):
        return max(self.bits)

    @property
    def sram_bits(self):
        """On-chip buffer bits by buffer (the Winograd ones only where the algorithm has them)."""
        fmt_in, fmt_acc = self.array.fmt_in.width, self.array.fmt_acc.width
        bits = {"act": self.act_words * fmt_in, "weight": self.weight_tiles * ELEMENTS * fmt_in,
                "psum": self.points * self.psum_bank_tiles * ELEMENTS * fmt_acc}
        if self.winograd_m is not None:
            bits.update(v=self.points * self.v_words * ELEMENTS * (fmt_in + 1), out=self.out_words * self.out_word_bits)
        if self.weight_file_tiles:
            bits.update(weight_file=self.weight_file_tiles * ELEMENTS * (fmt_in + 1))
        return bits

    @property
    def weight_file_tiles(self):
        """Tiles of the decompressed-weight file (Winograd with compressed weights: two groups of P tiles,
        the one in use and the next; else none)."""
        return 2 * self.points if self.winograd_m is not None and self.compressed else 0

    def buffer_bits_by_buffer(self, counters):
        """Bits read and written in each on-chip buffer (the keys of :attr:`sram_bits`), from a run's access
        counters (Winograd: STORE reads the output buffer, else the psum buffer)."""
        fmt_in, fmt_acc = self.array.fmt_in.width, self.array.fmt_acc.width
        flagged_tile = ELEMENTS * (fmt_in + 1)
        bits = {"act": (counters["act_reads"] + counters["act_writes"]) * fmt_in,
                "weight": (counters["weight_reads"] + counters["weight_writes"]) * self.weight_word_bits,
                "psum": (counters["psum_reads"] + counters["psum_writes"]) * ELEMENTS * fmt_acc}
        if self.winograd_m is not None:
            bits.update(v=counters["v_reads"] * flagged_tile + counters["v_writes"] * (fmt_in + 1),
                        out=(counters["out_writes"] + counters["stores"]) * self.out_word_bits)
        if self.weight_file_tiles:
            bits.update(weight_file=(counters["weight_file_reads"] + counters["weight_file_writes"]) * flagged_tile)
        return bits

    def buffer_bits(self, counters):
        """Bits read and written in the on-chip buffers, from a run's access counters."""
        return sum(self.buffer_bits_by_buffer(counters).values())

    def layer_tiles(self, channels, filters, height, width, kernel=3):
        """(row_blocks, chain steps, col_blocks) of a conv layer with ``kernel``×``kernel`` filters (3, or 1:
        direct only): of the im2col GEMM in this configuration's inner order (direct), or of each
        Winograd-domain GEMM (inner blocks: ⌈C/4⌉, column blocks: ⌈tiles/4⌉).
        ValueError naming what does not fit in the buffers (the host cuts a larger layer into passes that fit:
        :func:`accel.sim.conv.plan_passes`; a compressed stream's length depends on the weights:
        :meth:`check_weight_words`)."""
        for what, value in (("channels", channels), ("filters", filters), ("height", height), ("width", width)):
            check_count(what, value)
            if value >= 1 << BOUND_BITS:
                raise ValueError(f"{what} must be below {1 << BOUND_BITS}, not {value}")
        m = self.winograd_m
        if kernel not in KERNELS or (m is not None and kernel != 3):
            raise ValueError(f"{self.algo} convolution takes {'3x3' if m else '3x3 or 1x1'} filters, "
                             f"not {kernel}x{kernel}")
        if height < kernel or width < kernel:
            raise ValueError(f"a {kernel}x{kernel} valid convolution needs H, W >= {kernel}, not {height}x{width}")
        out_h, out_w = height - kernel + 1, width - kernel + 1
        shape = direct_gemms(channels, filters, out_h, out_w, self.order, kernel) if m is None \
            else winograd_gemms(channels, filters, out_h, out_w, m)
        rows, inner, cols = shape.blocks(shape.rows), shape.steps, shape.blocks(shape.cols)
        self._check_fits("activation buffer", -(-channels * height * width // ELEMENTS) * ELEMENTS, self.act_words)
        self._check_fits("psum buffer" + (" bank" if m else ""), rows * cols, self.psum_bank_tiles, "tiles")
        if m is not None:
            self._check_fits("transformed-activation buffer bank", inner * cols, self.v_words)
            self._check_fits("output buffer", rows * cols * ELEMENTS, self.out_words)
        if not self.compressed:
            self._check_fits("weight buffer", rows * inner * self.points, self.weight_words, "tiles")
        return rows, inner, cols

    def check_weight_words(self, words):
        """ValueError unless a weight stream of ``words`` words fits the weight buffer."""
        self._check_fits("weight buffer", words, self.weight_words)

    @staticmethod
    def _check_fits(what, need, have, unit="words"):
        if need > have:
            raise ValueError(f"the layer needs {need} {unit} of the {what}, which holds {have}")


class Accelerator(wiring.Component):
    """Direct 3×3 convolution from on-chip buffers to on-chip buffers (see the module docstring).

    ``i``: commands (:func:`command_layout`), ``o``: responses (:func:`response_layout`), one per command.
    """

    def __init__(self, buffers=BufferConfig()):
        if not isinstance(buffers, BufferConfig):
            raise TypeError(f"buffers must be a BufferConfig, not {buffers!r}")
        self._buffers = buffers
        self._array = HMMA.from_config(buffers.array_config)
        if buffers.addr_fifo_depth <= self._array.latency:    # D addresses in flight must all fit
            raise ValueError(f"addr_fifo_depth must exceed the array latency {self._array.latency}, "
                             f"not {buffers.addr_fifo_depth}")
        super().__init__({"i": In(stream.Signature(command_layout(buffers.addr_bits))),
                          "o": Out(stream.Signature(response_layout()))})

    @property
    def buffers(self):
        return self._buffers

    @property
    def build_parameters(self):
        """What the design is built from besides the code, as text (the Verilator backend's build index)."""
        return repr(self._buffers)

    @property
    def gating(self):
        return self._buffers.gating

    @property
    def array(self):
        """The HMMA array (a submodule; its streams are what the senders drive and D comes back on)."""
        return self._array

    @property
    def latency(self):
        """Clocks from an instruction's gather request leaving the sequencer to its D being written: one
        for the buffer reads, then the array's latency."""
        return 1 + self._array.latency

    @property
    def macs_per_cycle(self):
        return self._array.macs_per_cycle

    def elaborate(self, platform):
        m = Module()
        buffers, gating, winograd = self._buffers, self._buffers.gating, self._buffers.winograd_m is not None
        act_bits, weight_bits, psum_bits, v_bits, out_bits = buffers.bits
        points = buffers.points
        m.submodules.array = array = self._array
        if winograd:
            m.submodules.sequencer = seq = WinogradSequencer(m=buffers.winograd_m, v_bits=v_bits,
                                                             weight_bits=weight_bits, psum_bits=psum_bits)
        else:
            m.submodules.sequencer = seq = DirectSequencer(act_bits=act_bits, weight_bits=weight_bits,
                                                           psum_bits=psum_bits, order=buffers.order)
        m.submodules.act_buf = act_buf = Memory(shape=16, depth=buffers.act_words, init=[])
        m.submodules.weight_buf = weight_buf = Memory(shape=buffers.weight_word_bits, depth=buffers.weight_words,
                                                      init=[])
        psum_banks = [Memory(shape=32 * ELEMENTS, depth=buffers.psum_bank_tiles, init=[]) for _ in range(points)]
        for p, bank in enumerate(psum_banks):
            m.submodules[f"psum_buf{p if winograd else ''}"] = bank
        m.submodules.addr_fifo = addr_fifo = fifo.SyncFIFO(width=psum_bits + ceil_log2(points),
                                                           depth=buffers.addr_fifo_depth)
        act_w, weight_w = [act_buf.write_port() for _ in range(ELEMENTS)], weight_buf.write_port()
        psum_w = [bank.write_port() for bank in psum_banks]
        psum_c = [bank.read_port(transparent_for=(port,)) for bank, port in zip(psum_banks, psum_w)]

        # ---- commands and responses
        cmd = self.i.payload
        running, resp_valid = Signal(), Signal()
        run_owed = Signal()                 # the run is done, its response waits for the response register
        resp_kind = Signal(range(3))        # 0: empty, 1: output tile, 2: counter
        counter_value = Signal(COUNTER_BITS)
        bounds = Signal(LAYER_BOUNDS)
        stream_words = Signal(2 * BOUND_BITS)     # words of the compressed weight stream
        act_base, weight_base = Signal(act_bits), Signal(weight_bits)   # where the layer's operands start
        accumulate = Signal()               # chain step 0 adds to the psum buffer's partial sums (CONFIG data[11])
        done = Signal()
        advance = ~resp_valid | self.o.ready
        is_load = (cmd.op == Op.LOAD_ACT) | (cmd.op == Op.LOAD_WGT)
        # during a run only loads are taken (double buffering: the host loads the next layer elsewhere)
        m.d.comb += self.i.ready.eq(advance & ~run_owed & (~running | is_load))
        accept = self.i.valid & self.i.ready
        is_op = lambda op: accept & (cmd.op == op)  # noqa: E731
        counters = {name: Signal(COUNTER_BITS, name=f"count_{name}") for name in COUNTERS}
        m.d.comb += [
            *[port.addr.eq(cmd.addr + e) for e, port in enumerate(act_w)],
            *[port.data.eq(cmd.data[e]) for e, port in enumerate(act_w)],
            *[port.en.eq(is_op(Op.LOAD_ACT)) for port in act_w],
            weight_w.addr.eq(cmd.addr), weight_w.data.eq(cmd.data.as_value()[:buffers.weight_word_bits]),
            weight_w.en.eq(is_op(Op.LOAD_WGT)),
            seq.start.eq(is_op(Op.RUN)), seq.bounds.eq(bounds),
        ]
        if not winograd:
            m.d.comb += seq.act_base.eq(act_base)
        if winograd:        # STORE reads an m×m output tile of the output buffer
            m.submodules.out_buf = out_buf = Memory(shape=buffers.out_word_bits, depth=buffers.out_words, init=[])
            store = out_buf.read_port()
        else:               # STORE reads a 4×4 tile of the partial-sum buffer
            store = psum_banks[0].read_port()
        m.d.comb += [store.addr.eq(cmd.addr), store.en.eq(is_op(Op.STORE))]
        # the response register: a command's response the clock after it is taken (a load taken during a run
        # answers at once); the run's when it is done, or, if a load took the register on that clock or the
        # host holds the register, as soon as it is free (run_owed; nothing is taken meanwhile)
        with m.If(accept):
            m.d.sync += [resp_valid.eq(cmd.op != Op.RUN),
                         resp_kind.eq(Mux(cmd.op == Op.STORE, 1, Mux(cmd.op == Op.COUNTER, 2, 0))),
                         counter_value.eq(Array(counters.values())[cmd.addr])]
            with m.If(cmd.op == Op.RUN):
                m.d.sync += running.eq(1)
            with m.If(cmd.op == Op.CONFIG):
                m.d.sync += [bounds.eq(Cat(cmd.data[0], cmd.data[1], cmd.data[2], cmd.data[3], cmd.data[6][:2])),
                             stream_words.eq(Cat(cmd.data[4], cmd.data[5])),
                             act_base.eq(Cat(cmd.data[7], cmd.data[8])), weight_base.eq(Cat(cmd.data[9], cmd.data[10])),
                             accumulate.eq(cmd.data[11][0])]
        with m.Elif((done | run_owed) & advance):
            m.d.sync += [resp_valid.eq(1), resp_kind.eq(0)]
        with m.Elif(advance):
            m.d.sync += resp_valid.eq(0)
        with m.If(done):
            m.d.sync += running.eq(0)
        m.d.sync += run_owed.eq(Mux(run_owed, ~advance, done & (accept | ~advance)))
        m.d.comb += [self.o.valid.eq(resp_valid),
                     self.o.payload.data.as_value().eq(Mux(resp_kind == 1, store.data,
                                                           Mux(resp_kind == 2, counter_value, 0)))]

        # ---- issue pipeline: stage 0 = the sequencer's request (reads issued), stage 1 = read data
        request = seq.o.payload
        s1_valid, s1_fresh = Signal(), Signal()
        fresh = request.first & ~accumulate        # the chain starts at C = +0, not at the psum buffer's sum
        live = request.live if winograd else request.act_live
        s1_live, s1_psum_addr, s1_point = Signal(len(live)), Signal(psum_bits), Signal(range(points))
        issued, written = Signal(COUNTER_BITS), Signal(COUNTER_BITS)   # instructions into stage 1; D's written
        dep_blocked, weights_blocked, acts_blocked = Signal(), Signal(), Signal()
        issue = array.i.valid & array.i.ready
        d_back = array.o.valid
        s1_free = ~s1_valid | array.i.ready
        dep_ok = request.first | (written + d_back + seq.chain_gap > issued)
        transfer = Signal()
        file_counts = {}
        if not buffers.compressed:
            a_flags, weight_reads = self._dense_weights(m, weight_buf, request.w_addr + weight_base, transfer,
                                                        array.i.payload.a, issue)
            weights_ok = C(1)
        else:
            dec, weight_reads = self._decompressor(m, weight_buf, stream_words, weight_base, seq.start)
            if winograd:
                a_flags, weights_ok, file_counts = self._weight_file(m, dec, request, transfer, seq.start,
                                                                     array.i.payload.a, issue)
            else:
                take = transfer & request.new_tile
                if buffers.skip:
                    a_flags, tile_ready = self._kept_weights(m, dec, take, array.i.payload)
                else:
                    a_flags, tile_ready = self._held_tile(m, dec, take, array.i.payload.a)
                weights_ok = ~request.new_tile | tile_ready
        point = request.point if winograd else 0
        if winograd:
            v_banks, words_ready, in_done, in_counts = self._input_pass(m, seq, act_buf, act_base, v_bits)
            acts_ok = request.v_addr < words_ready
        else:
            acts_ok = C(1)
        ok = s1_free & dep_ok & weights_ok & acts_ok
        m.d.comb += [transfer.eq(seq.o.valid & ok), seq.o.ready.eq(ok)]
        for p, port in enumerate(psum_c):
            m.d.comb += [port.addr.eq(request.psum_addr), port.en.eq(transfer & ~fresh & (point == p))]
        with m.If(transfer):
            m.d.sync += [s1_valid.eq(1), s1_fresh.eq(fresh), s1_live.eq(live),
                         s1_psum_addr.eq(request.psum_addr), s1_point.eq(point), issued.eq(issued + 1)]
        with m.Elif(issue):
            m.d.sync += s1_valid.eq(0)
        m.d.sync += [weights_blocked.eq(seq.o.valid & s1_free & ~weights_ok),
                     acts_blocked.eq(seq.o.valid & s1_free & weights_ok & ~acts_ok),
                     dep_blocked.eq(seq.o.valid & s1_free & weights_ok & acts_ok & ~dep_ok)]
        with m.If(d_back):
            m.d.sync += written.eq(written + 1)
        with m.If(seq.start):
            m.d.sync += [issued.eq(0), written.eq(0)]

        # ---- activation sender: zero flags, and under hold the frozen lines
        if winograd:        # a tile of transformed activations, flagged by the input transform
            b_flags = self._transformed_acts(m, v_banks, request, transfer, s1_live, s1_point, array.i.payload.b,
                                             issue)
            act_reads = 0
        else:               # 16 im2col reads
            act_r = [act_buf.read_port() for _ in range(len(request.act_addr))]
            for e, port in enumerate(act_r):
                m.d.comb += [port.addr.eq(request.act_addr[e]), port.en.eq(transfer & request.act_live[e])]
            acts = [Mux(s1_live[e], port.data, 0) for e, port in enumerate(act_r)]              # B[kk][j]
            b_flags = self._send(m, "b", acts, array.i.payload.b, issue)
            act_reads = Mux(transfer, sum(request.act_live[e] for e in range(len(act_r))), 0)
        m.d.comb += [array.i.valid.eq(s1_valid),
                     array.i.payload.c.as_value().eq(Mux(s1_fresh, 0,
                                                         Array(port.data for port in psum_c)[s1_point]))]

        # ---- results back to the partial-sum buffer (bank and address travel in a FIFO beside the array)
        m.d.comb += [addr_fifo.w_data.eq(Cat(s1_psum_addr, s1_point)), addr_fifo.w_en.eq(issue),
                     addr_fifo.r_en.eq(d_back), array.o.ready.eq(1)]
        for p, port in enumerate(psum_w):
            m.d.comb += [port.addr.eq(addr_fifo.r_data[:psum_bits]), port.data.eq(array.o.payload.d.as_value()),
                         port.en.eq(d_back & (addr_fifo.r_data[psum_bits:] == p))]
        gemms_done = ~seq.busy & ~s1_valid & (written == issued)
        if winograd:
            out_done, out_counts = self._output_pass(m, seq, psum_banks, out_buf, written, seq.start)
            m.d.comb += done.eq(running & gemms_done & in_done & out_done)
        else:
            m.d.comb += done.eq(running & gemms_done)

        # ---- performance counters: ``macs`` counts dense-equivalent multiply-adds (64 an instruction, 128
        # in skip mode: the pruned ones too), ``macs_gated`` those the array did not do (gated under hold;
        # in skip mode the 64 pruned ones as well), so macs − macs_gated is the multiplies done
        config = self._array.config
        if buffers.skip:    # kept product (i, t, j) meets B[4·(t // 2) + index][j]
            index = array.i.payload.a_index
            live_products = sum(~a_flags[i * TILE + t]
                                & ~Array(b_flags[(GROUP * (t // KEPT) + c) * TILE + j] for c in range(GROUP))[
                                    index[i * TILE + t]]
                                for i in range(TILE) for t in range(TILE) for j in range(TILE))
        else:
            live_products = sum((TILE - sum(a_flags[i * TILE + kk] for i in range(TILE)))
                                * (TILE - sum(b_flags[kk * TILE + j] for j in range(TILE))) for kk in range(TILE))
        done_products = live_products if gating is Gating.HOLD else config.macs_per_instruction
        idle = running & ~issue
        waiting = idle & ~s1_valid & seq.busy
        increments = {
            "cycles": running, "instructions": issue, "macs": Mux(issue, config.dense_macs_per_instruction, 0),
            "macs_gated": Mux(issue, config.dense_macs_per_instruction - done_products, 0),
            "act_reads": act_reads, "act_writes": Mux(is_op(Op.LOAD_ACT), ELEMENTS, 0),
            "weight_reads": weight_reads,
            "weight_writes": is_op(Op.LOAD_WGT),
            "psum_reads": sum(port.en for port in psum_c) + (0 if winograd else is_op(Op.STORE)),
            "psum_writes": d_back, "stores": is_op(Op.STORE),
            "idle_operands": waiting & ~dep_blocked & ~weights_blocked & ~acts_blocked,
            "idle_weights": waiting & weights_blocked,
            "idle_activations": waiting & acts_blocked,
            "idle_dependency": waiting & dep_blocked,
            "idle_output_full": idle & s1_valid,
            "idle_drain": idle & ~s1_valid & ~seq.busy,
        }
        if winograd:
            increments.update(**in_counts, **file_counts, v_reads=transfer, out_writes=out_counts["out_writes"],
                              transforms_out=out_counts["transforms_out"],
                              psum_reads=increments["psum_reads"] + out_counts["psum_reads"])
        for name, counter in counters.items():
            m.d.sync += counter.eq(counter + increments.get(name, 0))
        return m

    def _dense_weights(self, m, weight_buf, w_addr, transfer, lines, issue):
        """Dense weights: the request's A tile is read with the activations and sent by the A sender.
        Returns (zero flags, buffer reads this clock)."""
        port = weight_buf.read_port()
        m.d.comb += [port.addr.eq(w_addr), port.en.eq(transfer)]
        weights = [port.data[16 * e:16 * (e + 1)] for e in range(ELEMENTS)]                 # A[i][kk]
        return self._send(m, "a", weights, lines, issue), transfer

    def _decompressor(self, m, weight_buf, stream_words, base, start):
        """Compressed weights: the stream's words (``stream_words`` of them from address ``base``) are read in
        order into the decompressor from ``start``.
        Its tiles are B-layout (element ``4kk + j``: row kk an input channel, column j an output channel,
        i.e. A[j][kk]: :func:`_transposed`). Returns (the decompressor, buffer reads this clock)."""
        m.submodules.decompressor = dec = Decompressor(format=self._buffers.weight_format, width=STREAM_WIDTH,
                                                       gating=self.gating, kept=self._buffers.skip)
        port = weight_buf.read_port()
        read_addr, last_addr = Signal(len(port.addr)), Signal(len(port.addr))
        reading, read_valid, read_last = Signal(), Signal(), Signal()
        m.d.comb += last_addr.eq(base + stream_words - 1)
        feed = ~read_valid | dec.i.ready
        read = feed & reading
        m.d.comb += [port.addr.eq(read_addr), port.en.eq(read),
                     dec.i.valid.eq(read_valid), dec.i.payload.data.eq(port.data), dec.i.payload.last.eq(read_last)]
        with m.If(start):
            m.d.sync += [read_addr.eq(base), reading.eq(1), read_valid.eq(0)]
        with m.Elif(feed):
            m.d.sync += [read_valid.eq(reading), read_last.eq(read_addr == last_addr)]
            with m.If(reading):
                m.d.sync += read_addr.eq(read_addr + 1)
                with m.If(read_addr == last_addr):
                    m.d.sync += reading.eq(0)
        return dec, read

    @staticmethod
    def _transposed(tile):
        """A[i][kk] row-major, from a decompressor tile (B-layout)."""
        return [tile[kk * TILE + i] for i in range(TILE) for kk in range(TILE)]

    def _held_tile(self, m, dec, take, lines):
        """Direct, compressed weights: ``take`` moves the decompressor's next tile into the A register, held
        for the column blocks that reuse it; the decompressor is the A sender (its output lines follow the
        gating style). Returns (zero flags, a tile ready)."""
        tile = Signal(data.ArrayLayout(Flagged(FP16), ELEMENTS))
        m.d.comb += dec.o.ready.eq(take)
        with m.If(take):
            m.d.sync += [held.eq(element) for held, element in zip(tile, self._transposed(dec.o.payload))]
        m.d.comb += [lines[e].eq(tile[e]) for e in range(ELEMENTS)]
        return [tile[e].is_zero for e in range(ELEMENTS)], dec.o.valid

    def _weight_file(self, m, dec, request, transfer, start, lines, issue):
        """Winograd, compressed weights: the walk takes the P tiles of a (row block, step) group in turn for
        every column block, so the decompressor writes its tiles, in stream order, into a file of two groups
        (slot ``half·P + point``: the group in use and the next); tile i is written once it is below the
        group in use's first tile + 2P, so no tile is overwritten before its group is done. An instruction
        reads its slot in stage 0 and the A sender sends it in stage 1 (the file holds values and flags).
        Returns (zero flags, the request's tile written, counter increments)."""
        points = self._buffers.points
        m.submodules.weight_file = tiles = Memory(shape=data.ArrayLayout(Flagged(FP16), ELEMENTS),
                                                  depth=self._buffers.weight_file_tiles, init=[])
        write, read = tiles.write_port(), tiles.read_port()
        written, slot, half = Signal(COUNTER_BITS), Signal(range(points)), Signal()
        put = dec.o.valid & (written < request.w_addr - request.point + 2 * points)
        m.d.comb += [dec.o.ready.eq(put), write.en.eq(put), write.addr.eq(Mux(half, points, 0) + slot),
                     *[lane.eq(element) for lane, element in zip(write.data, self._transposed(dec.o.payload))],
                     read.addr.eq(Mux(request.w_half, points, 0) + request.point), read.en.eq(transfer)]
        with m.If(start):
            m.d.sync += [written.eq(0), slot.eq(0), half.eq(0)]
        with m.Elif(put):
            m.d.sync += [written.eq(written + 1), slot.eq(Mux(slot == points - 1, 0, slot + 1)),
                         half.eq(half ^ (slot == points - 1))]
        flags = [read.data[e].is_zero for e in range(ELEMENTS)]
        a_flags = self._send(m, "a", [read.data[e].value for e in range(ELEMENTS)], lines, issue, zero_flags=flags)
        return a_flags, request.w_addr < written, {"weight_file_reads": transfer, "weight_file_writes": put}

    def _kept_weights(self, m, dec, take, payload):
        """Skip mode: an instruction's weights are two kept nm24 tiles from the decompressor (channels
        8cb..8cb+3, then 8cb+4..8cb+7, at one tap; :func:`accel.sim.conv.weight_stream`'s ``pairs``). The
        first waits in a staging register; ``take`` moves both into the A register: kept value t = 2h + r of
        row i (output channel) is tile h's column i, value r, with its index. Under ``hold`` a flagged value
        and its index are not loaded (frozen lines). Returns (the A zero flags [i][t], both tiles ready)."""
        first, first_valid = Signal(kept_layout()), Signal()
        m.d.comb += dec.o.ready.eq(~first_valid | take)
        with m.If(take):
            m.d.sync += first_valid.eq(0)
        with m.Elif(dec.o.valid & ~first_valid):
            m.d.sync += [first.eq(dec.o.payload), first_valid.eq(1)]
        flags = []
        for i in range(TILE):
            for t in range(TILE):
                half, r = divmod(t, KEPT)
                tile = (first, dec.o.payload)[half]
                kept, index = tile.values[KEPT * i + r], tile.index[KEPT * i + r]
                e = i * TILE + t
                line, line_index = Signal(Flagged(FP16), name=f"a_kept_{e}"), Signal(2, name=f"a_index_{e}")
                load = data_load(take, kept.is_zero, self.gating)
                load_when(m, line.is_zero, kept.is_zero, take)
                load_when(m, line.value, kept.value, load)
                load_when(m, line_index, index, load)
                m.d.comb += [payload.a[e].eq(line), payload.a_index[e].eq(line_index)]
                flags.append(line.is_zero)
        return flags, first_valid & dec.o.valid

    def _send(self, m, name, values, lines, issue, zero_flags=None):
        """Drive the array's operand ``lines`` (Flagged elements) from ``values`` through the sender of
        the gating style; returns the zero flags (``zero_flags``: raised upstream, else a
        :class:`ZeroDetector` per element)."""
        gating = self.gating
        flags = []
        for e, value in enumerate(values):
            flag = Signal(name=f"{name}_is_zero_{e}")
            if gating.flags_zeros and zero_flags is not None:
                m.d.comb += flag.eq(zero_flags[e])
            elif gating.flags_zeros:
                m.submodules[f"{name}_zdet_{e}"] = zdet = ZeroDetector()
                m.d.comb += [zdet.x.eq(value), flag.eq(zdet.z)]
            sent = value
            if gating is Gating.HOLD:
                held = Signal(16, name=f"{name}_held_{e}")
                with m.If(issue & ~flag):
                    m.d.sync += held.eq(value)
                sent = Mux(flag, held, value)
            m.d.comb += [lines[e].value.eq(sent), lines[e].is_zero.eq(flag)]
            flags.append(flag)
        return flags

    def _transformed_acts(self, m, banks, request, transfer, s1_live, s1_point, lines, issue):
        """Winograd: the B tile is one word of the transformed-activation bank of the instruction's point
        (read in stage 0, selected in stage 1); values and zero flags come from the input transform (GEMM
        padding is a flagged +0). Returns the zero flags."""
        ports = [bank.read_port() for bank in banks]
        for p, port in enumerate(ports):
            m.d.comb += [port.addr.eq(request.v_addr), port.en.eq(transfer & (request.point == p))]
        word = data.View(banks[0].shape, Array(port.data.as_value() for port in ports)[s1_point])
        values = [Mux(s1_live[e], word[e].value, 0) for e in range(ELEMENTS)]
        flags = [~s1_live[e] | word[e].is_zero for e in range(ELEMENTS)]
        return self._send(m, "b", values, lines, issue, zero_flags=flags)

    def _input_pass(self, m, seq, act_buf, act_base, v_bits):
        """Winograd input transform V = Bᵀ·d·B of every (channel c, tile t), one per clock, in the order the
        GEMMs need them: channel block, tile, channel within the block (so the 16 transforms of one V word,
        a column block of a channel block, are consecutive). The n×n patch (n = m + 2; +0 past the layer's
        edge) is read from the activation buffer, transformed by a :class:`~accel.hw.winograd.WinogradInput`,
        and point p of the result written to bank p of the transformed-activation buffer, word
        ``(c // 4)·CB + t // 4``, element ``4·(c % 4) + t % 4`` (B's layout: rows input channels, columns
        tiles); the layer's activations start at ``act_base``. Starts with the run and runs ahead of the GEMMs, which wait for their word (``words_ready``:
        the words completely written, in address order). Returns (the banks, words_ready, done, counter
        increments)."""
        buffers = self._buffers
        mt, points, b = buffers.winograd_m, buffers.points, seq.bounds
        n = mt + 2
        m.submodules.winograd_in = unit = WinogradInput(m=mt)
        banks = [Memory(shape=data.ArrayLayout(Flagged(FP16), ELEMENTS), depth=buffers.v_words,
                                        init=[]) for _ in range(points)]
        for p, bank in enumerate(banks):
            m.submodules[f"v_buf{p}"] = bank
        reads = [act_buf.read_port() for _ in range(points)]
        writes = [bank.write_port(granularity=1) for bank in banks]
        act_bits = len(reads[0].addr)
        # walker: channel c (c % 4 the innermost count), tile t = (ty, tx); base = offset of the patch's
        # top-left element, tile_start = base at c % 4 = 0, row_start = tile_start at tx = 0, block_start =
        # row_start at ty = 0
        chan, ty, tx, tile = Signal(BOUND_BITS), Signal(BOUND_BITS), Signal(BOUND_BITS), Signal(2 * BOUND_BITS)
        y0, x0 = Signal(BOUND_BITS + 3), Signal(BOUND_BITS + 3)
        base, tile_start, row_start, block_start = (Signal(act_bits, name=name) for name in
                                                    ("base", "tile_start", "row_start", "block_start"))
        word_base = Signal(v_bits)
        active, rd_valid = Signal(), Signal()
        rd_live, rd_word, rd_lane, rd_word_done = Signal(points), Signal(v_bits), Signal(4), Signal()
        fire = active & (~rd_valid | unit.i.ready)
        tx_end, ty_end = tx == seq.tiles_w - 1, ty == seq.tiles_h - 1
        group_end = (chan[:2] == 3) | (chan == b.channels - 1)
        plane = b.height * b.width
        with m.If(seq.start):
            m.d.sync += [chan.eq(0), ty.eq(0), tx.eq(0), tile.eq(0), y0.eq(0), x0.eq(0), base.eq(act_base),
                         tile_start.eq(act_base), row_start.eq(act_base), block_start.eq(act_base), word_base.eq(0),
                         active.eq(1)]
        with m.Elif(fire & ~group_end):
            m.d.sync += [chan.eq(chan + 1), base.eq(base + plane)]
        with m.Elif(fire):
            m.d.sync += chan.eq(Cat(C(0, 2), chan[2:]))
            with m.If(tx_end & ty_end):         # the next channel block
                next_block = block_start + TILE * plane
                m.d.sync += [chan.eq(chan + 1), tx.eq(0), x0.eq(0), ty.eq(0), y0.eq(0), tile.eq(0),
                             base.eq(next_block), tile_start.eq(next_block), row_start.eq(next_block),
                             block_start.eq(next_block), word_base.eq(word_base + seq.col_blocks)]
                with m.If(chan == b.channels - 1):
                    m.d.sync += active.eq(0)
            with m.Elif(tx_end):
                next_row = row_start + mt * b.width
                m.d.sync += [tx.eq(0), x0.eq(0), ty.eq(ty + 1), y0.eq(y0 + mt), tile.eq(tile + 1),
                             base.eq(next_row), tile_start.eq(next_row), row_start.eq(next_row)]
            with m.Else():
                m.d.sync += [tx.eq(tx + 1), x0.eq(x0 + mt), tile.eq(tile + 1),
                             base.eq(tile_start + mt), tile_start.eq(tile_start + mt)]
        live = Cat(((y0 + dy < b.height) & (x0 + dx < b.width)) for dy in range(n) for dx in range(n))
        for e, port in enumerate(reads):
            dy, dx = divmod(e, n)
            m.d.comb += [port.addr.eq(base + dy * b.width + dx), port.en.eq(fire & live[e])]
        with m.If(fire):
            m.d.sync += [rd_valid.eq(1), rd_live.eq(live), rd_word.eq(word_base + (tile >> 2)),
                         rd_lane.eq(Cat(tile[:2], chan[:2])),
                         rd_word_done.eq(group_end & ((tile[:2] == 3) | (tx_end & ty_end)))]
        with m.Elif(unit.i.ready):
            m.d.sync += rd_valid.eq(0)
        m.d.comb += unit.i.valid.eq(rd_valid)
        m.d.comb += [unit.i.payload.d[e].eq(Mux(rd_live[e], port.data, 0)) for e, port in enumerate(reads)]
        # where each tile's result goes travels beside the unit; results are never held up
        m.submodules.v_addr_fifo = where = fifo.SyncFIFO(width=v_bits + 5, depth=unit.latency + 2)
        words_ready = Signal(v_bits + 1)
        written_in, taken_in = Signal(COUNTER_BITS), Signal(COUNTER_BITS)
        m.d.comb += [where.w_data.eq(Cat(rd_word, rd_lane, rd_word_done)),
                     where.w_en.eq(unit.i.valid & unit.i.ready), where.r_en.eq(unit.o.valid), unit.o.ready.eq(1)]
        word, lane, word_done = where.r_data[:v_bits], where.r_data[v_bits:v_bits + 4], where.r_data[v_bits + 4]
        for p, port in enumerate(writes):
            m.d.comb += [port.addr.eq(word), port.data.eq(Cat(*[unit.o.payload.v[p].as_value()] * ELEMENTS)),
                         port.en.eq(Mux(unit.o.valid, 1 << lane, 0))]
        with m.If(seq.start):
            m.d.sync += [words_ready.eq(0), written_in.eq(0), taken_in.eq(0)]
        with m.Else():
            m.d.sync += [words_ready.eq(words_ready + (unit.o.valid & word_done)),
                         written_in.eq(written_in + unit.o.valid),
                         taken_in.eq(taken_in + (unit.i.valid & unit.i.ready))]
        done = ~active & ~rd_valid & (written_in == taken_in)
        counts = {"act_reads": Mux(fire, sum(live[e] for e in range(points)), 0),
                  "v_writes": Mux(unit.o.valid, points, 0), "transforms_in": unit.o.valid}
        return banks, words_ready, done, counts

    def _output_pass(self, m, seq, psum_banks, out_buf, written, start):
        """Winograd output transform Y = Aᵀ·M·A of every (output channel k, tile t), column block by column
        block as soon as a column block's last step is written (beside the GEMMs of the next one): one read
        of the n² psum banks at (r·CB + cb) gives the Winograd-domain values of 16 (k, t) pairs, fed one
        per clock (element e = 4i + j: k = 4r + i, t = 4cb + j) to a :class:`~accel.hw.winograd.WinogradOutput`;
        its m×m tiles go to the output buffer in that order (word ``16·(r·CB + cb) + e``). The next read
        is issued with the last feed of the current one. Returns (done, counter increments)."""
        buffers = self._buffers
        points = buffers.points
        m.submodules.winograd_out = unit = WinogradOutput(m=buffers.winograd_m)
        reads = [bank.read_port() for bank in psum_banks]
        write = out_buf.write_port()
        # the last step of (r, cb) ends with instruction (r·S + S − 1)·CB·P + (cb + 1)·P − 1 (WINOGRAD_LOOPS)
        to_last_step = Signal(2 * COUNTER_BITS)          # instructions of all but the last step: (S − 1)·CB·P
        m.d.comb += to_last_step.eq((seq.steps - 1) * seq.col_blocks * points)
        row, col, addr = Signal(BOUND_BITS), Signal(2 * BOUND_BITS), Signal(len(reads[0].addr))
        mark = Signal(2 * COUNTER_BITS)                  # D's written when the current column block is complete
        reading, have, element = Signal(), Signal(), Signal(4)
        fed, out_written, out_addr = Signal(COUNTER_BITS), Signal(COUNTER_BITS), Signal(len(write.addr))
        last_feed = have & unit.i.ready & (element == ELEMENTS - 1)
        read = reading & (written >= mark) & (~have | last_feed)
        with m.If(start):
            m.d.sync += [row.eq(0), col.eq(0), addr.eq(0), mark.eq(to_last_step + points), reading.eq(1), have.eq(0),
                         element.eq(0), fed.eq(0), out_written.eq(0), out_addr.eq(0)]
        with m.Else():
            with m.If(read):
                m.d.sync += [addr.eq(addr + 1), col.eq(col + 1), mark.eq(mark + points)]
                with m.If(col == seq.col_blocks - 1):
                    m.d.sync += [col.eq(0), row.eq(row + 1), mark.eq(mark + to_last_step + points)]
                    with m.If(row == seq.row_blocks - 1):
                        m.d.sync += reading.eq(0)
            m.d.sync += have.eq(read | (have & ~last_feed))
            with m.If(have & unit.i.ready):
                m.d.sync += [element.eq(element + 1), fed.eq(fed + 1)]
            with m.If(unit.o.valid):
                m.d.sync += [out_addr.eq(out_addr + 1), out_written.eq(out_written + 1)]
        for port in reads:
            m.d.comb += [port.addr.eq(addr), port.en.eq(read)]
        m.d.comb += [unit.i.valid.eq(have), unit.o.ready.eq(1),
                     write.addr.eq(out_addr), write.data.eq(unit.o.payload.y.as_value()), write.en.eq(unit.o.valid)]
        for p, port in enumerate(reads):
            lanes = Array(port.data[32 * e:32 * (e + 1)] for e in range(ELEMENTS))
            m.d.comb += unit.i.payload.m[p].eq(lanes[element])
        done = ~reading & ~have & (out_written == fed)       # (out_addr wraps when the buffer is full)
        return done, {"psum_reads": Mux(read, points, 0), "out_writes": unit.o.valid, "transforms_out": unit.o.valid}
