"""The synthesis flows: ``cmos``, ``liberty:FILE`` and ``ecp5``.

Each flow takes an Amaranth component and a build folder, writes the RTLIL and a Yosys script there,
runs the tools and returns a dict of plain numbers:

``cmos``
    Generic synthesis (``synth -flatten``), flip-flops legalised to plain ``$_DFF_P_`` (reset and
    enable become gates), gates mapped by ABC to Yosys' static-CMOS set (NAND, NOR, AOI3/OAI3,
    AOI4/OAI4, MUX/NMUX, XOR/XNOR, NOT), then ``stat -tech cmos``.  Reports ``transistors``,
    ``ge`` = transistors / 4 (one 4-transistor NAND2 per gate equivalent) and ``cells``.
``liberty:FILE``
    The same synthesis mapped onto the user's standard cells (``dfflibmap`` + ``abc -liberty``);
    reports ``area_um2`` (sum of the cells' Liberty areas, as ``stat -liberty`` adds them),
    ``sequential_area_um2`` and ``cells``.
``ecp5``
    ``synth_ecp5``: ``luts`` (LUT4 + 2 per CCU2C carry cell), ``ffs``, ``dsps`` (MULT18X18D +
    ALU54B) and ``cells``; then, for the timing run, the unit inside a register harness
    (:func:`accel.synth.export.harness`) is placed and routed by nextpnr-ecp5 on the smallest
    LFE5U that holds it, and ``fmax_mhz`` is read from nextpnr's ``--report`` JSON.

``metric`` names the figure that the zero-gating overhead is computed on.
"""

import hashlib
import json
import math
import re
from pathlib import Path

from .errors import SynthError, SynthInputError
from .export import harness, port_bits, to_rtlil
from .liberty import load_liberty
from .tools import run_nextpnr_ecp5, run_yosys
from .workspace import write_atomic

__all__ = ["Flow", "CmosFlow", "LibertyFlow", "Ecp5Flow", "parse_flow", "FLOW_NAMES",
           "CMOS_TRANSISTORS", "read_stat"]

FLOW_NAMES = ("cmos", "ecp5", "liberty:FILE")

# Transistors per cell as ``stat -tech cmos`` counts them (Yosys passes/cmds/stat.cc); the flow
# takes Yosys' own total and only uses this table to name cells that Yosys cannot count.
CMOS_TRANSISTORS = {"NOT": 2, "NAND": 4, "NOR": 4, "ANDNOT": 6, "ORNOT": 6, "AND": 6, "OR": 6,
                    "AOI3": 6, "OAI3": 6, "AOI4": 8, "OAI4": 8, "NMUX": 10, "MUX": 12,
                    "XOR": 12, "XNOR": 12, "DFF_P": 16, "DFF_N": 16}

_READ = "read_rtlil design.il\nhierarchy -check -top top\n"


def _write(path, text):
    write_atomic(path, lambda stream: stream.write(text.encode()))


def read_stat(path):
    """The top module's entry of a ``stat -json`` file (the ``design`` total when there is one)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SynthError(f"cannot read Yosys statistics {path}: {error}") from None
    if "design" in data:
        return data["design"]
    modules = data.get("modules", {})
    for name in ("\\top", "top"):
        if name in modules:
            return modules[name]
    if len(modules) == 1:
        return next(iter(modules.values()))
    raise SynthError(f"no top module in Yosys statistics {path}")


def _internal_name(cell_type):
    # "$_NAND_" -> "NAND", "$_DFF_P_" -> "DFF_P"; library cells keep their names
    if cell_type.startswith("$_") and cell_type.endswith("_"):
        return cell_type[2:-1]
    return cell_type.lstrip("\\")


# bookkeeping cells that Yosys keeps after flattening; they hold no logic
_NOT_LOGIC = {"$scopeinfo"}


def _cells(stat):
    cells = {_internal_name(name): int(count) for name, count in stat.get("num_cells_by_type", {}).items()
             if name not in _NOT_LOGIC}
    return dict(sorted(cells.items()))


def _yosys(component, workdir, script, progress, rtlil_text=None):
    workdir.mkdir(parents=True, exist_ok=True)
    _write(workdir / "design.il", rtlil_text if rtlil_text is not None else to_rtlil(component))
    _write(workdir / "synth.ys", script)
    run_yosys("synth.ys", workdir, progress=progress)
    return read_stat(workdir / "stat.json")


class Flow:
    name = None     # as given on the command line
    tag = None      # build sub-folder
    metric = None   # figure for the zero-gating overhead

    def run(self, component, workdir, *, progress=None, timing=True):
        raise NotImplementedError

    def __repr__(self):
        return f"<flow {self.name}>"


class CmosFlow(Flow):
    name = tag = "cmos"
    metric = "ge"

    SCRIPT = _READ + (
        "synth -flatten -top top\n"
        "dfflegalize -cell $_DFF_P_ 01\n"
        "abc -g cmos\n"
        "opt_clean -purge\n"
        "tee -q -o stat.json stat -tech cmos -json\n")

    def run(self, component, workdir, *, progress=None, timing=True, rtlil_text=None):
        """``rtlil_text``: the component's RTLIL when the caller has it already (else it is exported)."""
        return self.figures(_yosys(component, Path(workdir), self.SCRIPT, progress, rtlil_text=rtlil_text),
                            workdir)

    @staticmethod
    def figures(stat, workdir):
        """``transistors``, ``ge``, ``num_cells`` and ``cells`` of a ``stat -tech cmos -json`` entry."""
        cells = _cells(stat)
        raw = str(stat.get("estimated_num_transistors", ""))
        match = re.fullmatch(r"\s*(\d+)\s*(\+?)\s*", raw)
        if not match:
            raise SynthError(f"no transistor count in {workdir}/stat.json")
        if match.group(2):
            unknown = sorted(set(cells) - set(CMOS_TRANSISTORS))
            raise SynthError(f"Yosys cannot count the transistors of cells {unknown} "
                             f"(see {workdir}/stat.json)")
        transistors = int(match.group(1))
        return {"transistors": transistors, "ge": transistors / 4, "num_cells": sum(cells.values()),
                "cells": cells}


class LibertyFlow(Flow):
    metric = "area_um2"

    SCRIPT = ("read_liberty -lib cells.lib\n" + _READ +
              "synth -flatten -top top\n"
              "dfflibmap -liberty cells.lib\n"
              "abc -liberty cells.lib\n"
              "opt_clean -purge\n"
              "tee -q -o stat.json stat -liberty cells.lib -json\n")

    def __init__(self, path):
        if not str(path):
            raise SynthInputError("flow 'liberty:FILE' needs a file name after 'liberty:'")
        self.path = Path(path)
        self.library = load_liberty(self.path)
        self.text = self.path.read_bytes()
        digest = hashlib.sha256(self.text).hexdigest()[:8]
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", self.path.stem)
        self.name = f"liberty:{path}"
        self.tag = f"liberty-{stem}-{digest}"

    def run(self, component, workdir, *, progress=None, timing=True):
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "cells.lib").write_bytes(self.text)
        try:
            stat = _yosys(component, workdir, self.SCRIPT, progress)
        except SynthError as error:
            # the library is the user's input: a library Yosys or ABC cannot map to is bad input
            raise SynthInputError(f"cannot map to Liberty file {str(self.path)!r}: {error}") from None
        cells = _cells(stat)
        unmapped = sorted(name for name in cells if name not in self.library.cells)
        if unmapped:
            raise SynthInputError(f"Liberty file {str(self.path)!r} lacks cells for {unmapped} "
                                  f"(see {workdir}/stat.json)")
        return {"area_um2": float(stat["area"]),
                "sequential_area_um2": float(stat.get("sequential_area", 0.0)),
                "num_cells": sum(cells.values()), "cells": cells, "liberty": str(self.path)}


# (device flag, package, LUT4s, MULT18X18Ds, user I/O in that package)
ECP5_DEVICES = (("25k", "CABGA381", 24288, 28, 197),
                ("45k", "CABGA381", 43848, 72, 203),
                ("85k", "CABGA381", 83640, 156, 205))


class Ecp5Flow(Flow):
    name = tag = "ecp5"
    metric = "luts"
    target_mhz = 100
    seed = 1

    AREA_SCRIPT = _READ + "synth_ecp5 -top top\ntee -q -o stat.json stat -json\n"
    TIMING_SCRIPT = _READ + "synth_ecp5 -top top -json netlist.json\ntee -q -o stat.json stat -json\n"

    def run(self, component, workdir, *, progress=None, timing=True):
        workdir = Path(workdir)
        n_ports = port_bits(component)
        timing_text = harness(component) if timing else None  # before to_rtlil: both elaborate it
        stat = _yosys(component, workdir, self.AREA_SCRIPT, progress)
        cells = _cells(stat)
        result = {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
                  "ffs": cells.get("TRELLIS_FF", 0),
                  "dsps": cells.get("MULT18X18D", 0) + cells.get("ALU54B", 0),
                  "carry_cells": cells.get("CCU2C", 0), "cells": cells}
        if timing:
            result.update(self._timing(timing_text, n_ports, result, workdir / "timing", progress))
        return result

    def _timing(self, rtlil_text, n_ports, area, workdir, progress):
        # pick the device on the unit's own figures (the harness adds flip-flops only), before
        # spending a second synthesis on a unit that fits no ECP5
        luts, dsps = area["luts"], area["dsps"]
        for device, package, max_luts, max_dsps, max_io in ECP5_DEVICES:
            if luts <= 0.85 * max_luts and dsps <= max_dsps:
                break
        else:
            return {"fmax_mhz": None,
                    "pnr": f"not placed: {luts} LUT4s and {dsps} DSPs exceed 85% of an LFE5U-85F"}
        _yosys(None, workdir, self.TIMING_SCRIPT, progress, rtlil_text=rtlil_text)
        out_of_context = n_ports + 2 > max_io
        args = [f"--{device}", "--package", package, "--json", "netlist.json", "--report", "report.json",
                "--freq", str(self.target_mhz), "--timing-allow-fail", "--seed", str(self.seed)]
        if out_of_context:
            args.append("--out-of-context")
        (workdir / "report.json").unlink(missing_ok=True)
        run_nextpnr_ecp5(args, workdir, progress=progress)
        try:
            report = json.loads((workdir / "report.json").read_text())
        except (OSError, ValueError) as error:
            raise SynthError(f"cannot read nextpnr report {workdir}/report.json: {error}") from None
        achieved = [clock.get("achieved") for clock in report.get("fmax", {}).values()]
        achieved = [float(f) for f in achieved if isinstance(f, (int, float)) and math.isfinite(f)]
        used = {name: entry.get("used") for name, entry in report.get("utilization", {}).items()
                if entry.get("used")}
        return {"fmax_mhz": round(min(achieved), 2) if achieved else None,
                "device": f"LFE5U-{device.upper()[:-1]}F-{package}", "out_of_context": out_of_context,
                "critical_path": _critical_path(report), "pnr_utilization": used}


def _critical_path(report):
    """The longest clock-to-clock path of a nextpnr report: end cells and its logic/routing split."""
    worst = None
    for entry in report.get("critical_paths", []):
        if "<async>" in (entry.get("from"), entry.get("to")) or not entry.get("path"):
            continue
        steps = entry["path"]
        total = sum(step.get("delay", 0.0) for step in steps)
        if worst is None or total > worst["ns"]:
            worst = {"from": steps[0]["from"]["cell"], "to": steps[-1]["to"]["cell"], "ns": round(total, 3),
                     "logic_ns": round(sum(s.get("delay", 0.0) for s in steps if s.get("type") == "logic"), 3),
                     "routing_ns": round(sum(s.get("delay", 0.0) for s in steps if s.get("type") == "routing"), 3)}
    return worst


def parse_flow(text):
    """``"cmos"``, ``"ecp5"`` or ``"liberty:FILE"`` -> a :class:`Flow` (the Liberty file is checked)."""
    if not isinstance(text, str):
        raise SynthInputError(f"flow must be a string, not {text!r}")
    if text == "cmos":
        return CmosFlow()
    if text == "ecp5":
        return Ecp5Flow()
    if text.startswith("liberty:"):
        return LibertyFlow(text[len("liberty:"):])
    raise SynthInputError(f"unknown flow {text!r}; choose one of {', '.join(FLOW_NAMES)}")
