"""``accel synth``: area and speed of the hardware units with open tools (Yosys, nextpnr-ecp5)."""

import sys
import time

from ...synth import (DEFAULT_BUILD_DIR, FLOW_NAMES, SynthInputError, parse_flow, synth_unit,
                      unit_builder, unit_names)
from ..errors import UserError
from ..files import check_output_dir
from ..report import print_json, print_table

NAME = "synth"
HELP = ("synthesize units: cmos (transistors, gate equivalents), liberty:FILE (um^2), "
        "ecp5 (LUTs, FFs, DSPs, Fmax); gated vs ungated overhead")

# what the human table shows per flow, in this order
_SHOWN = {
    "cmos": ("ge", "transistors", "num_cells"),
    "liberty": ("area_um2", "sequential_area_um2", "num_cells"),
    "ecp5": ("luts", "ffs", "dsps", "carry_cells", "fmax_mhz", "device", "out_of_context", "pnr"),
}


def add_arguments(parser):
    parser.add_argument("--unit", metavar="NAME", action="append",
                        help="unit to synthesize (repeatable; default: every unit, hmma takes long)")
    parser.add_argument("--flow", default="cmos", metavar="FLOW", help=f"one of {', '.join(FLOW_NAMES)}")
    parser.add_argument("--no-pnr", action="store_true",
                        help="ecp5: synthesis only, no place and route (no Fmax); for large units")
    parser.add_argument("--build-dir", default=str(DEFAULT_BUILD_DIR), metavar="DIR",
                        help=f"where the tools work (default {DEFAULT_BUILD_DIR})")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _progress(message):
    print(f"accel synth: {message}", file=sys.stderr, flush=True)


def _table(result):
    kind = "liberty" if result["flow"].startswith("liberty:") else result["flow"]
    rows = {"gating": result["gating"]}
    rows.update({key: result[key] for key in _SHOWN[kind] if result.get(key) is not None})
    if "ungated" in result:
        rows["ungated"] = {key: result["ungated"][key] for key in _SHOWN[kind]
                           if result["ungated"].get(key) is not None}
    if "zero_gating_overhead_pct" in result:
        rows[f"zero_gating_overhead_pct ({result['overhead_basis']})"] = result["zero_gating_overhead_pct"]
    rows["cells"] = result["cells"]
    rows["build_dir"] = result["build_dir"]
    return rows


def run(args):
    try:
        flow = parse_flow(args.flow)
        if args.no_pnr and flow.name != "ecp5":
            raise SynthInputError(f"--no-pnr only applies to the ecp5 flow, not --flow {flow.name}")
        units = args.unit or unit_names()
        for name in units:
            unit_builder(name)       # an unknown unit is refused before any work
        check_output_dir(args.build_dir, "--build-dir")
        results = {}
        start = time.monotonic()
        for name in dict.fromkeys(units):
            results[name] = synth_unit(name, flow, build_dir=args.build_dir, progress=_progress,
                                       timing=not args.no_pnr)
        _progress(f"finished in {time.monotonic() - start:.1f} s")
    except OSError as error:   # the build folder turned out unusable (the check above cannot see all)
        raise UserError(f"--build-dir {args.build_dir}: cannot write {error.filename or ''} "
                        f"({error.strerror or error})") from None
    if args.json:
        if len(results) == 1:
            print_json(next(iter(results.values())))
        else:
            print_json({"flow": flow.name, "units": results})
    else:
        for name, result in results.items():
            print_table(f"accel synth: {name}, flow {flow.name}", _table(result))
    return 0
