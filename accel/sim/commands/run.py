"""``accel run``: the main job on an embedded default workload (until the top level exists: sparse HMMA)."""

import json
import os

from ...golden.hmma import GATING_STYLES
from ..backends import BACKENDS
from ..errors import CheckFailed, UserError
from ..hmma import run_hmma
from ..npzio import check_output_dir, write_all_atomic
from ..report import Progress, print_columns, print_json
from ..workloads import hmma_operands

NAME = "run"
HELP = "run the main job on an embedded workload, check it against golden, report cycles and MACs"

# name -> (description, operand generator arguments)
WORKLOADS = {
    "hmma-sparse": ("HMMA instructions at 10% non-zero weights x 30% non-zero activations",
                    dict(n=16, weight_density=0.1, act_density=0.3, seed=2018)),
    "hmma-dense": ("HMMA instructions on dense random operands",
                   dict(n=16, weight_density=1.0, act_density=1.0, seed=2018)),
}

#: The files ``accel run`` writes into its --out folder.
OUTPUTS = ("results.json", "energy.png")


def add_arguments(parser):
    parser.add_argument("--workload", default="hmma-sparse", help=f"one of: {', '.join(WORKLOADS)}")
    parser.add_argument("--backend", default="pysim", choices=list(BACKENDS))
    parser.add_argument("--out", metavar="DIR", default="accel-out",
                        help="where results.json and energy.png go (default: ./accel-out)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def plot_energy_by_unit(styles, path, title):
    """Stacked bars: energy of each unit class per gating style, with useful MACs in the labels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    units = list(dict.fromkeys(u for s in styles.values() for u in s["energy_pj"]["by_unit"]))
    fig, ax = plt.subplots(figsize=(7, 4.2))
    bottoms = [0.0] * len(styles)
    for unit in units:
        heights = [s["energy_pj"]["by_unit"].get(unit, 0.0) for s in styles.values()]
        ax.bar(list(styles), heights, bottom=bottoms, label=unit)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    for x, style in enumerate(styles.values()):
        ax.annotate(f"{style['macs_useful']}/{style['macs']} useful MACs\n{style['macs_gated']} skipped",
                    (x, bottoms[x]), ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("energy per run (pJ)")
    ax.set_xlabel("zero gating style")
    ax.set_ylim(0, max(bottoms) * 1.2)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _write_json(path, obj):
    with open(path, "w") as stream:
        json.dump(obj, stream, indent=2)


def run(args):
    if args.workload not in WORKLOADS:
        raise UserError(f"unknown workload {args.workload!r}; choose one of: {', '.join(WORKLOADS)}")
    check_output_dir(args.out, files=OUTPUTS)
    results_path, plot_path = (os.path.join(args.out, name) for name in OUTPUTS)
    description, generator = WORKLOADS[args.workload]
    a, b, c = hmma_operands(**generator)
    styles = {}
    for gating in GATING_STYLES:
        progress = Progress(f"accel run: {args.workload}, gating {gating}, {args.backend}, instructions done")
        styles[gating] = run_hmma(a, b, c, gating=gating, backend=args.backend, progress=progress).counters()
    result = {"workload": args.workload, "description": description, "backend": args.backend,
              "bit_exact": all(s["bit_exact"] for s in styles.values()), **styles["hold"], "by_gating": styles}
    try:
        os.makedirs(args.out, exist_ok=True)
        write_all_atomic({results_path: lambda path: _write_json(path, result),
                          plot_path: lambda path: plot_energy_by_unit(styles, path, description)})
    except OSError as error:
        raise UserError(f"--out {args.out}: cannot write ({error.strerror or error})") from None
    if args.json:
        print_json(result)
    else:
        print_columns(f"accel run: {description} ({args.backend})", styles)
        print(f"wrote {results_path} and {plot_path}")
    if not result["bit_exact"]:
        raise CheckFailed("hardware and golden model disagree (bit_exact false); please report this")
    return 0
