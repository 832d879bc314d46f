"""``accel winograd``: the Winograd transforms' accuracy against float64, multiplier slots, and what the
transforms do to zeros (docs/winograd.md)."""

from ...golden import schedule, winograd
from ..files import check_plot, save_plot
from ..options import bounded_int
from ..plots import plot_winograd_accuracy
from ..report import print_columns, print_json

NAME = "winograd"
HELP = ("Winograd F(2x2,3x3) and F(4x4,3x3): error against a float64 direct convolution for every algorithm, "
        "point set and input-transform precision on random and ReLU-like data, multiplier slots against "
        "direct convolution, and the zeros of weights and activations before and after the transforms")


def add_arguments(parser):
    parser.add_argument("--seed", type=bounded_int(0), default=0, help="random seed of the layers (default 0)")
    parser.add_argument("--plot", metavar="PNG", help="also draw the accuracy of every algorithm into PNG")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")


def slots(chans=16, filters=16, out=32):
    """Multiplier slots of each algorithm on a layer whose sizes divide evenly, counted from the schedule."""
    counts = {"direct": schedule.multiplier_slots(schedule.gemm_schedule(
        schedule.direct_gemms(chans, filters, out, out)))}
    for m in (2, 4):
        counts[f"winograd{m}"] = schedule.multiplier_slots(schedule.gemm_schedule(
            schedule.winograd_gemms(chans, filters, out, out, m)))
    return {"layer": {"C": chans, "K": filters, "H": out + 2, "W": out + 2}, "slots": counts,
            "fewer_than_direct": {name: counts["direct"] / n for name, n in counts.items() if name != "direct"}}


def run(args):
    if args.plot is not None:
        check_plot(args.plot)
    result = {"layers": [dict(zip("CKHW", layer)) for layer in winograd.LAYERS], "seed": args.seed,
              "accuracy": winograd.accuracy(seed=args.seed), "multiplies": slots(),
              "sparsity": winograd.sparsity(seed=args.seed)}
    if args.plot:
        save_plot(args.plot, lambda stream: plot_winograd_accuracy(result["accuracy"], stream))
    if args.json:
        print_json(result)
        return 0
    for kind, rows in result["accuracy"].items():
        print_columns(f"error against float64 direct convolution, {kind} data (layers C,K,H,W: "
                      f"{', '.join(','.join(map(str, layer)) for layer in winograd.LAYERS)})",
                      {label: {"max abs": f"{e['max_abs']:.3e}", "rel rms": f"{e['rel_rms']:.3e}"}
                       for label, e in rows.items()})
    multiplies = result["multiplies"]
    print_columns(f"multiplier slots, C={multiplies['layer']['C']} K={multiplies['layer']['K']} "
                  f"{multiplies['layer']['H']}x{multiplies['layer']['W']}",
                  {name: {"slots": n, "fewer than direct": multiplies["fewer_than_direct"].get(name, 1.0)}
                   for name, n in multiplies["slots"].items()})
    sparse = result["sparsity"]
    print(f"zeros: weights g {sparse['g']:.1%}, activations d {sparse['d']:.1%}; useful multiplies per output: "
          f"direct {sparse['direct_useful_per_output']:.2f} of {sparse['direct_slots_per_output']}")
    print_columns("after the transforms", {name: {"zeros in U": f"{v['U']:.1%}", "zeros in V": f"{v['V']:.1%}",
                                                  "useful per output": v["useful_per_output"],
                                                  "slots per output": v["slots_per_output"]}
                                           for name, v in sparse.items() if isinstance(v, dict)})
    return 0
