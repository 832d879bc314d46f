"""Conv-layer workloads for design-space sweeps: SCALE-Sim topology files and synthetic layer data.

A topology is a CSV file in SCALE-Sim's format: a header row naming the columns :data:`COLUMNS` (case and
the spaces around a field do not matter, further columns are ignored, a trailing comma is accepted), then
one layer a row. :func:`read_topology` checks every row before any work is done and refuses, in one line
naming the file row, a missing column, a field that is not a positive integer, and a layer the accelerator
cannot run: it runs 3x3 stride-1 valid convolutions (IFMAP height and width at least 3). The IFMAP sizes
are the layer's input as the accelerator sees it: a "same"-padded layer is listed with its padding.

The topologies shipped with the package (:func:`builtin_topologies`, in ``topologies/``): the 3x3 stride-1
layers of ResNet-18 and VGG-16 at ImageNet sizes, the digits CNN of :mod:`accel.cli.workloads` and ``tiny``
(two small layers, for tests and examples).

:func:`random_layer_data` makes a layer's operands: random FP16 weights pruned by magnitude
(:func:`accel.golden.sparse.magnitude_prune`, 2:4 for ``nm24``) and ReLU-like activations, seeded from
the seed and the layer's name.
"""

import csv
import os
import zlib
from dataclasses import dataclass

import numpy as np

from ..golden import fp
from ..golden.schedule import TILE
from ..golden.sparse import magnitude_prune

__all__ = ["COLUMNS", "TOPOLOGY_DIR", "Layer", "builtin_topologies", "topology_path", "read_topology",
           "random_layer_data"]

#: SCALE-Sim's topology columns, in its order, and the :class:`Layer` field each one fills.
COLUMNS = {"Layer name": "name", "IFMAP Height": "height", "IFMAP Width": "width",
           "Filter Height": "filter_height", "Filter Width": "filter_width", "Channels": "channels",
           "Num Filter": "filters", "Strides": "stride"}

TOPOLOGY_DIR = os.path.join(os.path.dirname(__file__), "topologies")


@dataclass(frozen=True)
class Layer:
    """One conv layer of a topology: input ``channels`` x ``height`` x ``width``, ``filters`` filters of
    ``filter_height`` x ``filter_width``, ``stride``; ``row`` is its row in the file (the header is row 1)."""

    name: str
    height: int
    width: int
    filter_height: int
    filter_width: int
    channels: int
    filters: int
    stride: int
    row: int = 0

    @property
    def x_shape(self):
        return self.channels, self.height, self.width

    @property
    def w_shape(self):
        return self.filters, self.channels, self.filter_height, self.filter_width

    @property
    def macs(self):
        """Multiply-accumulates of the valid convolution."""
        out_h = (self.height - self.filter_height) // self.stride + 1
        out_w = (self.width - self.filter_width) // self.stride + 1
        return self.filters * self.channels * self.filter_height * self.filter_width * out_h * out_w

    def as_json(self):
        return {"name": self.name, "C": self.channels, "K": self.filters, "H": self.height, "W": self.width,
                "R": self.filter_height, "S": self.filter_width, "stride": self.stride}


def builtin_topologies():
    """Names of the topologies shipped with the package (``tiny``, ``digits``, ``resnet18``, ...)."""
    return sorted(name[:-4] for name in os.listdir(TOPOLOGY_DIR) if name.endswith(".csv"))


def topology_path(spec):
    """The file of ``spec``: an existing file, else the name of a shipped topology, else a path (a name with
    a folder or ending in ``.csv``, for the reader to report); ValueError otherwise."""
    if os.path.isfile(spec):
        return spec
    if spec in builtin_topologies():
        return os.path.join(TOPOLOGY_DIR, spec + ".csv")
    if os.sep in spec or spec.endswith(".csv") or os.path.exists(spec):
        return spec
    raise ValueError(f"{spec}: no such file, nor a shipped topology ({', '.join(builtin_topologies())})")


def _header(path, fields):
    """{field: column index} from the header row; ValueError naming the first missing column."""
    names = {name.strip().lower(): index for index, name in enumerate(fields) if name.strip()}
    columns = {}
    for column, field in COLUMNS.items():
        if column.lower() not in names:
            raise ValueError(f"{path} row 1: missing column {column!r} (a SCALE-Sim topology has the columns "
                             f"{', '.join(COLUMNS)})")
        columns[field] = names[column.lower()]
    return columns


def _layer(path, row, fields, columns):
    """The :class:`Layer` of one data row; ValueError naming the row and its problem."""
    name = fields[columns["name"]].strip() if columns["name"] < len(fields) else ""
    where = f"{path} row {row}" + (f" ({name})" if name else "")
    if not name:
        raise ValueError(f"{where}: the layer name is empty")
    values = {}
    for column, field in COLUMNS.items():
        if field == "name":
            continue
        text = fields[columns[field]].strip() if columns[field] < len(fields) else ""
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{where}: {column} must be a positive integer, not {text!r}") from None
        if value < 1:
            raise ValueError(f"{where}: {column} must be a positive integer, not {value}")
        values[field] = value
    layer = Layer(name=name, row=row, **values)
    if (layer.filter_height, layer.filter_width) != (3, 3):
        raise ValueError(f"{where}: filter {layer.filter_height}x{layer.filter_width} unsupported, the accelerator "
                         f"runs 3x3 stride-1 layers")
    if layer.stride != 1:
        raise ValueError(f"{where}: stride {layer.stride} unsupported, the accelerator runs 3x3 stride-1 layers")
    if layer.height < 3 or layer.width < 3:
        raise ValueError(f"{where}: IFMAP {layer.height}x{layer.width} is smaller than the 3x3 filter")
    return layer


def read_topology(path):
    """The layers of the SCALE-Sim topology file ``path``, checked: a list of :class:`Layer`. ValueError
    (one line naming the file row) on a missing column, a field that is not a positive integer, an
    unsupported layer, a repeated layer name, or no layer at all; OSError when the file cannot be read."""
    with open(path, newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream)
        try:
            rows = [(reader.line_num, fields) for fields in reader]
        except (csv.Error, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not a CSV file ({error})") from None
    rows = [(row, fields) for row, fields in rows if any(field.strip() for field in fields)]
    if not rows:
        raise ValueError(f"{path}: is empty; expected a SCALE-Sim topology (a header row, then a layer a row)")
    header_row, header = rows[0]
    columns = _header(f"{path}" if header_row == 1 else f"{path} (header)", header)
    layers, seen = [], {}
    for row, fields in rows[1:]:
        layer = _layer(path, row, fields, columns)
        if layer.name in seen:
            raise ValueError(f"{path} row {row} ({layer.name}): the layer name is already used in row "
                             f"{seen[layer.name]}")
        seen[layer.name] = row
        layers.append(layer)
    if not layers:
        raise ValueError(f"{path}: has a header but no layer")
    return layers


def _rng(seed, name):
    """The generator of a layer's data: from the seed and the layer's name (the same data wherever the
    layer is run)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    return np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])


def random_layer_data(layer, weight_density, act_density, fmt="dense", seed=0):
    """Operands of ``layer``: (x uint16 [C, H, W], w uint16 [K, C, 3, 3]), FP16 bit patterns.

    ``w``: N(0, 1) FP16 weights pruned by magnitude to ``weight_density`` (the kept fraction), 2:4 along the
    input channels when ``fmt`` is ``nm24`` (of each 4 consecutive input channels at one filter tap the 2
    largest stay; at most 0.5): :func:`accel.golden.sparse.magnitude_prune`. ``x``: ReLU-like, |N(0, 1)| at
    a random ``act_density`` fraction of the positions, zero elsewhere. Seeded from (``seed``, the layer's
    name)."""
    for what, value in (("weight_density", weight_density), ("act_density", act_density)):
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"{what} must lie in [0, 1], not {value!r}")
    rng = _rng(seed, layer.name)
    filters, chans, r, s = layer.w_shape
    padded = -(-chans // TILE) * TILE if fmt == "nm24" else chans      # 2:4 groups are whole groups of 4
    w = magnitude_prune((filters, padded, r, s), weight_density, rng, "nm24" if fmt == "nm24" else "bitmask")
    w = np.ascontiguousarray(w[:, :chans])
    size = int(np.prod(layer.x_shape))
    values = np.abs(rng.standard_normal(size)).astype(np.float16)
    values[values == 0] = np.float16(1.0)
    x = np.zeros(size, np.float16)
    live = rng.permutation(size)[:round(act_density * size)]
    x[live] = values[live]
    return fp.to_bits(x.reshape(layer.x_shape), fp.FP16), w
