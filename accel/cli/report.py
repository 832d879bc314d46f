"""Human tables and JSON objects for the ``accel`` commands' output."""

import json
import sys
import time

import numpy as np

from ..sim.errors import CheckFailed


def _plain(value):
    """numpy scalars and arrays as JSON-able Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def print_json(obj):
    print(json.dumps(_plain(obj), indent=None, sort_keys=False))


def format_value(value):
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def flatten(rows, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1}: nested report members as dotted row names."""
    flat = {}
    for key, value in rows.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten(value, name) if isinstance(value, dict) else {name: value})
    return flat


def print_summary(title, summary, as_json):
    """A run command's summary: one JSON object (``--json``) or a table."""
    if as_json:
        print_json(summary)
    else:
        print_table(title, summary)


def require_bit_exact(bit_exact):
    """A run whose hardware disagreed with golden is a failed check (exit status 1; its output was written,
    for inspection)."""
    if not bit_exact:
        raise CheckFailed("hardware and golden model disagree (bit_exact false); please report this")


def print_table(title, rows):
    """A two-column table of ``rows`` ({name: value}; nested dicts become dotted names)."""
    flat = flatten(rows)
    width = max((len(k) for k in flat), default=0)
    print(title)
    for key, value in flat.items():
        print(f"  {key:<{width}}  {format_value(value)}")


def print_columns(title, columns):
    """A table with one column per key of ``columns`` ({column: {row: value}}), rows in first-seen order."""
    columns = {name: flatten(values) for name, values in columns.items()}
    rows = list(dict.fromkeys(row for values in columns.values() for row in values))
    cells = {name: [format_value(values.get(row, "")) for row in rows] for name, values in columns.items()}
    width = max(len(r) for r in rows)
    widths = {name: max(len(name), *(len(c) for c in cells[name])) for name in columns}
    print(title)
    print(f"  {'':<{width}}  " + "  ".join(f"{name:>{widths[name]}}" for name in columns))
    for index, row in enumerate(rows):
        print(f"  {row:<{width}}  " + "  ".join(f"{cells[name][index]:>{widths[name]}}" for name in columns))


class Progress:
    """A ``progress(done, total)`` callback that reports on stderr: a line redrawn in place on a terminal,
    otherwise a plain line, at most every ``interval`` seconds, so logs stay short. A step that ends before
    its first line was due stays quiet; one that showed progress shows its end too."""

    def __init__(self, label, *, stream=None, interval=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = interval if interval is not None else (0.5 if self.tty else 10.0)
        self.started = self.last = time.monotonic()
        self.shown = False

    def __call__(self, done, total):
        now = time.monotonic()
        finished = done >= total
        if (finished and not self.shown) or (not finished and now - self.last < self.interval):
            return
        self.last, self.shown = now, not finished
        line = f"{self.label}: {done}/{total} ({now - self.started:.0f} s)"
        self.stream.write(("\r" + line + ("\n" if finished else "")) if self.tty else line + "\n")
        self.stream.flush()
