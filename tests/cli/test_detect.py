"""`ebmlab detect`: energy scores, +1/-1 labels, the threshold from the training data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ebmlab.cli import main
from ebmlab.runs import detect_run

CFG = {
    "name": "blob",
    "model": {"hidden": [16, 16]},
    "train": {"steps": 150, "batch_size": 64, "log_every": 50, "checkpoint_every": 0},
    "data": {"test_fraction": 0.2},
}


@pytest.fixture(scope="module")
def blob_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("detect")
    rng = np.random.RandomState(0)
    data = tmp / "train.csv"
    np.savetxt(data, rng.randn(600, 2), delimiter=",")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(json.loads(json.dumps(CFG))))
    out = tmp / "run"
    args = ["train", str(cfg), "--data", str(data), "--objective", "dsm", "--out", str(out)]
    assert main([*args, "--no-eval", "--quiet"]) == 0
    return out, data


def test_far_rows_are_flagged_and_the_threshold_holds(blob_run, tmp_path, capsys):
    run, data = blob_run
    rng = np.random.RandomState(1)
    angle = rng.uniform(0, 2 * np.pi, 10)
    rows = np.r_[0.5 * rng.randn(40, 2), 7.0 * np.c_[np.cos(angle), np.sin(angle)]]
    query = tmp_path / "query.npy"
    np.save(query, rows)
    out = tmp_path / "labels.csv"
    assert main(["detect", str(run), str(query), "-o", str(out), "--contamination", "0.1"]) == 0
    assert "rows flagged (-1)" in capsys.readouterr().err
    table = np.genfromtxt(out, delimiter=",", names=True)
    assert table.shape == (50,)
    assert np.all(table["label"][40:] == -1)  # far away: anomalous
    assert np.mean(table["label"][:40] == 1) >= 0.9  # the bulk: normal
    # Higher energy = more anomalous, and the label is the threshold's verdict.
    assert table["energy"][40:].min() > table["energy"][:40].max()
    res = detect_run(run, query, contamination=0.1)
    assert np.array_equal(res.labels.numpy(), table["label"].astype(int))
    assert np.array_equal(res.labels.numpy() == -1, res.energy.numpy() > res.threshold)
    # On the training file, about a `contamination` share is above the threshold
    # (80% of its rows are the training rows the quantile was taken on).
    full = detect_run(run, data, contamination=0.1)
    frac = float((full.labels == -1).double().mean())
    assert abs(frac - 0.1) < 4 * np.sqrt(0.1 * 0.9 / 120) + 0.01, frac


def test_stdout_and_bad_contamination(blob_run, capsys):
    run, data = blob_run
    assert main(["detect", str(run), str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "energy,label" and len(lines) == 601
    assert main(["detect", str(run), str(data), "--contamination", "0.9"]) == 2
    assert "contamination must be in (0, 0.5], got 0.9" in capsys.readouterr().err
