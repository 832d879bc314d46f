"""Workloads that ``accel run`` embeds: trained networks stored as small FP16 ``.npz`` files beside the
scripts that regenerate them (those need the optional ``train`` extra: PyTorch and scikit-learn), and the
record of the areas of the accelerators that run them."""

from pathlib import Path

from ...hw.accelerator import BufferConfig

__all__ = ["DIGITS", "DIGITS_BUFFERS", "DIGITS_AREAS"]

#: The pruned digits CNN and its test images (``python -m accel.cli.workloads.train_digits`` writes it).
DIGITS = Path(__file__).with_name("digits.npz")

#: On-chip buffers sized for the digits network (all 64 images' classifier inputs fit the activation buffer).
DIGITS_BUFFERS = BufferConfig(act_words=1 << 14, weight_tiles=512, psum_tiles=576, v_words=64, out_words=256)

#: The areas of the digits configurations' accelerators (``python -m accel.cli.workloads.record_areas``
#: writes it; :mod:`accel.synth.area_record`).
DIGITS_AREAS = Path(__file__).with_name("digits_areas.json")
