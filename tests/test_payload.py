"""Payload packing agrees with Amaranth's own layout constants, and round-trips."""

import numpy as np
import pytest
from amaranth.lib import data

from accel.sim.payload import pack, unpack

OPERAND = data.StructLayout({"value": 16, "is_zero": 1})
LAYOUT = data.StructLayout({"a": data.ArrayLayout(OPERAND, 4), "c": data.ArrayLayout(32, 2), "x": 3})


def random_fields(rows, seed=0):
    rng = np.random.default_rng(seed)
    return {"a.value": rng.integers(0, 1 << 16, (rows, 4)), "a.is_zero": rng.integers(0, 2, (rows, 4)),
            "c": rng.integers(0, 1 << 32, (rows, 2)), "x": rng.integers(0, 8, rows)}


def test_pack_matches_amaranth_layout_constants():
    fields = random_fields(6)
    words = pack(LAYOUT, fields)
    for row, word in enumerate(words):
        expected = LAYOUT.const({
            "a": [{"value": int(fields["a.value"][row, i]), "is_zero": int(fields["a.is_zero"][row, i])}
                  for i in range(4)],
            "c": [int(v) for v in fields["c"][row]],
            "x": int(fields["x"][row]),
        }).as_value().value
        assert word == expected


def test_unpack_inverts_pack():
    fields = random_fields(9, seed=1)
    unpacked = unpack(LAYOUT, pack(LAYOUT, fields))
    for path, values in fields.items():
        np.testing.assert_array_equal(unpacked[path].reshape(np.shape(values)), values)


def test_pack_names_missing_and_unknown_fields():
    fields = random_fields(2)
    del fields["x"]
    fields["y"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"missing \['x'\], unknown \['y'\]"):
        pack(LAYOUT, fields)
