"""A small reader for Liberty (.lib) standard-cell libraries: enough to check a user's file and to
know its cells, their areas, output functions and flip-flops before Yosys and ABC see it.

Liberty is a nest of groups ``name (args) { ... }``, simple attributes ``name : value ;`` and complex
attributes ``name (args) ;``, with C comments and quoted strings.  :func:`load_liberty` parses that
syntax in full (any error names the file and line) and keeps, per ``cell``: ``area``, the ``function``
of each output pin and whether it holds an ``ff`` or ``latch`` group.
"""

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import SynthInputError

__all__ = ["LibertyCell", "Liberty", "parse_liberty", "load_liberty"]

_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\f]+|\\\n) | (?P<newline>\n) | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*") | (?P<punct>[(){}:;,])
  | (?P<word>[^\s(){}:;,"]+)
""", re.S | re.X)


@dataclass
class LibertyCell:
    name: str
    area: float
    functions: dict = field(default_factory=dict)   # output pin -> function string
    inputs: list = field(default_factory=list)      # input pin names
    sequential: bool = False                        # holds an ``ff`` or ``latch`` group
    line: int = 0

    def _single_function(self):
        if self.sequential or len(self.inputs) != 1 or len(self.functions) != 1:
            return None, None
        function = next(iter(self.functions.values())).replace(" ", "")
        while function.startswith("(") and function.endswith(")"):
            function = function[1:-1]
        return self.inputs[0], function

    @property
    def is_buffer(self):
        pin, function = self._single_function()
        return pin is not None and function == pin

    @property
    def is_inverter(self):
        pin, function = self._single_function()
        return pin is not None and function in (f"!{pin}", f"{pin}'", f"!({pin})", f"({pin})'")


@dataclass
class Liberty:
    name: str
    cells: dict                                     # cell name -> LibertyCell
    path: str = "<string>"


class _Group:
    __slots__ = ("kind", "args", "attrs", "groups", "line")

    def __init__(self, kind, args, line):
        self.kind, self.args, self.line = kind, args, line
        self.attrs, self.groups = {}, []


def _tokens(text, where):
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise SynthInputError(f"{where}:{line}: cannot read Liberty text at {text[pos:pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup
        value = match.group()
        if kind in ("space", "comment", "newline"):
            line += value.count("\n")
            continue
        if kind == "string":
            value = value[1:-1]
        yield kind, value, line
        line += value.count("\n")


def _parse(text, where):
    tokens = list(_tokens(text, where))
    pos = 0

    def fail(message, at=None):
        line = tokens[min(at if at is not None else pos, len(tokens) - 1)][2] if tokens else 1
        raise SynthInputError(f"{where}:{line}: {message}")

    def expect(value):
        nonlocal pos
        if pos >= len(tokens) or tokens[pos][1] != value or tokens[pos][0] not in ("punct",):
            got = repr(tokens[pos][1]) if pos < len(tokens) else "end of file"
            fail(f"expected {value!r}, found {got}")
        pos += 1

    def statement():
        # name ( args ) { ... }   |   name ( args ) ;   |   name : value ;
        nonlocal pos
        if tokens[pos][0] not in ("word", "string"):
            fail(f"expected a name, found {tokens[pos][1]!r}")
        name, line = tokens[pos][1], tokens[pos][2]
        pos += 1
        if pos < len(tokens) and tokens[pos][1] == ":" and tokens[pos][0] == "punct":
            pos += 1
            parts = []
            while pos < len(tokens) and not (tokens[pos][0] == "punct" and tokens[pos][1] in ";}"):
                if tokens[pos][0] == "punct" and tokens[pos][1] in "({":
                    fail(f"unexpected {tokens[pos][1]!r} in the value of {name!r}")
                parts.append(tokens[pos][1])
                pos += 1
            if not parts:
                fail(f"attribute {name!r} has no value")
            if pos < len(tokens) and tokens[pos][1] == ";":
                pos += 1
            return "attr", name, " ".join(parts), line
        expect("(")
        args = []
        while pos < len(tokens) and not (tokens[pos][0] == "punct" and tokens[pos][1] == ")"):
            if tokens[pos][0] == "punct" and tokens[pos][1] in "(){};:":
                fail(f"unexpected {tokens[pos][1]!r} in the arguments of {name!r}")
            if tokens[pos][1] != ",":
                args.append(tokens[pos][1])
            pos += 1
        expect(")")
        if pos < len(tokens) and tokens[pos][1] == "{" and tokens[pos][0] == "punct":
            pos += 1
            group = _Group(name, args, line)
            while True:
                if pos >= len(tokens):
                    fail(f"group {name} ({', '.join(args)}) opened on line {line} is never closed")
                if tokens[pos][0] == "punct" and tokens[pos][1] == "}":
                    pos += 1
                    break
                if tokens[pos][0] == "punct" and tokens[pos][1] == ";":
                    pos += 1
                    continue
                kind, *item = statement()
                if kind == "attr":
                    group.attrs[item[0]] = item[1]
                else:
                    group.groups.append(item[0])
            return "group", group
        if pos < len(tokens) and tokens[pos][1] == ";":
            pos += 1
        return "attr", name, args, line

    if not tokens:
        raise SynthInputError(f"{where}: empty Liberty file")
    kind, *item = statement()
    if kind != "group" or item[0].kind != "library":
        fail("a Liberty file must start with a 'library (NAME) { ... }' group", 0)
    if pos != len(tokens):
        fail(f"text after the end of the library group: {tokens[pos][1]!r}")
    return item[0]


_FUNCTION_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_\[\]\.]*)|([01])|(.))")


def check_function(function, names):
    """Whether ``function`` is a well-formed Liberty Boolean expression over ``names``.

    Operators: ``!x`` and ``x'`` (not), ``^`` (xor), ``&``, ``*`` or juxtaposition (and), ``|``, ``+``
    (or), parentheses, constants 0 and 1.  Returns None when it is, else what is wrong.
    """
    tokens = []
    for match in _FUNCTION_TOKEN.finditer(function.strip()):
        name, const, op = match.groups()
        if name is not None:
            if name not in names:
                return f"unknown pin {name!r}"
            tokens.append("x")
        elif const is not None:
            tokens.append("x")
        elif op is not None and op in "!'^&*|+()":
            tokens.append(op)
        elif op is not None:
            return f"unexpected {op!r}"
    pos = 0

    def primary():
        nonlocal pos
        while pos < len(tokens) and tokens[pos] == "!":
            pos += 1
        if pos >= len(tokens):
            raise ValueError("expression ends early")
        if tokens[pos] == "(":
            pos += 1
            expression()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise ValueError("unbalanced parentheses")
        elif tokens[pos] != "x":
            raise ValueError(f"unexpected {tokens[pos]!r}")
        pos += 1
        while pos < len(tokens) and tokens[pos] == "'":
            pos += 1

    def expression():
        nonlocal pos
        primary()
        while pos < len(tokens) and tokens[pos] not in ")":
            if tokens[pos] in "^&*|+":
                pos += 1
            primary()   # juxtaposition is an and

    try:
        expression()
        if pos != len(tokens):
            raise ValueError("unbalanced parentheses")
    except ValueError as error:
        return str(error)
    return None


def parse_liberty(text, where="<string>"):
    """Parse Liberty ``text``; raise :class:`SynthInputError` naming ``where`` and the line."""
    library = _parse(text, where)
    cells = {}
    for group in library.groups:
        if group.kind != "cell":
            continue
        if len(group.args) != 1:
            raise SynthInputError(f"{where}:{group.line}: a cell group needs exactly one name")
        name = group.args[0]
        try:
            area = float(group.attrs["area"])
        except KeyError:
            raise SynthInputError(f"{where}:{group.line}: cell {name} has no area") from None
        except ValueError:
            raise SynthInputError(f"{where}:{group.line}: cell {name} has a non-numeric area "
                                  f"{group.attrs['area']!r}") from None
        if not math.isfinite(area) or area < 0:   # a negative area would subtract; nan stops Yosys
            raise SynthInputError(f"{where}:{group.line}: cell {name} has area {group.attrs['area']!r}; "
                                  f"it must be a finite number >= 0")
        cell = LibertyCell(name, area, line=group.line)
        for sub in group.groups:
            if sub.kind in ("ff", "latch", "ff_bank", "latch_bank", "statetable"):
                cell.sequential = True
            elif sub.kind == "pin" and sub.attrs.get("direction") == "output" and "function" in sub.attrs:
                for pin in sub.args:
                    cell.functions[pin] = sub.attrs["function"]
            elif sub.kind == "pin" and sub.attrs.get("direction") == "input":
                cell.inputs.extend(sub.args)
        names = set()   # any pin (input, output, internal) and the state variables of ff/latch
        for sub in group.groups:
            if sub.kind in ("pin", "ff", "latch", "ff_bank", "latch_bank"):
                names.update(sub.args)
        for pin, function in cell.functions.items():
            problem = check_function(function, names)
            if problem:
                raise SynthInputError(f"{where}:{group.line}: cell {name}, pin {pin}: cannot read function "
                                      f"{function!r} ({problem})")
        cells[name] = cell
    if not cells:
        raise SynthInputError(f"{where}: Liberty library {library.args} has no cells")
    return Liberty(library.args[0] if library.args else "", cells, where)


def load_liberty(path):
    """Read and check a Liberty file for the ``liberty:FILE`` flow.

    Besides the syntax, the file must offer what the flow needs from it: a flip-flop (``dfflibmap``)
    and an inverter and a buffer (ABC's standard-cell mapper stops without a buffer).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        raise SynthInputError(f"Liberty file {str(path)!r} not found") from None
    except IsADirectoryError:
        raise SynthInputError(f"Liberty file {str(path)!r} is a directory") from None
    except UnicodeDecodeError:
        raise SynthInputError(f"Liberty file {str(path)!r} is not UTF-8 (or ASCII) text") from None
    except OSError as error:
        raise SynthInputError(f"cannot read Liberty file {str(path)!r}: {error.strerror}") from None
    library = parse_liberty(text, str(path))
    if not any(cell.sequential for cell in library.cells.values()):
        raise SynthInputError(f"Liberty file {str(path)!r} has no flip-flop cell (an 'ff' group)")
    if not any(cell.is_inverter for cell in library.cells.values()):
        raise SynthInputError(f"Liberty file {str(path)!r} has no inverter cell (function \"!A\")")
    if not any(cell.is_buffer for cell in library.cells.values()):
        raise SynthInputError(f"Liberty file {str(path)!r} has no buffer cell (function \"A\"), "
                              f"which ABC needs to map to it")
    return library
