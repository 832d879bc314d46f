"""Toggle counting against hand-computed counts on a tiny two-level design, and the shared signal table."""

import json

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from accel.sim.netlist import GateNetlist
from accel.sim.pysim import run_testbench
from accel.sim.toggles import ToggleCounter, design_of, signal_table, toggles_from_counts, unit_class
from accel.synth.gates import synthesize_gates
from hwcheck import hand_netlist


class Inc(wiring.Component):
    """t = a + 1, r <= t, y = r; charged as energy class ``energy_class``."""
    a: In(4)
    y: Out(4)

    def __init__(self, energy_class):
        self.energy_class = energy_class
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        t, r = Signal(4, name="t"), Signal(4, name="r")
        m.d.comb += t.eq(self.a + 1)
        m.d.sync += r.eq(t)
        m.d.comb += self.y.eq(r)
        return m


class Tiny(wiring.Component):
    """x -> w = x ^ 3 -> mul0 (t = a + 1, r <= t) -> add0 (t = a + 1, r <= t) -> z."""
    x: In(4)
    z: Out(4)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul0 = s0 = Inc("mul")
        m.submodules.add0 = s1 = Inc("add")
        w = Signal(4)
        m.d.comb += [w.eq(self.x ^ 3), s0.a.eq(w), s1.a.eq(s0.y), self.z.eq(s1.y)]
        return m


SEQ = [0, 1, 2, 3, 15, 0]


def run_tiny(seq=SEQ, **options):
    dut = Tiny()
    counter = ToggleCounter(**options)

    async def bench(ctx):
        for value in seq:
            ctx.set(dut.x, value)
            await counter.on_cycle(ctx)
            await ctx.tick()

    run_testbench(dut, bench)
    return counter


def test_hand_computed_counts():
    # x: 0,1,2,3,15,0 -> 1+2+1+2+4 = 10; w = x^3: 3,2,1,0,12,3 -> 1+2+1+2+4 = 10
    # mul0.t = w+1: 4,3,2,1,13,4 -> 3+1+2+2+2 = 10; mul0.r (t one clock later): 0,4,3,2,1,13 -> 1+3+1+2+2 = 9
    # add0.t = mul0.r+1: 1,5,4,3,2,14 -> 1+1+3+1+2 = 8; add0.r: 0,1,5,4,3,2 -> 1+1+1+3+1 = 7
    t = run_tiny(per_bit=True).result()
    expect = {"x": 10, "w": 10, "mul0.t": 10, "mul0.r": 9, "mul0.y": 9, "add0.t": 8, "add0.r": 7, "add0.y": 7,
              "z": 7, "rst": 0}
    for name, count in expect.items():
        assert t.by_signal[name] == count, name
    # x bit 0: 0,1,0,1,1,0 -> 4; bit 1: 0,0,1,1,1,0 -> 2; bits 2 and 3: 0,0,0,0,1,0 -> 2 each
    assert t.per_bit["x"] == [4, 2, 2, 2]
    assert sum(t.per_bit["mul0.r"]) == 9
    assert t.samples == 6
    assert t.by_unit["mul"] == 10 + 9 + 9 and t.by_unit["add"] == 8 + 7 + 7
    assert t.total == sum(t.by_signal.values())
    assert t.reg_bits == 8 and t.reg_bits_by_unit == {"mul": 4, "add": 4}


class Enabled(wiring.Component):
    """r <= a when en (a 4-bit register with an enable), s <= a every clock (no enable), f <= a[0] when en."""
    a: In(4)
    en: In(1)

    def elaborate(self, platform):
        m = Module()
        r, s, f = Signal(4, name="r"), Signal(4, name="s"), Signal(name="f")
        m.d.sync += s.eq(self.a)
        with m.If(self.en):
            m.d.sync += [r.eq(self.a), f.eq(self.a[0])]
        return m


def test_rtl_clock_gating_clocks_a_register_with_an_enable_only_when_it_takes_a_new_value():
    dut = Enabled()
    counter = ToggleCounter()

    async def bench(ctx):
        for a, en in [(1, 1), (2, 0), (3, 1), (3, 1), (5, 0), (6, 0)]:
            ctx.set(dut.a, a)
            ctx.set(dut.en, en)
            await counter.on_cycle(ctx)
            await ctx.tick()

    run_testbench(dut, bench)
    t = counter.result()
    table = {info.name: info for info in counter.table}
    assert (table["r"].has_enable, table["s"].has_enable, table["f"].has_enable) == (True, False, True)
    # samples: r 0,1,1,3,3,3 (2 changes); s 0,1,2,3,3,5; f 0,1,1,1,1,1. Only r is gated (4 bits, an enable):
    # 4 bits x 2 changes + its gate's load in each of the 6 cycles; s has no enable and f is one bit: every
    # bit every cycle
    assert t.reg_bits == 9 and t.samples == 6 and t.clock_gates == 1
    assert t.reg_clock_loads == (4 * 2 + 6) + 4 * 6 + 1 * 6
    # Tiny's registers load on every clock: no enable, nothing gated
    tiny = run_tiny([0, 1, 1, 1, 2, 2]).result()
    assert tiny.clock_gates == 0 and tiny.reg_clock_loads == tiny.reg_bits * tiny.samples == 48
    # counts handed over by another backend carry the changes, or no gated figure
    counter.load([0] * len(counter.table), 6, changes=[1] * len(counter.table))
    assert counter.result().reg_clock_loads == (4 * 1 + 6) + 4 * 6 + 1 * 6
    counter.load([0] * len(counter.table), 6)
    assert counter.result().reg_clock_loads is None
    counter.sample([0] * len(counter.table))             # sampling on after that still has no gated figure
    assert counter.result().reg_clock_loads is None
    with pytest.raises(ValueError, match="change counts"):
        counter.load([0] * len(counter.table), 6, changes=[1])


def test_signal_table_units_and_aliases():
    table = {s.full_name: s for s in signal_table(design_of(Tiny()))}
    # a port is counted once, in the fragment that drives it, with every name it has as an alias
    assert table["mul0.y"].aliases == (((), "y"), (("mul0",), "y"))
    assert table["a"].path == () and (("mul0",), "a") in table["a"].aliases and table["a"].cls == "lines"
    assert table["mul0.r"].is_reg and not table["mul0.t"].is_reg
    assert table["clk"].is_clock
    assert table["a"].is_copy and not table["w"].is_copy


def test_copies_are_wiring_driven_once():
    """Whole signals, bit-selects (payload fields), constants and concatenations of these, assigned to a
    whole signal or field by field, are the source's wires (not charged again); anything through a gate, or
    driven by any other statement as well, is not a copy."""
    from amaranth.hdl import Cat, Const, Elaboratable, Module, Signal

    class Wiring(Elaboratable):
        def __init__(self):
            for name, width in (("x", 8), ("c", 1), ("field", 3), ("nested", 2), ("cat", 2), ("padded", 4),
                                ("port", 4), ("half_gated", 4), ("gate", 1), ("muxed", 3), ("whole", 8)):
                setattr(self, name, Signal(width, name=name))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += [self.whole.eq(self.x), self.field.eq(self.x[2:5]), self.nested.eq(self.x[2:6][1:3]),
                         self.cat.eq(Cat(self.x[0], self.x[7])), self.padded.eq(Cat(self.x[1:3], Const(1, 2))),
                         self.port[:2].eq(self.x[4:6]), self.port[2:].eq(self.field[:2]),
                         self.half_gated[:2].eq(self.x[4:6]), self.half_gated[2:].eq(self.x[0:2] + 1),
                         self.gate.eq(self.x[0] & self.x[1]), self.muxed.eq(self.x[0:3])]
            with m.If(self.c):
                m.d.comb += self.muxed.eq(self.x[3:6])
            return m

    table = {s.name: s for s in signal_table(design_of(Wiring()))}
    assert {name for name, s in table.items() if s.is_copy} == {"whole", "field", "nested", "cat", "padded", "port"}


@pytest.mark.parametrize("name, is_reg, declared, cls", [
    ("product", False, "mul", "mul"),
    ("is_zero_2", True, "add", "add"),          # a declared class wins over the name
    ("value_2", True, None, "pipe"),
    ("is_zero_2", True, None, "flags"),
    ("valid", True, None, "ctl"),
    ("o__ready", False, None, "ctl"),
    ("x$17", False, None, "lines"),
])
def test_unit_class(name, is_reg, declared, cls):
    assert unit_class(name, is_reg=is_reg, declared=declared) == cls


def test_energy_classes_are_declared_by_components_whatever_their_instance_names():
    from accel.golden.fp import FP16
    from accel.hw.fp_add import FPAddLane
    from accel.hw.fp_mul import FPMulLane
    from accel.hw.operand import ZeroDetector
    from accel.hw.pipeline import DelayLine

    class Block(wiring.Component):
        x: In(16)

        def elaborate(self, platform):
            m = Module()
            m.submodules.adder_of_things = FPMulLane()       # named like an adder, a multiplier all the same
            m.submodules.mul_like = FPAddLane(fmt=FP16)      # named like a multiplier: an FP16 adder
            m.submodules.detector = zd = ZeroDetector()
            m.submodules.line = line = DelayLine(16, 2, "hold")
            m.d.comb += [zd.x.eq(self.x), line.value.eq(self.x), line.is_zero.eq(zd.z)]
            return m

    classes = {}
    for s in signal_table(design_of(Block())):
        classes.setdefault(s.path[:1], set()).add(s.cls)
    assert classes[("adder_of_things",)] == {"mul"}
    assert classes[("mul_like",)] == {"add16"}
    assert classes[("detector",)] == {"zdet"}
    assert {"pipe", "flags"} <= classes[("line",)] <= {"pipe", "flags", "ctl", "lines"}   # undeclared: by name


def test_clock_never_counted():
    t = run_tiny().result()
    assert t.by_signal["clk"] == 0


def test_counts_from_another_backend_map_by_any_alias():
    counter = run_tiny()
    t = counter.result()
    # a backend naming the port in the child ("mul0.a") instead of where it is driven ("a") maps to one entry
    counts = {k: v for k, v in t.by_signal.items() if k != "a"}
    counts["mul0.a"] = t.by_signal["a"]
    counts["clk"] = 11
    again = toggles_from_counts(Tiny(), counts, samples=t.samples)
    assert again.by_signal == t.by_signal and again.by_unit == t.by_unit
    with pytest.raises(KeyError, match="nope"):
        toggles_from_counts(Tiny(), {"nope": 1})


def test_gate_level_named_nets_match_rtl():
    import random
    rng = random.Random(4)
    seq = [rng.randrange(16) for _ in range(40)]
    counter = run_tiny(seq, per_bit=True, record=("x", "z"))
    rtl = counter.result()
    netlist = GateNetlist(synthesize_gates(Tiny()))
    gate = netlist.simulate({"x": counter.recorded["x"]})
    assert gate.outputs["z"] == counter.recorded["z"]
    compared = 0
    for name, counts in gate.named.items():
        if name in rtl.per_bit and name != "clk":
            assert list(map(int, counts)) == rtl.per_bit[name], name
            compared += 1
    assert compared >= 4


def test_gate_level_glitches_counted_by_hand():
    # y = a XOR NOT(NOT(a)) is 0 once settled, but with one gate delay each, a change of a reaches y at once
    # through the XOR and two steps later through the inverters: y pulses (two transitions) per change of a
    netlist = GateNetlist(hand_netlist({"n1": ("$_NOT_", {"A": 2, "Y": 3}), "n2": ("$_NOT_", {"A": 3, "Y": 4}),
                                        "x": ("$_XOR_", {"A": 2, "B": 4, "Y": 5})},
                                       {"a": ("input", 2), "y": ("output", 5)}))
    a = [0, 1, 1, 0, 0]
    zero_delay = netlist.simulate({"a": a})
    glitchy = netlist.simulate({"a": a}, glitches=True)
    assert zero_delay.outputs["y"] == glitchy.outputs["y"] == [0] * 5
    assert list(zero_delay.per_net[2:6]) == [2, 2, 2, 0]     # a, n1, n2, y: two changes of a
    assert list(glitchy.per_net[2:6]) == [2, 2, 2, 4]
    # y = a XOR NOT(a) is 1 once settled; after a change of a the XOR sees the new a one step before the new
    # NOT(a), so y dips for one step: each gate reads the previous step's values, not its neighbours' new ones
    netlist = GateNetlist(hand_netlist({"n": ("$_NOT_", {"A": 2, "Y": 3}), "x": ("$_XOR_", {"A": 2, "B": 3, "Y": 4})},
                                       {"a": ("input", 2), "y": ("output", 4)}))
    glitchy = netlist.simulate({"a": a}, glitches=True)
    assert glitchy.outputs["y"] == [1] * 5
    assert list(glitchy.per_net[2:5]) == [2, 2, 4]


class Enables(wiring.Component):
    """A 4-bit register loaded under ``en`` (reset to 0), a 1-bit register under ``en1`` and a free-running
    bit: one clock-gated group of four, two flip-flops clocked every cycle."""
    en: In(1)
    en1: In(1)
    d: In(4)
    q: Out(6)

    def elaborate(self, platform):
        m = Module()
        reg, one, free = Signal(4), Signal(1), Signal(1)
        with m.If(self.en):
            m.d.sync += reg.eq(self.d)
        with m.If(self.en1):
            m.d.sync += one.eq(self.d[0])
        m.d.sync += free.eq(~free)
        m.d.comb += self.q.eq(reg | (one << 4) | (free << 5))
        return m


def test_gate_level_load_conditions_of_every_polarity():
    # q1, q2 hold while "hold" is high (the feedback on the mux's B input: loads when the select is low);
    # q3, q4 load under "en", and are forced to 0 while "run" is low (the constant on the mux's A input)
    cells = {}
    for q, d in ((10, 20), (11, 21)):
        cells[f"m{q}"] = ("$_MUX_", {"A": 4, "B": q, "S": 2, "Y": d})
        cells[f"f{q}"] = ("$_DFF_P_", {"D": d, "Q": q})
    for q, d, e in ((12, 22, 32), (13, 23, 33)):
        cells[f"e{q}"] = ("$_MUX_", {"A": q, "B": 4, "S": 3, "Y": e})
        cells[f"r{q}"] = ("$_MUX_", {"A": "0", "B": e, "S": 5, "Y": d})
        cells[f"f{q}"] = ("$_DFF_P_", {"D": d, "Q": q})
    netlist = GateNetlist(hand_netlist(cells, {"hold": ("input", 2), "en": ("input", 3), "d": ("input", 4),
                                               "run": ("input", 5), "q": ("output", 13)}))
    assert (netlist.clock_gates, netlist.gated_dffs, netlist.free_dffs) == (2, 4, 0)
    hold = [0, 1, 1, 0, 1, 1]
    en = [1, 0, 1, 0, 0, 0]
    run = [1, 1, 1, 1, 0, 1]
    gate = netlist.simulate({"hold": hold, "en": en, "d": [1, 0, 1, 0, 1, 0], "run": run})
    loads = 2 * sum(1 - h for h in hold) + 2 * sum(e | (1 - r) for e, r in zip(en, run))
    assert gate.clock_loads == loads + 2 * 6
    assert gate.outputs["q"] == [0, 1, 1, 1, 1, 0]     # q4: loads 1, 1 (en), held, then forced to 0


def test_gate_level_clock_gating_counts_loads_by_hand():
    netlist = GateNetlist(synthesize_gates(Enables()))
    assert (netlist.clock_gates, netlist.gated_dffs, netlist.free_dffs) == (1, 4, 2)
    en = [1, 0, 0, 1, 1, 0, 0, 0, 1, 0]
    rst = [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]   # a reset loads the gated group even with en low
    d = [5, 9, 9, 3, 12, 7, 7, 1, 2, 2]
    gate = netlist.simulate({"en": en, "en1": [1, 0] * 5, "d": d, "rst": rst})
    loaded = sum(e | r for e, r in zip(en, rst))
    assert loaded == 6
    # every cycle: 2 free flip-flops + 1 ICG; the group of 4 only in its 6 loading cycles
    assert gate.clock_loads == 10 * (2 + 1) + 4 * loaded
    reg = [q & 15 for q in gate.outputs["q"]]
    assert reg == [0, 5, 5, 0, 3, 12, 12, 12, 0, 2]


# ------------------------------------------------------------------------------------------ empty cycles

FP_UNITS = [("fp16_mul", "hold"), ("fp16_mul", "and"), ("fp16_mul", "none"), ("fp32_add", "hold"),
            ("fp32_add", "none")]


def _unit_registers(unit, gating, valid_pattern, window=None):
    """Per-signal toggles of every register of one FP unit fed 12 random operations under ``valid_pattern``,
    counted only over cycles ``window`` = (first, last) if given."""
    from accel.energy.measure import unit_fields, unit_words
    from accel.hw.units import build_unit
    from accel.sim.pysim import run_stream
    dut = build_unit(unit, gating=gating)
    words = unit_words(dut, unit_fields(unit, 12, seed=6, density_a=0.5, density_b=0.5, gating=gating))
    counter = ToggleCounter()
    cycle = [0]

    async def on_cycle(ctx):
        if window is None or window[0] <= cycle[0] <= window[1]:
            await counter.on_cycle(ctx)
        cycle[0] += 1

    run_stream(dut, words, valid_pattern=valid_pattern, on_cycle=on_cycle)
    t = counter.result()
    regs = {s.full_name for s in counter.table if s.is_reg}
    return {name: n for name, n in t.by_signal.items() if name in regs}


@pytest.mark.parametrize("unit, gating", FP_UNITS)
def test_fp_unit_registers_still_during_empty_cycles(unit, gating):
    # six operations, then 20 cycles with valid low (the pipeline drains within 2), then six more: from the
    # third empty cycle on no register of the unit -- datapath, flags or pipeline valid bits -- changes
    pattern = [True] * 6 + [False] * 20
    regs = _unit_registers(unit, gating, pattern, window=(6 + 2, 6 + 19))
    assert regs and all(n == 0 for n in regs.values()), regs


@pytest.mark.parametrize("unit, gating", FP_UNITS)
def test_fp_unit_datapath_registers_ignore_bubbles(unit, gating):
    # the same operations back to back and with a bubble after each: the lane's registers (class mul / add)
    # go through the same values, so they toggle exactly as often; bubbles cost them nothing
    cls = unit.split("_")[1] + "."
    dense = _unit_registers(unit, gating, None)
    bubbly = _unit_registers(unit, gating, [True, False, False] * 12)
    lane = {k: v for k, v in dense.items() if k.startswith(cls)}
    assert sum(lane.values()) > 0
    assert {k: bubbly[k] for k in lane} == lane


def test_gate_netlist_cache_reuses_repairs_and_names_an_unusable_folder(tmp_path, monkeypatch):
    from accel.synth.errors import BuildFolderError
    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path / "build"))
    first = synthesize_gates(Enables(), cache=True)
    (entry,) = (tmp_path / "build" / "gates").iterdir()
    entry.write_text('{"modules": {"top"')          # an interrupted write
    assert synthesize_gates(Enables(), cache=True) == first
    assert json.loads(entry.read_text()) == first
    (tmp_path / "file").write_text("x")
    monkeypatch.setenv("ACCEL_BUILD_DIR", str(tmp_path / "file"))
    with pytest.raises(BuildFolderError, match="build folder .*file/gates: cannot create"):
        synthesize_gates(Enables(), cache=True)


def test_a_register_assigned_unconditionally_is_a_register_not_a_copy():
    # ``r <= x`` every clock has no gate in front, but it is a flip-flop: counted, charged, never a copy
    class Follow(wiring.Component):
        x: In(4)
        y: Out(4)

        def elaborate(self, platform):
            m = Module()
            r = Signal(4, name="r")
            m.d.sync += r.eq(self.x)
            m.d.comb += self.y.eq(r)
            return m

    table = {s.name: s for s in signal_table(design_of(Follow()))}
    assert table["r"].is_reg and not table["r"].is_copy
    assert table["y"].is_copy and not table["y"].is_reg
