"""``accel conv``: one 3x3 convolution layer (stride 1, valid) on the accelerator, cycle by cycle."""

import numpy as np

from ...energy.layers import layer_summary
from ...golden import acw, fp
from ...hw.accelerator import BufferConfig
from ...sim.conv import check_layer, layer_weights, run_conv
from ..errors import UserError
from ..files import check_output, load_npz, read_file, save_npz
from ..options import add_algorithm, add_backend, add_gating, add_sparse_mode, sparse_mode
from ..report import Progress, print_summary, require_bit_exact
from ..waveform import add_waveform, waveform_from, waveform_summary, written

NAME = "conv"
HELP = ("a 3x3 convolution layer (stride 1, valid) on the accelerator: LAYER.npz (x float16 [C,H,W], w float16 "
        "[K,C,3,3]) -> RES.npz (y float32 [K,H-2,W-2]); weights dense or compressed (--format, or a .acw file "
        "with --weights); bit-exact against golden's same schedule, accuracy against float64")

def add_arguments(parser):
    parser.add_argument("--in", dest="inp", required=True, metavar="LAYER.npz", help="x (and w, unless --weights)")
    parser.add_argument("--out", required=True, metavar="RES.npz", help="where y float32 [K,H-2,W-2] goes")
    parser.add_argument("--weights", metavar="W.acw", help="compressed weights (accel compress); its format is used")
    add_algorithm(parser)
    add_sparse_mode(parser)
    add_gating(parser)
    add_backend(parser)
    add_waveform(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


#: The largest x ``accel conv`` reads (a 512-channel 362×362 layer): checked before the arrays are loaded.
MAX_X_VALUES = 1 << 26


def _layer(args):
    """x, w (FP16 bit patterns) and the weight format, from LAYER.npz and the optional .acw file."""
    def check(shapes):       # before the arrays are read: a layer larger than the buffers runs in passes
        if int(np.prod(shapes["x"], dtype=object)) > MAX_X_VALUES:
            raise UserError(f"{args.inp}: x of shape {shapes['x']} holds more than {MAX_X_VALUES:,} FP16 values, "
                            f"the most accel conv takes")
    spec = {"x": (np.float16, 3)} if args.weights else {"x": (np.float16, 3), "w": (np.float16, 4)}
    arrays = load_npz(args.inp, spec, check_shapes=check)
    fmt = args.format
    if args.weights:
        data = read_file(args.weights)
        try:
            w = acw.loads(data)
        except acw.AcwError as error:
            raise UserError(f"{args.weights}: {error}") from None
        stored = acw.FORMAT_BY_CODE[acw.header(data)["format"]].name
        if fmt not in (None, stored):
            raise UserError(f"--format {fmt} contradicts {args.weights}, which holds {stored} weights")
        fmt = stored
        if w.shape[1:] != (arrays["x"].shape[0], 3, 3):
            raise UserError(f"{args.weights}: weights of shape {list(w.shape)} do not fit x of shape "
                            f"{list(arrays['x'].shape)} (expected [K, {arrays['x'].shape[0]}, 3, 3])")
    else:
        w = arrays["w"]
    return fp.to_bits(arrays["x"], fp.FP16), fp.to_bits(w, fp.FP16), fmt or "dense"


def run(args):
    inputs = [args.inp] + ([args.weights] if args.weights else [])
    check_output(args.out, inputs=inputs)
    waveform = waveform_from(args, inputs=inputs, outputs=[args.out])
    x, w, fmt = _layer(args)
    mode = sparse_mode(fmt, args.algo, args.sparse_mode)
    buffers = BufferConfig(weight_format=fmt, algo=args.algo, sparse_mode=mode)
    try:
        check_layer(x, w)
    except ValueError as error:
        raise UserError(f"{args.inp}: {error}") from None
    if buffers.compressed or buffers.winograd_m:    # the weights must suit the format (and the transform)
        try:
            layer_weights(w, buffers, check_fit=False)
        except ValueError as error:
            what = "weights" if buffers.winograd_m is None else \
                f"weights after the {args.algo} filter transform (U = G·g·Gᵀ, indexed by Winograd point)"
            raise UserError(f"{args.weights or args.inp}: {fmt} {what}: {error}") from None
    progress = Progress(f"accel conv: {args.backend}, running")
    progress(0, 1)
    with written(waveform) as wave:
        result = run_conv(x, w, algo=args.algo, fmt=fmt, gating=args.gating, sparse_mode=mode, backend=args.backend,
                          waveform=wave)
    progress(1, 1)
    save_npz(args.out, y=fp.from_bits(result.y, fp.FP32))
    summary = layer_summary(x, w, result, algo=args.algo, fmt=fmt, buffers=buffers)
    if waveform is not None:
        summary["waveform"] = waveform_summary(waveform, result.stream_cycles)
    weights = f"{fmt} weights" + (f" ({mode})" if fmt == "nm24" else "")
    print_summary(f"accel conv: {args.algo}, {weights}, gating {args.gating} -> {args.out}", summary, args.json)
    require_bit_exact(result.bit_exact)
    return 0
