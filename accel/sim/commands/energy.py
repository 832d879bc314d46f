"""``accel energy``: Dally's HFMA / HDP4A / HMMA energy-and-overhead table from measured energies."""

import json

from .. import energy, studies
from ..errors import UserError

NAME = "energy"
HELP = "energy-and-overhead table (HFMA, HDP4A, HMMA) from measured toggles, beside Dally's figures"


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ops", type=int, default=64, help="random operations per unit measured (default 64)")
    parser.add_argument("--seed", type=int, default=5, help="random seed (default 5)")
    parser.add_argument("--calibrate", action="store_true",
                        help="re-derive the calibration constants (toggles per random op, gate level too)")
    parser.add_argument("--sparsity", action="store_true",
                        help="add the multiplier energy check at 10%% weights x 30%% activations")
    parser.add_argument("--gate-level", action="store_true",
                        help="add RTL-level against gate-level toggles for fp16_mul and fp32_add; with "
                             "--sparsity, also run the sparsity check on the multiplier lane's gate netlist")
    parser.add_argument("--sweep", action="store_true",
                        help="add the HMMA energy against density sweep (slow: about two minutes)")
    parser.add_argument("--plot", metavar="PNG", help="with --sweep: write the sweep plot to PNG")


def run(args):
    if args.ops < 1:
        raise UserError(f"--ops must be at least 1, not {args.ops}")
    if args.plot and not args.sweep:
        raise UserError("--plot needs --sweep")
    result = {"table": studies.overhead_table(ops=args.ops, seed=args.seed)}
    if args.calibrate:
        result["calibration"] = energy.calibrate()
    if args.sparsity:
        result["sparsity"] = studies.sparsity_check(ops=2000, gate_level=args.gate_level)
    if args.gate_level:
        from ..gatelevel import compare_unit
        result["gate_level"] = {u: compare_unit(u, n_ops=128, gating="none") for u in ("fp16_mul", "fp32_add")}
    if args.sweep:
        result["sweep"] = studies.density_sweep()
        if args.plot:
            studies.plot_sweep(result["sweep"], args.plot)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    table = result["table"]
    print(f"measured per op (random data, {table['ops']} ops): FP16 mul {table['fp16_mul_pj']:.3f} pJ, "
          f"FP32 add {table['fp32_add_pj']:.3f} pJ; overhead {energy.FETCH_DECODE_PJ:.0f} pJ per instruction")
    print(f"{'op':<6} {'math pJ':>9} {'overhead pJ':>12} {'overhead %':>11}   {'Dally pJ':>9} {'Dally %':>8}")
    for name, row in table["rows"].items():
        print(f"{name:<6} {row['math_pj']:>9.2f} {row['overhead_pj']:>12.1f} {row['overhead_pct']:>11.1f}   "
              f"{row['dally_math_pj']:>9.1f} {row['dally_overhead_pct']:>8.0f}")
    for key in ("calibration", "sparsity", "gate_level", "sweep"):
        if key in result:
            print(f"{key}: {json.dumps(result[key])}")
    return 0
