"""Waveforms on request: which file and which cycles (:class:`Waveform`), and the filter that keeps only
those cycles of the Amaranth simulator's VCD (:class:`VcdWindow`).

One time base on every backend: a clock period is :data:`PERIOD_NS` and the rising edge that ends cycle
``c`` (``run_stream`` samples the cycle's settled values just before it) comes at ``c + ½`` periods. A
window ``start:stop`` holds cycles ``start ≤ c < stop``, up to the edge that ends cycle ``stop − 1``. Each
cycle's inputs change at the edge before it on the Amaranth simulator (its testbench runs after the edge)
and with the falling clock, ``c`` periods, on Verilator (its harness drives the clock).
"""

import os
from dataclasses import dataclass

__all__ = ["PERIOD_NS", "DEFAULT_CYCLES", "KINDS", "Waveform", "VcdWindow"]

#: One clock period in nanoseconds (the Amaranth simulator's clock: 1 MHz).
PERIOD_NS = 1000
#: The window of a waveform unless told otherwise: the first this many cycles.
DEFAULT_CYCLES = 2000
#: Waveform file kinds, by suffix.
KINDS = {".vcd": "vcd", ".fst": "fst"}


@dataclass(frozen=True)
class Waveform:
    """A waveform to write: ``path`` (its suffix, ``.vcd`` or ``.fst``, gives the kind) holding cycles
    ``start ≤ c < stop`` of the run (a window past the run's end holds what the run reached)."""

    path: str
    start: int = 0
    stop: int = DEFAULT_CYCLES

    def __post_init__(self):
        suffix = os.path.splitext(os.fspath(self.path))[1].lower()
        if suffix not in KINDS:
            raise ValueError(f"{self.path}: a waveform file name ends in .vcd or .fst"
                             + (f", not {suffix!r}" if suffix else ""))
        for name in ("start", "stop"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"the waveform's {name} cycle must be an integer ≥ 0, not {getattr(self, name)!r}")
        if self.stop <= self.start:
            raise ValueError(f"the waveform window {self.start}:{self.stop} holds no cycle (start:stop, start < stop)")

    @property
    def kind(self):
        """``"vcd"`` or ``"fst"``."""
        return KINDS[os.path.splitext(os.fspath(self.path))[1].lower()]

    def check_kind(self, kinds, backend):
        """ValueError unless this waveform's kind is one of ``kinds``, the ones ``backend`` writes."""
        if self.kind not in kinds:
            raise ValueError(f"{self.path}: the {backend} backend writes {' or '.join(k.upper() for k in kinds)} "
                             f"waveforms, not {self.kind.upper()}")


class VcdWindow:
    """A text stream for a VCD writer that passes on only the time stamps ``start_time ≤ t < stop_time``.

    The header goes through unchanged; the values before ``start_time`` (and at it) are gathered and written
    as the window's ``$dumpvars`` at ``start_time``; changes inside the window follow as they come; the first
    time stamp at or past ``stop_time`` is written as ``#stop_time`` (the window's end) and nothing after it.
    A run that ends before ``start_time`` leaves the header alone. ``close()`` closes ``file``."""

    def __init__(self, file, start_time, stop_time):
        self._file = file
        self._start, self._stop = start_time, stop_time
        self._pending = ""
        self._header = True
        self._time = None
        self._before = {}           # id → its last value line before the window
        self._state = "before"      # before, inside, after

    def write(self, text):
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line):
        if self._header:
            self._file.write(line + "\n")
            self._header = not line.startswith("$enddefinitions")
        elif line.startswith("#"):
            self._stamp(int(line[1:]))
        elif not line or line.startswith("$") or self._state == "after":
            pass                    # $dumpvars / $end around the initial values; nothing past the window
        elif self._state == "before":
            self._before[line.rsplit(" ", 1)[1] if line[0] in "bBrRsS" else line[1:]] = line
        else:
            self._file.write(line + "\n")

    def _stamp(self, time):
        self._time = time
        if self._state == "before" and time > self._start:
            self._open_window()
        if self._state == "inside":
            if time >= self._stop:
                self._file.write(f"#{self._stop}\n")
                self._state = "after"
            else:
                self._file.write(f"#{time}\n")

    def _open_window(self):
        self._file.write(f"#{self._start}\n$dumpvars\n")
        self._file.write("".join(line + "\n" for line in self._before.values()))
        self._file.write("$end\n")
        self._before.clear()
        self._state = "inside"

    def flush(self):
        self._file.flush()

    def close(self):
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        if self._state == "before" and self._time is not None and self._time >= self._start:
            self._open_window()     # the run ended exactly at the window's start
        self._file.close()
