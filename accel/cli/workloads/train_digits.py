"""Train, prune and store the digits CNN that ``accel run`` classifies with (needs the ``train`` extra).

    python -m accel.cli.workloads.train_digits [--out PATH]    # default: accel/cli/workloads/digits.npz

Data: ``sklearn.datasets.load_digits`` (1797 8×8 images, 10 classes, shipped with scikit-learn), pixels
scaled by 1/16 to [0, 1] (exact in FP16; the background stays exactly 0, so zero gating sees it), split
80/20 stratified with a fixed seed.

Network: conv1 3×3 1→8 (8×8→6×6), ReLU, conv2 3×3 8→16 (6×6→4×4), ReLU, fc 256→10. The convolutions
have no bias: the accelerator computes y = conv(x, w) and the host then only applies ReLU and rounds to
FP16; the classifier has one (added on the host to the GEMM's FP32 result).

Recipe (CPU, one thread, seeded, deterministic algorithms): Adam, cross-entropy, batches of 64. Dense
training, then magnitude pruning with ``torch.nn.utils.prune`` with the masks kept during fine-tuning:
conv1 gradually (L1, to 50%, 25%, then 10% of its weights, fine-tuning after each step) and conv2 2:4
along input channels (the two largest of every ``w[k, 4g:4g+4, r, s]``, ``prune.custom_from_mask``),
then a final fine-tune with the masks. The classifier stays dense.

Output (``.npz``, byte-reproducible: fixed zip timestamps): FP16 ``conv1.w`` [8, 1, 3, 3],
``conv2.w`` [16, 8, 3, 3], ``fc.w`` [10, 256], ``fc.b`` [10]; ``images`` float16 [64, 1, 8, 8] (the first
64 held-out images) and ``labels`` int64 [64]; ``metrics``, a JSON string: float32 accuracy on the whole
held-out set before and after pruning, the FP16 accuracy of the bit-exact golden pipeline
(``accel.golden.network.classify``) and its agreement with the float32 model on that set, per-layer
densities, the recipe's constants and the library versions.
"""

import argparse
import io
import json
import zipfile

import numpy as np
import sklearn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn.utils import prune

from accel.cli.workloads import DIGITS
from accel.golden import network

SEED = 0
TEST_FRACTION = 0.2
STORED_IMAGES = 64
BATCH = 64
DENSE_EPOCHS, DENSE_LR = 40, 1e-2
CONV1_STEPS = (0.5, 0.25, 0.1)       # conv1's kept fraction after each gradual pruning step
STEP_EPOCHS, FINAL_EPOCHS, TUNE_LR = 10, 30, 3e-3
GROUP = 4                             # 2:4: at most 2 non-zeros in every 4 consecutive input channels


class DigitsNet(nn.Module):
    """conv 1→8, ReLU, conv 8→16, ReLU, fc 256→10 (3×3 valid convolutions without bias)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.conv2 = nn.Conv2d(8, 16, 3, bias=False)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.flatten(1))


def dataset():
    """(train_x, test_x, train_y, test_y): float32 images [N, 1, 8, 8] in [0, 1] and int64 labels."""
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(x, digits.target.astype(np.int64), test_size=TEST_FRACTION,
                            random_state=SEED, stratify=digits.target)


def train(model, x, y, epochs, lr, generator):
    """``epochs`` of Adam on shuffled batches (pruning masks, if any, keep pruned weights at zero)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(BATCH):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def mask_24(weight):
    """Mask keeping the two largest magnitudes of every group ``w[k, 4g:4g+4, r, s]`` (C divisible by 4)."""
    k, c, r, s = weight.shape
    groups = weight.detach().abs().reshape(k, c // GROUP, GROUP, r, s)
    keep = groups.argsort(dim=2, descending=True, stable=True).argsort(dim=2, stable=True) < GROUP // 2
    return keep.reshape(weight.shape).to(weight.dtype)


def prune_and_tune(model, x, y, generator):
    """conv1 gradually to 10% (L1), conv2 2:4 along input channels, fine-tuning with the masks kept;
    then the masks are made permanent (``prune.remove``)."""
    total = model.conv1.weight.numel()
    for density in CONV1_STEPS:
        kept = int(model.conv1.weight.ne(0).sum())
        prune.l1_unstructured(model.conv1, "weight", amount=kept - round(density * total))
        train(model, x, y, STEP_EPOCHS, TUNE_LR, generator)
    prune.custom_from_mask(model.conv2, "weight", mask_24(model.conv2.weight))
    train(model, x, y, FINAL_EPOCHS, TUNE_LR, generator)
    for conv in (model.conv1, model.conv2):
        prune.remove(conv, "weight")


def arrays(model, images, labels):
    """The network's FP16 members plus the given test images (float16) and labels."""
    state = {name: value.detach().numpy() for name, value in model.state_dict().items()}
    names = {"conv1.w": "conv1.weight", "conv2.w": "conv2.weight", "fc.w": "fc.weight", "fc.b": "fc.bias"}
    return {**{key: state[name].astype(np.float16) for key, name in names.items()},
            "images": images.astype(np.float16), "labels": labels.astype(np.int64)}


def save(path, members):
    """``np.savez_compressed`` layout with fixed zip timestamps, so the same model gives the same bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in members.items():
            buffer = io.BytesIO()
            np.save(buffer, value, allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)),
                             buffer.getvalue(), zipfile.ZIP_DEFLATED)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m accel.cli.workloads.train_digits",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(DIGITS), help=f"where to write the .npz (default: {DIGITS})")
    args = parser.parse_args(argv)

    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(SEED)
    train_x, test_x, train_y, test_y = dataset()
    tx, ty = torch.from_numpy(train_x), torch.from_numpy(train_y)
    vx, vy = torch.from_numpy(test_x), torch.from_numpy(test_y)

    model = DigitsNet()
    train(model, tx, ty, DENSE_EPOCHS, DENSE_LR, generator)
    dense = accuracy(model, vx, vy)
    print(f"float32 dense:  {dense:.4f} on {len(vy)} held-out images")
    prune_and_tune(model, tx, ty, generator)
    pruned = accuracy(model, vx, vy)
    print(f"float32 pruned: {pruned:.4f}")

    held_out = network.check({**arrays(model, test_x, test_y), "metrics": np.array("{}")})
    golden = network.classify(held_out.images, held_out)
    fp16 = float(np.mean(golden.predictions == test_y))
    agree = float(np.mean(golden.predictions == network.float32_predictions(held_out.images, held_out)))
    print(f"FP16 golden:    {fp16:.4f} (agrees with the float32 model on {agree:.4f})")

    members = arrays(model, test_x[:STORED_IMAGES], test_y[:STORED_IMAGES])
    density = {name: float(np.mean(members[f"{name}.w"] != 0)) for name in ("conv1", "conv2", "fc")}
    metrics = {"float32_dense": dense, "float32_pruned": pruned, "fp16_golden": fp16,
               "fp16_float32_agreement": agree, "held_out": len(test_y), "density": density,
               "recipe": {"seed": SEED, "test_fraction": TEST_FRACTION, "batch": BATCH,
                          "dense_epochs": DENSE_EPOCHS, "dense_lr": DENSE_LR, "conv1_steps": CONV1_STEPS,
                          "step_epochs": STEP_EPOCHS, "final_epochs": FINAL_EPOCHS, "tune_lr": TUNE_LR,
                          "conv2": "2:4 along input channels"},
               "versions": {"torch": torch.__version__, "scikit-learn": sklearn.__version__,
                            "numpy": np.__version__}}
    save(args.out, {**members, "metrics": np.array(json.dumps(metrics, sort_keys=True))})
    print(f"densities {density}; wrote {args.out}")


if __name__ == "__main__":
    main()
