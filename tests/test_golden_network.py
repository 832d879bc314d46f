"""The stored digits CNN (accel/cli/workloads/digits.npz) and its golden pipeline (accel.golden.network).

Measured on the stored file (seed 0): the golden FP16 pipeline classifies 63 of the 64 stored images
correctly (98.4%; the stored FP16 accuracy on all 360 held-out images is 96.9%) and agrees with the
float32 model on all 64. The assertions leave margins below those figures.
"""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from accel.cli.workloads import DIGITS
from accel.golden import acw, fp, network, sparse


@pytest.fixture(scope="module")
def model():
    return network.load(DIGITS)


@pytest.fixture(scope="module")
def result(model):
    return network.classify(model.images, model)


def members():
    with np.load(DIGITS, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def test_stored_model_loads(model):
    assert [layer.name for layer in model.convs] == ["conv1", "conv2"]
    assert [layer.w.shape for layer in model.convs] == [(8, 1, 3, 3), (16, 8, 3, 3)]
    assert all(layer.b is None for layer in model.convs)
    assert model.fc_w.shape == (10, 256) and model.fc_b.shape == (10,)
    assert model.images.shape == (64, 1, 8, 8) and model.labels.shape == (64,)
    assert np.all((model.images >= 0) & (model.images <= 1))
    assert DIGITS.stat().st_size < 50_000
    for key in ("float32_dense", "float32_pruned", "fp16_golden"):
        assert 0.9 <= model.metrics[key] <= 1.0


def test_golden_pipeline_classifies_and_agrees_with_float32(model, result):
    accuracy = np.mean(result.predictions == model.labels)
    assert accuracy >= model.metrics["fp16_golden"] - 0.05          # measured 0.984 vs 0.969 stored
    agreement = np.mean(result.predictions == network.float32_predictions(model.images, model))
    assert agreement >= 0.95                                           # measured 1.0
    logits32 = network.float32_forward(model.images, model)
    assert np.max(np.abs(result.logits - logits32)) < 0.05 * np.max(np.abs(logits32))


def test_every_layer_output_is_recorded(model, result):
    assert result.conv_out["conv1"].shape == (64, 8, 6, 6) and result.conv_out["conv1"].dtype == np.uint32
    assert result.conv_out["conv2"].shape == (64, 16, 4, 4)
    assert result.activations["conv2"].dtype == np.uint16 and result.fc_out.shape == (10, 64)
    for name in ("conv1", "conv2"):                     # host step: ReLU, then one RNE rounding to FP16
        y = fp.from_bits(result.conv_out[name], fp.FP32)
        expected = np.maximum(y, 0).astype(np.float16) + np.float16(0)   # + 0 turns -0 into +0
        np.testing.assert_array_equal(result.activations[name], fp.to_bits(expected, fp.FP16))
    logits = fp.from_bits(result.fc_out, fp.FP32).T + model.fc_b.astype(np.float32)
    np.testing.assert_array_equal(result.logits, logits)


def test_classifier_gemm_is_the_chained_fp32_sum(model, result):
    """The FC GEMM (weights as A, one image per column of B) accumulates each logit from +0 over the 256
    inputs in order, one FP32 rounding per add: numpy float32 done in that order (no Inf/NaN here, so
    ``hold`` gating changes nothing)."""
    w = model.fc_w.astype(np.float32)                                               # [10, 256]
    x = fp.from_bits(result.activations["conv2"], fp.FP16).astype(np.float32).reshape(64, -1).T
    acc = np.zeros((10, 64), np.float32)
    for k in range(w.shape[1]):
        acc = acc + w[:, k, None] * x[None, k, :]
    np.testing.assert_array_equal(result.fc_out, fp.to_bits(acc, fp.FP32))


def test_host_activation_adds_a_bias_before_relu():
    y = fp.to_bits(np.array([[[1.0, -1.0]], [[0.5, -3.0]]], np.float32), fp.FP32)    # [K=2, 1, 2]
    bias = np.array([-2.0, 2.5], np.float16)
    expected = np.array([[[0.0, 0.0]], [[3.0, 0.0]]], np.float16)
    np.testing.assert_array_equal(network.host_activation(y, bias), fp.to_bits(expected, fp.FP16))


def test_pruning_as_stated(model):
    conv1, conv2 = (layer.w for layer in model.convs)
    assert 0.08 <= np.mean(conv1 != 0) <= 0.12                        # 7 of 72
    groups = (conv2 != 0).reshape(16, 2, 4, 3, 3).sum(axis=2)           # w[k, 4g:4g+4, r, s]
    assert groups.max() == 2 and np.mean(conv2 != 0) == 0.5
    tiles = sparse.conv_to_tiles(fp.to_bits(conv2, fp.FP16))
    assert ((~fp.is_zero(tiles, fp.FP16)).sum(axis=1) <= 2).all()      # tile columns are the 2:4 groups
    acw.dumps(conv2, "nm24")
    broken = conv2.copy()
    group = broken[0, 0:4, 0, 0]
    group[group == 0] = np.float16(1)                                   # a group with four non-zeros
    with pytest.raises(ValueError, match="not 2:4"):
        acw.dumps(broken, "nm24")


def test_golden_conv_matches_float64(model, result):
    """conv2 on the stored activations: FP32 chained sums of 72 exact products are within the recursive
    summation bound 72·2⁻²⁴·Σ|w·x| of an independent float64 convolution."""
    x = fp.from_bits(result.activations["conv1"], fp.FP16).astype(np.float64)      # [N, 8, 6, 6]
    w = model.convs[1].w.astype(np.float64)
    windows = sliding_window_view(x, (3, 3), axis=(2, 3))                           # [N, 8, 4, 4, 3, 3]
    reference = np.einsum("ncijrs,kcrs->nkij", windows, w)
    magnitude = np.einsum("ncijrs,kcrs->nkij", np.abs(windows), np.abs(w))
    y = fp.from_bits(result.conv_out["conv2"], fp.FP32).astype(np.float64)
    assert np.all(np.abs(y - reference) <= 72 * 2.0 ** -24 * magnitude)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("fc.b"), "no 'fc.b' member"),
    (lambda m: m.pop("conv1.w"), "without a gap"),
    (lambda m: m.update({"conv2.w": m["conv2.w"][:, :4]}), r"'conv2.w' must be \[K, 8, 3, 3\]"),
    (lambda m: m.update({"fc.w": m["fc.w"][:, :255]}), r"need fc.w \[classes, 256\]"),
    (lambda m: m.update({"images": m["images"].astype(np.float32)}), "'images' must be a 4-D float16"),
    (lambda m: m.pop("metrics"), "no 'metrics' member"),
])
def test_load_refuses_bad_files(tmp_path, change, message):
    data = members()
    change(data)
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    with pytest.raises(ValueError, match=message):
        network.load(path)
