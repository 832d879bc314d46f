"""`accel sweep`: SCALE-Sim topologies (each malformed case refused naming its row), synthetic layer data,
a sweep on a local Dask cluster equal to the points run one after another, a worker killed mid-sweep, the
on-disk cache (a re-run computes nothing) and the command's bad-input paths (one line, exit 2, nothing
written). pysim and tiny layers: each point costs seconds of simulation."""

import csv
import functools
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import cloudpickle
import numpy as np
import pytest

from accel.cli.main import main
from accel.energy.sweep import (Cache, check_points, compute_point, flat_row, make_points, open_client,
                                parse_array, run_sweep, summarize)
from accel.energy.layers import output_digest
from accel.golden import fp
from accel.sim.conv import run_conv
from accel.sim.topology import Layer, builtin_topologies, random_layer_data, read_topology, topology_path

# the kill-once task below travels to the workers by value (they cannot import this test module)
cloudpickle.register_pickle_by_value(sys.modules[__name__])

HEADER = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"


def topology(tmp_path, *rows, header=HEADER, name="NET.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return str(path)


# --- topologies ------------------------------------------------------------------------------------------

def test_shipped_topologies_parse_and_tiny_is_two_small_layers():
    assert {"tiny", "digits", "resnet18", "vgg16"} <= set(builtin_topologies())
    for name in builtin_topologies():
        layers = read_topology(topology_path(name))
        assert layers and all((l.filter_height, l.filter_width, l.stride) == (3, 3, 1) for l in layers)
    tiny = read_topology(topology_path("tiny"))
    assert [(l.name, l.x_shape, l.w_shape, l.row) for l in tiny] == [
        ("conv1", (4, 6, 6), (4, 4, 3, 3), 2), ("conv2", (4, 8, 8), (8, 4, 3, 3), 3)]
    digits = read_topology(topology_path("digits"))
    assert [(l.x_shape, l.filters) for l in digits] == [((1, 8, 8), 8), ((8, 6, 6), 16)]


def test_a_file_wins_over_a_shipped_name_and_a_folder_does_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()                          # e.g. an earlier --out folder
    assert topology_path("tiny") == os.path.join(os.path.dirname(topology_path("digits")), "tiny.csv")
    (tmp_path / "digits").write_text(HEADER + "\nc1, 5, 5, 3, 3, 1, 1, 1,\n")
    assert topology_path("digits") == "digits" and read_topology("digits")[0].name == "c1"
    with pytest.raises(ValueError, match="no such file, nor a shipped topology"):
        topology_path("nonesuch")


def test_trailing_comma_whitespace_and_column_case_are_accepted(tmp_path):
    with_comma = read_topology(topology(tmp_path, " c1 ,  7, 9 , 3, 3, 2, 5, 1 ,", name="a.csv"))
    without = read_topology(topology(tmp_path, "c1,7,9,3,3,2,5,1", header=HEADER.rstrip(",").upper(),
                                     name="b.csv"))
    assert [l.as_json() for l in with_comma] == [l.as_json() for l in without] == [
        {"name": "c1", "C": 2, "K": 5, "H": 7, "W": 9, "R": 3, "S": 3, "stride": 1}]


@pytest.mark.parametrize("header, rows, message", [
    (HEADER.replace(" Strides,", ""), ["c1, 6, 6, 3, 3, 4, 4"], "NET.csv row 1: missing column 'Strides'"),
    (HEADER, ["c1, 6, 6, 3, 3, 4, 4, 1,", "c2, 6, 6, 3, 3, four, 4, 1,"],
     "NET.csv row 3 (c2): Channels must be a positive integer, not 'four'"),
    (HEADER, ["c1, 6, 6, 3, 3, 4, 2.5, 1,"], "NET.csv row 2 (c1): Num Filter must be a positive integer, not '2.5'"),
    (HEADER, ["c1, 6, 6, 3, 3, 4, 4, 1,", "c2, 0, 6, 3, 3, 4, 4, 1,"],
     "NET.csv row 3 (c2): IFMAP Height must be a positive integer, not 0"),
    (HEADER, ["c1, 6, 6, 3, 3, 4, 4, 1,", "c2, 6, 6, 3, 3, 4, 4, 1,", "conv3, 9, 9, 5, 5, 4, 4, 1,"],
     "NET.csv row 4 (conv3): filter 5x5 unsupported, the accelerator runs 3x3 stride-1 layers"),
    (HEADER, ["c1, 6, 6, 3, 3, 4, 4, 2,"], "NET.csv row 2 (c1): stride 2 unsupported"),
    (HEADER, ["c1, 2, 6, 3, 3, 4, 4, 1,"], "NET.csv row 2 (c1): IFMAP 2x6 is smaller than the 3x3 filter"),
    (HEADER, ["c1, 6, 6, 3, 3, 4, 4, 1,", "c1, 7, 7, 3, 3, 4, 4, 1,"], "NET.csv row 3 (c1): the layer name is already"),
    (HEADER, [], "NET.csv: has a header but no layer"),
])
def test_malformed_topology_is_refused_naming_the_row(tmp_path, header, rows, message):
    path = topology(tmp_path, *rows, header=header)
    with pytest.raises(ValueError) as error:
        read_topology(path)
    text = str(error.value)
    assert "\n" not in text and text.startswith(str(tmp_path)) and message in text


# --- synthetic data --------------------------------------------------------------------------------------

def test_random_layer_data_is_seeded_pruned_and_2_to_4_for_nm24():
    layer = Layer("conv", 10, 10, 3, 3, 8, 8, 1)
    x, w = random_layer_data(layer, 0.25, 0.4, "dense", seed=3)
    assert x.dtype == w.dtype == np.uint16 and x.shape == (8, 10, 10) and w.shape == (8, 8, 3, 3)
    assert np.mean(~fp.is_zero(x, fp.FP16)) == pytest.approx(0.4, abs=1 / x.size)
    assert np.mean(~fp.is_zero(w, fp.FP16)) == pytest.approx(0.25, abs=1 / w.size)
    assert (fp.from_bits(x, fp.FP16) >= 0).all()                     # ReLU-like
    again = random_layer_data(layer, 0.25, 0.4, "dense", seed=3)
    assert np.array_equal(x, again[0]) and np.array_equal(w, again[1])
    assert not np.array_equal(x, random_layer_data(layer, 0.25, 0.4, "dense", seed=4)[0])
    renamed = Layer("other", 10, 10, 3, 3, 8, 8, 1)
    assert not np.array_equal(x, random_layer_data(renamed, 0.25, 0.4, "dense", seed=3)[0])
    _, w24 = random_layer_data(layer, 0.5, 0.4, "nm24", seed=3)
    live = ~fp.is_zero(w24, fp.FP16)
    assert live.reshape(8, 2, 4, 3, 3).sum(axis=2).max() == 2 and live.mean() == pytest.approx(0.5)
    # the largest two of each group are the ones kept
    groups = np.abs(fp.from_bits(w24, fp.FP16)).reshape(8, 2, 4, 3, 3)
    kept_min = np.where(groups > 0, groups, np.inf).min(axis=2)
    assert (groups.max(axis=2) >= kept_min).all()
    _, w_c1 = random_layer_data(Layer("c1", 8, 8, 3, 3, 1, 8, 1), 0.3, 0.5, "nm24", seed=0)   # C < 4
    assert w_c1.shape == (8, 1, 3, 3)


# --- points and their checks -----------------------------------------------------------------------------

def test_array_shapes_parse_and_only_4x4x4_runs():
    assert parse_array("4x4x4") == (4, 4, 4) and parse_array("8X8x2") == (8, 8, 2)
    for bad in ("4x4", "axbxc", "0x4x4"):
        with pytest.raises(ValueError):
            parse_array(bad)
    layers = read_topology(topology_path("tiny"))
    check_points(make_points("tiny", layers))
    with pytest.raises(ValueError, match="array 8x8x8: .* runs a 4x4x4 array only"):
        check_points(make_points("tiny", layers, arrays=[(4, 4, 4), (8, 8, 8)]))
    with pytest.raises(ValueError, match="2:4"):
        check_points(make_points("tiny", layers, formats=["nm24"], weight_densities=[0.6]))


def test_every_resnet18_layer_plans_its_passes():
    # the 64- to 256-channel layers in output-channel groups and row bands; the 512-channel ones (4 filters of 512
    # channels need 1,152 weight tiles of the 1,024) in input-channel groups too
    path = topology_path("resnet18")
    check_points(make_points("resnet18", read_topology(path)), source=path)


def test_nm24_points_of_direct_layers_skip_unless_asked_to_gate():
    layer = Layer("c", 6, 6, 3, 3, 4, 4, 1)
    points = make_points("n", [layer], algos=["direct", "winograd2"], formats=["dense", "nm24"])
    modes = {(p.algo, p.fmt): p.sparse_mode for p in points}
    assert modes == {("direct", "dense"): "gate", ("direct", "nm24"): "skip", ("winograd2", "dense"): "gate",
                     ("winograd2", "nm24"): "gate"}
    gated = make_points("n", [layer], formats=["nm24"], sparse_mode="gate")[0]
    skipped = next(p for p in points if p.sparse_mode == "skip")
    assert gated.key() != skipped.key() and skipped.config_label.startswith("direct/nm24-skip/")
    assert skipped.buffers.skip and not gated.buffers.skip


def test_summary_pareto_front_and_best_bit_exact_configuration():
    layer = Layer("c", 6, 6, 3, 3, 4, 4, 1)
    points = make_points("n", [layer], gatings=["hold", "and", "none"], seeds=[0, 1])
    figures = [(100, 50.0, True), (90, 60.0, True), (120, 40.0, True), (130, 45.0, True), (95, 30.0, False),
               (200, 200.0, True)]
    results = [{"summary": {"cycles": c, "energy_pj": {"total": e}, "bit_exact": ok}} for c, e, ok in figures]
    network = summarize(points, results)["n"]
    labels = [p.config_label for p in points]
    assert network["pareto"] == [labels[1], labels[4]]        # (90, 60), (95, 30): the rest is dominated
    assert network["best"] == labels[2]                        # 40 pJ: the lowest of the bit-exact ones
    assert "bit-exact" in network["best_reason"]


# --- sweeps on Dask --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    with open_client(workers=2) as client:
        yield client


def _die_once(marker, point, cache_folder, version):
    """The sweep's task, except that its first attempt at one point kills its own worker process."""
    if (point.layer.name, point.gating) == ("conv2", "and") and not os.path.exists(marker):
        with open(marker, "x"):
            pass
        os._exit(1)
    return compute_point(point, cache_folder, version)


def _never(*args):
    raise AssertionError("a cached point was computed again")


def _alone(point):
    """The point run with run_conv directly: what the sweep must reproduce."""
    x, w = random_layer_data(point.layer, point.weight_density, point.act_density, point.fmt, point.seed)
    run = run_conv(x, w, algo=point.algo, fmt=point.fmt, gating=point.gating, backend=point.backend)
    return {"counters": run.counters, "cycles": run.cycles, "toggles": run.toggles.as_json(),
            "output_sha256": output_digest(run.y), "bit_exact": run.bit_exact}


@pytest.fixture(scope="module")
def swept(client, tmp_path_factory):
    """2 layers x 3 configurations on 2 workers into a fresh cache, one point's first attempt killing its
    worker; meanwhile (the sweep waits on its workers) the same points run one after another here."""
    out = tmp_path_factory.mktemp("sweep")
    marker = str(out / "killed")
    points = make_points("tiny", read_topology(topology_path("tiny")), gatings=["hold", "and", "none"],
                         weight_densities=[0.5], act_densities=[0.5], seeds=[7])
    with ThreadPoolExecutor(1) as pool:
        sweeping = pool.submit(run_sweep, points, str(out / "cache"), client,
                               task=functools.partial(_die_once, marker))
        alone = [_alone(point) for point in points]
        run = sweeping.result()
    return out, points, run, alone


def test_sweep_on_two_workers_equals_the_points_run_one_after_another(swept):
    out, points, run, alone = swept
    assert (run.computed, run.cached, len(run.results)) == (6, 0, 6)
    for point, result, reference in zip(points, run.results, alone):
        assert result["point"]["layer"] == point.layer.name and result["point"]["gating"] == point.gating
        summary = result["summary"]
        assert {key: summary[key] for key in reference} == reference
        row = flat_row(result)
        assert row["counters.macs_gated"] == reference["counters"]["macs_gated"] and row["energy_pj.total"] > 0
    assert len({r["summary"]["toggles"]["total"] for r in run.results}) > 1     # the configurations differ


def test_a_killed_worker_loses_nothing_and_every_point_is_cached(swept):
    out, points, run, _ = swept
    assert (out / "killed").exists()                     # the worker did die mid-sweep
    assert [r["point"]["layer"] for r in run.results] == [p.layer.name for p in points]
    assert all(r["summary"]["bit_exact"] for r in run.results)
    cache = str(out / "cache")
    assert sorted(os.listdir(cache)) == sorted(f"{p.key()}.json" for p in points)
    assert all(Cache(cache).load(p.key()) == r for p, r in zip(points, run.results))


def test_a_rerun_computes_nothing(swept, client):
    out, points, run, _ = swept
    again = run_sweep(points, str(out / "cache"), client, task=_never)
    assert (again.computed, again.cached) == (0, 6)
    assert again.results == run.results
    changed = make_points("tiny", read_topology(topology_path("tiny")), gatings=["hold"], seeds=[8])
    with pytest.raises(AssertionError, match="computed again"):     # a new seed is a new point
        run_sweep(changed[:1], str(out / "cache"), client, task=_never)


def test_the_command_writes_the_table_summary_and_plot_from_the_cache(swept, client, capsys):
    out, points, run, _ = swept
    address = client.scheduler.address
    code = main(["sweep", "--topology", "tiny", "--gating", "hold", "and", "none", "--seed", "7",
                 "--scheduler", address, "--out", str(out), "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(stdout)
    assert (summary["points"], summary["computed"], summary["cached"]) == (6, 0, 6)
    assert summary["bit_exact"] is True and summary["cycles"] == sum(r["summary"]["cycles"] for r in run.results)
    network = summary["networks"]["tiny"]
    assert len(network["configs"]) == 3 and network["best"] in [c["config"] for c in network["configs"]]
    with open(out / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 6 and [r["layer"] for r in rows] == [p.layer.name for p in points]
    for column in ("bit_exact", "cycles", "counters.macs_gated", "counters.idle_dependency", "toggles.by_unit.mul",
                   "energy_pj.by_unit.mul", "energy_pj.by_unit.buffers", "energy_pj.total", "output_sha256"):
        assert column in rows[0]
    assert (out / "pareto.png").read_bytes()[:4] == b"\x89PNG"


def test_area_adds_each_configurations_synthesized_area_once(swept, client, capsys, monkeypatch):
    import accel.cli.area as area
    out, points, run, _ = swept
    asked = []

    def fake_area(buffers, *, build_dir, progress=None):
        # a figure that tells the configurations apart, as accel synth --unit accel would
        asked.append(buffers)
        ge = {"hold": 3000.0, "and": 2500.0, "none": 2000.0}[str(buffers.gating)]
        return {"ge": ge, "flip_flops": int(ge) // 10, "sram": {"bits": sum(buffers.sram_bits.values())}}

    monkeypatch.setattr(area, "accelerator_area", fake_area)
    code = main(["sweep", "--topology", "tiny", "--gating", "hold", "and", "none", "--seed", "7", "--area",
                 "--scheduler", client.scheduler.address, "--out", str(out), "--json"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    # one synthesis per configuration, not per point (2 layers x 3 gatings), each the point's own accelerator
    assert sorted(str(b.gating) for b in asked) == ["and", "hold", "none"]
    assert set(asked) == {p.buffers.running(algo=p.algo, weight_format=p.fmt, gating=p.gating) for p in points}
    with open(out / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    for point, row in zip(points, rows):
        assert float(row["area.ge"]) == {"hold": 3000.0, "and": 2500.0, "none": 2000.0}[point.gating]
        assert int(row["area.sram_bits"]) == sum(point.buffers.sram_bits.values()) > 0
    configs = json.loads(stdout)["networks"]["tiny"]["configs"]
    assert sorted(c["area"]["ge"] for c in configs) == [2000.0, 2500.0, 3000.0]


def test_area_that_cannot_be_written_stops_before_any_point(tmp_path, capsys, monkeypatch):
    import accel.cli.area as area

    def unwritable(buffers, *, build_dir, progress=None):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(area, "accelerator_area", unwritable)
    monkeypatch.setattr("accel.cli.commands.sweep.open_client", _never)      # no cluster, no point
    code, stdout, err, out = sweep(tmp_path, capsys, "--topology", "tiny", "--area")
    assert code == 2 and len(err.splitlines()) == 1 and "--area: cannot write in the build folder" in err
    assert "Traceback" not in err and stdout == "" and not out.exists()


# --- the command's bad input -----------------------------------------------------------------------------

def sweep(tmp_path, capsys, *args):
    out = tmp_path / "out"
    code = main(["sweep", "--out", str(out), *args])
    stdout, err = capsys.readouterr()
    return code, stdout, err.strip(), out


@pytest.mark.parametrize("args, message", [
    (["--topology", "BAD"], "row 3 (conv2): filter 5x5 unsupported"),
    (["--topology", "nonesuch"], "nonesuch: no such file, nor a shipped topology"),
    (["--topology", "missing.csv"], "--topology missing.csv: cannot read"),
    (["--topology", "tiny", "--array", "8x8x8"], "--array 8x8x8: the accelerator's conv sequencer runs a 4x4x4"),
    (["--topology", "tiny", "--array", "4x4"], "--array: array shape must be MxNxK"),
    (["--topology", "tiny", "--format", "nm24", "--weight-density", "0.9"], "2:4 (nm24) weights keep at most 0.5"),
    (["--topology", "tiny", "--weight-density", "1.5"], "--weight-density: must be a number in [0, 1]"),
    (["--topology", "tiny", "--algo", "winograd9"], "--algo: invalid choice"),
    (["--topology", "tiny", "--workers", "0"], "--workers"),
    (["--topology", "tiny", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers sizes the local"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    topology(tmp_path, "conv1, 6, 6, 3, 3, 4, 4, 1,", "conv2, 9, 9, 5, 5, 4, 4, 1,", name="BAD")
    code, stdout, err, out = sweep(tmp_path, capsys, *args)
    assert code == 2 and stdout == "" and "\n" not in err and message in err, err
    assert not out.exists()
