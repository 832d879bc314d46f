"""Workloads that ``accel run`` embeds: trained networks stored as small FP16 ``.npz`` files beside the
scripts that regenerate them (those need the optional ``train`` extra: PyTorch and scikit-learn)."""

from pathlib import Path

__all__ = ["DIGITS"]

#: The pruned digits CNN and its test images (``python -m accel.cli.workloads.train_digits`` writes it).
DIGITS = Path(__file__).with_name("digits.npz")
