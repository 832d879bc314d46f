"""Synthesize units by name, gated and ungated, and work out the cost of zero gating.

A *unit* is any factory ``build(gating=...) -> Component``; the named ones come from
:data:`accel.hw.units.UNITS`, so every block that registers itself there can be synthesized by name.
A unit that can be built both with zero gating (``gating="hold"``, the default hardware) and without
(``gating="none"``) is synthesized both ways; its result carries the ungated figures and::

    zero_gating_overhead_pct = 100 * (gated - ungated) / ungated

on the flow's own figure (``ge`` for cmos, ``area_um2`` for a Liberty file, ``luts`` for ECP5).
The ECP5 flow places and routes the gated build only (Fmax); the ungated build is synthesized only.
"""

import json
import time
from pathlib import Path

from ..golden.gating import Gating
from ..hw.units import UNITS, unit
from .errors import SynthError, SynthInputError
from .flows import Flow, parse_flow
from .workspace import write_atomic

__all__ = ["GATED", "UNGATED", "DEFAULT_BUILD_DIR", "unit_names", "unit_builder", "synthesize",
           "synth_variants", "synth_unit"]

GATED, UNGATED = Gating.HOLD, Gating.NONE
DEFAULT_BUILD_DIR = Path("build") / "synth"


def unit_names():
    return list(UNITS)


def unit_builder(name):
    """The factory ``build(gating)`` of unit ``name`` from :data:`accel.hw.units.UNITS`."""
    try:
        return unit(name)
    except ValueError as error:
        raise SynthInputError(str(error)) from None


def _flow(flow):
    return flow if isinstance(flow, Flow) else parse_flow(flow)


def synthesize(component, flow, workdir, *, progress=None, timing=True):
    """Run ``flow`` on one component in ``workdir``; the flow's figures plus ``seconds``."""
    flow = _flow(flow)
    start = time.monotonic()
    result = flow.run(component, Path(workdir), progress=progress, timing=timing)
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def _try_build(build, gating):
    try:
        return build(gating)
    except (TypeError, ValueError):
        return None


def synth_variants(build, flow, workdir, *, label="unit", progress=None, timing=True):
    """Synthesize ``build(GATED)`` and, when the unit has one, ``build(UNGATED)``.

    Returns the gated figures, with ``ungated`` and ``zero_gating_overhead_pct`` added when the unit
    can be built both ways.  A unit without gating (the factory refuses ``gating="hold"``) is
    reported as built by ``build(UNGATED)`` with ``gating: "none"``.  ``timing=False`` skips place
    and route (ECP5) for every build.
    """
    flow = _flow(flow)
    workdir = Path(workdir)
    say = progress or (lambda message: None)
    results = {}
    for gating in (GATED, UNGATED):
        component = _try_build(build, gating)   # built only when about to be used
        if component is None:
            continue
        say(f"{label}: {flow.name} synthesis, gating={gating} ...")
        step = (lambda message, _l=f"{label}/{gating}": say(f"  [{_l}] {message}"))
        results[gating] = synthesize(component, flow, workdir / gating, progress=step,
                                     timing=timing and not results)
        say(f"{label}: gating={gating} done in {results[gating]['seconds']} s: "
            f"{flow.metric} = {results[gating][flow.metric]}")
    if not results:
        raise SynthError(f"{label}: cannot be built with gating {GATED!r} or {UNGATED!r}")
    builds = list(results.items())
    main_gating = builds[0][0]
    result = {"flow": flow.name, "gating": main_gating, **results[main_gating]}
    if len(results) == 2:
        other = results[UNGATED]
        result["ungated"] = {"gating": UNGATED, **other}
        base, gated_value = other[flow.metric], results[GATED][flow.metric]
        if base:
            result["zero_gating_overhead_pct"] = round(100.0 * (gated_value - base) / base, 2)
        elif gated_value == base:
            result["zero_gating_overhead_pct"] = 0.0
        result["overhead_basis"] = flow.metric
    result["build_dir"] = str(workdir)
    return result


def synth_unit(name, flow="cmos", *, build_dir=DEFAULT_BUILD_DIR, progress=None, timing=True):
    """Synthesize the named unit of :data:`accel.hw.units.UNITS` (gated and ungated) with ``flow``.

    Build output goes to ``build_dir/<unit>/<flow>/<gating>/``; ``result.json`` there holds the
    returned dict.
    """
    flow = _flow(flow)
    build = unit_builder(name)
    workdir = Path(build_dir) / name / flow.tag
    result = {"unit": name, **synth_variants(build, flow, workdir, label=name, progress=progress,
                                             timing=timing)}
    workdir.mkdir(parents=True, exist_ok=True)
    write_atomic(workdir / "result.json", lambda stream: stream.write((json.dumps(result, indent=2) + "\n").encode()))
    return result
