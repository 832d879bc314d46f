"""Pipeline plumbing shared by the arithmetic units: parameter checks, per-stage load enables behind a
stream, load-enabled registers and zero-flagged delay lines.

Every unit is a fixed-depth pipeline with one global clock enable: it advances unless its output is
valid and not taken. A stage's registers load only when the pipeline advances *and* the stage before
it holds a valid instruction, so bubbles never toggle the datapath.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..golden.fp import FloatFormat
from ..golden.gating import Gating

__all__ = ["check_choice", "check_gating", "check_count", "check_format",
           "PipelineControl", "pipeline_control", "load_when", "stage_reg", "data_load", "DelayLine"]


def check_choice(what, value, choices):
    """ValueError naming ``value`` unless it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def check_gating(value, allowed=tuple(Gating)):
    """The :class:`Gating` named by ``value``; ValueError naming it unless it is one of ``allowed``."""
    gating = Gating.parse(value)
    if gating not in allowed:
        raise ValueError(f"gating must be one of {', '.join(map(repr, map(str, allowed)))}, not {value!r}")
    return gating


def check_count(what, value):
    """TypeError unless ``value`` is an int (not a bool), ValueError unless it is at least 1."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be at least 1, not {value!r}")
    return value


def check_format(what, value):
    """TypeError unless ``value`` is a :class:`FloatFormat` from the shared format table."""
    if not isinstance(value, FloatFormat):
        raise TypeError(f"{what} must be a FloatFormat (e.g. FP16, FP32), not {value!r}")
    return value


class PipelineControl(wiring.Component):
    """Valid bit per stage and one clock enable; ``load[s]`` says stage ``s`` registers take data now."""

    def __init__(self, depth):
        self._depth = check_count("depth", depth)
        super().__init__({"i_valid": In(1), "i_ready": Out(1), "o_valid": Out(1), "o_ready": In(1),
                          "load": Out(depth)})

    def elaborate(self, platform):
        m = Module()
        valid = Signal(self._depth)
        advance = ~valid[-1] | self.o_ready
        incoming = Cat(self.i_valid, valid[:-1])
        with m.If(advance):
            m.d.sync += valid.eq(incoming)
        m.d.comb += [
            self.i_ready.eq(advance),
            self.o_valid.eq(valid[-1]),
            self.load.eq(Mux(advance, incoming, 0)),
        ]
        return m


def pipeline_control(m, depth, i, o):
    """Put a :class:`PipelineControl` (submodule ``pipe``) between streams ``i`` and ``o``; return ``load``."""
    m.submodules.pipe = ctl = PipelineControl(depth)
    m.d.comb += [ctl.i_valid.eq(i.valid), i.ready.eq(ctl.i_ready),
                 o.valid.eq(ctl.o_valid), ctl.o_ready.eq(o.ready)]
    return ctl.load


def load_when(m, reg, value, load):
    """Register ``reg`` takes ``value`` on cycles where ``load`` is high, else keeps its value."""
    with m.If(load):
        m.d.sync += reg.eq(value)
    return reg


def stage_reg(m, value, load, name):
    """A new register named ``name`` with the shape of ``value``, loaded when ``load`` is high."""
    return load_when(m, Signal(value.shape(), name=name), value, load)


def data_load(load, is_zero, gating):
    """Load enable of a data register: with ``hold`` a zero-flagged value is not loaded (frozen lines)."""
    return load & ~is_zero if gating == Gating.HOLD else load


class DelayLine(wiring.Component):
    """``depth`` registers in a row for a value and its zero flag (the flag travels with the data).

    With ``hold`` a flagged value is never loaded, so the lines keep their last value; with ``and`` the
    flag travels beside data loaded as usual; with ``none`` there is no flag (``is_zero_out`` is 0).
    """

    def __init__(self, width, depth, gating):
        self._gating = check_gating(gating)
        self._depth = check_count("depth", depth)
        super().__init__({"value": In(check_count("width", width)), "is_zero": In(1), "load": In(depth),
                          "value_out": Out(width), "is_zero_out": Out(1)})

    def elaborate(self, platform):
        m = Module()
        value, is_zero = self.value, self.is_zero if self._gating.flags_zeros else C(0, 1)
        for stage in range(self._depth):
            load = self.load[stage]
            value = stage_reg(m, value, data_load(load, is_zero, self._gating), f"value_{stage}")
            if self._gating.flags_zeros:
                is_zero = stage_reg(m, is_zero, load, f"is_zero_{stage}")
        m.d.comb += [self.value_out.eq(value), self.is_zero_out.eq(is_zero)]
        return m
