"""``ebmlab ising``: text and JSON output, methods, user errors."""

from __future__ import annotations

import json

import pytest

from ebmlab.cli import main
from ebmlab.lattice import onsager_magnetization

KEYS = ("magnetization", "energy_per_spin", "susceptibility", "specific_heat")


@pytest.mark.parametrize("method", ["gibbs", "metropolis", "wolff", "swendsen-wang"])
def test_json_output(method, capsys):
    rc = main(
        [
            "ising",
            "--size",
            "16",
            "--temperature",
            "1.5",
            "--sweeps",
            "60",
            "--method",
            method,
            "--json",
            "--chains",
            "4",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    for key in KEYS:
        assert isinstance(out[key], float) and isinstance(out[f"{key}_stderr"], float)
    # Deep in the ordered phase |m| is near Onsager's value whatever the method.
    assert abs(out["magnetization"] - onsager_magnetization(1.5)) < 0.02
    assert out["energy_per_spin"] < -1.8 and out["susceptibility"] >= 0


def test_text_output_3d(capsys):
    rc = main(["ising", "--size", "6", "--dim", "3", "--temperature", "6.0", "--sweeps", "20"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "Ising 3D, L=6" in text
    for key in KEYS:
        assert key in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "1", "--temperature", "2", "--sweeps", "10"], "size must be"),
        (["--size", "8", "--temperature", "-1", "--sweeps", "10"], "temperature must be"),
        (["--size", "8", "--temperature", "2", "--sweeps", "0"], "sweeps must be"),
        (["--size", "8", "--temperature", "2", "--sweeps", "10", "--chains", "0"], "chains"),
    ],
)
def test_user_errors_exit_2(args, message, capsys):
    assert main(["ising", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ebmlab ising: error:") and message in err and "Traceback" not in err
