"""``accel hmma``: run a batch of HMMA instructions from OPS.npz on the hardware model, write RES.npz."""

import numpy as np

from ...golden import fp
from ...golden.hmma import GATING_STYLES
from ..backends import BACKENDS
from ..errors import CheckFailed, UserError
from ..hmma import MAX_ARRAY_DIM, check_operands, run_hmma
from ..npzio import check_output, load_npz, save_npz
from ..report import Progress, print_json, print_table

NAME = "hmma"
HELP = ("D = A·B + C on the HMMA array: OPS.npz (a float16 [N,M,K], b float16 [N,K,P], c float32 [N,M,P]; "
        "the tensor core's shape is [N,4,4]) -> RES.npz (d float32 [N,M,P])")


def add_arguments(parser):
    parser.add_argument("--in", dest="inp", required=True, metavar="OPS.npz", help="operands a, b, c")
    parser.add_argument("--out", required=True, metavar="RES.npz", help="where d float32 [N,M,P] goes")
    parser.add_argument("--backend", default="pysim", choices=list(BACKENDS))
    parser.add_argument("--gating", choices=GATING_STYLES, default=None,
                        help="zero gating style (default hold: frozen lines)")
    parser.add_argument("--no-zero-gating", action="store_true", help="same as --gating none")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def gating_from(args):
    """--gating and --no-zero-gating together: one answer, or a UserError if they contradict."""
    if args.no_zero_gating and args.gating not in (None, "none"):
        raise UserError(f"--no-zero-gating contradicts --gating {args.gating}")
    return "none" if args.no_zero_gating else args.gating or "hold"


def run(args):
    gating = gating_from(args)
    check_output(args.out, inputs=[args.inp])
    arrays = load_npz(args.inp, {"a": (np.float16, 3), "b": (np.float16, 3), "c": (np.float32, 3)})
    a, b, c = (fp.to_bits(arrays[key], fmt) for key, fmt in (("a", fp.FP16), ("b", fp.FP16), ("c", fp.FP32)))
    try:
        check_operands(a, b, c)
    except ValueError as error:
        raise UserError(f"{args.inp}: {error}") from None
    if max(a.shape[1:] + b.shape[2:]) > MAX_ARRAY_DIM:
        raise UserError(f"{args.inp}: an array of shape M,N,K = {a.shape[1]},{b.shape[2]},{a.shape[2]} is too large "
                        f"to build (each of M, N, K at most {MAX_ARRAY_DIM}; the accelerator's array is 4,4,4)")
    result = run_hmma(a, b, c, gating=gating, backend=args.backend,
                      progress=Progress(f"accel hmma: {args.backend}, instructions done"))
    save_npz(args.out, d=fp.from_bits(result.d, fp.FP32))
    summary = result.counters()
    if args.json:
        print_json(summary)
    else:
        print_table(f"accel hmma: {result.instructions} instructions -> {args.out}", summary)
    if not result.bit_exact:
        raise CheckFailed("hardware and golden model disagree (bit_exact false); please report this")
    return 0
