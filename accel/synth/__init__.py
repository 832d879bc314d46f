"""Synthesis flows (Yosys / nextpnr-ecp5 from YoWASP) and their parsers: area and speed of the units, the
gate-level netlists the energy model replays, Verilog export, and where build output goes (the third layer:
may import golden and hw).

``synth_unit("fp16_mul", "cmos")`` synthesizes a unit of :data:`accel.hw.units.UNITS` gated and
ungated and returns plain numbers (see :mod:`accel.synth.flows` for what each flow reports and
:mod:`accel.synth.driver` for the zero-gating overhead); ``accelerator_area(BufferConfig(...),
build_dir=...)`` the whole accelerator's area, logic in gates and buffers in SRAM bits
(:mod:`accel.synth.accelerator`).  Build output lives under ``build/synth/``.
"""

from .accelerator import ACCELERATOR, accelerator_area
from .driver import (DEFAULT_BUILD_DIR, GATED, UNGATED, synth_unit, synth_variants, synthesize,
                     unit_builder, unit_names)
from .errors import SynthError, SynthInputError
from .flows import FLOW_NAMES, CmosFlow, Ecp5Flow, LibertyFlow, parse_flow
from .liberty import load_liberty, parse_liberty

__all__ = ["ACCELERATOR", "accelerator_area", "DEFAULT_BUILD_DIR", "GATED", "UNGATED", "synth_unit", "synth_variants", "synthesize",
           "unit_builder", "unit_names", "SynthError", "SynthInputError", "FLOW_NAMES", "CmosFlow",
           "Ecp5Flow", "LibertyFlow", "parse_flow", "load_liberty", "parse_liberty"]
