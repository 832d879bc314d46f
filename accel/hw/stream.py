"""Elastic stream plumbing for blocks whose rate varies (the decompressor, the sequencer), beside the
fixed-depth pipelines of :mod:`accel.hw.pipeline`.

- :class:`StreamFIFO`: a valid/ready FIFO of ``data`` payloads on :class:`amaranth.lib.fifo.SyncFIFO`; at
  depth 2 it is a skid buffer: it takes a word every clock while its reader keeps up, absorbs a cycle of
  back-pressure, and its ``i.ready`` does not depend combinationally on ``o.ready`` (it says "not full").
- :func:`chain`: ``wiring.connect`` for a row of stream components (each one's ``o`` to the next one's ``i``).
"""

from amaranth import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .pipeline import check_count

__all__ = ["StreamFIFO", "chain"]


class StreamFIFO(wiring.Component):
    """``depth`` payloads of ``shape`` between stream ``i`` and stream ``o``, in order, none lost or repeated.

    ``latency`` 1: a word offered on ``i`` can leave on ``o`` the next clock; with ``depth`` >= 2 one word per
    clock passes in steady state (``throughput`` 1).
    """

    def __init__(self, shape, depth=2):
        self._shape = shape
        self._depth = check_count("depth", depth)
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    @property
    def depth(self):
        return self._depth

    @property
    def latency(self):
        return 1

    @property
    def throughput(self):
        """Words per clock in steady state."""
        return 1 if self._depth >= 2 else 0.5

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._shape).width
        m.submodules.fifo = queue = fifo.SyncFIFO(width=width, depth=self._depth)
        m.d.comb += [
            queue.w_data.eq(self.i.payload.as_value() if isinstance(self.i.payload, data.View) else self.i.payload),
            queue.w_en.eq(self.i.valid),
            self.i.ready.eq(queue.w_rdy),
            self.o.payload.eq(queue.r_data),
            self.o.valid.eq(queue.r_rdy),
            queue.r_en.eq(self.o.ready),
        ]
        return m


def chain(m, *components):
    """Connect each component's ``o`` stream to the next one's ``i`` (``wiring.connect``); returns the first's
    ``i`` and the last's ``o``, the ends of the chain."""
    if len(components) < 2:
        raise ValueError(f"a chain needs at least two components, not {len(components)}")
    for source, sink in zip(components, components[1:]):
        wiring.connect(m, source.o, sink.i)
    return components[0].i, components[-1].o
