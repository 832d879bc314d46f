"""`accel run`: the digits CNN on the accelerator, configuration by configuration, every layer bit-exact
against golden; the report folder; bad options refused with one line."""

import json

import pytest

from accel.cli.commands.run import OUTPUTS
from accel.cli.main import main
from accel.cli.network_report import report_markdown
from accel.golden.network import classify, load
from accel.sim.network import check_topology, topology_data
from accel.sim.topology import read_topology, topology_path
from accel.cli.workloads import DIGITS


def test_run_classifies_on_the_accelerator_and_writes_the_report_folder(tmp_path, capsys, monkeypatch):
    # two images, the baseline and zero gating: the smallest run that still compares configurations; the
    # two run at once on a local Dask cluster (each summary must come back under its own name); --area with
    # a stand-in for the synthesis (tests/test_synth_accel.py synthesizes for real), called in this process
    import accel.cli.area as area
    asked = []

    def fake_area(buffers, *, build_dir, progress=None):
        asked.append(buffers)
        return {"ge": 1000.0 + 500.0 * buffers.gating.flags_zeros, "flip_flops": 10, "sram": {"bits": 64}}

    monkeypatch.setattr(area, "accelerator_area", fake_area)
    assert main(["run", "--images", "2", "--config", "hold", "--workers", "2", "--json", "--area", "--out",
                 str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("cycles", "macs", "macs_gated", "toggles", "energy_pj", "bit_exact", "best"):
        assert key in summary
    assert set(summary["configurations"]) == {"baseline", "hold"} and summary["bit_exact"] is True
    result = json.loads((tmp_path / "results.json").read_text())
    model = load(DIGITS)
    golden = classify(model.images[:2], model, "hold").predictions
    for name, config in result["configurations"].items():
        assert config["bit_exact"] and config["agrees_with_golden"] == 1.0
        assert set(config["layers"]) == {"conv1", "conv2", "fc"}
        assert all(layer["bit_exact"] for layer in config["layers"].values())
    assert result["configurations"]["hold"]["predictions"] == golden.tolist()
    hold, base = result["configurations"]["hold"], result["configurations"]["baseline"]
    assert (hold["gating"], base["gating"]) == ("hold", "none")
    assert base["macs_gated"] == 0 < hold["macs_gated"] and hold["macs"] == base["macs"]
    assert hold["energy_pj"]["by_unit"]["mul"] < base["energy_pj"]["by_unit"]["mul"]
    for config in result["configurations"].values():
        clock = config["energy_pj"]["clock"]
        assert config["energy_pj"]["by_block"]["clock"] == pytest.approx(clock["gated"]) and \
            clock["gated"] < clock["ungated"]
    report = (tmp_path / "report.md").read_text()
    assert "Best configuration" in report and "| hold:" in report and "clock without clock gating" in report
    # the area of each configuration's own accelerator (the digits network's buffers), synthesized once each
    assert [str(b.gating) for b in asked] == ["none", "hold"] and all(b.act_words == 1 << 14 for b in asked)
    assert (base["area"]["ge"], hold["area"]["ge"]) == (1000.0, 1500.0)
    assert "| hold | 1,500.0 | 10 | 64 |" in report and "--area" in result["command"]
    assert (base["area"]["source"], hold["area"]["source"]) == ("synthesis", "synthesis")
    assert "record_areas" not in report
    # without --area the areas come from the workload's record: one it lacks is said to be not recorded
    del base["area"]
    hold["area"]["source"] = "record"
    from_record = report_markdown(result)
    assert "| baseline | not recorded | | |" in from_record and "| hold | 1,500.0 | 10 | 64 |" in from_record
    assert "record_areas" in from_record
    for name in OUTPUTS:
        if name.endswith(".png"):
            assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_run_takes_a_shipped_topology_with_random_data(tmp_path, capsys):
    # one pass through the tiny topology's two layers, in turn in this process (--workers 1)
    assert main(["run", "--workload", "tiny", "--config", "nm24", "--workers", "1", "--json", "--out",
                 str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "topology" and summary["bit_exact"] is True and summary["images"] == 1
    result = json.loads((tmp_path / "results.json").read_text())
    nm24, base = result["configurations"]["nm24"], result["configurations"]["baseline"]
    assert set(nm24["layers"]) == {"conv1", "conv2"} and "accuracy" not in nm24
    assert nm24["layers"]["conv2"]["counters"]["instructions"] == 9 * 2 * 9       # 9 taps x 2 row blocks x 9 cols
    assert base["layers"]["conv2"]["counters"]["instructions"] == 9 * 2 * 9       # C = 4: one dense step per tap
    assert base["macs"] == nm24["macs"] // 2          # skip mode counts 128 dense-equivalent MACs an instruction
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cycles_energy.png", "idle.png", "report.md",
                                                          "results.json"]
    assert "one pass" in (tmp_path / "report.md").read_text()


def test_the_resnet18_topology_passes_the_checks_before_the_run():
    # its 512-channel layers split their input channels across passes (they were refused: 1,152 weight tiles)
    layers = read_topology(topology_path("resnet18"))
    check_topology(layers, topology_data(layers), ["baseline", "hold"])


@pytest.mark.parametrize("args, message", [
    (["--workload", "tiny", "--images", "2"], "--images: the tiny topology has no images"),
    (["--workload", "resnet"], "unknown workload 'resnet'"),
    (["--backend", "spice"], "invalid choice: 'spice'"),
    (["--images", "65"], "--images"),
    (["--config", "fast"], "invalid choice: 'fast'"),
    (["--workers", "0"], "--workers"),
])
def test_run_rejects_bad_options(tmp_path, capsys, args, message):
    assert main(["run", "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_run_rejects_a_file_as_output_directory(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["run", "--out", str(tmp_path / "file")]) == 2
    assert "exists and is not a directory" in capsys.readouterr().err


def test_run_refuses_before_running_when_one_output_cannot_be_written(tmp_path, capsys):
    (tmp_path / "o" / "idle.png").mkdir(parents=True)
    assert main(["run", "--out", str(tmp_path / "o")]) == 2
    captured = capsys.readouterr()
    assert "idle.png: is a directory" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == "" and not (tmp_path / "o" / "results.json").exists()


def test_run_rejects_an_empty_output_directory_name(capsys):
    assert main(["run", "--out", ""]) == 2
    assert "the directory name is empty" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["file/sub", "file/../sub"])     # ".." resolved as on creating
def test_run_rejects_an_output_directory_it_cannot_create(tmp_path, capsys, out):
    (tmp_path / "file").write_text("x")
    assert main(["run", "--out", f"{tmp_path}/{out}"]) == 2
    err = capsys.readouterr().err
    assert f"cannot create or write in {tmp_path}/file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "sub").exists()


def test_a_reader_closing_the_pipe_early_ends_the_command_quietly():
    import os
    import subprocess
    import sys
    read_end, write_end = os.pipe()
    os.close(read_end)          # nobody will read: the first write fails with a broken pipe
    try:
        done = subprocess.run([sys.executable, "-m", "accel.cli.main", "energy", "--json", "--ops", "1",
                               "--instructions", "1"], stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(write_end)
    # quiet: no error, no traceback; only progress lines, which a loaded machine may show (10 s interval)
    assert done.returncode == 141
    assert all(line.startswith("accel energy: ") and "instructions done" in line
               for line in done.stderr.splitlines()), done.stderr


def test_progress_shows_long_steps_and_keeps_short_ones_quiet():
    import io

    from accel.cli.report import Progress
    quiet = io.StringIO()
    Progress("short", stream=quiet, interval=60)(1, 1)
    assert quiet.getvalue() == ""
    log = io.StringIO()
    progress = Progress("long", stream=log, interval=0)
    for done in range(3):
        progress(done, 2)
    assert [line.split(" (")[0] for line in log.getvalue().splitlines()] == ["long: 0/2", "long: 1/2", "long: 2/2"]


def test_long_energy_studies_report_progress():
    from accel.energy import studies
    calls = []
    studies.overhead_table(ops=2, instructions=2, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1] == 2       # the last shape's instructions, all done
    calls.clear()
    studies.sparsity_check(ops=8, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3), (3, 3)]
