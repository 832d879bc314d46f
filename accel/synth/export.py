"""Export an Amaranth component: RTLIL for Yosys, alone or inside a register harness, and Verilog.

:func:`to_rtlil` exports the component with its signature's ports (``top``), exactly what the area
flows measure.  :func:`harness` wraps it for timing: every input port is driven from a register and
every output port feeds one, so that each path through the unit starts and ends at a flip-flop and
place and route reports the unit's own Fmax, not pad-to-pad delays. :func:`export_verilog` gives the
Verilog the Verilator backend and the cocotb tests compile; :func:`export_units` writes every registered
unit's Verilog (``python -m accel.synth.export [OUT_DIR]``).
"""

import sys
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Fragment, Module, Signal, Value
from amaranth.hdl import _ir
from amaranth.lib import wiring

from ..hw.units import UNITS, unit
from .workspace import build_root, write_atomic

__all__ = ["to_rtlil", "harness", "port_bits", "Export", "export_verilog", "export_units"]


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


@dataclass(frozen=True)
class Export:
    """A component exported to Verilog: its top module name, the text, the payload widths, and the
    prepared Amaranth design the text came from (its names are the Verilog names)."""

    top: str
    text: str
    in_width: int
    out_width: int
    design: object = field(default=None, repr=False, compare=False)


def export_verilog(dut, top="top"):
    """Convert ``dut`` (a stream component with ``i``/``o`` streams) to Verilog; see :class:`Export`.

    The design is prepared with the top-level ports named first and converted without ``src`` attributes,
    so the text, and with it any build cache key, depends on the logic only."""
    ports = {name: (value, _ir.PortDirection.Input if flow == wiring.In else _ir.PortDirection.Output)
             for name, flow, value in _ports(dut)}
    design = Fragment.get(dut, None).prepare(ports=ports, hierarchy=(top,))
    text, _name_map = verilog.convert_fragment(design, name=top, emit_src=False)
    return Export(top=top, text=text, in_width=len(dut.i.payload.as_value()),
                  out_width=len(dut.o.payload.as_value()), design=design)


def export_units(out_dir=None, gatings=None, units=None):
    """Write the Verilog of every unit of :data:`accel.hw.units.UNITS` (or of ``units``) into ``out_dir``
    (default ``build/verilog/``).

    One file per unit and gating style it accepts, ``<unit>_<gating>.v``, top module named after the
    unit; returns the list of paths written.
    """
    out_dir = Path(out_dir) if out_dir is not None else build_root() / "verilog"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(units or UNITS):
        entry = unit(name)
        for gating in entry.gatings:   # the styles this unit has (an adder has no "and")
            if gatings is not None and gating not in gatings:
                continue
            path = out_dir / f"{name}_{gating}.v"
            text = export_verilog(entry(gating), top=name).text
            write_atomic(path, lambda stream: stream.write(text.encode()))
            written.append(path)
    return written


def main(argv=None):
    """``python -m accel.synth.export [OUT_DIR]``: export every unit's Verilog (default build/verilog/)."""
    argv = sys.argv[1:] if argv is None else argv
    for path in export_units(argv[0] if argv else None):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
