"""The accelerator's top level for direct convolution, dense or compressed weights: on-chip buffers, the
sequencer, the weight decompressor, the operand senders and the HMMA array, behind one command stream
and one response stream.

::

    i (commands) ─┬─ LOAD_ACT ──▶ activation buffer ══ 16 im2col reads ══▶ B sender ─┐
                  ├─ LOAD_WGT ──▶ weight buffer ══ dense: 1 tile read ══▶ A sender ─┼─▶ HMMA ─ D ─▶ psum buffer
                  │                            ╚═ compressed: words ═▶ decompressor ┤       C ◀── psum buffer
                  ├─ CONFIG (C, K, H, W, weight words) ─▶ sequencer ── requests ──┘
                  ├─ RUN ─▶ response when the layer is done
                  ├─ STORE ─▶ response: one psum tile                       o (responses, one per command)
                  └─ COUNTER ─▶ response: one performance counter

Every command gets exactly one response, in order (like a bus's write response): loads and CONFIG get an
empty one at once, RUN gets its one when the last D is in the partial-sum buffer, STORE and COUNTER carry
their data. Commands are taken one per clock except during a run.

Issue pipeline (one instruction per clock): the sequencer's request reads the weight tile, the 16 im2col
activations and, from chain step 1 on, the partial sum (stage 0: the reads of the next instruction run
while the array computes the current one); stage 1 holds the read data, the senders raise the zero flags
and the array takes the instruction. D goes back to the partial-sum buffer at the address that travelled
with it (a FIFO beside the array). A chain's step s > 0 leaves stage 0 only once the D of step s − 1 is
written (or is being written: the C read port is transparent), so the schedule's interleaving of
``col_blocks`` chains hides the array's latency when ``col_blocks ≥ latency + 1``; otherwise the wait is
counted as ``idle_dependency``.

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
"""

from dataclasses import dataclass, field

from amaranth import *
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..golden import sparse
from ..golden.fp import FP16, FP32
from ..golden.gating import Gating
from ..golden.schedule import TILE, direct_gemms
from .config import AcceleratorConfig
from .decompressor import Decompressor
from .hmma import HMMA
from .operand import Flagged, ZeroDetector
from .pipeline import check_choice, check_count
from .sequencer import BOUND_BITS, LAYER_BOUNDS, DirectSequencer

__all__ = ["Op", "COUNTERS", "COUNTER_BITS", "WEIGHT_FORMATS", "BufferConfig", "command_layout", "response_layout",
           "Accelerator"]

ELEMENTS = TILE * TILE
COUNTER_BITS = 32
STREAM_WIDTH = 64           # bits of a compressed weight word (the decompressor's input width)

#: How the weight buffer holds the weights: plain tiles, or a compressed stream of one of these formats.
WEIGHT_FORMATS = ("dense",) + tuple(sparse.FORMATS)

#: Performance counters, in COUNTER address order. ``cycles`` counts the clocks of runs; a clock of a run
#: in which the array takes no instruction is counted in exactly one ``idle_*`` counter.
COUNTERS = (
    "cycles", "instructions", "macs", "macs_gated",
    "act_reads", "act_writes", "weight_reads", "weight_writes", "psum_reads", "psum_writes", "stores",
    "idle_operands",      # no instruction in stage 1 yet: its buffer reads are in flight (first clock of a run)
    "idle_weights",       # the decompressor had not finished the weight tile an instruction needed
    "idle_dependency",    # a chain's previous D not back: the array's latency not hidden
    "idle_output_full",   # the array did not take the instruction (its output was not taken)
    "idle_drain",         # every instruction issued, the last D's still in the array
)


class Op(enum.Enum, shape=3):
    """Command opcodes. ``addr`` and ``data`` per op: LOAD_ACT: element address, ``data[0]`` one FP16;
    LOAD_WGT: word address, ``data`` the 4×4 A tile row-major (A[i][kk], i = output channel; dense) or
    ``data[0..3]`` one 64-bit stream word, least significant part first (compressed); CONFIG: ``data[0..3]``
    = C, K, H, W, ``data[4..5]`` = the stream's word count (compressed); RUN: none; STORE: psum tile
    address; COUNTER: index in :data:`COUNTERS`. The hardware does not check the bounds: the host gives a
    layer that :meth:`BufferConfig.layer_tiles` accepts (C, K ≥ 1, H, W ≥ 3, fitting the buffers)."""

    LOAD_ACT = 0
    LOAD_WGT = 1
    CONFIG = 2
    RUN = 3
    STORE = 4
    COUNTER = 5


def command_layout(addr_bits):
    return data.StructLayout({"op": Op, "addr": addr_bits, "data": data.ArrayLayout(16, ELEMENTS)})


def response_layout():
    """One response: a 4×4 FP32 tile row-major (D[i][j], i = output channel, j = pixel), or a counter in
    ``data[0]``, or zeros."""
    return data.StructLayout({"data": data.ArrayLayout(32, ELEMENTS)})


@dataclass(frozen=True)
class BufferConfig:
    """An :class:`AcceleratorConfig` plus the weight format (:data:`WEIGHT_FORMATS`) and the on-chip
    buffer sizes: activations (FP16 elements), weights (in 4×4 FP16 tiles' worth of bits: compressed, four
    64-bit words a tile), partial sums / outputs (4×4 FP32 tiles), and the depth of the FIFO that carries each
    instruction's psum address beside the array (it must exceed the array's latency: checked by
    :class:`Accelerator`). Checked on construction."""

    array: AcceleratorConfig = field(default_factory=AcceleratorConfig)
    weight_format: str = "dense"
    act_words: int = 1 << 15
    weight_tiles: int = 256
    psum_tiles: int = 1024
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
        for what in ("act_words", "weight_tiles", "psum_tiles", "addr_fifo_depth"):
            check_count(what, getattr(self, what))
            if getattr(self, what) > 1 << BOUND_BITS + 8:
                raise ValueError(f"{what} must be at most {1 << BOUND_BITS + 8}, not {getattr(self, what)}")

    @property
    def gating(self):
        return self.array.gating

    @property
    def compressed(self):
        return self.weight_format != "dense"

    @property
    def order(self):
        """The im2col inner order the sequencer walks (:data:`accel.golden.schedule.INNER_ORDERS`)."""
        return "tap_blocks" if self.compressed else "channel_major"

    @property
    def weight_words(self):
        """Depth of the weight buffer: tiles (dense) or stream words (compressed)."""
        return self.weight_tiles * (ELEMENTS * FP16.width // STREAM_WIDTH if self.compressed else 1)

    @property
    def weight_word_bits(self):
        return STREAM_WIDTH if self.compressed else ELEMENTS * FP16.width

    @property
    def bits(self):
        """Address widths (activation, weight, psum)."""
        return tuple(max(1, ceil_log2(n)) for n in (self.act_words, self.weight_words, self.psum_tiles))

    @property
    def addr_bits(self):
        return max(self.bits)

    @property
    def sram_bits(self):
        """On-chip buffer bits by buffer."""
        fmt_in, fmt_acc = self.array.fmt_in.width, self.array.fmt_acc.width
        return {"act": self.act_words * fmt_in, "weight": self.weight_tiles * ELEMENTS * fmt_in,
                "psum": self.psum_tiles * ELEMENTS * fmt_acc}

    def layer_tiles(self, channels, filters, height, width):
        """(row_blocks, inner_blocks, col_blocks) of a direct conv layer in this configuration's inner order;
        ValueError naming what does not fit in the buffers (layers larger than the buffers are not cut into
        passes yet; a compressed stream's length depends on the weights: :meth:`check_weight_words`)."""
        for what, value in (("channels", channels), ("filters", filters), ("height", height), ("width", width)):
            check_count(what, value)
            if value >= 1 << BOUND_BITS:
                raise ValueError(f"{what} must be below {1 << BOUND_BITS}, not {value}")
        if height < 3 or width < 3:
            raise ValueError(f"a 3x3 valid convolution needs H, W >= 3, not {height}x{width}")
        shape = direct_gemms(channels, filters, height - 2, width - 2, self.order)
        tiles = (shape.blocks(shape.rows), shape.blocks(shape.inner), shape.blocks(shape.cols))
        self._check_fits("activation buffer", channels * height * width, self.act_words)
        self._check_fits("psum buffer", tiles[0] * tiles[2], self.psum_tiles, "tiles")
        if not self.compressed:
            self._check_fits("weight buffer", tiles[0] * tiles[1], self.weight_words, "tiles")
        return tiles

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
        self._array = HMMA.from_config(buffers.array)
        if buffers.addr_fifo_depth <= self._array.latency:    # D addresses in flight must all fit
            raise ValueError(f"addr_fifo_depth must exceed the array latency {self._array.latency}, "
                             f"not {buffers.addr_fifo_depth}")
        super().__init__({"i": In(stream.Signature(command_layout(buffers.addr_bits))),
                          "o": Out(stream.Signature(response_layout()))})

    @property
    def buffers(self):
        return self._buffers

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
        buffers, gating = self._buffers, self._buffers.gating
        act_bits, weight_bits, psum_bits = buffers.bits
        m.submodules.array = array = self._array
        m.submodules.sequencer = seq = DirectSequencer(act_bits=act_bits, weight_bits=weight_bits,
                                                       psum_bits=psum_bits, order=buffers.order)
        m.submodules.act_buf = act_buf = Memory(shape=16, depth=buffers.act_words, init=[])
        m.submodules.weight_buf = weight_buf = Memory(shape=buffers.weight_word_bits, depth=buffers.weight_words,
                                                      init=[])
        m.submodules.psum_buf = psum_buf = Memory(shape=32 * ELEMENTS, depth=buffers.psum_tiles, init=[])
        m.submodules.addr_fifo = addr_fifo = fifo.SyncFIFO(width=psum_bits, depth=buffers.addr_fifo_depth)
        act_w, weight_w, psum_w = act_buf.write_port(), weight_buf.write_port(), psum_buf.write_port()
        act_r = [act_buf.read_port() for _ in range(ELEMENTS)]
        psum_c = psum_buf.read_port(transparent_for=(psum_w,))
        psum_store = psum_buf.read_port()

        # ---- commands and responses
        cmd = self.i.payload
        running, resp_valid = Signal(), Signal()
        resp_kind = Signal(range(3))        # 0: empty, 1: psum tile, 2: counter
        counter_value = Signal(COUNTER_BITS)
        bounds = Signal(LAYER_BOUNDS)
        stream_words = Signal(2 * BOUND_BITS)     # words of the compressed weight stream
        done = Signal()
        advance = ~resp_valid | self.o.ready
        m.d.comb += self.i.ready.eq(advance & ~running)
        accept = self.i.valid & self.i.ready
        is_op = lambda op: accept & (cmd.op == op)  # noqa: E731
        counters = {name: Signal(COUNTER_BITS, name=f"count_{name}") for name in COUNTERS}
        m.d.comb += [
            act_w.addr.eq(cmd.addr), act_w.data.eq(cmd.data[0]), act_w.en.eq(is_op(Op.LOAD_ACT)),
            weight_w.addr.eq(cmd.addr), weight_w.data.eq(cmd.data.as_value()[:buffers.weight_word_bits]),
            weight_w.en.eq(is_op(Op.LOAD_WGT)),
            psum_store.addr.eq(cmd.addr), psum_store.en.eq(is_op(Op.STORE)),
            seq.start.eq(is_op(Op.RUN)), seq.bounds.eq(bounds),
        ]
        with m.If(accept):
            m.d.sync += [resp_valid.eq(cmd.op != Op.RUN), running.eq(cmd.op == Op.RUN),
                         resp_kind.eq(Mux(cmd.op == Op.STORE, 1, Mux(cmd.op == Op.COUNTER, 2, 0))),
                         counter_value.eq(Array(counters.values())[cmd.addr])]
            with m.If(cmd.op == Op.CONFIG):
                m.d.sync += [bounds.eq(Cat(cmd.data[0], cmd.data[1], cmd.data[2], cmd.data[3])),
                             stream_words.eq(Cat(cmd.data[4], cmd.data[5]))]
        with m.Elif(done):
            m.d.sync += [running.eq(0), resp_valid.eq(1), resp_kind.eq(0)]
        with m.Elif(advance):
            m.d.sync += resp_valid.eq(0)
        m.d.comb += [self.o.valid.eq(resp_valid),
                     self.o.payload.data.as_value().eq(Mux(resp_kind == 1, psum_store.data,
                                                           Mux(resp_kind == 2, counter_value, 0)))]

        # ---- issue pipeline: stage 0 = the sequencer's request (reads issued), stage 1 = read data
        request = seq.o.payload
        s1_valid, s1_first = Signal(), Signal()
        s1_live, s1_psum_addr = Signal(ELEMENTS), Signal(psum_bits)
        issued, written = Signal(COUNTER_BITS), Signal(COUNTER_BITS)   # instructions into stage 1; D's written
        dep_blocked, weights_blocked = Signal(), Signal()
        issue = array.i.valid & array.i.ready
        d_back = array.o.valid
        s1_free = ~s1_valid | array.i.ready
        dep_ok = request.first | (written + d_back + seq.col_blocks > issued)
        transfer = Signal()
        if buffers.compressed:
            a_flags, weights_ready, weight_reads = self._decompressed_weights(
                m, weight_buf, stream_words, seq.start, transfer & request.new_tile, array.i.payload.a)
        else:
            a_flags, weights_ready, weight_reads = self._dense_weights(
                m, weight_buf, request.w_addr, transfer, array.i.payload.a, issue)
        weights_ok = ~request.new_tile | weights_ready
        m.d.comb += [transfer.eq(seq.o.valid & s1_free & dep_ok & weights_ok),
                     seq.o.ready.eq(s1_free & dep_ok & weights_ok)]
        m.d.comb += [psum_c.addr.eq(request.psum_addr), psum_c.en.eq(transfer & ~request.first)]
        for e, port in enumerate(act_r):
            m.d.comb += [port.addr.eq(request.act_addr[e]), port.en.eq(transfer & request.act_live[e])]
        with m.If(transfer):
            m.d.sync += [s1_valid.eq(1), s1_first.eq(request.first), s1_live.eq(request.act_live),
                         s1_psum_addr.eq(request.psum_addr), issued.eq(issued + 1)]
        with m.Elif(issue):
            m.d.sync += s1_valid.eq(0)
        m.d.sync += [weights_blocked.eq(seq.o.valid & s1_free & ~weights_ok),
                     dep_blocked.eq(seq.o.valid & s1_free & weights_ok & ~dep_ok)]
        with m.If(d_back):
            m.d.sync += written.eq(written + 1)
        with m.If(seq.start):
            m.d.sync += [issued.eq(0), written.eq(0)]

        # ---- activation sender: zero flags, and under hold the frozen lines
        acts = [Mux(s1_live[e], port.data, 0) for e, port in enumerate(act_r)]              # B[kk][j]
        b_flags = self._send(m, "b", acts, array.i.payload.b, issue)
        m.d.comb += [array.i.valid.eq(s1_valid),
                     array.i.payload.c.as_value().eq(Mux(s1_first, 0, psum_c.data))]

        # ---- results back to the partial-sum buffer
        m.d.comb += [addr_fifo.w_data.eq(s1_psum_addr), addr_fifo.w_en.eq(issue),
                     addr_fifo.r_en.eq(d_back), array.o.ready.eq(1),
                     psum_w.addr.eq(addr_fifo.r_data), psum_w.data.eq(array.o.payload.d.as_value()),
                     psum_w.en.eq(d_back)]
        m.d.comb += done.eq(running & ~seq.busy & ~s1_valid & (written == issued))

        # ---- performance counters
        live_products = sum((TILE - sum(a_flags[i * TILE + kk] for i in range(TILE)))
                            * (TILE - sum(b_flags[kk * TILE + j] for j in range(TILE))) for kk in range(TILE))
        gated = TILE ** 3 - live_products if gating is Gating.HOLD else 0
        idle = running & ~issue
        increments = {
            "cycles": running, "instructions": issue, "macs": Mux(issue, TILE ** 3, 0),
            "macs_gated": Mux(issue, gated, 0),
            "act_reads": Mux(transfer, sum(request.act_live[e] for e in range(ELEMENTS)), 0),
            "act_writes": is_op(Op.LOAD_ACT), "weight_reads": weight_reads, "weight_writes": is_op(Op.LOAD_WGT),
            "psum_reads": (transfer & ~request.first) + is_op(Op.STORE), "psum_writes": d_back,
            "stores": is_op(Op.STORE),
            "idle_operands": idle & ~s1_valid & seq.busy & ~dep_blocked & ~weights_blocked,
            "idle_weights": idle & ~s1_valid & seq.busy & weights_blocked,
            "idle_dependency": idle & ~s1_valid & seq.busy & dep_blocked,
            "idle_output_full": idle & s1_valid,
            "idle_drain": idle & ~s1_valid & ~seq.busy,
        }
        for name, counter in counters.items():
            m.d.sync += counter.eq(counter + increments[name])
        return m

    def _dense_weights(self, m, weight_buf, w_addr, transfer, lines, issue):
        """Dense weights: the request's A tile is read with the activations and sent by the A sender.
        Returns (zero flags, tile ready, buffer reads this clock)."""
        port = weight_buf.read_port()
        m.d.comb += [port.addr.eq(w_addr), port.en.eq(transfer)]
        weights = [port.data[16 * e:16 * (e + 1)] for e in range(ELEMENTS)]                 # A[i][kk]
        return self._send(m, "a", weights, lines, issue), C(1), transfer

    def _decompressed_weights(self, m, weight_buf, stream_words, start, take, lines):
        """Compressed weights: the stream's words are read in order into the decompressor from ``start``;
        ``take`` moves its next tile into the A register (transposed: the decompressor's element
        ``4kk + j`` is B-layout, rows kk the input channels, columns j the output channels, and is
        A[j][kk]). Returns (zero flags, a tile ready, buffer reads this clock)."""
        m.submodules.decompressor = dec = Decompressor(format=self._buffers.weight_format, width=STREAM_WIDTH,
                                                       gating=self.gating)
        port = weight_buf.read_port()
        read_addr = Signal(len(port.addr))
        reading, read_valid, read_last = Signal(), Signal(), Signal()
        feed = ~read_valid | dec.i.ready
        read = feed & reading
        m.d.comb += [port.addr.eq(read_addr), port.en.eq(read),
                     dec.i.valid.eq(read_valid), dec.i.payload.data.eq(port.data), dec.i.payload.last.eq(read_last),
                     dec.o.ready.eq(take)]
        with m.If(start):
            m.d.sync += [read_addr.eq(0), reading.eq(1), read_valid.eq(0)]
        with m.Elif(feed):
            m.d.sync += [read_valid.eq(reading), read_last.eq(read_addr == stream_words - 1)]
            with m.If(reading):
                m.d.sync += read_addr.eq(read_addr + 1)
                with m.If(read_addr == stream_words - 1):
                    m.d.sync += reading.eq(0)
        tile = Signal(data.ArrayLayout(Flagged(FP16), ELEMENTS))
        with m.If(take):
            m.d.sync += [tile[i * TILE + kk].eq(dec.o.payload[kk * TILE + i])
                         for i in range(TILE) for kk in range(TILE)]
        m.d.comb += [lines[e].eq(tile[e]) for e in range(ELEMENTS)]
        return [tile[e].is_zero for e in range(ELEMENTS)], dec.o.valid, read

    def _send(self, m, name, values, lines, issue):
        """Drive the array's operand ``lines`` (Flagged elements) from ``values`` through the sender of
        the gating style; returns the zero flags."""
        gating = self.gating
        flags = []
        for e, value in enumerate(values):
            flag = Signal(name=f"{name}_is_zero_{e}")
            if gating.flags_zeros:
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
