"""Pack numpy arrays into stream payload words and back, following an Amaranth ``data`` layout.

A layout is flattened into *leaves*: each scalar field, or each scalar field of the elements of an
``ArrayLayout``, is one leaf named by its dotted path (``"a.value"``, ``"c"``) with an element count.
Arrays of shape ``[N, count]`` (or ``[N]`` for single fields) go in; packed integers, one per stream
transfer, come out. Bit matrices keep this at numpy speed for long runs.
"""

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["Leaf", "leaves", "pack", "unpack"]


@dataclass(frozen=True)
class Leaf:
    offset: int   # bit offset of element 0
    width: int    # bits per element
    count: int    # elements (1 for a plain field)
    stride: int   # bits between elements


def leaves(layout, prefix="", offset=0):
    """{dotted path: Leaf} for every scalar field of a struct layout (arrays of scalars/structs allowed)."""
    result = {}
    for name, field in layout:
        path = f"{prefix}{name}"
        shape = field.shape
        if isinstance(shape, data.ArrayLayout):
            elem = shape.elem_shape
            stride = Shape.cast(elem).width
            inner = leaves(elem, "", 0) if isinstance(elem, data.StructLayout) else {"": Leaf(0, stride, 1, 0)}
            for sub, leaf in inner.items():
                key = f"{path}.{sub}" if sub else path
                result[key] = Leaf(offset + field.offset + leaf.offset, leaf.width, shape.length, stride)
        elif isinstance(shape, data.StructLayout):
            result.update(leaves(shape, f"{path}.", offset + field.offset))
        else:
            result[path] = Leaf(offset + field.offset, Shape.cast(shape).width, 1, 0)
    return result


def _bits(values, width):
    """[..., width] little-endian bit matrix of non-negative integers."""
    values = np.asarray(values, dtype=np.uint64)
    return ((values[..., None] >> np.arange(width, dtype=np.uint64)) & 1).astype(np.uint8)


def pack(layout, fields):
    """One packed integer per row from ``{path: array[N] or [N, count]}``; every leaf must be given."""
    layout_leaves = leaves(layout)
    missing = set(layout_leaves) - set(fields)
    unknown = set(fields) - set(layout_leaves)
    if missing or unknown:
        raise ValueError(f"payload fields do not match the layout: missing {sorted(missing)}, "
                         f"unknown {sorted(unknown)}")
    rows = len(next(iter(fields.values())))
    matrix = np.zeros((rows, Shape.cast(layout).width), np.uint8)
    for path, leaf in layout_leaves.items():
        values = np.asarray(fields[path]).reshape(rows, leaf.count)
        for index in range(leaf.count):
            start = leaf.offset + index * leaf.stride
            matrix[:, start:start + leaf.width] = _bits(values[:, index], leaf.width)
    packed = np.packbits(matrix, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack(layout, words):
    """``{path: uint64 array [N, count]}`` from packed integers (fields of up to 64 bits)."""
    width = Shape.cast(layout).width
    nbytes = (width + 7) // 8
    raw = np.frombuffer(b"".join(int(w).to_bytes(nbytes, "little") for w in words), np.uint8)
    matrix = np.unpackbits(raw.reshape(len(words), nbytes), axis=1, bitorder="little")
    weights = lambda n: (np.uint64(1) << np.arange(n, dtype=np.uint64))  # noqa: E731
    result = {}
    for path, leaf in leaves(layout).items():
        columns = [matrix[:, leaf.offset + i * leaf.stride:][:, :leaf.width].astype(np.uint64) @ weights(leaf.width)
                   for i in range(leaf.count)]
        result[path] = np.stack(columns, axis=1) if columns else np.zeros((len(words), 0), np.uint64)
    return result
