"""``accel decompress``: a compressed ``.acw`` file -> dense FP16 conv weights (W.npz, ``w`` [K,C,R,S])."""

from ...golden import acw
from ..errors import UserError
from ..files import check_output, read_file, save_npz

NAME = "decompress"
HELP = ("expand a compressed W.acw back to W.npz (w float16 [K,C,R,S]; zeros of either sign come back as +0); "
        "a corrupt, truncated or unknown file is refused")


def add_arguments(parser):
    parser.add_argument("--in", dest="inp", required=True, metavar="W.acw", help="the compressed weights")
    parser.add_argument("--out", required=True, metavar="W.npz", help="where w float16 [K,C,R,S] goes")


def run(args):
    check_output(args.out, inputs=[args.inp])
    try:
        w = acw.loads(read_file(args.inp))
    except acw.AcwError as error:
        raise UserError(f"{args.inp}: {error}") from None
    save_npz(args.out, w=w)
    print(f"accel decompress: {args.inp} -> {args.out}: w float16 {list(w.shape)}")
    return 0
