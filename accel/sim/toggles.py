"""Toggle counting: how many bits of the design's signals changed, clock by clock, grouped by unit.

Definition (shared by every backend; see ``.notes/CONTRACTS.md``): a *toggle* is one bit of one signal whose
settled value, sampled once per clock just before the rising edge, differs from its previous sample. The
first sample only sets the reference, so a run of C cycles has C - 1 sample-to-sample steps.

*Which signals*: every named signal of the elaborated design (``Fragment.prepare()``), each counted once
even when several fragments name it (a port is named in both the parent and the child) -- the same set
as Amaranth's name map, clock and reset included. Clock signals are in the table but never counted (always
0 toggles): their energy is the model's clock term, and where in its period a backend samples a clock is
an artefact. Each signal belongs to one *unit*,
the hierarchy path of the fragment that drives it (the fragment whose statements assign it); a signal no
statement drives (a top-level input) belongs to the shallowest fragment that names it.

*Unit classes*: a component that owns an energy class declares it (an ``energy_class`` attribute: ``mul`` on
the FP multiplier lane, ``add`` / ``add16`` on the FP32 / FP16 adder lanes, ``zdet`` on a zero detector,
``logic`` on a decompressor), and every signal at or below its fragment is of that class, whatever the
instance is called. The other signals (the blocks around the lanes) are classed by name with
:func:`unit_class`, the one function both backends use:

=========  ===========================================================================================
``flags``  signals whose name mentions ``zero`` or ``flag`` (the zero-flags' delay registers; the flag lines
           themselves are bits of the array's input bus, in ``lines``)
``ctl``    array-level handshake and control: names with a ``_``-separated word ``valid``, ``ready``,
           ``load``, ``clk``, ``rst``, ``stall``, ``busy``, ``count``, ``state``, ``en``/``enable`` ...
``pipe``   other array-level registers (delay / pipeline registers)
``lines``  other array-level signals: the operand and result distribution lines
=========  ===========================================================================================

``signal_table(design)`` lists the counted signals (with every name each has, so a backend that reads
signals by hierarchical name -- Verilator -- can find them) and :class:`ToggleCounter` accumulates counts
from value samples in table order, so that both backends count with the same code on the same set.
"""

import re
from dataclasses import dataclass, field

from amaranth.hdl import Fragment
from amaranth.hdl._ast import Assign, Concat, Const, Signal, SignalDict, SignalSet, Slice

from .backends import backend as get_backend
from .netlist import ICG_MIN_FLOPS

__all__ = ["UNIT_CLASSES", "SignalInfo", "Toggles", "ToggleCounter", "unit_class", "signal_table",
           "design_of", "toggles_from_counts", "count_toggles"]

#: Report order of the unit classes.
UNIT_CLASSES = ("mul", "add", "add16", "zdet", "logic", "flags", "lines", "pipe", "ctl")

_FLAG_RE = re.compile(r"zero|flag", re.IGNORECASE)
_CTL_RE = re.compile(r"(^|_)(valid|ready|load|clk|rst|stall|busy|count|counter|state|en|enable|fire|start|done)"
                     r"(_|$|\$|\d)", re.IGNORECASE)

def unit_class(name, *, is_reg=False, declared=None, top_class=None):
    """The unit class of signal ``name``: ``declared`` (the energy class its fragment or an ancestor declares)
    when there is one, else ``top_class`` when given (the whole design is one arithmetic unit), else by name
    (``ctl``, ``flags``, then ``pipe`` for a register, ``lines`` for the rest). ``is_reg``: the signal is a
    register (assigned in a clocked domain)."""
    if declared is not None:
        return declared
    if top_class is not None:
        return top_class
    if _CTL_RE.search(name):
        return "ctl"
    if _FLAG_RE.search(name):
        return "flags"
    return "pipe" if is_reg else "lines"


@dataclass(frozen=True)
class SignalInfo:
    """One counted signal: the Amaranth ``signal``, the unit ``path`` (below the top) and its ``name`` there,
    ``width`` in bits, whether it is a register (``is_reg``), its unit class ``cls``, and ``aliases``: every
    (path, name) under which fragments name it (for backends that look signals up by hierarchical name).
    ``is_copy``: the signal is only wiring of others (a port connection), counted but not charged again.
    ``has_enable``: a register that loads only under a condition (every clocked assignment to it sits in an
    ``If``/``Switch``): its clock can be gated."""

    signal: object
    path: tuple
    name: str
    width: int
    is_reg: bool
    cls: str
    aliases: tuple
    is_clock: bool = False
    is_copy: bool = False
    has_enable: bool = False

    @property
    def unit(self):
        return ".".join(self.path) or "top"

    @property
    def full_name(self):
        return ".".join((*self.path, self.name))


def design_of(dut):
    """The prepared :class:`amaranth.hdl._ir.Design` of ``dut`` (elaborates it: new internal signals)."""
    return Fragment.get(dut, None).prepare()


def _is_wiring(value):
    """Whether ``value`` is only wires: a signal, a bit-select of one (a field of a payload), a constant, or a
    concatenation of these -- no gate between source and destination."""
    if type(value) is Signal or isinstance(value, Const):
        return True
    if isinstance(value, Slice):
        return _is_wiring(value.value)
    return isinstance(value, Concat) and all(_is_wiring(part) for part in value.parts)


def _lhs_by_fragment(design):
    """Per signal: the fragment driving it, whether it is a register, whether it is a copy (every statement
    driving it is a combinational assignment of wiring (:func:`_is_wiring`) to the whole signal or to bits of
    it: a port's fields connected one by one), and the registers loaded on every clock (assigned by a clocked
    statement outside any ``If``/``Switch``: no enable to gate their clock with)."""
    driver, regs, not_wiring, always = SignalDict(), SignalSet(), SignalSet(), SignalSet()
    for fragment in design.fragments:
        for domain, statements in getattr(fragment, "statements", {}).items():
            for statement in statements:
                is_wiring = (domain == "comb" and isinstance(statement, Assign) and _is_wiring(statement.lhs)
                             and _is_wiring(statement.rhs))
                for signal in statement._lhs_signals():
                    driver.setdefault(signal, fragment)
                    if not is_wiring:
                        not_wiring.add(signal)
                    if domain != "comb":
                        regs.add(signal)
                        if isinstance(statement, Assign):
                            always.add(signal)
    return driver, regs, SignalSet(signal for signal in driver.keys() if signal not in not_wiring), always


def declared_classes(design):
    """``{fragment path below the top: energy class}`` for every fragment of a prepared ``design``: the class
    its elaboratable declares (``energy_class``), or that of the nearest ancestor that declares one, or None."""
    classes = {}
    for fragment, info in sorted(design.fragments.items(), key=lambda item: len(item[1].name)):
        path = tuple(info.name[1:])
        own = next((getattr(o, "energy_class") for o in getattr(fragment, "origins", None) or ()
                    if getattr(o, "energy_class", None) is not None), None)
        classes[path] = own if own is not None else classes.get(path[:-1])
    return classes


def signal_table(design, *, top_class=None):
    """The counted signals of a prepared ``design`` as a list of :class:`SignalInfo`, in a fixed order."""
    declared = declared_classes(design)
    driver, regs, copies, always = _lhs_by_fragment(design)
    clocks = SignalSet()
    for fragment in design.fragments:
        for domain in getattr(fragment, "domains", {}).values():
            clocks.add(domain.clk)
    names = SignalDict()
    info_of = {}
    for fragment, info in design.fragments.items():
        info_of[fragment] = info
        for signal, name in info.signal_names.items():
            names.setdefault(signal, []).append((tuple(info.name[1:]), name, info.depth, fragment))
    table = []
    for signal, entries in names.items():
        frag = driver.get(signal)
        if frag is not None and any(e[3] is frag for e in entries):
            entry = next(e for e in entries if e[3] is frag)
        else:
            entry = min(entries, key=lambda e: e[2])
        path, name = entry[0], entry[1]
        is_reg = signal in regs
        table.append(SignalInfo(signal=signal, path=path, name=name, width=len(signal), is_reg=is_reg,
                                cls=unit_class(name, is_reg=is_reg, declared=declared[path], top_class=top_class),
                                aliases=tuple((e[0], e[1]) for e in entries), is_clock=signal in clocks,
                                is_copy=signal in copies, has_enable=is_reg and signal not in always))
    table.sort(key=lambda s: (s.path, s.name))
    return table


@dataclass
class Toggles:
    """Counted toggles: ``total``, by unit class (``by_unit``), by unit instance path (``by_instance``),
    by signal full name (``by_signal``), the part of ``by_unit`` on signals that are only wiring of others
    (``copies_by_unit``, see :class:`SignalInfo`), the charged toggles (copies left out) by top-level block (the
    first instance below the top, ``top`` for the top's own signals) and class (``charged_by_block``:
    ``{block: {class: count}}``), plus the ``samples`` taken and register bits (``reg_bits``, by class in
    ``reg_bits_by_unit``) for clock energy. ``per_bit`` maps full names to per-bit count lists (LSB first)
    when counting was asked to keep them.

    Clock gating at RTL (``reg_clock_loads``, ``clock_gates``): every register of at least
    :data:`~accel.sim.netlist.ICG_MIN_FLOPS` bits that has an enable (:attr:`SignalInfo.has_enable`) sits
    behind its own clock gate, taken as open when the register takes a new value (what freezing and stalls
    switch off), so its bits take a clock edge only in sampled steps where it changed, and the gate itself
    one register bit's clock every cycle; narrower registers and registers loaded on every clock are clocked
    every cycle. ``reg_clock_loads`` is the register-bit clock loads of the run so counted (None when
    the counts came without per-signal change counts); ``clock_gates`` the number of gates."""

    total: int = 0
    by_unit: dict = field(default_factory=dict)
    by_instance: dict = field(default_factory=dict)
    by_signal: dict = field(default_factory=dict)
    samples: int = 0
    copies_by_unit: dict = field(default_factory=dict)
    reg_bits: int = 0
    reg_bits_by_unit: dict = field(default_factory=dict)
    charged_by_block: dict = field(default_factory=dict)
    per_bit: dict = None
    reg_clock_loads: int = None
    clock_gates: int = 0

    def as_json(self):
        """The ``toggles`` object of a ``--json`` report: total and by_unit."""
        return {"total": int(self.total), "by_unit": {k: int(v) for k, v in self.by_unit.items()}}


class ToggleCounter:
    """Counts toggles of every signal in a :func:`signal_table`, one :meth:`sample` per clock.

    With the Amaranth simulator: ``counter = ToggleCounter()``, then
    ``run_stream(dut, words, on_cycle=counter.on_cycle)`` and ``counter.result()``. The first ``on_cycle``
    builds the table from the design the simulator itself elaborated (so the counted signals are the
    simulated ones) and reads settled values straight from the simulator's signal state.

    Another backend builds ``ToggleCounter(table=signal_table(design))`` (or calls :meth:`set_table`)
    and either calls ``sample(values)`` with one integer per table entry, in table order, once per clock,
    or hands over counts it measured itself with :meth:`load`.

    ``per_bit=True`` keeps a count per bit of every signal. ``record=[names]`` keeps the sampled values of
    those top-level signals (by name, e.g. ``"i__payload"``) per cycle in ``recorded`` (gate-level replay).
    """

    def __init__(self, *, table=None, top_class=None, per_bit=False, record=()):
        self.top_class = top_class
        self.per_bit = per_bit
        self.record = tuple(record)
        self.recorded = {name: [] for name in self.record}
        self.table = None
        self._slots = None
        if table is not None:
            self.set_table(table)

    def set_table(self, table):
        """Count the signals of ``table`` (a :func:`signal_table`), starting from zero."""
        self.table = list(table)
        self._masks = [0 if s.is_clock else (1 << s.width) - 1 for s in self.table]
        self._prev = None
        self._counts = [0] * len(self.table)
        self._changes = [0] * len(self.table)
        self._bits = [[0] * s.width for s in self.table] if self.per_bit else None
        self.samples = 0
        top_names = {s.name: i for i, s in enumerate(self.table) if s.path == ()}
        for name in self.record:
            if name not in top_names:
                raise KeyError(f"no top-level signal named {name!r} to record")
        self._record_idx = [(name, top_names[name]) for name in self.record]

    @property
    def record_indices(self):
        """Table indices of the recorded signals, in ``record`` order."""
        return [i for _, i in self._record_idx]

    def load(self, counts, samples, *, changes=None, per_bit=None, recorded=None):
        """Take counts another backend measured on this counter's table, as if it had sampled them.

        ``counts``: one toggle count per table entry, in table order; ``samples``: clocks sampled;
        ``changes``: per entry, the sampled steps in which it changed (None: unknown, so no clock-gated figure);
        ``per_bit``: per-entry lists of per-bit counts (needed when this counter counts per bit);
        ``recorded``: table index -> sampled values, for each recorded signal (see :attr:`record_indices`).
        """
        if self.table is None:
            raise ValueError("load() needs a signal table: build the counter with table= or call set_table")
        counts = [int(n) for n in counts]
        if len(counts) != len(self.table):
            raise ValueError(f"load() got {len(counts)} counts for {len(self.table)} table entries")
        self._counts = counts
        if changes is not None and len(changes) != len(self.table):
            raise ValueError(f"load() got {len(changes)} change counts for {len(self.table)} table entries")
        self._changes = None if changes is None else [int(n) for n in changes]
        self.samples = samples
        if self.per_bit:
            if per_bit is None:
                raise ValueError("this counter counts per bit: load() needs per_bit")
            self._bits = [list(b) for b in per_bit]
        for name, index in self._record_idx:
            if recorded is None or index not in recorded:
                raise ValueError(f"load() needs the recorded values of {name!r} (table index {index})")
            self.recorded[name] = list(recorded[index])

    def sample(self, values):
        """Account one clock's settled values (one int per table entry, in table order)."""
        masks = self._masks
        values = [v & m for v, m in zip(values, masks)]
        prev = self._prev
        if prev is not None:
            counts = self._counts
            changes = self._changes             # None after a load() without them: no gated figure
            bits = self._bits
            for i, (v, p) in enumerate(zip(values, prev)):
                if v != p:
                    x = v ^ p
                    counts[i] += x.bit_count()
                    if changes is not None:
                        changes[i] += 1
                    if bits is not None:
                        row = bits[i]
                        b = 0
                        while x:
                            if x & 1:
                                row[b] += 1
                            x >>= 1
                            b += 1
        self._prev = values
        self.samples += 1
        for name, i in self._record_idx:
            self.recorded[name].append(values[i])

    async def on_cycle(self, ctx):
        """``run_stream`` hook for the Amaranth simulator (reads its settled signal state directly)."""
        if self._slots is None:
            engine = ctx._engine
            if self.table is None:
                self.set_table(signal_table(engine._design, top_class=self.top_class))
            state = engine._state
            self._slots = [state.slots[state.get_signal(s.signal)] for s in self.table]
        self.sample([slot.curr for slot in self._slots])

    def result(self):
        """The :class:`Toggles` counted so far."""
        t = Toggles(samples=self.samples)
        if self.table is None:
            return t
        for cls in UNIT_CLASSES:
            if any(s.cls == cls for s in self.table):
                t.by_unit[cls] = 0
        if self._changes is not None:
            t.reg_clock_loads = 0
        for i, (s, n) in enumerate(zip(self.table, self._counts)):
            t.total += n
            t.by_unit[s.cls] = t.by_unit.get(s.cls, 0) + n
            t.by_instance[s.unit] = t.by_instance.get(s.unit, 0) + n
            t.by_signal[s.full_name] = n
            if s.is_copy:
                t.copies_by_unit[s.cls] = t.copies_by_unit.get(s.cls, 0) + n
            else:
                block = t.charged_by_block.setdefault(s.path[0] if s.path else "top", {})
                block[s.cls] = block.get(s.cls, 0) + n
            if s.is_reg:
                t.reg_bits += s.width
                t.reg_bits_by_unit[s.cls] = t.reg_bits_by_unit.get(s.cls, 0) + s.width
                gated = s.has_enable and s.width >= ICG_MIN_FLOPS
                t.clock_gates += gated
                if self._changes is not None:
                    t.reg_clock_loads += (s.width * self._changes[i] + self.samples if gated
                                          else s.width * self.samples)
        if self._bits is not None:
            t.per_bit = {s.full_name: list(b) for s, b in zip(self.table, self._bits)}
        return t


def count_toggles(dut, words, *, backend="pysim", per_bit=False, record=(), **options):
    """Run ``words`` through ``dut`` on ``backend`` counting toggles; returns (StreamRun, Toggles).

    pysim fills the counter through ``on_cycle``; another backend (Verilator) fills it in from the counts it
    measured on the same signal table.
    """
    module = get_backend(backend)
    counter = ToggleCounter(per_bit=per_bit, record=record)
    if backend == "pysim":
        run = module.run_stream(dut, words, on_cycle=counter.on_cycle, **options)
        return run, counter.result()
    run = module.run_stream(dut, words, toggles=counter, **options)
    return run, run.toggles


def toggles_from_counts(dut, by_signal, *, samples=0, table=None):
    """:class:`Toggles` from per-signal counts another backend measured (``{"mul.p_reg": 12, ...}``).

    Keys are hierarchy paths below the top joined by ``.``, under any name a fragment gives the signal
    (every alias of the table maps to its one entry). A key no alias matches is a KeyError: the two
    backends must count the same set.
    """
    if table is None:
        table = signal_table(design_of(dut))
    where = {}
    for i, s in enumerate(table):
        for path, name in s.aliases:
            where.setdefault(".".join((*path, name)), i)
    counts = [0] * len(table)
    seen = set()
    for key, count in by_signal.items():
        if key not in where:
            raise KeyError(f"signal {key!r} is not in the toggle signal table")
        i = where[key]
        if i in seen:
            continue
        seen.add(i)
        counts[i] = 0 if table[i].is_clock else int(count)
    counter = ToggleCounter(table=table)
    counter.load(counts, samples)
    return counter.result()
