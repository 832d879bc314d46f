"""A network of :mod:`accel.golden.network` (the digits CNN) on the accelerator, in one configuration: every
conv layer of every image, then the classifier, each layer checked bit for bit against golden's same
schedule.

- Conv layers run on an accelerator built for the configuration (algorithm, weight format, gating), one
  RUN per image; the weights are loaded once per layer and stay in the weight buffer for the batch.
- The classifier is a GEMM ``fc.w [classes, F] · features [F, N]``: on the accelerator it is a 1×1
  convolution of ``x [F, 1, N]`` (the features as channels, the images as pixels, so the N images are the
  GEMM's columns) by ``w [classes, F, 1, 1]``, direct, on the configuration's accelerator when it runs
  direct convolution with weights the format can hold, else on a dense direct one with the same gating.
  Its chain order (features ascending, four per instruction) is golden's classifier GEMM.
- Between layers the host adds the bias and applies ReLU (:func:`accel.golden.network.host_activation`).
  The host feeds each layer golden's activations of the previous one; since every layer's hardware
  output is checked equal to golden's bit for bit, these are the hardware's own whenever the run is
  bit-exact (a mismatch stays in the layer where it happened instead of spreading).

A topology (:mod:`accel.sim.topology`: SCALE-Sim layers without trained weights) runs the same way, one
pass through its conv layers with seeded random data (:func:`run_topology`), and has no classes.

All layers of one accelerator go through one command stream (one simulation), so the toggles and the
energy are per configuration; cycles and counters are per layer.
"""

from dataclasses import dataclass, field

import numpy as np

from ..golden import fp
from ..golden.network import float32_predictions, host_activation
from ..hw.accelerator import BufferConfig
from .conv import golden_conv, layer_weights, plan_passes, run_convs
from .topology import random_layer_data

__all__ = ["Configuration", "CONFIGURATIONS", "BASELINE", "LayerResult", "NetworkRun", "run_network",
           "TOPOLOGY_WEIGHT_DENSITY", "topology_data", "check_topology", "run_topology"]


@dataclass(frozen=True)
class Configuration:
    """How the accelerator runs the conv layers: algorithm, weight format, gating style, sparse mode."""

    algo: str
    fmt: str
    gating: str
    description: str
    sparse_mode: str = "gate"

    def buffers(self, base=None):
        return (base or BufferConfig()).running(algo=self.algo, weight_format=self.fmt, gating=self.gating,
                                                sparse_mode=self.sparse_mode)


#: The configurations ``accel run`` compares, the baseline first.
CONFIGURATIONS = {
    "baseline": Configuration("direct", "dense", "none", "dense weights, direct convolution, no zero gating"),
    "hold": Configuration("direct", "dense", "hold", "dense weights, zero gating with frozen lines"),
    "bitmask": Configuration("direct", "bitmask", "hold", "bitmask-compressed weights, zero gating"),
    "rle": Configuration("direct", "rle", "hold", "run-length-compressed weights, zero gating"),
    "nm24": Configuration("direct", "nm24", "hold", "2:4-compressed weights on the 2:4 sparse array (skip mode), "
                          "zero gating", "skip"),
    "winograd2": Configuration("winograd2", "dense", "hold", "Winograd F(2x2,3x3), zero gating"),
    "winograd4": Configuration("winograd4", "dense", "hold", "Winograd F(4x4,3x3), zero gating"),
}
BASELINE = "baseline"


@dataclass
class LayerResult:
    """One layer over the batch: the configuration it ran in (``algo``, ``fmt``), summed ``counters`` and
    ideal cycles, ``bit_exact`` (every image's output equal to golden's) and the hardware output ``y``
    (FP32 bits, [N, K, H', W'] for a conv layer, [classes, N] for the classifier)."""

    name: str
    algo: str
    fmt: str
    counters: dict
    ideal_cycles: float
    bit_exact: bool
    y: np.ndarray

    def as_json(self):
        return {"algo": self.algo, "format": self.fmt, "cycles": self.counters["cycles"],
                "ideal_cycles": self.ideal_cycles, "bit_exact": self.bit_exact, "counters": dict(self.counters)}


@dataclass
class NetworkRun:
    """A network in one configuration: ``layers`` (name → :class:`LayerResult`, in order, a classifier
    last as ``fc``), ``designs`` (the accelerators it ran on: (:class:`BufferConfig`, toggles, buffer
    bits by buffer)); for a classifier the hardware's ``predictions``, golden's (same configuration), the
    float32 model's and the labels (None for a topology, which has no classes)."""

    name: str
    config: Configuration
    layers: dict
    designs: list
    backend: str
    predictions: np.ndarray = None
    golden_predictions: np.ndarray = None
    float32_predictions: np.ndarray = None
    labels: np.ndarray = None
    extra: dict = field(default_factory=dict)

    @property
    def bit_exact(self):
        return all(layer.bit_exact for layer in self.layers.values())

    @property
    def cycles(self):
        return sum(layer.counters["cycles"] for layer in self.layers.values())


def _summed(runs):
    return {name: sum(run.counters[name] for run in runs) for name in runs[0].counters}


def _classifier_config(config, w_fc, base):
    """The accelerator the classifier runs on: the configuration's own when it is direct and its format
    holds the classifier's weights, else a dense direct one with the same gating."""
    own = config.buffers(base)
    if own.winograd_m is None:
        try:
            layer_weights(w_fc, own)
            return own
        except ValueError:
            pass
    return own.running(algo="direct", weight_format="dense", gating=own.gating)


def _summed_bits(design, runs):
    """Bits read and written in each of ``design``'s buffers over ``runs``."""
    by_run = [design.buffer_bits_by_buffer(run.counters) for run in runs]
    return {name: sum(bits[name] for bits in by_run) for name in by_run[0]}


def _configuration(name):
    if name not in CONFIGURATIONS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIGURATIONS)}")
    return CONFIGURATIONS[name]


#: Weight density of a topology's random weights: 2:4 pruned, so that every configuration (``nm24``
#: included) runs the same layers.
TOPOLOGY_WEIGHT_DENSITY = 0.5


def topology_data(layers, act_density=0.5, seed=0):
    """Seeded operands (x, w) of each topology layer: 2:4-pruned weights at :data:`TOPOLOGY_WEIGHT_DENSITY`,
    ReLU-like activations at ``act_density`` (:func:`~accel.sim.topology.random_layer_data`)."""
    return [random_layer_data(layer, TOPOLOGY_WEIGHT_DENSITY, act_density, "nm24", seed) for layer in layers]


def check_topology(layers, data, names, buffers=None):
    """ValueError naming the first layer that a configuration of ``names`` cannot run: its weights do not
    suit the format, or even its smallest pass does not fit the buffers (:func:`~accel.sim.conv.plan_passes`)."""
    for name in names:
        own = _configuration(name).buffers(buffers)
        for layer, (x, w) in zip(layers, data):
            try:
                plan_passes(x, w, own)
            except ValueError as error:
                raise ValueError(f"layer {layer.name} in configuration {name}: {error}") from None


def run_topology(layers, name, *, data, backend="pysim", buffers=None, progress=None):
    """One pass of a topology's conv layers (3×3, stride 1; ``data``: their operands, :func:`topology_data`)
    on the accelerator in configuration ``name``, all in one command stream, each layer checked bit for bit
    against golden's same schedule; a :class:`NetworkRun` without classes."""
    config = _configuration(name)
    own = config.buffers(buffers)
    if progress:
        progress(0, 1)
    runs, toggles = run_convs(data, algo=own.algo, fmt=own.weight_format, gating=own.gating,
                              sparse_mode=own.sparse_mode, backend=backend, buffers=own)
    if progress:
        progress(1, 1)
    results = {layer.name: LayerResult(layer.name, own.algo, own.weight_format, dict(run.counters),
                                       run.ideal_cycles, run.bit_exact, run.y[None])
               for layer, run in zip(layers, runs)}
    return NetworkRun(name, config, results, [(own, toggles, _summed_bits(own, runs))], backend)


def run_network(model, name, *, images=None, backend="pysim", buffers=None, progress=None):
    """Classify the first ``images`` (default: all) of ``model``'s stored test images on the accelerator in
    configuration ``name`` (a key of :data:`CONFIGURATIONS`); returns a :class:`NetworkRun`.
    ``progress(done, total)`` is called per accelerator simulation."""
    config = _configuration(name)
    count = len(model.images) if images is None else images
    if not 1 <= count <= len(model.images):
        raise ValueError(f"images must be between 1 and {len(model.images)}, not {count}")
    images, labels = model.images[:count], model.labels[:count]
    own = config.buffers(buffers)
    x = fp.to_bits(np.asarray(images, np.float16), fp.FP16)
    jobs, plan = [], []                     # plan: (layer name, its first job, number of jobs)
    for layer in model.convs:
        w = fp.to_bits(layer.w, fp.FP16)
        plan.append((layer.name, len(jobs), len(x)))
        jobs += [(image, w) for image in x]
        y = np.stack([golden_conv(image, w, own) for image in x])
        x = host_activation(y, layer.b)
    features = x.reshape(len(x), -1).T[:, None, :].copy()           # [F, 1, N]
    w_fc = fp.to_bits(model.fc_w, fp.FP16)[:, :, None, None]
    fc_buffers = _classifier_config(config, w_fc, buffers)
    golden_fc = golden_conv(features, w_fc, fc_buffers)[:, 0, :]
    groups = [(own, jobs)]
    if fc_buffers == own:
        jobs.append((features, w_fc))
    else:
        groups.append((fc_buffers, [(features, w_fc)]))
    plan.append(("fc", len(jobs) - 1 if fc_buffers == own else 0, 1))
    results, designs = [], []
    for done, (design, group) in enumerate(groups):
        if progress:
            progress(done, len(groups))
        runs, toggles = run_convs(group, algo=design.algo, fmt=design.weight_format, gating=design.gating,
                                  sparse_mode=design.sparse_mode, backend=backend, buffers=design)
        results.append(runs)
        designs.append((design, toggles, _summed_bits(design, runs)))
    if progress:
        progress(len(groups), len(groups))
    layers = {}
    for layer_name, first, count in plan:
        design, runs = (fc_buffers, results[-1]) if layer_name == "fc" else (own, results[0])
        chosen = runs[first:first + count]
        y = chosen[0].y[:, 0, :] if layer_name == "fc" else np.stack([run.y for run in chosen])
        layers[layer_name] = LayerResult(layer_name, design.algo, design.weight_format, _summed(chosen),
                                         sum(run.ideal_cycles for run in chosen),
                                         all(run.bit_exact for run in chosen), y)
    bias = model.fc_b.astype(np.float32)
    logits = fp.from_bits(layers["fc"].y, fp.FP32).T + bias
    golden_logits = fp.from_bits(golden_fc, fp.FP32).T + bias
    return NetworkRun(name, config, layers, designs, backend, predictions=np.argmax(logits, axis=1),
                      golden_predictions=np.argmax(golden_logits, axis=1),
                      float32_predictions=float32_predictions(images, model), labels=labels)
