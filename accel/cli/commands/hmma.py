"""``accel hmma``: run a batch of HMMA instructions from OPS.npz on the hardware model, write RES.npz."""

import numpy as np

from ...energy.model import report
from ...golden import fp
from ...golden.gating import Gating
from ...hw.config import MAX_ARRAY_DIM, AcceleratorConfig
from ...sim.hmma import check_operands, run_hmma
from ..errors import UserError
from ..files import check_output, load_npz, save_npz
from ..options import add_backend, add_gating
from ..report import Progress, print_summary, require_bit_exact
from ..waveform import add_waveform, waveform_from, waveform_summary, written

NAME = "hmma"
HELP = ("D = A·B + C on the HMMA array: OPS.npz (a float16 [batch,m,k], b float16 [batch,k,n], c float32 "
        "[batch,m,n]; the tensor core's shape is [batch,4,4]) -> RES.npz (d float32 [batch,m,n]). With the "
        "default gating hold a product with a zero operand is skipped, so 0 x Inf gives C, not NaN "
        "(docs/numerics.md); --gating and or none give IEEE results")

#: The most instructions one batch may hold (the Verilator backend's peak memory grows with it: 3.7 GB at
#: this many 4x4x4 instructions).
MAX_BATCH = 1_000_000


def add_arguments(parser):
    parser.add_argument("--in", dest="inp", required=True, metavar="OPS.npz", help="operands a, b, c")
    parser.add_argument("--out", required=True, metavar="RES.npz", help="where d float32 [batch,m,n] goes")
    add_backend(parser)
    add_gating(parser, default=None)
    parser.add_argument("--no-zero-gating", action="store_true", help="same as --gating none")
    add_waveform(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def gating_from(args):
    """--gating and --no-zero-gating together: one answer, or a UserError if they contradict."""
    if args.no_zero_gating and args.gating not in (None, Gating.NONE):
        raise UserError(f"--no-zero-gating contradicts --gating {args.gating}")
    return Gating.NONE if args.no_zero_gating else args.gating or Gating.HOLD


def _check_sizes(path):
    """Refuse a batch or an array shape out of bounds from the arrays' headers, before their data is read."""
    def check(shapes):
        batch, m, k = shapes["a"]
        n = shapes["b"][2]
        if batch > MAX_BATCH:
            raise UserError(f"{path}: a batch of {batch:,} instructions is too large (at most {MAX_BATCH:,})")
        if max(m, n, k) > MAX_ARRAY_DIM:
            raise UserError(f"{path}: an array of shape m,n,k = {m},{n},{k} is too large to build (each of m, n, k "
                            f"at most {MAX_ARRAY_DIM}; the accelerator's array is 4,4,4)")
    return check


def run(args):
    gating = gating_from(args)
    check_output(args.out, inputs=[args.inp])
    waveform = waveform_from(args, inputs=[args.inp], outputs=[args.out])
    arrays = load_npz(args.inp, {"a": (np.float16, 3), "b": (np.float16, 3), "c": (np.float32, 3)},
                      check_shapes=_check_sizes(args.inp))
    a, b, c = (fp.to_bits(arrays[key], fmt) for key, fmt in (("a", fp.FP16), ("b", fp.FP16), ("c", fp.FP32)))
    try:
        check_operands(a, b, c)
        AcceleratorConfig(m=a.shape[1], n=b.shape[2], k=a.shape[2], gating=gating)
    except ValueError as error:
        raise UserError(f"{args.inp}: {error}") from None
    with written(waveform) as wave:
        result = run_hmma(a, b, c, gating=gating, backend=args.backend, waveform=wave,
                          progress=Progress(f"accel hmma: {args.backend}, instructions done"))
    save_npz(args.out, d=fp.from_bits(result.d, fp.FP32))
    summary = {**result.counters(), **report(result.toggles)}
    if waveform is not None:
        summary["waveform"] = waveform_summary(waveform, result.cycles)
    print_summary(f"accel hmma: {result.instructions} instructions -> {args.out}", summary, args.json)
    require_bit_exact(result.bit_exact)
    return 0
