"""Gate-level replay: runs of a unit in the Amaranth simulator replayed on its gate netlist, and the
gate-level figures of the energy model (its calibration per lane class, RTL against gate level, the
multiplier lane's switching with glitches and with its clock gated).

The netlists come from :func:`accel.synth.gates.synthesize_gates` and run on
:class:`accel.sim.netlist.GateNetlist`; every replay checks the netlist's outputs against the RTL's, cycle
by cycle (:class:`~accel.sim.errors.CheckFailed` otherwise).
"""

from dataclasses import dataclass

from ..golden.gating import Gating
from ..hw.fp_mul import FPMulLane
from ..hw.units import unit
from ..sim.errors import CheckFailed
from ..sim.netlist import GateNetlist, GateToggles
from ..sim.pysim import run_stream
from ..sim.toggles import ToggleCounter, declared_classes, design_of
from ..synth.gates import synthesize_gates
from .measure import unit_fields, unit_words
from .model import FLOP_NET_EQUIV

__all__ = ["INPUT_PORTS", "compare_unit", "net_equivalents", "lane_net_equivalents_per_op", "mul_lane_netlist",
           "LaneReplay", "replay_mul_lane"]

#: Top-level inputs of a stream unit that the gate-level replay drives (besides ``clk``).
INPUT_PORTS = ("rst", "i__valid", "i__payload", "o__ready")


def _replay_unit(name, *, n_ops, seed, gating, hierarchical=False):
    """``n_ops`` random operations of unit ``name`` back to back in the Amaranth simulator (inputs recorded), then
    the same inputs through its gate netlist, whose outputs must match the RTL's every cycle (CheckFailed
    otherwise). Returns (the RTL :class:`~accel.sim.toggles.ToggleCounter`, the netlist, its result)."""
    dut = unit(name)(gating)
    words = unit_words(dut, unit_fields(name, n_ops, seed=seed))
    counter = ToggleCounter(per_bit=True, record=INPUT_PORTS + ("o__valid", "o__payload", "i__ready"))
    run_stream(dut, words, on_cycle=counter.on_cycle)
    netlist = GateNetlist(synthesize_gates(unit(name)(gating), hierarchical=hierarchical))
    gate = netlist.simulate({name: counter.recorded[name] for name in INPUT_PORTS})
    for port in ("o__valid", "o__payload", "i__ready"):
        if port in gate.outputs and gate.outputs[port] != counter.recorded[port]:
            raise CheckFailed(f"gate-level netlist of {name} disagrees with the RTL on {port}")
    return counter, netlist, gate


def compare_unit(name, *, n_ops=64, seed=1, gating=Gating.HOLD):
    """RTL-level against gate-level toggles for unit ``name`` ("fp16_mul", "fp32_add") on random data.

    Runs ``n_ops`` random operations back to back in the Amaranth simulator (recording the inputs), replays
    the same inputs on the synthesized gate netlist, checks that the netlist's outputs match the RTL's
    cycle by cycle, and returns a dict: rtl_toggles, gate_toggles, ratio, nets, gates, dffs, cycles,
    named_match (RTL signals whose surviving gate nets toggled exactly as often, of those compared).
    """
    counter, _, gate = _replay_unit(name, n_ops=n_ops, seed=seed, gating=gating)
    rtl = counter.result()
    compared = matched = 0
    for name, counts in gate.named.items():
        rtl_bits = rtl.per_bit.get(name)
        if rtl_bits is None or len(rtl_bits) != len(counts):
            continue
        compared += 1
        matched += int(list(map(int, counts)) == rtl_bits)
    return {"unit": name, "gating": str(gating), "ops": n_ops, "cycles": gate.samples,
            "rtl_toggles": rtl.total, "gate_toggles": gate.total,
            "ratio": round(gate.total / rtl.total, 3) if rtl.total else None,
            "rtl_signals": len(counter.table), "rtl_bits": sum(s.width for s in counter.table),
            "nets": gate.nets, "gates": gate.gates, "dffs": gate.dffs,
            "named_compared": compared, "named_match": matched}


def net_equivalents(netlist, per_net):
    """The module's own switching per net (:meth:`GateNetlist.own_toggles`) in gate-net toggles: a net toggle
    counts 1, a flip-flop output toggle ``FLOP_NET_EQUIV`` (its register bit's latch nodes and output)."""
    own = netlist.own_toggles(per_net).astype(float)
    own[netlist.dff_q] *= FLOP_NET_EQUIV
    return own


def lane_net_equivalents_per_op(name, *, n_ops=128, seed=1):
    """The gate-level calibration of the arithmetic class of unit ``name`` (its registered energy class):
    :func:`net_equivalents` of the nets its lane (the submodule that declares that class) drives, per random
    operation (gating none), as the RTL calibration counts the class's signals below the stream wrapper."""
    cls = unit(name).energy_class
    _, netlist, gate = _replay_unit(name, n_ops=n_ops, seed=seed, gating=Gating.NONE, hierarchical=True)
    declared = declared_classes(design_of(unit(name)(Gating.NONE)))
    lanes = [i for i, owner in enumerate(netlist.owners) if owner and declared.get((owner,)) == cls]
    if len(lanes) != 1:
        raise ValueError(f"unit {name} has {len(lanes)} submodules of class {cls!r}; its calibration needs one")
    return float(net_equivalents(netlist, gate.per_net)[netlist.owner == lanes[0]].sum()) / n_ops


_LANE_NETLISTS = {}


def mul_lane_netlist(gating):
    """The gate netlist of one FP16 x FP16 -> FP32 multiplier lane (:class:`~accel.hw.fp_mul.FPMulLane`)
    with ``gating``, synthesized once per process."""
    gating = Gating.parse(gating)
    if gating not in _LANE_NETLISTS:
        _LANE_NETLISTS[gating] = GateNetlist(synthesize_gates(FPMulLane(gating=gating)))
    return _LANE_NETLISTS[gating]


@dataclass
class LaneReplay:
    """One multiplier lane run at both levels on the same stimulus.

    ``rtl``: the RTL :class:`~accel.sim.toggles.Toggles` of the whole FPMul (its ``mul`` class is the lane).
    ``gate``: the lane netlist's :class:`GateToggles`. ``net_toggles``: gate-net toggles of the lane's own
    nets (every gate output and flip-flop output; the lane's input ports are driven by the unit around it and
    are not counted, as in the RTL ``mul`` class). ``dff_toggles``: of those, the flip-flop outputs.
    ``glitch_net_toggles``: the lane's own net transitions when the same stimulus settles with one unit of
    delay per gate, glitches included. ``netlist``: the :class:`GateNetlist`."""

    rtl: object
    gate: GateToggles
    net_toggles: int
    dff_toggles: int
    glitch_net_toggles: int
    netlist: GateNetlist


def replay_mul_lane(fields, *, gating, valid_pattern=None, count_from=0):
    """Stream the operand ``fields`` (``a.value``, ``a.is_zero``, ``b.value``, ``b.is_zero`` arrays) through an FPMul with
    ``gating`` in the Amaranth simulator (counting RTL toggles), record the multiplier lane's inputs
    (``x``, ``load``) and output every cycle, and replay them on the lane's gate netlist, whose output must
    match the RTL lane's every cycle (:class:`CheckFailed` otherwise). Toggles at both levels are counted from cycle
    ``count_from`` on (that cycle's sample is the reference). Returns a :class:`LaneReplay`."""
    dut = unit("fp16_mul")(gating)
    counter = ToggleCounter()
    seen = {"x": [], "load": [], "y": []}

    async def on_cycle(ctx):
        if len(seen["x"]) >= count_from:
            await counter.on_cycle(ctx)
        seen["x"].append(ctx.get(dut.lane.x.as_value()))
        seen["load"].append(ctx.get(dut.lane.load))
        seen["y"].append(ctx.get(dut.lane.y.as_value()))

    run_stream(dut, unit_words(dut, fields), valid_pattern=valid_pattern, on_cycle=on_cycle)
    netlist = mul_lane_netlist(gating)
    lane_inputs = {"x": seen["x"], "load": seen["load"]}
    gate, glitchy = (netlist.simulate(lane_inputs, count_from=count_from, glitches=g) for g in (False, True))
    if not gate.outputs["y"] == glitchy.outputs["y"] == [int(v) for v in seen["y"]]:
        raise CheckFailed(f"gate-level netlist of the {gating} multiplier lane disagrees with the RTL")
    own, own_glitchy = netlist.own_toggles(gate.per_net), netlist.own_toggles(glitchy.per_net)
    return LaneReplay(rtl=counter.result(), gate=gate, net_toggles=int(own.sum()),
                      dff_toggles=int(own[netlist.dff_q].sum()), glitch_net_toggles=int(own_glitchy.sum()),
                      netlist=netlist)
