"""A gate-level netlist simulator: per-net toggles of a one-bit generic gate netlist, cycle by cycle.

:class:`GateNetlist` takes a Yosys JSON netlist (:func:`accel.synth.gates.synthesize_gates`) and evaluates it
cycle by cycle in levelised numpy order, fed with per-cycle top-level input values (for instance those an
RTL run recorded: :class:`~accel.sim.toggles.ToggleCounter` ``record=``). It samples every net once per
clock on settled values (the same definition as RTL toggles) and counts toggles per net. With
``glitches=True`` the counted cycles settle with one unit of delay per gate instead, and every transition on
the way is counted. Nets that keep an RTL signal's name (Yosys keeps the names of wires that survive
optimisation) are reported by name, so they can be matched bit by bit to the RTL counts.

Clock gating: ``dffunmap`` leaves every enable as a feedback mux in front of its flip-flop (next value = own
output unless enabled, or reset). The netlist finds those enables, groups flip-flops by them, and counts
clock-pin loads per cycle as an integrated clock gate (ICG) would deliver them: a group of at least
:data:`ICG_MIN_FLOPS` flip-flops is clocked only in cycles where its enable (or reset) is active, plus one
load per cycle for its ICG; every other flip-flop is clocked every cycle.
"""

from collections import Counter
from dataclasses import dataclass

import numpy as np

__all__ = ["GateNetlist", "GateToggles", "ICG_MIN_FLOPS"]

#: An enable shared by at least this many flip-flops gets a clock gate; a one-bit enable costs as much to
#: gate (the ICG's own clock load) as it saves, so synthesis leaves it ungated.
ICG_MIN_FLOPS = 2


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
