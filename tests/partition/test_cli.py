"""`ebmlab logz`, and `ebmlab evaluate` above 3 dimensions (log Z by AIS in report.json)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ebmlab.cli import main

from .targets import correlated_gaussian

FAST_EVAL = {
    "n_samples": 100,
    "sample_steps": 10,
    "mmd_samples": 100,
    "entropy_samples": 1000,
    "quadrature_resolution": 64,
    "ais_chains": 64,
    "ais_temperatures": 100,
}


def make_run(tmp: Path, data: dict) -> Path:
    cfg = {
        "name": "tiny",
        "model": {"hidden": [16]},
        "objective": {"n_steps": 2},
        "train": {"steps": 10, "batch_size": 64, "log_every": 5, "checkpoint_every": 0},
        "evaluate": FAST_EVAL,
        "data": data,
    }
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors (module-scoped fixtures run before _one_thread)
    try:
        assert main(["train", str(tmp / "cfg.yaml"), "--out", str(tmp / "run"), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return tmp / "run"


@pytest.fixture(scope="module")
def run6(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run6")
    g = correlated_gaussian(6, seed=0, lo=0.5, hi=2.0)
    x = g.sample(1500, generator=torch.Generator().manual_seed(0)).float().numpy()
    np.save(tmp / "data.npy", x)
    return make_run(tmp, {"toy": None, "file": str(tmp / "data.npy")})


@pytest.mark.slow
def test_evaluate_reports_log_z_by_ais_above_three_dimensions(run6):
    report = json.loads((run6 / "report.json").read_text())
    assert report["dim"] == 6 and report["log_z_method"] == "ais"
    for key in ("log_z", "log_z_stderr", "nll_heldout", "nll_heldout_stderr", "log_z_ess"):
        assert report[key] is not None and math.isfinite(report[key]), key
    assert report["log_z_lower"] < report["log_z"] < report["log_z_upper"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*effective sample size:RuntimeWarning")  # 30 temperatures
def test_logz_command(run6, capsys):
    capsys.readouterr()
    args = ["logz", str(run6), "--n-chains", "32", "--n-temperatures", "30", "--seed", "1"]
    assert main([*args, "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["method"] == "ais" and est["n_samples"] == 32 and est["stderr"] > 0
    assert main([*args, "--method", "bdmc"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("log Z = ") and "bdmc" in out
    assert main(["logz", str(run6), "--method", "quadrature", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dimension 1 to 3" in err and err.count("\n") == 1
    assert main(["logz", str(run6), "--n-chains", "1"]) == 2
    assert main(["logz", str(run6.parent / "missing")]) == 2


@pytest.mark.slow
def test_logz_command_by_quadrature_in_2d(tmp_path, capsys):
    run2 = make_run(tmp_path, {"toy": "two_moons", "n_train": 500, "n_test": 200})
    capsys.readouterr()
    assert main(["logz", str(run2), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    report = json.loads((run2 / "report.json").read_text())
    assert est["method"] == "quadrature" and report["log_z_method"] == "quadrature"
    assert abs(est["value"] - report["log_z"]) <= 1e-6 + est["stderr"] + report["log_z_stderr"]
