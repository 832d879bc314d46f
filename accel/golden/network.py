"""Golden model of a small CNN on the accelerator: what the hardware and the host compute for a batch of
images, bit for bit, and the float32 model it is judged against.

The network (``accel/cli/workloads/digits.npz``, written by ``accel.cli.workloads.train_digits``) is a
chain of valid 3×3 convolutions (bias optional; the stored network has none), each followed by ReLU,
then a fully connected classifier:

- **conv layer** ``convI.w`` FP16 [K, C, 3, 3], on the accelerator: :func:`winograd.direct_conv`, FP16
  activations x [C, H, W] in, FP32 y [K, H−2, W−2] out (the layer's *hardware output*, compared bit for
  bit with the hardware later).
- **host, between layers**: bias (``convI.b`` when present) added in float32, ReLU as
  ``where(y > 0, y, +0)`` (negative values, both zeros and NaN give +0), then one rounding to FP16,
  numpy's ``float32 → float16`` cast: IEEE round-to-nearest-even, subnormals kept, overflow to +Inf.
  That FP16 tensor is the next layer's input.
- **classifier** ``fc.w`` FP16 [classes, K·H·W], ``fc.b`` FP16 [classes]: one GEMM on 4×4×4 HMMA
  instructions through :func:`schedule.gemm_schedule` (:func:`winograd.run_gemms`), the weights as A
  (rows = classes) and the flattened last activations (channel-major, as PyTorch's ``flatten``) as B,
  one column per image; the FP32 result plus ``float32(fc.b)`` on the host gives the logits, and
  ``argmax`` (first maximum) the class.

Images are float16 [N, 1, H, W] scaled as in training (pixel / 16, so in [0, 1], background exactly 0).
"""

import json
import re
from dataclasses import dataclass

import numpy as np

from . import fp
from .gating import Gating
from .schedule import GemmShape
from .winograd import direct_conv, run_gemms

__all__ = ["ConvLayer", "Network", "Classification", "load", "check", "host_activation", "classify",
           "float32_forward", "float32_predictions"]

_CONV_WEIGHT = re.compile(r"conv(\d+)\.w$")


@dataclass(frozen=True)
class ConvLayer:
    """One 3×3 convolution: ``w`` float16 [K, C, 3, 3], ``b`` float16 [K] or None (bias on the host)."""

    name: str
    w: np.ndarray
    b: np.ndarray | None


@dataclass(frozen=True)
class Network:
    """A loaded network with its stored test set: conv layers in order, the classifier, ``images``
    float16 [N, 1, H, W], ``labels`` int64 [N] and ``metrics`` (the training script's figures)."""

    convs: tuple
    fc_w: np.ndarray
    fc_b: np.ndarray
    images: np.ndarray
    labels: np.ndarray
    metrics: dict

    @property
    def classes(self):
        return self.fc_w.shape[0]


@dataclass(frozen=True)
class Classification:
    """What :func:`classify` computed for N images.

    ``conv_out[name]``: the conv layer's hardware output, FP32 bit patterns uint32 [N, K, H', W'];
    ``activations[name]``: the host's FP16 result after bias and ReLU (uint16, same shape), the next
    layer's input; ``fc_out``: the classifier GEMM's hardware output, FP32 bits uint32 [classes, N]
    (the GEMM's D, one column per image); ``logits`` float32 [N, classes]; ``predictions`` int64 [N].
    """

    conv_out: dict
    activations: dict
    fc_out: np.ndarray
    logits: np.ndarray
    predictions: np.ndarray


def _need(data, key, dtype, ndim):
    if key not in data:
        raise ValueError(f"network file has no {key!r} member")
    value = data[key]
    if value.dtype != dtype or value.ndim != ndim:
        raise ValueError(f"{key!r} must be a {ndim}-D {np.dtype(dtype)} array, not {value.dtype} {value.shape}")
    return value


def check(data):
    """A :class:`Network` from a mapping of arrays (an opened ``.npz``); ValueError naming the first
    member that is missing or has the wrong dtype or shape. Conv layers are ``conv1.w``, ``conv2.w``, ...
    with no gap; each one's input channels equal the previous one's outputs (the images' for the first)."""
    images = _need(data, "images", np.float16, 4)
    labels = _need(data, "labels", np.int64, 1)
    if images.shape[1] != 1 or min(images.shape[2:]) < 3 or labels.shape != images.shape[:1]:
        raise ValueError(f"need images [N, 1, H, W] (H, W >= 3) and labels [N]; got {images.shape} "
                         f"and {labels.shape}")
    numbers = sorted(int(m.group(1)) for key in data if (m := _CONV_WEIGHT.match(key)))
    if numbers != list(range(1, len(numbers) + 1)) or not numbers:
        raise ValueError(f"conv weights must be conv1.w, conv2.w, ... without a gap; found layers {numbers}")
    convs, (chans, h, w) = [], images.shape[1:]
    for i in numbers:
        name = f"conv{i}"
        weight = _need(data, f"{name}.w", np.float16, 4)
        if weight.shape[1:] != (chans, 3, 3):
            raise ValueError(f"'{name}.w' must be [K, {chans}, 3, 3] (its input has {chans} channels), "
                             f"not {list(weight.shape)}")
        bias = _need(data, f"{name}.b", np.float16, 1) if f"{name}.b" in data else None
        if bias is not None and bias.shape != weight.shape[:1]:
            raise ValueError(f"'{name}.b' must have {weight.shape[0]} entries, not {bias.shape[0]}")
        if min(h, w) < 3:
            raise ValueError(f"{name}'s input is {h}x{w}, too small for a valid 3x3 convolution")
        convs.append(ConvLayer(name, weight, bias))
        chans, h, w = weight.shape[0], h - 2, w - 2
    fc_w, fc_b = _need(data, "fc.w", np.float16, 2), _need(data, "fc.b", np.float16, 1)
    if fc_w.shape[1] != chans * h * w or fc_b.shape != fc_w.shape[:1]:
        raise ValueError(f"need fc.w [classes, {chans * h * w}] and fc.b [classes]; got {list(fc_w.shape)} "
                         f"and {list(fc_b.shape)}")
    if labels.size and not 0 <= labels.min() <= labels.max() < fc_w.shape[0]:
        raise ValueError(f"labels must lie in 0..{fc_w.shape[0] - 1}")
    if "metrics" not in data:
        raise ValueError("network file has no 'metrics' member")
    if data["metrics"].dtype.kind != "U" or data["metrics"].ndim != 0:
        raise ValueError(f"'metrics' must be a 0-D string (JSON), not {data['metrics'].dtype} "
                         f"{data['metrics'].shape}")
    metrics = json.loads(str(data["metrics"]))
    return Network(tuple(convs), fc_w, fc_b, images, labels, metrics)


def load(path):
    """The network stored at ``path`` (an ``.npz``), checked by :func:`check`."""
    with np.load(path, allow_pickle=False) as data:
        return check({key: data[key] for key in data.files})


def host_activation(y_bits, bias=None):
    """The host's step between layers: FP32 bits ``y_bits`` [..., K, H, W] (+ ``bias`` [K], widened to
    float32; one float32 add) → ReLU (+0 for y ≤ 0) → FP16 bits, rounded once (round-to-nearest-even)."""
    y = fp.from_bits(y_bits, fp.FP32)
    if bias is not None:
        y = y + bias.astype(np.float32)[:, None, None]
    return fp.to_bits(np.where(y > 0, y, np.float32(0)).astype(np.float16), fp.FP16)


def classify(images, model, gating=Gating.HOLD):
    """Classify float16 ``images`` [N, 1, H, W] as the accelerator and the host will: see the module
    docstring, with ``gating`` on every HMMA instruction. Returns a :class:`Classification` holding every
    layer's output."""
    images = np.asarray(images)
    if images.dtype != np.float16 or images.ndim != 4 or images.shape[1:] != model.images.shape[1:]:
        raise ValueError(f"images must be float16 [N, {', '.join(map(str, model.images.shape[1:]))}], "
                         f"not {images.dtype} {list(images.shape)}")
    x = fp.to_bits(images, fp.FP16)
    conv_out, activations = {}, {}
    for layer in model.convs:
        w = fp.to_bits(layer.w, fp.FP16)
        y = np.stack([direct_conv(image, w, gating) for image in x])
        conv_out[layer.name] = y
        x = activations[layer.name] = host_activation(y, layer.b)
    columns = x.reshape(len(x), -1).T                                    # [K·H·W, N]
    shape = GemmShape(gemms=1, rows=model.classes, cols=len(x), inner=columns.shape[0])
    fc_out = run_gemms(shape, fp.to_bits(model.fc_w, fp.FP16)[None], columns[None], gating)[0]
    logits = fp.from_bits(fc_out, fp.FP32).T + model.fc_b.astype(np.float32)
    return Classification(conv_out, activations, fc_out, logits, np.argmax(logits, axis=1))


def float32_forward(images, model):
    """Logits of the float32 model: the same network in float32 (FP16 weights and images widened
    exactly, no rounding to FP16 between layers), float32 [N, classes]."""
    x = np.asarray(images, np.float32)
    for layer in model.convs:
        w = layer.w.astype(np.float32)
        oh, ow = x.shape[2] - 2, x.shape[3] - 2
        y = sum(np.einsum("kc,nchw->nkhw", w[:, :, ky, kx], x[:, :, ky:ky + oh, kx:kx + ow])
                for ky in range(3) for kx in range(3))
        if layer.b is not None:
            y = y + layer.b.astype(np.float32)[:, None, None]
        x = np.maximum(y, np.float32(0))
    return x.reshape(len(x), -1) @ model.fc_w.astype(np.float32).T + model.fc_b.astype(np.float32)


def float32_predictions(images, model):
    """Classes the float32 model predicts for ``images`` (int64 [N])."""
    return np.argmax(float32_forward(images, model), axis=1)
