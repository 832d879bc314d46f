"""``accel run``: the main job on an embedded default workload (for now sparse HMMA instructions; the digits
CNN of :mod:`accel.cli.workloads` takes its place once the accelerator runs all its configurations)."""

import json
import os

from ...energy.model import report
from ...golden.gating import Gating
from ...golden.operands import hmma_operands
from ...sim.hmma import run_hmma
from ...synth.workspace import write_all_atomic
from ..errors import UserError
from ..files import check_output_dir
from ..options import add_backend
from ..plots import plot_energy_by_unit
from ..report import Progress, print_columns, print_json, require_bit_exact

NAME = "run"
HELP = "run the main job on an embedded workload, check it against golden, report cycles and MACs"

# name -> (description, operand generator arguments)
WORKLOADS = {
    "hmma-sparse": ("HMMA instructions at 10% non-zero weights x 30% non-zero activations",
                    dict(batch=16, weight_density=0.1, act_density=0.3, seed=2018)),
    "hmma-dense": ("HMMA instructions on dense random operands",
                   dict(batch=16, weight_density=1.0, act_density=1.0, seed=2018)),
}

#: The files ``accel run`` writes into its --out folder.
OUTPUTS = ("results.json", "energy.png")


def add_arguments(parser):
    parser.add_argument("--workload", default="hmma-sparse", help=f"one of: {', '.join(WORKLOADS)}")
    add_backend(parser)
    parser.add_argument("--out", metavar="DIR", default="accel-out",
                        help="where results.json and energy.png go (default: ./accel-out)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _write_json(stream, obj):
    stream.write(json.dumps(obj, indent=2).encode())


def run(args):
    if args.workload not in WORKLOADS:
        raise UserError(f"unknown workload {args.workload!r}; choose one of: {', '.join(WORKLOADS)}")
    check_output_dir(args.out, files=OUTPUTS)
    results_path, plot_path = (os.path.join(args.out, name) for name in OUTPUTS)
    description, generator = WORKLOADS[args.workload]
    a, b, c = hmma_operands(**generator)
    styles = {}
    for gating in Gating:
        progress = Progress(f"accel run: {args.workload}, gating {gating}, {args.backend}, instructions done")
        batch = run_hmma(a, b, c, gating=gating, backend=args.backend, progress=progress)
        styles[str(gating)] = {**batch.counters(), **report(batch.toggles)}
    result = {"workload": args.workload, "description": description, "backend": args.backend,
              "bit_exact": all(s["bit_exact"] for s in styles.values()), **styles["hold"], "by_gating": styles}
    try:
        os.makedirs(args.out, exist_ok=True)
        write_all_atomic({results_path: lambda stream: _write_json(stream, result),
                          plot_path: lambda stream: plot_energy_by_unit(styles, stream, description)})
    except OSError as error:
        raise UserError(f"--out {args.out}: cannot write ({error.strerror or error})") from None
    if args.json:
        print_json(result)
    else:
        print_columns(f"accel run: {description} ({args.backend})", styles)
        print(f"wrote {results_path} and {plot_path}")
    require_bit_exact(result["bit_exact"])
    return 0
