"""Turn an Amaranth component into RTLIL for Yosys, alone or inside a register harness.

:func:`to_rtlil` exports the component with its signature's ports (``top``), exactly what the area
flows measure.  :func:`harness` wraps it for timing: every input port is driven from a register and
every output port feeds one, so that each path through the unit starts and ends at a flip-flop and
place and route reports the unit's own Fmax, not pad-to-pad delays.
"""

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal, Value
from amaranth.lib import wiring

__all__ = ["to_rtlil", "harness", "port_bits"]


def _ports(component):
    if not isinstance(component, wiring.Component):
        raise TypeError(f"expected an amaranth.lib.wiring.Component, not {component!r}")
    for path, member, value in component.signature.flatten(component):
        yield "__".join(str(part) for part in path), member.flow, Value.cast(value)


def port_bits(component):
    """Number of port bits of ``component`` (clock and reset not counted)."""
    return sum(len(value) for _, _, value in _ports(component))


def to_rtlil(component, name="top"):
    """RTLIL text of ``component`` as module ``name``; ports from its signature."""
    list(_ports(component))  # type check
    return rtlil.convert(component, name=name, emit_src=False)


class _Harness(Elaboratable):
    def __init__(self, dut):
        self.dut = dut
        self.ports = []
        self._links = []
        for name, flow, value in _ports(dut):
            port = Signal(len(value), name=name)
            stage = Signal(len(value), name=f"{name}__reg", reset_less=True)
            self.ports.append(port)
            self._links.append((flow, port, stage, value))

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = self.dut
        for flow, port, stage, value in self._links:
            if flow == wiring.In:
                m.d.sync += stage.eq(port)
                m.d.comb += value.eq(stage)
            else:
                m.d.sync += stage.eq(value)
                m.d.comb += port.eq(stage)
        return m


def harness(component, name="top"):
    """RTLIL text of ``component`` with a register on every port, as module ``name``."""
    wrapper = _Harness(component)
    return rtlil.convert(wrapper, name=name, ports=wrapper.ports, emit_src=False)
