"""``accel compress``: dense FP16 conv weights (W.npz, ``w`` float16 [K,C,R,S]) -> a compressed ``.acw`` file."""

import numpy as np

from ...golden import acw, fp, sparse
from ..errors import UserError
from ..files import check_output, load_npz, write_file
from ..report import print_json, print_table

NAME = "compress"
HELP = ("compress conv weights: W.npz (w float16 [K,C,R,S]) -> W.acw in a sparse format "
        "(bitmask, rle, or nm24 for 2:4-pruned weights); docs/formats.md")

#: The most weights one file may hold (128 MiB of FP16).
MAX_WEIGHTS = 1 << 26


def add_arguments(parser):
    parser.add_argument("--in", dest="inp", required=True, metavar="W.npz", help="weights w float16 [K,C,R,S]")
    parser.add_argument("--out", required=True, metavar="W.acw", help="where the compressed file goes")
    parser.add_argument("--format", required=True, choices=list(sparse.FORMATS), help="the sparse format")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def _check_size(path):
    def check(shapes):
        weights = int(np.prod(shapes["w"], dtype=object))
        if weights == 0 or weights > MAX_WEIGHTS:
            raise UserError(f"{path}: weights of shape {shapes['w']} hold {weights:,} values; expected 1.."
                            f"{MAX_WEIGHTS:,}")
    return check


def run(args):
    check_output(args.out, inputs=[args.inp])
    w = load_npz(args.inp, {"w": (np.float16, 4)}, check_shapes=_check_size(args.inp))["w"]
    try:
        data = acw.dumps(w, args.format)
    except ValueError as error:
        raise UserError(f"{args.inp}: {error}") from None
    write_file(args.out, data)
    nonzero = int((~fp.is_zero(fp.to_bits(w, fp.FP16), fp.FP16)).sum())
    summary = {"format": args.format, "shape": list(w.shape), "weights": int(w.size), "nonzero": nonzero,
               "bytes": len(data), "bits_per_weight": round(8 * len(data) / w.size, 3),
               "dense_fp16_bytes": 2 * int(w.size)}
    if args.json:
        print_json(summary)
    else:
        print_table(f"accel compress: {args.inp} -> {args.out}", summary)
    return 0
