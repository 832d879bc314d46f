"""Design-space sweeps over conv layers, in parallel on Dask (``accel sweep``).

A sweep's points are the product of a topology's layers (:mod:`accel.sim.topology`) and the lists of
algorithms, weight formats, gating styles, weight and activation densities, array shapes and data seeds.
Each point is one Dask task: synthetic data for the layer (:func:`~accel.sim.topology.random_layer_data`),
the layer on the accelerator (:func:`accel.sim.conv.run_conv`) and its summary
(:func:`accel.energy.layers.layer_summary`).

Results are cached on disk, one small JSON file per point named by the point's key: a hash of the layer,
the configuration, the data seed and the code version (the package's version and a hash of its ``.py``
sources but ``cli/``, which only presents results). The task writes its file atomically as soon as it finishes (the client writes it too, for
workers that do not share the folder), so an interrupted sweep or a dead worker loses nothing finished and a
re-run computes only what is missing. A task whose worker dies is re-run on another worker (the scheduler
reschedules it; ``retries`` covers a task that raises).

The results: one flat row per point (:func:`flat_row`; every counter, toggles and energy by block,
``bit_exact``), and per network the configurations' total cycles and energy, their Pareto front and the best
configuration (:func:`summarize`).
"""

import hashlib
import importlib.metadata
import itertools
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..golden.gating import Gating
from ..hw.accelerator import BufferConfig
from ..sim.conv import ALGORITHMS, FORMATS, plan_passes, run_conv
from ..sim.topology import Layer, random_layer_data
from ..synth.workspace import write_atomic
from .layers import layer_summary

__all__ = ["SUPPORTED_ARRAYS", "WorkerMismatch", "Point", "parse_array", "code_version", "make_points", "check_points",
           "compute_point", "Cache", "open_client", "run_sweep", "flat_row", "summarize"]

#: The array shapes the accelerator's conv sequencer runs (:class:`~accel.hw.accelerator.BufferConfig`).
SUPPORTED_ARRAYS = ((4, 4, 4),)

#: Point fields that make a configuration (a network's layers are summed per configuration).
CONFIG_FIELDS = ("algo", "fmt", "gating", "weight_density", "act_density", "array", "seed", "sparse_mode")


def parse_array(text):
    """``"MxNxK"`` -> (m, n, k); ValueError naming the text."""
    parts = str(text).lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"array shape must be MxNxK with positive integers (e.g. 4x4x4), not {text!r}")
    return shape


def _package_version():
    try:
        return importlib.metadata.version("accel")
    except importlib.metadata.PackageNotFoundError:     # run from a checkout that is not installed
        return "0+uninstalled"


def _sources_hash():
    """A hash of the ``.py`` sources a point's result depends on: the package less ``cli/`` (presentation)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (folder == root and d == "cli") and d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as stream:
                    digest.update(stream.read() + b"\0")
    return digest.hexdigest()[:16]


#: The code version of this process, taken when the package's code was loaded: that is the code it runs.
_CODE_VERSION = f"{_package_version()}+{_sources_hash()}"


def code_version():
    """The installed package's version and a hash of its ``.py`` sources as this process loaded them: a
    cached result is reused only by the code that made it, and a worker must run the client's code."""
    return _CODE_VERSION


class WorkerMismatch(RuntimeError):
    """A worker whose accel code differs from the client's (its results would not be the client's)."""


@dataclass(frozen=True)
class Point:
    """One point of a sweep: a layer of ``network`` in one configuration, on data seeded by ``seed``."""

    network: str
    layer: Layer
    algo: str
    fmt: str
    gating: str
    weight_density: float
    act_density: float
    array: tuple
    seed: int
    backend: str
    sparse_mode: str = "gate"     # "skip": nm24 weights of a direct layer on the 2:4 sparse array

    @property
    def buffers(self):
        """The accelerator the point runs on (standard buffer sizes), its gating included."""
        return BufferConfig().running(algo=self.algo, weight_format=self.fmt, gating=self.gating,
                                      sparse_mode=self.sparse_mode)

    @property
    def config(self):
        """The configuration (the fields of :data:`CONFIG_FIELDS`) as a tuple."""
        return tuple(getattr(self, name) for name in CONFIG_FIELDS)

    @property
    def config_label(self):
        return (f"{self.algo}/{self.fmt}{'-skip' if self.sparse_mode == 'skip' else ''}/{self.gating}/"
                f"w{self.weight_density:g}/a{self.act_density:g}/{'x'.join(map(str, self.array))}/s{self.seed}")

    def key(self, version=None):
        """The cache key: a hash of the layer, the configuration, the seed, the backend and the code version."""
        layer = self.layer.as_json()
        description = {"layer": layer, "algo": self.algo, "fmt": self.fmt, "gating": str(self.gating),
                       "weight_density": repr(float(self.weight_density)),
                       "act_density": repr(float(self.act_density)), "array": list(self.array),
                       "seed": self.seed, "backend": self.backend, "sparse_mode": self.sparse_mode,
                       "code": version or code_version()}
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:32]

    def as_json(self):
        return {"network": self.network, "layer": self.layer.name, "algo": self.algo, "format": self.fmt,
                "gating": str(self.gating), "weight_density": self.weight_density, "act_density": self.act_density,
                "array": "x".join(map(str, self.array)), "seed": self.seed, "backend": self.backend,
                "sparse_mode": self.sparse_mode}


def make_points(network, layers, *, algos=("direct",), formats=("dense",), gatings=("hold",),
                weight_densities=(0.5,), act_densities=(0.5,), arrays=((4, 4, 4),), seeds=(0,), backend="pysim",
                sparse_mode="skip"):
    """Every point of the product, layers outermost, in a fixed order (repeated values count once).
    ``sparse_mode``: how the ``nm24`` points of direct convolution run (``skip`` on the 2:4 sparse array, or
    ``gate``); every other point gates."""
    unique = lambda values: list(dict.fromkeys(values))  # noqa: E731
    gatings = [str(Gating.parse(g)) for g in unique(gatings)]
    mode = lambda algo, fmt: sparse_mode if (algo, fmt) == ("direct", "nm24") else "gate"  # noqa: E731
    return [Point(network, layer, algo, fmt, gating, float(wd), float(ad), tuple(array), seed, backend,
                  mode(algo, fmt))
            for layer, algo, fmt, gating, wd, ad, array, seed in itertools.product(
                layers, unique(algos), unique(formats), gatings, unique(weight_densities), unique(act_densities),
                unique(tuple(a) for a in arrays), unique(seeds))]


def check_points(points, source=""):
    """ValueError (one line; a layer's problem names its row of ``source``, the topology file) unless every
    point can run: a known algorithm and format, an array shape the accelerator has, densities in [0, 1]
    (at most 0.5 for 2:4 weights) and a layer whose passes fit the on-chip buffers
    (:func:`~accel.sim.conv.plan_passes`; its weights as the buffer holds them too, compressed or
    Winograd-transformed: the layer's data is made for that check)."""
    checked = set()
    for point in points:
        if point.algo not in ALGORITHMS:
            raise ValueError(f"algorithm {point.algo!r}: the hardware runs {', '.join(ALGORITHMS)} so far")
        if point.fmt not in FORMATS:
            raise ValueError(f"format {point.fmt!r}: one of {', '.join(FORMATS)}")
        if point.array not in SUPPORTED_ARRAYS:
            raise ValueError(f"array {'x'.join(map(str, point.array))}: the accelerator's conv sequencer runs a "
                             f"{' or '.join('x'.join(map(str, a)) for a in SUPPORTED_ARRAYS)} array only")
        for what, value in (("weight density", point.weight_density), ("activation density", point.act_density)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{what} {value:g}: must lie in [0, 1]")
        if point.fmt == "nm24" and point.weight_density > 0.5:
            raise ValueError(f"weight density {point.weight_density:g}: 2:4 (nm24) weights keep at most 0.5")
        if not isinstance(point.seed, int) or point.seed < 0:
            raise ValueError(f"seed {point.seed!r}: must be a non-negative integer")
        layer = point.layer
        where = f"{source} row {layer.row} ({layer.name})" if source else f"layer {layer.name}"
        buffers = point.buffers
        data_dependent = buffers.compressed or buffers.winograd_m is not None
        key = (layer, point.fmt, point.algo, point.sparse_mode) + (
            (point.weight_density, point.seed) if data_dependent else ())
        if key in checked:
            continue
        # the passes the layer runs in (the weights as the buffer holds them decide them when compressed)
        x, w = random_layer_data(layer, point.weight_density, point.act_density, point.fmt, point.seed) \
            if data_dependent else (np.zeros(layer.x_shape, np.uint16), np.zeros(layer.w_shape, np.uint16))
        try:
            plan_passes(x, w, buffers)
        except ValueError as error:
            weights = "" if not data_dependent else f"{point.fmt} weights at density {point.weight_density:g}" + (
                "" if buffers.winograd_m is None else f" after the {point.algo} filter transform (U = G·g·Gᵀ)") + ": "
            raise ValueError(f"{where}: {weights}{error}") from None
        checked.add(key)


class Cache:
    """The results folder: one JSON file per point, ``<key>.json``, written atomically."""

    def __init__(self, folder):
        self.folder = folder

    def path(self, key):
        return os.path.join(self.folder, f"{key}.json")

    def load(self, key):
        """The stored result of ``key``, or None (also for a file that is not a whole result)."""
        try:
            with open(self.path(key), encoding="utf-8") as stream:
                result = json.load(stream)
        except (OSError, ValueError):
            return None
        return result if isinstance(result, dict) and result.get("key") == key else None

    def store(self, result):
        os.makedirs(self.folder, exist_ok=True)
        data = json.dumps(result, sort_keys=True).encode()
        write_atomic(self.path(result["key"]), lambda stream: stream.write(data))


def compute_point(point, cache_folder=None, version=None):
    """Run one point (the Dask task): its result ``{"key", "code", "point", "summary", "wall_s"}``, stored in
    ``cache_folder`` as soon as it is computed (when the folder is reachable from here); a point already in
    ``cache_folder`` is read from there, not run again."""
    if version is not None and version != code_version():
        raise WorkerMismatch(f"a worker runs accel {code_version()}, the client {version}: every worker needs the "
                             f"client's accel")
    key = point.key(version)
    if cache_folder is not None:     # computed already (a result lost with its worker's memory is asked again)
        cached = Cache(cache_folder).load(key)
        if cached is not None:
            return cached
    start = time.perf_counter()
    x, w = random_layer_data(point.layer, point.weight_density, point.act_density, point.fmt, point.seed)
    run = run_conv(x, w, algo=point.algo, fmt=point.fmt, gating=point.gating, sparse_mode=point.sparse_mode,
                   backend=point.backend)
    summary = layer_summary(x, w, run, algo=point.algo, fmt=point.fmt, buffers=point.buffers)
    result = {"key": key, "code": version or code_version(), "point": point.as_json(),
              "summary": summary, "wall_s": round(time.perf_counter() - start, 3)}
    if cache_folder is not None:
        try:
            Cache(cache_folder).store(result)
        except OSError:     # a worker that does not share the folder: the client stores it
            pass
    return result


@contextmanager
def open_client(workers=None, scheduler=None):
    """A Dask client: connected to ``scheduler`` (an address) when given, otherwise on a LocalCluster of
    ``workers`` worker processes (default: one per CPU) with one thread each."""
    from dask.distributed import Client, LocalCluster     # here: slow to import, and only sweeps need it
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    workers = workers or os.cpu_count() or 1
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


@dataclass
class SweepRun:
    """A finished sweep: ``results`` in the points' order, how many were ``computed`` and ``cached``, and
    the wall time in seconds."""

    results: list
    computed: int
    cached: int
    wall_s: float


def run_sweep(points, cache_folder, client, *, task=compute_point, retries=2, watch=None, progress=None):
    """Run every point not yet in ``cache_folder`` on ``client``, one task a point; a :class:`SweepRun`.

    ``task(point, cache_folder, version)`` computes one point (default :func:`compute_point`). ``watch``:
    called with the futures once they are submitted (a progress bar; it may block until they finish).
    ``progress(done, total)``: called as points finish."""
    from dask.distributed import as_completed      # here: slow to import, and only sweeps need it
    start = time.perf_counter()
    version = code_version()
    cache = Cache(cache_folder)
    keys = [point.key(version) for point in points]
    results = {key: cache.load(key) for key in dict.fromkeys(keys)}
    todo = {key: point for key, point in zip(keys, points) if results[key] is None}
    futures = {client.submit(task, point, cache_folder, version, key=f"accel-sweep-{key}", pure=False,
                             retries=retries): key for key, point in todo.items()}
    if watch is not None and futures:
        watch(list(futures))
    done = len(results) - len(todo)
    if progress is not None:
        progress(done, len(results))
    for future in as_completed(futures):
        result = future.result()
        if cache.load(result["key"]) is None:
            cache.store(result)
        results[futures[future]] = result
        done += 1
        if progress is not None:
            progress(done, len(results))
    # a cached result may come from another network holding the same layer: each row names its own point
    return SweepRun([{**results[key], "point": point.as_json()} for key, point in zip(keys, points)],
                    computed=len(todo), cached=len(results) - len(todo),
                    wall_s=time.perf_counter() - start)


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, inner, out)
    else:
        out[prefix] = value


#: Summary members left out of a row (the point has them, or they are not per-layer facts).
_ROW_SKIP = ("algo", "format", "gating", "backend", "macs", "macs_gated")


def flat_row(result):
    """One row of results.csv: the point, then every counter, off-chip bytes, toggles and energy by block,
    ``bit_exact``, accuracy, the output digest, the point's compute time and its cache key."""
    summary = result["summary"]
    row = dict(result["point"])
    row.update({f"layer.{k}": v for k, v in summary["layer"].items()})
    row["bit_exact"] = summary["bit_exact"]
    for key in ("cycles", "stream_cycles", "ideal_cycles"):
        row[key] = summary[key]
    for key, value in summary.items():
        if key not in _ROW_SKIP + ("layer", "bit_exact", "cycles", "stream_cycles", "ideal_cycles"):
            _flatten(key, value, row)
    row["wall_s"] = result["wall_s"]
    row["key"] = result["key"]
    return row


def _pareto(configs):
    """The configurations no other beats on both cycles and energy (lower is better), by cycles."""
    ordered = sorted(configs, key=lambda c: (c["cycles"], c["energy_pj"]))
    front, best_energy = [], float("inf")
    for config in ordered:
        if config["energy_pj"] < best_energy:
            front.append(config)
            best_energy = config["energy_pj"]
    return front


def summarize(points, results):
    """Per network: each configuration's total ``cycles`` and ``energy_pj`` over the network's layers and
    whether all were bit-exact, the Pareto front of energy against cycles and the ``best`` configuration:
    the lowest energy among the bit-exact ones, with the reason."""
    networks = {}
    for point, result in zip(points, results):
        configs = networks.setdefault(point.network, {})
        label = point.config_label
        config = configs.setdefault(label, {"config": label, **{k: v for k, v in point.as_json().items()
                                                                 if k not in ("network", "layer")},
                                            "layers": 0, "cycles": 0, "energy_pj": 0.0, "bit_exact": True})
        summary = result["summary"]
        config["layers"] += 1
        config["cycles"] += summary["cycles"]
        config["energy_pj"] = round(config["energy_pj"] + summary["energy_pj"]["total"], 3)
        config["bit_exact"] = config["bit_exact"] and summary["bit_exact"]
    out = {}
    for network, configs in networks.items():
        configs = list(configs.values())
        front = _pareto(configs)
        exact = [c for c in configs if c["bit_exact"]]
        best = min(exact, key=lambda c: (c["energy_pj"], c["cycles"])) if exact else None
        if best is None:
            why = "no configuration was bit-exact against golden"
        else:
            why = (f"lowest total energy ({best['energy_pj']:,.1f} pJ over {best['layers']} layer{'s' * (best['layers'] != 1)}, "
                   f"{best['cycles']:,} cycles) of the {len(exact)} bit-exact configurations"
                   + ("" if best in front else "; off the Pareto front, which a configuration that is not bit-exact "
                                                         "reaches"))
        out[network] = {"configs": configs, "pareto": [c["config"] for c in front],
                        "best": best["config"] if best else None, "best_reason": why}
    return out
