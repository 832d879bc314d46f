"""``accel run``: the main job. The embedded digits CNN classifies its stored test images on the accelerator
in every configuration (dense baseline without gating, zero gating, each compressed weight format,
Winograd F(2x2) and F(4x4)), every layer checked bit for bit against golden; a report folder is left.
A shipped topology (``--workload tiny``, ...) runs one pass of its layers with seeded random data instead."""

import functools
import json
import os
import shlex
import sys

from ...energy.network import configuration_summary, topology_summary
from ...energy.sweep import open_client
from ...golden.network import float32_predictions, load
from ...sim.network import BASELINE, CONFIGURATIONS, check_topology, topology_data
from ...sim.topology import builtin_topologies, read_topology, topology_path
from ...synth.area_record import recorded_areas
from ...synth.workspace import write_all_atomic
from ..area import AREA_HELP, configuration_areas
from ..errors import UserError
from ..files import check_output_dir
from ..network_report import (best_configuration, plot_cycles_energy, plot_energy_accuracy, plot_idle,
                              report_markdown)
from ..options import add_backend, bounded_int
from ..report import Progress, print_columns, print_json, require_bit_exact
from ..workloads import DIGITS, DIGITS_AREAS, DIGITS_BUFFERS

NAME = "run"
HELP = ("the main job: a pruned CNN classifies handwritten digits on the accelerator in every configuration, "
        "bit-exact against golden; writes a report folder")

WORKLOADS = {"digits": (DIGITS, "the digits CNN (scikit-learn's 8x8 digits): two pruned 3x3 conv layers "
                                "with ReLU, a fully connected classifier")}

#: Shipped SCALE-Sim topologies ``--workload`` also takes (the digits one is the trained CNN above).
TOPOLOGIES = [name for name in builtin_topologies() if name not in WORKLOADS]

#: The files ``accel run`` writes into its --out folder (a topology has no classes: no accuracy plot).
OUTPUTS = ("results.json", "report.md", "cycles_energy.png", "energy_accuracy.png", "idle.png")
TOPOLOGY_OUTPUTS = tuple(name for name in OUTPUTS if name != "energy_accuracy.png")

#: Default images: what the Amaranth simulator runs in every configuration in a few minutes
#: (docs/results.md); --images 64 runs all the stored ones.
DEFAULT_IMAGES = 8

def add_arguments(parser):
    parser.add_argument("--workload", default="digits",
                        help=f"digits (default: the trained CNN), or a shipped topology run once with seeded random "
                             f"data (2:4 weights, half the activations zero): {', '.join(TOPOLOGIES)}")
    parser.add_argument("--images", type=bounded_int(1, 64),
                        help=f"digits: how many of the stored test images to classify (default {DEFAULT_IMAGES}, "
                             f"at most 64)")
    parser.add_argument("--config", nargs="+", choices=list(CONFIGURATIONS), metavar="NAME",
                        help=f"run only these configurations (default all: {', '.join(CONFIGURATIONS)}); "
                             f"the baseline always runs")
    add_backend(parser)
    parser.add_argument("--workers", type=bounded_int(1, 64), metavar="N",
                        help="configurations run at once, in as many worker processes on a local Dask cluster "
                             "(default: one per CPU; 1 runs them one after the other in this process)")
    parser.add_argument("--out", metavar="DIR", default="accel-out",
                        help="the report folder: " + ", ".join(OUTPUTS) + " (default: ./accel-out)")
    parser.add_argument("--area", action="store_true", help=AREA_HELP)
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _write_json(stream, obj):
    stream.write(json.dumps(obj, indent=2).encode())


def _columns(configs):
    return {name: {"bit_exact": c["bit_exact"],
                   **({"classes = golden": f"{c['agrees_with_golden']:.0%}",
                       "classes = float32": f"{c['agrees_with_float32']:.0%}", "accuracy": f"{c['accuracy']:.1%}"}
                      if "accuracy" in c else {}),
                   "cycles/inference": round(c["cycles_per_inference"]),
                   "energy/inference nJ": round(c["energy_per_inference_pj"] / 1e3, 2)}
            for name, c in configs.items()}


def _run_configurations(task, names, backend, workers):
    """{name: ``task(name, progress=...)``} for every configuration in ``names``: one after the other here
    (``workers`` = 1, with progress per accelerator), or as tasks on a local Dask cluster of ``workers``
    processes, the slowest configurations first (a line as each finishes)."""
    if workers == 1:
        return {name: task(name, progress=Progress(
                    f"accel run: {name} ({CONFIGURATIONS[name].description}), {backend}, accelerators simulated"))
                for name in names}
    from dask.distributed import as_completed     # here: slow to import, and only a parallel run needs it
    progress = Progress(f"accel run: {len(names)} configurations on {workers} workers ({backend}), finished",
                        interval=0)
    done = {}
    with open_client(workers) as client:
        futures = {client.submit(task, name, key=f"accel-run-{name}", pure=False): name
                   for name in sorted(names, key=_expected_time, reverse=True)}
        progress(0, len(names))
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            progress(len(done), len(names))
    return {name: done[name] for name in names}


def _expected_time(name):
    """Rough simulation time of a configuration, for the order the tasks start in: the Winograd units and
    the decompressor make the largest designs."""
    config = CONFIGURATIONS[name]
    return (config.algo == "winograd4", config.algo != "direct", config.fmt != "dense")


def _digits(args, names, workers):
    """(result fields, {name: summary}, command) of the trained digits CNN."""
    path, description = WORKLOADS[args.workload]
    model = load(path)
    images = args.images or DEFAULT_IMAGES
    if images > len(model.images):
        raise UserError(f"--images {images}: the {args.workload} workload stores {len(model.images)} images")
    task = functools.partial(configuration_summary, model, images=images, backend=args.backend,
                             buffers=DIGITS_BUFFERS)
    configs = _run_configurations(task, names, args.backend, workers)
    accuracy = (float32_predictions(model.images[:images], model) == model.labels[:images]).mean()
    fields = {"kind": "classifier", "description": description, "images": images,
              "float32_accuracy": float(accuracy)}
    return fields, configs, ["--images", str(images)]


def _topology(args, names, workers):
    """(result fields, {name: summary}, command) of one pass through a shipped topology's layers."""
    if args.images is not None:
        raise UserError(f"--images: the {args.workload} topology has no images (it runs one pass with random data)")
    try:
        layers = read_topology(topology_path(args.workload))
        data = topology_data(layers)
        check_topology(layers, data, names)
    except ValueError as error:
        raise UserError(f"--workload {args.workload}: {error}") from None
    task = functools.partial(topology_summary, layers, data=data, backend=args.backend, buffers=None)
    configs = _run_configurations(task, names, args.backend, workers)
    fields = {"kind": "topology", "images": 1,
              "description": f"the {args.workload} topology ({len(layers)} 3x3 conv layers), one pass with seeded "
                             f"random data: 2:4-pruned weights, ReLU-like activations, half of them zero"}
    return fields, configs, []


def _areas(names, classifier, synthesize, record=DIGITS_AREAS):
    """{name: area} of the accelerator that runs each configuration's conv layers: synthesized
    (``synthesize``: ``--area``), else from the digits workload's ``record`` where it holds this exact
    hardware (a configuration it lacks is left out; a topology has no record)."""
    buffers = {name: CONFIGURATIONS[name].buffers(DIGITS_BUFFERS if classifier else None) for name in names}
    if synthesize:
        return {name: {**area, "source": "synthesis"} for name, area in configuration_areas(
            buffers, progress=lambda line: print(f"accel run: {line}", file=sys.stderr, flush=True)).items()}
    return recorded_areas(buffers, record) if classifier else {}


def run(args):
    if args.workload not in WORKLOADS and args.workload not in TOPOLOGIES:
        raise UserError(f"unknown workload {args.workload!r}; choose one of: {', '.join([*WORKLOADS, *TOPOLOGIES])}")
    classifier = args.workload in WORKLOADS
    outputs = OUTPUTS if classifier else TOPOLOGY_OUTPUTS
    check_output_dir(args.out, files=outputs)
    names = [BASELINE] + [n for n in (args.config or CONFIGURATIONS) if n != BASELINE]
    workers = min(args.workers or os.cpu_count() or 1, len(names))
    areas = _areas(names, classifier, args.area)       # before the long simulation
    fields, configs, command = (_digits if classifier else _topology)(args, names, workers)
    for name, area in areas.items():
        configs[name]["area"] = area
    best, why = best_configuration(configs, BASELINE)
    useful = configs.get("hold", configs[BASELINE])
    base = configs[BASELINE]
    base_mul = base["energy_pj"]["by_unit"].get("mul", 0.0) / base["macs"]
    result = {
        "workload": args.workload, **fields, "backend": args.backend,
        "command": shlex.join(["accel", "run", "--workload", args.workload, *command, "--backend", args.backend,
                               *(["--config", *args.config] if args.config else []),
                               *(["--area"] if args.area else [])]),
        "bit_exact": all(c["bit_exact"] for c in configs.values()),
        "baseline": BASELINE, "best": best, "best_why": why,
        "hold_per_useful_multiply": useful["mul_pj_per_useful_mac"] / base_mul if base_mul else 0.0,
        "configurations": configs,
    }
    best_config = configs[best or BASELINE]
    result.update({key: best_config[key] for key in ("cycles", "macs", "macs_gated", "toggles", "energy_pj")})
    writers = {"results.json": lambda s: _write_json(s, result),
               "report.md": lambda s: s.write(report_markdown(result).encode()),
               "cycles_energy.png": lambda s: plot_cycles_energy(result, s),
               "energy_accuracy.png": lambda s: plot_energy_accuracy(result, s),
               "idle.png": lambda s: plot_idle(result, s)}
    try:
        os.makedirs(args.out, exist_ok=True)
        write_all_atomic({os.path.join(args.out, name): writers[name] for name in outputs})
    except OSError as error:
        raise UserError(f"--out {args.out}: cannot write ({error.strerror or error})") from None
    shown = ("cycles", "energy_pj", "bit_exact", "agrees_with_golden", "agrees_with_float32", "accuracy")
    if args.json:
        print_json({key: value for key, value in result.items() if key != "configurations"}
                   | {"configurations": {name: {k: c[k] for k in shown if k in c} for name, c in configs.items()}})
    else:
        runs = f"{result['images']} images" if classifier else "one pass"
        print_columns(f"accel run: {result['description']}; {runs} ({args.backend})", _columns(configs))
        print(f"best: {best} ({why})")
        print(f"wrote {', '.join(os.path.join(args.out, name) for name in outputs)}")
    require_bit_exact(result["bit_exact"])
    return 0
