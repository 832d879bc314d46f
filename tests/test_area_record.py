"""The record of accelerator areas a workload keeps (accel.synth.area_record): taken only for the
configurations it holds and only while the sources are those it was synthesized from."""

import json
import shutil
from pathlib import Path

import pytest

from accel.cli.commands.run import _areas
from accel.cli.workloads import DIGITS_AREAS, DIGITS_BUFFERS, record_areas
from accel.hw.accelerator import BufferConfig
from accel.sim.network import CONFIGURATIONS
from accel.synth import area_record, workspace
from accel.synth.area_record import SOURCES, TOOLS, recorded_areas, source_digest, write_record


def _area(ge):
    return {"ge": ge, "flip_flops": 7, "sram": {"bits": 128}}


def test_a_record_gives_the_areas_of_the_configurations_it_holds_and_of_no_other(tmp_path):
    path = tmp_path / "areas.json"
    hold, none = BufferConfig(), BufferConfig().running(algo="direct", weight_format="dense", gating="none")
    write_record([(hold, _area(1234.5))], path, "made by a test", source_digest())
    found = recorded_areas({"hold": hold, "none": none, "smaller": BufferConfig(act_words=512)}, path)
    assert found == {"hold": {"ge": 1234.5, "flip_flops": 7, "sram_bits": 128, "source": "record"}}
    record = json.loads(path.read_text())
    assert record["sources"] == source_digest() and record["command"] == "made by a test"


def test_a_stale_or_damaged_record_gives_nothing(tmp_path, monkeypatch):
    path = tmp_path / "areas.json"
    write_record([(BufferConfig(), _area(1.0))], path, "test", source_digest())
    assert recorded_areas({"x": BufferConfig()}, path)
    # another source digest: the hardware changed since the record was made
    monkeypatch.setattr(area_record, "source_digest", lambda: "0" * 16)
    assert recorded_areas({"x": BufferConfig()}, path) == {}
    monkeypatch.undo()
    path.write_text('{"sources": ')
    assert recorded_areas({"x": BufferConfig()}, path) == {}
    assert recorded_areas({"x": BufferConfig()}, tmp_path / "absent.json") == {}


def test_the_source_digest_covers_the_hardware_sources(tmp_path, monkeypatch):
    # a copy of the package with one hardware file changed has another digest
    package = Path(workspace.__file__).resolve().parents[1]
    copy = tmp_path / "accel"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.npz", "*.json"))
    monkeypatch.setattr(workspace, "__file__", str(copy / "synth" / "workspace.py"))
    workspace.source_digest.cache_clear()
    try:
        same = workspace.source_digest(SOURCES, TOOLS)
        hw = copy / "hw" / "accelerator.py"
        hw.write_text(hw.read_text() + "\n# changed\n")
        workspace.source_digest.cache_clear()
        changed = workspace.source_digest(SOURCES, TOOLS)
        (copy / "cli" / "main.py").write_text("")       # not a source of the designs
        workspace.source_digest.cache_clear()
        (copy / "hw" / ".#accelerator.py").symlink_to("nowhere")      # an editor's lock file: left out
        workspace.source_digest.cache_clear()
        assert workspace.source_digest(SOURCES, TOOLS) == changed
    finally:
        monkeypatch.undo()
        workspace.source_digest.cache_clear()
    assert same == source_digest() != changed


def test_accel_run_takes_the_digits_record_without_area_and_a_topology_none(tmp_path):
    path = tmp_path / "areas.json"
    write_record([(CONFIGURATIONS["hold"].buffers(DIGITS_BUFFERS), _area(99.0))], path, "test", source_digest())
    found = _areas(["baseline", "hold"], classifier=True, synthesize=False, record=path)
    assert found == {"hold": {"ge": 99.0, "flip_flops": 7, "sram_bits": 128, "source": "record"}}
    assert _areas(["baseline", "hold"], classifier=False, synthesize=False, record=path) == {}


def test_a_record_is_not_written_when_the_sources_changed_during_the_synthesis(tmp_path):
    with pytest.raises(ValueError, match="sources changed"):
        write_record([(BufferConfig(), _area(1.0))], tmp_path / "areas.json", "test", "digest before")
    assert not (tmp_path / "areas.json").exists()


def test_the_shipped_digits_record_is_the_current_hardware_s():
    # docs/results.md's area table is accel run's: after a change to accel/hw, golden or synth, run
    # python -m accel.cli.workloads.record_areas baseline hold bitmask rle nm24 winograd2
    names = ["baseline", "hold", "bitmask", "rle", "nm24", "winograd2"]
    found = recorded_areas({name: CONFIGURATIONS[name].buffers(DIGITS_BUFFERS) for name in names}, DIGITS_AREAS)
    assert sorted(found) == sorted(names)


@pytest.mark.parametrize("argv, env, message", [
    (["fast"], None, "unknown configuration 'fast'"),
    (["baseline"], "/proc/no-such-folder", "build folder /proc/no-such-folder/synth: cannot create"),
])
def test_record_areas_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys, argv, env,
                                                                       message):
    monkeypatch.setattr(record_areas, "DIGITS_AREAS", tmp_path / "areas.json")
    if env:
        monkeypatch.setenv("ACCEL_BUILD_DIR", env)
    with pytest.raises(SystemExit) as exit_:
        record_areas.main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and err.strip().splitlines()[-1].count(message) == 1
    assert not (tmp_path / "areas.json").exists()
