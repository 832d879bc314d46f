"""`accel winograd`: the accuracy table, slot counts and sparsity it prints; a bad plot name."""

import json

import pytest

from accel.cli.main import main


def test_winograd_command_reports_accuracy_slots_and_sparsity(capsys):
    assert main(["winograd", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["multiplies"]["fewer_than_direct"] == {"winograd2": 2.25, "winograd4": 4.0}
    for kind in ("normal", "relu"):
        errors = result["accuracy"][kind]
        assert errors["direct"]["rel_rms"] < 1e-6 < errors["winograd2/f2/fp16"]["rel_rms"]
        assert errors["winograd4/f4/fp16"]["rel_rms"] < errors["winograd4/lavin4/fp16"]["rel_rms"]
    assert result["sparsity"]["f4"]["slots_per_output"] == 36


@pytest.mark.parametrize("plot", ["accuracy.svg", ""])
def test_winograd_plot_must_be_a_png_name(tmp_path, capsys, plot):
    assert main(["winograd", "--plot", str(tmp_path / plot) if plot else plot]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("PNG" in err or "empty" in err)
