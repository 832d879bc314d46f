"""Simulator backends by name: each module offers ``run_stream`` with the contract of :mod:`.pysim`."""

import importlib

BACKENDS = {"pysim": "accel.sim.pysim", "verilator": "accel.sim.verilator"}


def backend(name):
    """The backend module called ``name``; a ValueError naming the known ones otherwise. Imported by name
    when asked for: the Verilator backend imports the toggle counter, which runs backends by name."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def run_stream(name, dut, words, **options):
    return backend(name).run_stream(dut, words, **options)


def check_waveform(name, waveform):
    """Whether backend ``name`` can write ``waveform`` (a :class:`~accel.sim.waveform.Waveform`), before a run:
    the backend's ``check_waveform`` (ValueError for a kind it does not write)."""
    backend(name).check_waveform(waveform)
