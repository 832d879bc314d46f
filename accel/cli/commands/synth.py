"""``accel synth``: area and speed of the hardware units with open tools (Yosys, nextpnr-ecp5), and the
whole accelerator's area (``--unit accel``: gates and SRAM bits, :func:`accel.synth.accelerator_area`)."""

import sys
import time

from ...golden.gating import Gating
from ...hw.accelerator import BufferConfig
from ...synth import (ACCELERATOR, DEFAULT_BUILD_DIR, FLOW_NAMES, SynthInputError, accelerator_area, parse_flow,
                      synth_unit, unit_builder, unit_names)
from ..errors import UserError
from ..files import check_output_dir
from ..options import add_algorithm, add_gating, add_sparse_mode, sparse_mode
from ..report import print_json, print_table

NAME = "synth"
HELP = ("synthesize units: cmos (transistors, gate equivalents), liberty:FILE (um^2), "
        "ecp5 (LUTs, FFs, DSPs, Fmax); gated vs ungated overhead; --unit accel: the whole accelerator "
        "(cmos: gates of its logic and blocks, SRAM bits of its buffers)")

#: The options that choose the accelerator's configuration (``--unit accel`` only).
_CONFIG_OPTIONS = ("algo", "format", "sparse_mode", "gating")

# what the human table shows per flow, in this order
_SHOWN = {
    "cmos": ("ge", "transistors", "num_cells"),
    "liberty": ("area_um2", "sequential_area_um2", "num_cells"),
    "ecp5": ("luts", "ffs", "dsps", "carry_cells", "fmax_mhz", "device", "out_of_context", "pnr"),
}


def add_arguments(parser):
    parser.add_argument("--unit", metavar="NAME", action="append",
                        help=f"unit to synthesize (repeatable; default: every unit, hmma takes long), or "
                             f"{ACCELERATOR}: the whole accelerator (cmos; never part of the default)")
    parser.add_argument("--flow", default="cmos", metavar="FLOW", help=f"one of {', '.join(FLOW_NAMES)}")
    parser.add_argument("--no-pnr", action="store_true",
                        help="ecp5: synthesis only, no place and route (no Fmax); for large units")
    parser.add_argument("--build-dir", default=str(DEFAULT_BUILD_DIR), metavar="DIR",
                        help=f"where the tools work (default {DEFAULT_BUILD_DIR})")
    add_algorithm(parser, default=None)
    add_sparse_mode(parser)
    add_gating(parser, default=None, help="--unit accel: its zero gating style (default hold)")
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


def _accel_table(result):
    """The whole accelerator: GE by part, SRAM bits by buffer."""
    rows = {"configuration": result["configuration"], "ge": result["ge"], "flip_flops": result["flip_flops"],
            "top logic": {key: result["top"][key] for key in ("ge", "flip_flops", "seconds", "cached")}}
    for name, block in result["blocks"].items():
        rows[name] = {"component": block["component"],
                      **{key: block[key] for key in ("ge", "flip_flops", "seconds", "cached")}}
    rows["sram_bits"] = result["sram"]["bits"]
    rows["sram"] = {name: f"{entry['depth']} x {entry['width']} = {entry['bits']} bits "
                          f"({entry['read_ports']}R {entry['write_ports']}W)"
                    for name, entry in result["sram"]["buffers"].items()}
    rows["build_dir"] = result["build_dir"]
    return rows


def _buffers(args, units):
    """The accelerator's configuration from --algo, --format, --sparse-mode and --gating (None without --unit
    accel, where they are refused)."""
    given = [f"--{option.replace('_', '-')}" for option in _CONFIG_OPTIONS if getattr(args, option) is not None]
    if ACCELERATOR not in units:
        if given:
            raise UserError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to --unit {ACCELERATOR}")
        return None
    algo, fmt = args.algo or "direct", args.format or "dense"
    try:
        return BufferConfig().running(algo=algo, weight_format=fmt, gating=args.gating or Gating.HOLD,
                                      sparse_mode=sparse_mode(fmt, algo, args.sparse_mode))
    except ValueError as error:
        raise UserError(f"--unit {ACCELERATOR}: {error}") from None


def run(args):
    try:
        flow = parse_flow(args.flow)
        if args.no_pnr and flow.name != "ecp5":
            raise SynthInputError(f"--no-pnr only applies to the ecp5 flow, not --flow {flow.name}")
        units = args.unit or unit_names()
        for name in units:           # an unknown unit is refused before any work
            if name == ACCELERATOR:
                if flow.name != "cmos":
                    raise SynthInputError(f"--unit {ACCELERATOR} is measured with the cmos flow only, "
                                          f"not --flow {flow.name}")
                continue
            try:
                unit_builder(name)
            except SynthInputError as error:
                raise SynthInputError(f"{error}; or {ACCELERATOR} (the whole accelerator)") from None
        buffers = _buffers(args, units)
        check_output_dir(args.build_dir, "--build-dir")
        results = {}
        start = time.monotonic()
        for name in dict.fromkeys(units):
            if name == ACCELERATOR:
                results[name] = accelerator_area(buffers, build_dir=args.build_dir, progress=_progress)
                continue
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
            print_table(f"accel synth: {name}, flow {flow.name}",
                        _accel_table(result) if name == ACCELERATOR else _table(result))
    return 0
