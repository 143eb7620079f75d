"""TensorBoard logging: the event file read back holds the metrics, figures and config."""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import pytest
import yaml

from ebmlab.cli import main
from ebmlab.errors import ConfigError

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
)

TINY = {
    "name": "tb",
    "model": {"hidden": [16, 16]},
    "objective": {"n_steps": 3},
    "train": {"steps": 20, "batch_size": 64, "log_every": 5, "checkpoint_every": 10},
    "evaluate": {
        "n_samples": 200,
        "sample_steps": 10,
        "mmd_samples": 200,
        "quadrature_resolution": 64,
        "entropy_samples": 1000,
    },
    "data": {"n_train": 2000, "n_test": 500},
}


def read_events(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("tb")
    cfg = tmp / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    out = tmp / "run"
    assert main(["train", str(cfg), "--out", str(out), "--quiet", "--tensorboard"]) == 0
    return out


def test_event_file_sits_next_to_metrics_csv(run):
    assert (run / "metrics.csv").is_file()
    assert list(run.glob("events.out.tfevents.*")), sorted(p.name for p in run.iterdir())
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["tensorboard"] is True


def test_training_metrics_match_metrics_csv(run):
    acc = read_events(run)
    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(float(r["step"])) for r in rows] == [5, 10, 15, 20]
    for column in ("loss", "energy_pos", "energy_neg", "acceptance_rate", "grad_norm", "lr"):
        events = acc.Scalars(f"train/{column}")
        assert [e.step for e in events] == [5, 10, 15, 20], column
        for e, r in zip(events, rows, strict=True):
            # metrics.csv keeps 6 significant digits; the event file a float32
            assert math.isclose(e.value, float(r[column]), rel_tol=1e-5, abs_tol=1e-6), column


def test_figures_config_and_report(run):
    acc = read_events(run)
    tags = acc.Tags()
    for name in ("samples", "energy", "curves"):
        images = acc.Images(f"figures/{name}")
        assert [im.step for im in images] == [20], name
        assert images[0].width > 50 and images[0].height > 50
        assert images[0].encoded_image_string.startswith(b"\x89PNG")
    text_tag = next(t for t in tags["tensors"] if t.startswith("config"))
    text = acc.Tensors(text_tag)[0].tensor_proto.string_val[0].decode()
    # the resolved config: defaults written out, the command-line switch included
    assert "tensorboard: true" in text and "steps: 20" in text and "sampler:" in text
    report = json.loads((run / "report.json").read_text())
    (nll,) = acc.Scalars("eval/nll_heldout")
    assert nll.step == 20
    assert math.isclose(nll.value, report["nll_heldout"], rel_tol=1e-6)


def test_off_by_default_and_missing_package_is_one_line(tmp_path, monkeypatch, capsys):
    from ebmlab.config import RunConfig
    from ebmlab.train.tensorboard import TensorBoardLogger

    assert RunConfig().train.tensorboard is False
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'ebmlab\[tensorboard\]'"):
        TensorBoardLogger(tmp_path)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    code = main(["train", str(cfg), "--out", str(tmp_path / "r"), "--quiet", "--tensorboard"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tensorboard" in err


def test_non_finite_metrics_are_skipped(tmp_path):
    from ebmlab.train.tensorboard import TensorBoardLogger

    tb = TensorBoardLogger(tmp_path)
    tb.log_metrics({"step": 1.0, "loss": 0.5, "acceptance_rate": math.nan})
    tb.close()
    tags = read_events(tmp_path).Tags()["scalars"]
    assert tags == ["train/loss"]


def test_fit_hands_every_logged_row_to_on_log():
    import torch

    from ebmlab.energies import MLPEnergy
    from ebmlab.objectives import ContrastiveDivergence
    from ebmlab.samplers import Langevin
    from ebmlab.train import TrainSettings, fit

    energy = MLPEnergy(2, hidden=(8,), base_scale=3.0)
    cd = ContrastiveDivergence(
        Langevin(0.01), n_steps=2, mode="pcd", init_fn=lambda n, g: torch.randn(n, 2, generator=g)
    )
    data = torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    seen: list[dict[str, float]] = []
    s = TrainSettings(steps=12, batch_size=16, log_every=4, checkpoint_every=0)
    res = fit(energy, data, cd, s, state=cd.init_state(16), progress=False, on_log=seen.append)
    assert [r["step"] for r in seen] == [4.0, 8.0, 12.0]
    assert seen == res.metrics
