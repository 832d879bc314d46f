"""``accel energy``: Dally's HFMA / HDP4A / HMMA energy-and-overhead table, measured on the HMMA array."""

import json

from ...energy import studies
from ...energy.calibration import calibrate
from ...energy.gatelevel import compare_unit
from ...energy.model import FETCH_DECODE_PJ
from ...golden.gating import Gating
from ..errors import UserError
from ..files import check_plot, save_plot
from ..options import bounded_int
from ..plots import plot_sweep
from ..report import Progress, print_columns, print_json, print_table

NAME = "energy"
HELP = "energy-and-overhead table (HFMA, HDP4A, HMMA) measured on the HMMA array, beside Dally's figures"

# Past these the simulator runs for many minutes and its memory grows without bound (--ops 10**8 took 24 GB).
MAX_OPS = 100_000
MAX_INSTRUCTIONS = 100_000


def add_arguments(parser):
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ops", type=bounded_int(1, MAX_OPS), default=64,
                        help="random operations through each single unit, FP16 mul and FP32 add, for the "
                             "table (default 64; the other studies use their documented sizes)")
    parser.add_argument("--instructions", type=bounded_int(1, MAX_INSTRUCTIONS), default=16,
                        help="random instructions through the array at each shape of the table (default 16)")
    parser.add_argument("--seed", type=bounded_int(0), default=5, help="random seed of the table (default 5)")
    parser.add_argument("--calibrate", action="store_true",
                        help="re-derive the calibration constants (toggles per random op, gate level too)")
    parser.add_argument("--sparsity", action="store_true",
                        help="add the multiplier energy check at 10%% weights x 30%% activations")
    parser.add_argument("--gate-level", action="store_true",
                        help="add RTL-level against gate-level toggles for fp16_mul and fp32_add; with "
                             "--sparsity, also run the sparsity check on the multiplier lane's gate netlist "
                             "(zero delay, unit delay with glitches, and with its clock ungated or gated)")
    parser.add_argument("--array-gate-level", action="store_true",
                        help="add the 4x4x4 array at gate level on accel run's sparse workload, each gating style, "
                             "energy by lane class with the clock ungated and gated (the first run synthesizes "
                             "for about four minutes; netlists are cached under build/gates)")
    parser.add_argument("--sparse-array", action="store_true",
                        help="add 2:4 weights on the dense array (zeros gated) against the 2:4 sparse array "
                             "(zeros skipped): energy per useful multiply-add (a few minutes)")
    parser.add_argument("--sweep", action="store_true",
                        help="add the HMMA energy against density sweep (slow: about a minute)")
    parser.add_argument("--plot", metavar="PNG", help="with --sweep: write the sweep plot to PNG")


def run(args):
    if args.plot is not None:
        if not args.sweep:
            raise UserError("--plot needs --sweep")
        check_plot(args.plot)
    result = {"table": studies.overhead_table(ops=args.ops, instructions=args.instructions, seed=args.seed,
                                              progress=Progress("accel energy: Dally's table, instructions done"))}
    if args.calibrate:
        result["calibration"] = calibrate()
    if args.sparsity:
        result["sparsity"] = studies.sparsity_check(ops=2000, gate_level=args.gate_level,
                                                    progress=Progress("accel energy: sparsity check, steps done"))
    if args.gate_level:
        result["gate_level"] = {u: compare_unit(u, n_ops=128, gating=Gating.NONE) for u in ("fp16_mul", "fp32_add")}
    if args.array_gate_level:
        result["array_gate_level"] = studies.array_gate_level(
            progress=Progress("accel energy: array at gate level, gating styles done"))
    if args.sparse_array:
        result["sparse_array"] = studies.sparse_array_energy(
            progress=Progress("accel energy: sparse array, runs done"))
    if args.sweep:
        result["sweep"] = studies.density_sweep(progress=Progress("accel energy: sweep, density points done"))
        if args.plot:
            save_plot(args.plot, lambda stream: plot_sweep(result["sweep"], stream))
    if args.json:
        print_json(result)
        return 0
    table = result["table"]
    print(f"HMMA array, gating {table['gating']}, {table['instructions']} random instructions per shape "
          f"(seed {table['seed']}); pJ per instruction; math = {' + '.join(table['math_classes'])} switching; "
          f"overhead = {FETCH_DECODE_PJ:.0f} pJ fetch/decode per instruction (Dally)")
    print(f"one unit alone ({table['ops']} random ops): FP16 mul {table['fp16_mul_pj']:.3f} pJ, "
          f"FP32 add {table['fp32_add_pj']:.3f} pJ")
    print(f"{'op':<6} {'m,n,k':>6} {'math pJ':>8} {'array other pJ':>15} {'overhead pJ':>12} {'overhead %':>11} "
          f"{'incl. array %':>14}   {'Dally pJ':>9} {'Dally %':>8}")
    for name, row in table["rows"].items():
        shape = ",".join(map(str, row["shape"]))
        print(f"{name:<6} {shape:>6} {row['math_pj']:>8.2f} {row['array_other_pj']:>15.2f} {row['overhead_pj']:>12.1f} "
              f"{row['overhead_pct']:>11.1f} {row['overhead_incl_array_pct']:>14.1f}   "
              f"{row['dally_math_pj']:>9.1f} {row['dally_overhead_pct']:>8.0f}")
    if "sparsity" in result:
        _print_sparsity(result["sparsity"])
    if "calibration" in result:
        print_table("calibration", result["calibration"])
    if "gate_level" in result:
        print_columns("RTL against gate level, random data", result["gate_level"])
    if "array_gate_level" in result:
        _print_array_gate_level(result["array_gate_level"])
    if "sparse_array" in result:
        _print_sparse_array(result["sparse_array"])
    if "sweep" in result:
        print(f"sweep: {json.dumps(result['sweep'])}")
    return 0


_SPARSITY_ROWS = {"hold / none": "hold_ratio_to_none", "hold / none / useful (criterion <= 2.5)": "hold_over_ideal",
                  "hold per useful op / dense op": "hold_per_useful_over_dense",
                  "none per op / dense op": "none_per_op_over_dense"}


def _print_array_gate_level(study):
    """pJ by class and clocking per gating style, then hold against none."""
    shape = "x".join(map(str, study["shape"]))
    print_columns(f"{shape} array at gate level: {study['instructions']} instructions, weights "
                  f"{study['weight_density']:.0%} x activations {study['act_density']:.0%} non-zero, useful "
                  f"fraction {study['useful_fraction']}; pJ",
                  {gating: {f"{cls} {key.removesuffix('_pj').replace('_', ' ')}": value
                            for cls, values in run["by_class"].items() for key, value in values.items()}
                   for gating, run in study["gating"].items()})
    print_columns("register clock, pJ: gate level (flip-flops, clock gates on the netlist's enables) against RTL "
                  "(register bits, a clock gate per register on its changes)",
                  {gating: {"gate ungated": run["clock_pj"], "gate clock-gated": run["clock_gated_pj"],
                            "gate gated / ungated": round(run["clock_gated_pj"] / run["clock_pj"], 4),
                            "rtl ungated": run["rtl_clock"]["clock_pj"],
                            "rtl clock-gated": run["rtl_clock"]["clock_gated_pj"],
                            "rtl gated / ungated": round(run["rtl_clock"]["clock_gated_pj"]
                                                         / run["rtl_clock"]["clock_pj"], 4)}
                   for gating, run in study["gating"].items()})
    if "ratios" in study:
        print_columns("hold against none", {name: {"hold / none": r["hold_ratio_to_none"],
                                                   "hold / none / useful": r["hold_over_ideal"]}
                                            for name, r in study["ratios"].items()})


def _print_sparsity(check):
    """The 10 % x 30 % multiplier check, one column per level of the model."""
    levels = {"rtl": check}
    gate = check.get("gate_level")
    if gate:
        levels["gate"] = gate
        levels["gate, glitches"] = gate["with_glitches"]
        levels["gate + clock gated"] = gate["with_clock"]["clock_gated"]
    print_columns(f"multiplier energy check: {check['ops']} multiplies, weights {check['weight_density']:.0%} x "
                  f"activations {check['act_density']:.0%} non-zero, useful fraction {check['useful_fraction']}",
                  {name: {row: level[key] for row, key in _SPARSITY_ROWS.items() if key in level}
                   for name, level in levels.items()})


def _print_sparse_array(study):
    """pJ per useful multiply-add of 2:4 weights, dense array against sparse array, per density and gating."""
    shape = "x".join(map(str, study["shape"]))
    print_columns(f"2:4 weights, {shape} array: {study['instructions']} sparse instructions against twice as many "
                  f"dense ones; pJ per useful multiply-add (array: switching + clock)",
                  {f"act {point['act_density']:.0%}, {gating}": {
                      "dense array": entry["dense"]["pj_per_useful_mac"],
                      "sparse array": entry["sparse"]["pj_per_useful_mac"],
                      "sparse / dense": entry["sparse_over_dense"],
                      "dense cycles": entry["dense"]["cycles"], "sparse cycles": entry["sparse"]["cycles"]}
                   for point in study["points"] for gating, entry in point["gating"].items()})
