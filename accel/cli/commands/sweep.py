"""``accel sweep``: a design-space sweep over the conv layers of a topology, one Dask task per point."""

import argparse
import csv
import io
import json
import os
import sys

from ...energy.sweep import WorkerMismatch, check_points, flat_row, make_points, open_client, parse_array, run_sweep, summarize
from ...golden.gating import GATING_STYLES
from ...hw.accelerator import SPARSE_MODES
from ...sim.conv import ALGORITHMS, FORMATS
from ...sim.topology import builtin_topologies, read_topology, topology_path
from ...synth.workspace import write_all_atomic
from ..area import AREA_HELP, configuration_areas
from ..errors import UserError
from ..files import check_output_dir
from ..options import add_backend, bounded_int
from ..plots import plot_pareto
from ..report import Progress, format_value, print_json, require_bit_exact

NAME = "sweep"
HELP = ("a design-space sweep over the 3x3 stride-1 conv layers of a SCALE-Sim topology: every combination of "
        "algorithm, weight format, gating, weight and activation density, array shape and data seed, one Dask "
        "task per point, results cached; writes results.csv, summary.json and pareto.png into --out")

#: The files ``accel sweep`` writes into its --out folder (and the cache folder beside them).
OUTPUTS = ("results.csv", "summary.json", "pareto.png")
CACHE = "cache"


def _density(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], not {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], not {text}")
    return value


def add_arguments(parser):
    parser.add_argument("--topology", required=True, metavar="NET.csv|NAME",
                        help=f"a SCALE-Sim topology file, or one shipped with accel: {', '.join(builtin_topologies())}")
    parser.add_argument("--algo", nargs="+", choices=ALGORITHMS, default=["direct"], help="convolution algorithms")
    parser.add_argument("--format", nargs="+", choices=FORMATS, default=["dense"], help="weight formats")
    parser.add_argument("--gating", nargs="+", choices=GATING_STYLES, default=["hold"], help="zero gating styles")
    parser.add_argument("--sparse-mode", choices=SPARSE_MODES, default="skip",
                        help="how nm24 weights of a direct layer run: skip (default: on the 2:4 sparse array, 8 input "
                             "channels an instruction) or gate (expanded, the pruned zeros gated)")
    parser.add_argument("--weight-density", nargs="+", type=_density, default=[0.5], metavar="D",
                        help="kept fractions of the weights, pruned by magnitude (default 0.5)")
    parser.add_argument("--activation-density", nargs="+", type=_density, default=[0.5], metavar="D",
                        help="non-zero fractions of the (ReLU-like) activations (default 0.5)")
    parser.add_argument("--array", nargs="+", default=["4x4x4"], metavar="MxNxK",
                        help="HMMA array shapes (the accelerator runs 4x4x4 so far)")
    add_backend(parser)
    parser.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask scheduler (tcp://host:8786) "
                        "instead of a local cluster; its workers need accel installed and the --out folder")
    parser.add_argument("--workers", type=bounded_int(1, 1024), metavar="N",
                        help="worker processes of the local cluster, one thread each (default: one per CPU)")
    parser.add_argument("--seed", nargs="+", type=bounded_int(0, 2 ** 32 - 1), default=[0], metavar="S",
                        help="data seeds (each layer's data comes from the seed and its name)")
    parser.add_argument("--out", metavar="DIR", default="accel-sweep",
                        help="where results.csv, summary.json, pareto.png and the cache/ of finished points go "
                             "(default: ./accel-sweep)")
    parser.add_argument("--area", action="store_true", help=AREA_HELP)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _points(args):
    """The checked points of the sweep and the topology's name; UserError (one line) before any work."""
    try:
        path = topology_path(args.topology)
        layers = read_topology(path)
    except OSError as error:
        raise UserError(f"--topology {args.topology}: cannot read ({error.strerror or error})") from None
    except ValueError as error:
        raise UserError(str(error)) from None
    arrays = []
    for text in args.array:
        try:
            arrays.append(parse_array(text))
        except ValueError as error:
            raise UserError(f"--array: {error}") from None
    network = os.path.splitext(os.path.basename(path))[0]
    points = make_points(network, layers, algos=args.algo, formats=args.format, gatings=args.gating,
                         weight_densities=args.weight_density, act_densities=args.activation_density,
                         arrays=arrays, seeds=args.seed, backend=args.backend, sparse_mode=args.sparse_mode)
    try:
        check_points(points, source=path)
    except ValueError as error:
        raise UserError(error.args[0].replace("array ", "--array ", 1) if error.args[0].startswith("array ")
                        else str(error)) from None
    return network, points


def _csv(rows):
    columns = list(dict.fromkeys(column for row in rows for column in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue().encode()


def _watch(args):
    """Dask's progress bar on a terminal (it draws on stdout, so not with --json)."""
    if args.json or not sys.stdout.isatty():
        return None

    def watch(futures):
        from dask.distributed import progress     # here: slow to import, and only sweeps need it
        progress(futures)
        print()
    return watch


def _make_folder(out, folder):
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {out}: cannot write ({error.strerror or error})") from None


def run(args):
    if args.scheduler and args.workers:
        raise UserError("--workers sizes the local cluster; with --scheduler the scheduler's workers run the sweep")
    network, points = _points(args)
    check_output_dir(args.out, files=OUTPUTS)
    areas = _areas(points) if args.area else None     # before the points: a synthesis that fails stops here
    cache_folder = os.path.join(args.out, CACHE)
    watch = _watch(args)
    progress = None if watch else Progress(f"accel sweep: {network}, points done")
    try:
        with open_client(args.workers, args.scheduler) as client:
            _make_folder(args.out, cache_folder)       # once there is a cluster: a bad address writes nothing
            sweep = run_sweep(points, cache_folder, client, watch=watch, progress=progress)
    except WorkerMismatch as error:
        raise UserError(str(error)) from None
    except OSError as error:
        if args.scheduler:
            raise UserError(f"--scheduler {args.scheduler}: cannot connect ({error})") from None
        raise
    rows = [flat_row(result) for result in sweep.results]
    networks = summarize(points, sweep.results)
    if areas is not None:
        _add_areas(areas, points, rows, networks)
    summary = {"topology": args.topology, "points": len(points), "computed": sweep.computed, "cached": sweep.cached,
               "wall_s": round(sweep.wall_s, 3), "workers": args.workers or (None if args.scheduler else os.cpu_count()),
               "scheduler": args.scheduler, "bit_exact": all(row["bit_exact"] for row in rows),
               "cycles": sum(row["cycles"] for row in rows), "macs": sum(row["counters.macs"] for row in rows),
               "macs_gated": sum(row["counters.macs_gated"] for row in rows),
               "toggles": {"total": sum(row["toggles.total"] for row in rows)},
               "energy_pj": {"total": round(sum(row["energy_pj.total"] for row in rows), 3)},
               "networks": networks}
    paths = {name: os.path.join(args.out, name) for name in OUTPUTS}
    try:
        write_all_atomic({paths["results.csv"]: lambda stream: stream.write(_csv(rows)),
                          paths["summary.json"]: lambda stream: stream.write(json.dumps(summary, indent=2).encode()),
                          paths["pareto.png"]: lambda stream: plot_pareto(networks, stream)})
    except OSError as error:
        raise UserError(f"--out {args.out}: cannot write ({error.strerror or error})") from None
    if args.json:
        print_json(summary)
    else:
        _print(summary, paths)
    require_bit_exact(summary["bit_exact"])
    return 0


def _areas(points):
    """The area of each configuration's accelerator, by configuration label."""
    return configuration_areas({point.config_label: point.buffers for point in points},
                               progress=lambda line: print(f"accel sweep: {line}", file=sys.stderr, flush=True))


def _add_areas(areas, points, rows, networks):
    """``area.ge``, ``area.flip_flops``, ``area.sram_bits`` of each row's accelerator (rows in point order) and
    ``area`` of each configuration of the summary."""
    for point, row in zip(points, rows):
        row.update({f"area.{key}": value for key, value in areas[point.config_label].items()})
    for network in networks.values():
        for config in network["configs"]:
            config["area"] = areas[config["config"]]


def _print(summary, paths):
    for network, result in summary["networks"].items():
        print(f"accel sweep: {network}, {len(result['configs'])} configurations "
              f"(* on the Pareto front of energy vs cycles)")
        width = max(len(c["config"]) for c in result["configs"])
        area = all("area" in c for c in result["configs"])
        print(f"    {'configuration':<{width}}  {'cycles':>12}  {'energy (pJ)':>14}  bit_exact"
              + (f"  {'area (GE)':>12}  {'SRAM bits':>12}" if area else ""))
        for config in result["configs"]:
            mark = "*" if config["config"] in result["pareto"] else " "
            print(f"  {mark} {config['config']:<{width}}  {format_value(config['cycles']):>12}  "
                  f"{format_value(config['energy_pj']):>14}  {str(config['bit_exact']):<9}"
                  + (f"  {format_value(config['area']['ge']):>12}  {format_value(config['area']['sram_bits']):>12}"
                     if area else ""))
        print(f"  best: {result['best']}: {result['best_reason']}")
    print(f"{summary['points']} points: {summary['computed']} computed, {summary['cached']} from the cache")
    print(f"wrote {', '.join(paths.values())}")
    print(f"wall time: {summary['wall_s']:.1f} s")
