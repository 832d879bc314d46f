"""The whole accelerator's area (accel.synth.accelerator, `accel synth --unit accel`).

One real synthesis of the top logic, on a small dense direct configuration (about a minute under load);
the blocks (the 4x4x4 array takes minutes) are stood in for by fixed figures, and a block's own synthesis
and cache are checked on a small component of the test's own. The figures of the real configurations are
measured with the CLI (docs/area.md).
"""

import json
import re
import shutil
from pathlib import Path

import pytest
from amaranth import Module
from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

import accel.synth.accelerator as area
from accel.cli.main import main
from accel.hw.accelerator import Accelerator, BufferConfig
from accel.synth import ACCELERATOR, SynthError, unit_names
from accel.synth.export import to_rtlil

SMALL = BufferConfig(act_words=256, weight_tiles=16, psum_tiles=16)

# transistors per static-CMOS gate, as in tests/test_synth.py
TRANSISTORS = {"NOT": 2, "NAND": 4, "NOR": 4, "AOI3": 6, "OAI3": 6, "AOI4": 8, "OAI4": 8,
               "NMUX": 10, "MUX": 12, "XOR": 12, "XNOR": 12, "DFF_P": 16}

FAKE_ARRAY = {"component": "HMMA", "ge": 1000.0, "transistors": 4000, "flip_flops": 10, "cells": {},
              "seconds": None, "digest": "0" * 16}


def expected_buffers(b):
    """name -> (depth, width) of an accelerator's buffers, from the BufferConfig's fields alone."""
    points = {"direct": 1, "winograd2": 16, "winograd4": 36}[b.algo]
    compressed = b.weight_format != "dense"
    wide = points > 1
    buffers = {"act_buf": (b.act_words, 16),
               "weight_buf": (b.weight_tiles * 4, 64) if compressed else (b.weight_tiles, 16 * 16)}
    for p in range(points):
        buffers[f"psum_buf{p if wide else ''}"] = (b.psum_tiles // points, 16 * 32)
    if wide:
        m = {16: 2, 36: 4}[points]
        buffers.update({f"v_buf{p}": (b.v_words, 16 * 17) for p in range(points)})
        buffers["out_buf"] = (b.out_words, m * m * 32)
        if compressed:
            buffers["weight_file"] = (2 * points, 16 * 17)
    return buffers


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small configuration's area: the top logic synthesized, the array's figures fixed."""
    build = tmp_path_factory.mktemp("accel-area")
    calls = []

    def fake_block(name, component, build_dir, *, progress=None):
        calls.append((name, type(component).__name__))
        return {**FAKE_ARRAY, "cached": True}

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(area, "block_area", fake_block)
        result = area.accelerator_area(SMALL, build_dir=build)
    return build, result, calls


def test_buffers_are_listed_as_sram_bits_of_the_configuration(small):
    _, result, _ = small
    listed = {name: (entry["depth"], entry["width"]) for name, entry in result["sram"]["buffers"].items()}
    assert listed == expected_buffers(SMALL)
    assert all(entry["bits"] == entry["depth"] * entry["width"] for entry in result["sram"]["buffers"].values())
    assert result["sram"]["bits"] == 256 * 16 + 16 * 256 + 16 * 512 == sum(SMALL.sram_bits.values())
    assert result["sram"]["buffers"]["act_buf"]["write_ports"] == 16     # a LOAD_ACT writes 16 elements at once


def test_top_logic_has_the_blocks_as_black_boxes_and_no_memories(small):
    build, result, calls = small
    top = result["top"]
    assert calls == [("array", "HMMA")]
    assert top["black_boxes"] == {"array": 1} and top["sram_cells"] == 3
    text = (Path(top["build_dir"]) / "design.il").read_text()
    assert "module \\blackbox_array" in text and "module \\top.array" not in text   # none of the array's cells
    assert set(top["cells"]) <= set(TRANSISTORS), top["cells"]                    # SRAM and boxes removed
    assert top["transistors"] == sum(TRANSISTORS[c] * n for c, n in top["cells"].items())
    assert top["ge"] == top["transistors"] / 4 and top["flip_flops"] == top["cells"]["DFF_P"]
    # the psum-address FIFO's storage (inside a submodule) is logic, not a buffer
    assert "addr_fifo.storage" not in result["sram"]["buffers"]


def test_total_is_top_logic_plus_blocks(small):
    _, result, _ = small
    assert result["ge"] == result["top"]["ge"] + FAKE_ARRAY["ge"]
    assert result["transistors"] == result["top"]["transistors"] + FAKE_ARRAY["transistors"]
    assert result["flip_flops"] == result["top"]["flip_flops"] + FAKE_ARRAY["flip_flops"]
    assert result["configuration"] == {"algo": "direct", "weight_format": "dense", "sparse_mode": "gate",
                                       "gating": "hold", "act_words": 256, "weight_tiles": 16, "psum_tiles": 16,
                                       "v_words": 256, "out_words": 4096, "addr_fifo_depth": 16}
    assert not result["top"]["cached"]


def test_second_run_takes_the_cache_without_yosys(small, monkeypatch):
    build, first, _ = small

    def no_yosys(*args, **kwargs):
        raise AssertionError("Yosys ran on a cached design")

    monkeypatch.setattr(area, "run_yosys", no_yosys)
    monkeypatch.setattr(area, "block_area", lambda name, component, build_dir, progress=None:
                        {**FAKE_ARRAY, "cached": True})
    again = area.accelerator_area(SMALL, build_dir=build)
    assert again["top"]["cached"] and again["ge"] == first["ge"]
    assert {k: v for k, v in again["top"].items() if k != "cached"} == \
        {k: v for k, v in first["top"].items() if k != "cached"}


@pytest.mark.parametrize("config", [
    BufferConfig(algo="winograd2", weight_format="bitmask", act_words=512, psum_tiles=64, v_words=8, out_words=32),
    BufferConfig(weight_format="nm24", sparse_mode="skip", weight_tiles=8),
    BufferConfig(algo="winograd4", weight_format="rle", psum_tiles=72),
])
def test_every_configuration_splits_into_its_blocks_and_buffers(config):
    """Without synthesis: the black-boxed blocks and the buffers of other configurations (their sizes
    from the Memory objects the accelerator builds)."""
    fragment, blocks, boxes, memories = area._split(Accelerator(config))
    assert {name: (memory.depth, Shape.cast(memory.shape).width) for name, memory in memories.items()} == \
        expected_buffers(config)
    names = {"array"} | ({"decompressor"} if config.compressed else set()) | \
        ({"winograd_in", "winograd_out"} if config.winograd_m else set())
    assert set(blocks) == names and len(boxes) == len(names)
    assert blocks["array"].config.sparse == config.skip
    if config.compressed:
        assert blocks["decompressor"].kept == config.skip


class Tiny(wiring.Component):
    """A registered 4-bit adder: a block small enough to synthesize in a test."""

    def __init__(self):
        super().__init__({"a": In(4), "b": In(4), "s": Out(5)})

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.s.eq(self.a + self.b)
        return m


def test_block_is_synthesized_once_and_then_cached(tmp_path, monkeypatch):
    first = area.block_area("tiny", Tiny(), tmp_path)
    assert not first["cached"] and first["component"] == "Tiny" and first["flip_flops"] == 5
    folder = Path(first["build_dir"])
    assert folder.parent == tmp_path / ACCELERATOR / "blocks" and folder.name == f"tiny-{first['digest']}"
    assert (folder / "result.json").exists() and (folder / "design.il").read_text() == to_rtlil(Tiny())

    def no_yosys(*args, **kwargs):
        raise AssertionError("Yosys ran on a cached block")

    monkeypatch.setattr("accel.synth.flows.run_yosys", no_yosys)
    again = area.block_area("tiny", Tiny(), tmp_path)
    assert again["cached"] and again["ge"] == first["ge"] and again["digest"] == first["digest"]


def test_block_takes_a_registry_build_of_the_same_rtlil(tmp_path, monkeypatch):
    """A unit built by `accel synth --unit NAME` (build_dir/NAME/cmos/GATING/) with the same RTLIL and script
    is taken; one whose RTLIL differs is not."""
    made = area.block_area("tiny", Tiny(), tmp_path / "made")
    source = Path(made["build_dir"])
    unit = tmp_path / "build" / "tiny_unit" / "cmos" / "hold"
    unit.mkdir(parents=True)
    for name in ("design.il", "synth.ys", "stat.json", "yosys.log"):
        (unit / name).write_bytes((source / name).read_bytes())
    monkeypatch.setattr("accel.synth.flows.run_yosys", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
    taken = area.block_area("tiny", Tiny(), tmp_path / "build")
    assert not taken["cached"] and taken["taken_from"] == str(unit) and taken["ge"] == made["ge"]
    # the same unit build with other RTLIL, in a build folder with no cache of its own: not taken, so
    # block_area would run Yosys (which fails here)
    other = tmp_path / "other" / "tiny_unit" / "cmos" / "hold"
    shutil.copytree(unit, other)
    (other / "design.il").write_text(to_rtlil(Tiny()).replace("top", "top2"))
    with pytest.raises(AssertionError):
        area.block_area("tiny", Tiny(), tmp_path / "other")


# ---------------------------------------------------------------- the command

def accel(capsys, *argv):
    status = main(["synth", *map(str, argv)])
    out, err = capsys.readouterr()
    return status, out, err


def test_accelerator_is_not_a_default_unit():
    assert ACCELERATOR not in unit_names()


@pytest.mark.parametrize("argv, message", [
    (["--unit", "accel", "--flow", "ecp5"], r"--unit accel is measured with the cmos flow only, not --flow ecp5"),
    (["--unit", "accel", "--flow", "liberty:tests/fixtures/tiny45.lib"], r"cmos flow only, not --flow liberty:"),
    (["--unit", "accel", "--format", "rle", "--sparse-mode", "skip"],
     r"--sparse-mode skip needs nm24 weights and --algo direct, not rle weights and direct"),
    (["--unit", "accel", "--format", "nm24", "--algo", "winograd2", "--sparse-mode", "skip"],
     r"not nm24 weights and winograd2"),
    (["--unit", "fp16_mul", "--algo", "winograd2"], r"--algo only applies to --unit accel"),
    (["--format", "nm24", "--gating", "none"], r"--format, --gating only apply to --unit accel"),
    (["--unit", "accel", "--algo", "winograd3"], r"argument --algo: invalid choice: 'winograd3'"),
    (["--unit", "acel"], r"unknown unit 'acel'; choose one of .*; or accel \(the whole accelerator\)"),
])
def test_cli_refuses_bad_flow_and_configuration_in_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setattr("accel.cli.commands.synth.accelerator_area", lambda *a, **k: pytest.fail("synthesized"))
    build = tmp_path / "build"
    try:
        status, out, err = accel(capsys, *argv, "--build-dir", build)
    except SystemExit as exit:      # argparse's own errors
        status, (out, err) = exit.code, capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2 and out == "" and len(lines) == 1, err
    assert re.search(message, lines[-1]), lines[-1]
    assert not build.exists()


@pytest.mark.parametrize("argv, config", [
    ([], ("direct", "dense", "gate", "hold")),
    (["--format", "nm24"], ("direct", "nm24", "skip", "hold")),          # as accel conv: skip where it can
    (["--format", "nm24", "--sparse-mode", "gate", "--gating", "none"], ("direct", "nm24", "gate", "none")),
    (["--algo", "winograd2", "--format", "bitmask"], ("winograd2", "bitmask", "gate", "hold")),
])
def test_cli_builds_the_configuration_and_prints_the_breakdown(tmp_path, capsys, monkeypatch, argv, config):
    seen = []

    def fake(buffers, *, build_dir, progress=None):
        seen.append(buffers)
        return {"unit": "accel", "flow": "cmos", "configuration": area.configuration(buffers), "ge": 1500.0,
                "transistors": 6000, "flip_flops": 30,
                "top": {"ge": 500.0, "flip_flops": 20, "seconds": 1.0, "cached": False},
                "blocks": {"array": {**FAKE_ARRAY, "cached": True}},
                "sram": {"bits": 64, "buffers": {"act_buf": {"depth": 4, "width": 16, "bits": 64, "read_ports": 1,
                                                             "write_ports": 1}}},
                "seconds": 1.0, "build_dir": str(build_dir)}

    monkeypatch.setattr("accel.cli.commands.synth.accelerator_area", fake)
    status, out, err = accel(capsys, "--unit", "accel", *argv, "--json", "--build-dir", tmp_path)
    assert status == 0, err
    (buffers,) = seen
    assert (buffers.algo, buffers.weight_format, buffers.sparse_mode, str(buffers.gating)) == config
    assert (buffers.act_words, buffers.psum_tiles) == (BufferConfig().act_words, BufferConfig().psum_tiles)
    assert json.loads(out)["ge"] == 1500.0
    status, out, err = accel(capsys, "--unit", "accel", *argv, "--build-dir", tmp_path)
    assert status == 0 and "top logic.ge" in out and "array.ge" in out and "4 x 16 = 64 bits (1R 1W)" in out, out


def test_top_synthesis_failure_names_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(area, "_TOP_SCRIPT", "read_rtlil design.il\nno_such_pass\n")
    monkeypatch.setattr(area, "block_area", lambda *a, **k: pytest.fail("blocks after a failed top"))
    with pytest.raises(SynthError, match=r"no_such_pass.*yosys.log"):
        area.accelerator_area(SMALL, build_dir=tmp_path)
