"""``accel formats``: compressed size and decompressor throughput of each sparse format over weight density."""

from ...golden import sparse
from ..errors import UserError
from ..files import check_plot, save_plot
from ..options import bounded_int
from ..plots import plot_formats
from ..report import print_json

NAME = "formats"
HELP = ("bits per weight (dense FP16 = 16) and decompressor tiles per clock of bitmask, rle and nm24 over "
        "weight densities 0-100% (random 64x64x3x3 weights pruned by magnitude); docs/formats.md")


def add_arguments(parser):
    parser.add_argument("--width", type=bounded_int(64, 1024), default=64, metavar="BITS",
                        help="the decompressor's input word width, a multiple of 8 (default 64)")
    parser.add_argument("--seed", type=bounded_int(0), default=0, help="random seed of the weights (default 0)")
    parser.add_argument("--plot", metavar="PNG", help="also draw the two curves into PNG")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args):
    if args.width % 8:
        raise UserError(f"--width must be a multiple of 8, not {args.width}")
    if args.plot is not None:
        check_plot(args.plot)
    rows = sparse.density_sweep(width=args.width, seed=args.seed)
    if args.plot:
        save_plot(args.plot, lambda stream: plot_formats(rows, args.width, stream))
    if args.json:
        print_json({"width": args.width, "seed": args.seed, "rows": rows})
        return 0
    by = {(r["format"], r["density"]): r for r in rows}
    names = list(sparse.FORMATS)
    print(f"bits per weight (dense FP16 = 16) and decompressor tiles per clock ({args.width}-bit input)")
    print(f"{'density':>8} " + " ".join(f"{n + ' bits/w':>14}" for n in names) + " "
          + " ".join(f"{n + ' tiles/clk':>17}" for n in names))
    for density in sparse.DENSITIES:
        cells = [by.get((n, density)) for n in names]
        print(f"{density:>8.0%} " + " ".join(f"{c['bits_per_weight']:>14.3f}" if c else f"{'-':>14}" for c in cells)
              + " " + " ".join(f"{c['tiles_per_cycle']:>17.3f}" if c else f"{'-':>17}" for c in cells))
    return 0
