"""JEM runs through the command line on tiny generated labelled images.

``ebmlab train --objective jem`` trains a classifier energy through the runs
package and ``train.fit``; ``sample --label`` draws one class; ``report.json``
holds accuracy, ECE, NLL and OOD AUROCs; ``score``/``detect`` keep working.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from ebmlab.cli import main
from ebmlab.runs import load_run, sample_run
from ebmlab.runs.jem import class_energy, jem_run_config
from ebmlab.train.checkpoint import load_tensors

PIL = pytest.importorskip("PIL.Image")

LABELS = (2, 7)  # not 0..K-1: the run records the values and maps them to logits


def bars(n: int = 96, side: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images: label 2 a bright horizontal bar, label 7 a vertical one."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 30, (n, side, side)).astype(np.uint8)
    y = np.where(np.arange(n) % 2 == 0, LABELS[0], LABELS[1])
    for i in range(n):
        k = rng.integers(1, side - 1)
        if y[i] == LABELS[0]:
            x[i, k, :] = 230
        else:
            x[i, :, k] = 230
    return x, y


TINY_JEM = {
    "model": {"type": "conv", "channels": [4, 8], "hidden": [8]},
    "sampler": {"method": "langevin", "step_size": 1.0, "noise_scale": 0.01, "clamp": [-1, 1]},
    "objective": {"name": "jem", "n_steps": 3, "alpha": 0.1, "n_chains": 64,
                  "generative_weight": 0.3},
    "train": {"steps": 60, "batch_size": 16, "lr": 3e-3, "warmup_steps": 0,
              "lr_schedule": "constant", "log_every": 10, "checkpoint_every": 20},
    "evaluate": {"n_samples": 10, "sample_steps": 5},
}  # fmt: skip


def _config(tmp: Path, **train: int) -> Path:
    cfg = json.loads(json.dumps(TINY_JEM))
    cfg["train"].update(train)
    cfg["data"] = {"file": str(tmp / "bars.npz"), "toy": None}
    path = tmp / f"jem{len(list(tmp.glob('jem*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def jem_run(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("jem")
    x, y = bars()
    np.savez(tmp / "bars.npz", x=x, y=y)
    np.savez(tmp / "unlabelled.npz", x=x)
    assert main(["train", str(_config(tmp)), "--out", str(tmp / "run"), "--quiet"]) == 0
    return tmp, tmp / "run"


def test_report_holds_accuracy_calibration_and_ood(jem_run):
    _, run = jem_run
    report = json.loads((run / "report.json").read_text())
    assert report["classes"] == list(LABELS)
    # 20 held-out bars (stratified 10 + 10): chance is 0.5; 15 or more right has
    # probability 0.02 under chance, and the bars are easy.
    assert report["n_test"] == 20
    assert report["test_accuracy"] >= 0.75, report
    assert 0.0 <= report["test_ece"] <= 1.0
    assert 0.0 < report["test_ece_floor"] <= 1.0 and report["test_ece_floor_sd"] > 0.0
    assert 0.0 < report["test_nll"] < np.log(2.0), report  # better than the uniform guess
    # -E(x) of the dark bar images vs uniform noise in [-1, 1] and vs inverted images.
    assert report["ood_auroc_noise"] >= 0.9, report
    assert 0.0 <= report["ood_auroc_inverted"] <= 1.0
    assert report["sample_finite_fraction"] == 1.0
    for name in (
        "samples.png",
        "reliability.png",
        "curves.png",
        "model.safetensors",
        "train_state.safetensors",
    ):
        assert (run / name).is_file(), name
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"]["classes"] == list(LABELS) and cfg["objective"]["name"] == "jem"


def test_the_energy_is_the_classifier_read_twice(jem_run):
    _, run = jem_run
    r = load_run(run)
    x = r.test[:5]
    with torch.no_grad():
        logits = r.energy.logits(x)
        assert torch.allclose(r.energy(x), -torch.logsumexp(logits, 1))
        assert torch.allclose(class_energy(r, 7)(x), -logits[:, 1])  # label 7 = logit 1
    assert r.train_labels is not None and set(r.train_labels.tolist()) == {0, 1}


def test_sample_label_writes_grid_and_array_in_data_range(jem_run, capsys):
    tmp, run = jem_run
    grid = tmp / "seven.png"
    assert main(["sample", str(run), "--label", "7", "-n", "6", "-o", str(grid), "--quiet"]) == 0
    # 6 tiles of 8x8 in 3 columns, 1-pixel gaps: 19 x 28, upscaled x13 to >= 256 pixels.
    assert PIL.open(grid).size == (28 * 13, 19 * 13)
    arr_path = tmp / "two.npy"
    args = ["sample", str(run), "--label", "2", "-n", "5", "-o", str(arr_path), "--quiet"]
    assert main(args) == 0
    arr = np.load(arr_path)
    assert arr.shape == (5, 8, 8) and arr.dtype == np.uint8  # the data's range and layout


def test_label_samples_follow_their_class(jem_run):
    """Chains from the same noise, run on E(x, 2) or on E(x, 7): the logit margin
    f_2 - f_7 ends higher for the label-2 chains."""
    _, run = jem_run
    r = load_run(run)
    margins = []
    for label in LABELS:
        x = sample_run(run, 50, steps=10, seed=3, run_=r, label=label)
        with torch.no_grad():
            logits = r.energy.logits(x)
        margins.append(float((logits[:, 0] - logits[:, 1]).mean()))
    assert margins[0] > margins[1] + 0.5, margins


def test_label_outside_the_classes_is_refused(jem_run, capsys):
    tmp, run = jem_run
    code = main(["sample", str(run), "--label", "3", "-n", "2", "-o", str(tmp / "x.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "label 3" in err and "[2, 7]" in err
    assert not (tmp / "x.png").exists()


def test_label_on_an_unlabelled_run_is_a_user_error(jem_run, capsys):
    tmp, _ = jem_run
    out = tmp / "pcd"
    args = ["train", "--data", str(tmp / "unlabelled.npz"), "--steps", "1"]
    assert main([*args, "--out", str(out), "--no-eval", "--quiet"]) == 0
    capsys.readouterr()
    code = main(["sample", str(out), "--label", "1", "-n", "2", "-o", str(tmp / "y.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "objective 'jem'" in err


def test_jem_on_images_without_labels_is_a_user_error(jem_run, capsys):
    tmp, _ = jem_run
    out = tmp / "nolabels"
    args = ["train", "--data", str(tmp / "unlabelled.npz"), "--objective", "jem"]
    code = main([*args, "--steps", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "needs labels" in err
    assert not out.exists()


def test_score_and_detect_use_the_marginal_energy(jem_run, capsys):
    tmp, run = jem_run
    x, _ = bars(20, seed=5)
    np.save(tmp / "inliers.npy", x)
    np.save(tmp / "noise.npy", np.random.default_rng(1).integers(0, 256, x.shape, np.uint8))
    energies = []
    for name in ("inliers", "noise"):
        assert main(["score", str(run), str(tmp / f"{name}.npy")]) == 0
        energies.append(np.loadtxt(capsys.readouterr().out.splitlines()))
    assert energies[0].shape == (20,) and np.isfinite(energies[0]).all()
    assert energies[1].mean() > energies[0].mean()  # noise is less probable
    assert main(["detect", str(run), str(tmp / "noise.npy"), "-o", str(tmp / "d.csv")]) == 0
    labels = np.loadtxt(tmp / "d.csv", delimiter=",", skiprows=1)[:, 1]
    assert (labels == -1).mean() > 0.5  # most noise images flagged at 5% contamination


def test_resume_of_a_jem_run_gives_the_same_weights(jem_run):
    tmp, _ = jem_run
    whole, part = tmp / "whole", tmp / "part"
    cfg = _config(tmp, steps=4, checkpoint_every=2, log_every=2)
    assert main(["train", str(cfg), "--out", str(whole), "--no-eval", "--quiet"]) == 0
    cfg_part = _config(tmp, steps=2, checkpoint_every=2, log_every=2)
    assert main(["train", str(cfg_part), "--out", str(part), "--no-eval", "--quiet"]) == 0
    assert main(["resume", str(part), "--steps", "4", "--no-eval", "--quiet"]) == 0
    a, _ = load_tensors(whole / "model.safetensors", require_digest=False)
    b, _ = load_tensors(part / "model.safetensors", require_digest=False)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_builtin_sets_train_jem_when_asked(tmp_path):
    cfg = jem_run_config("builtin:digits")
    assert cfg.objective.name == "jem" and cfg.model.base_scale is None
    out = tmp_path / "digits"
    args = ["train", "--data", "builtin:digits", "--objective", "jem", "--steps", "1"]
    assert main([*args, "--out", str(out), "--no-eval", "--quiet"]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["model"]["classes"] == list(range(10))
    assert saved["objective"]["generative_weight"] == 0.3


@pytest.mark.parametrize(
    ("classes", "message"),
    [([7, 2], "increasing order"), ([2, 5], "labels [7] are not among the run's classes")],
)
def test_classes_in_the_config_must_fit_the_labels(jem_run, capsys, classes, message):
    tmp, _ = jem_run
    cfg = yaml.safe_load(_config(tmp).read_text())
    cfg["model"]["classes"] = classes
    path = tmp / "classes.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp / "classes_run"
    assert main(["train", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_chimera_negatives_are_a_run_option():
    """``objective.nda_weight`` and ``objective.conditional`` reach the run's objective
    (off by default: docs/images.md says why)."""
    from ebmlab.runs.jem import jem_objective

    cfg = jem_run_config("builtin:digits")
    objective = jem_objective(cfg, lambda n, g=None: torch.zeros(n, 1, 8, 8))
    assert objective.conditional is False
    assert objective.nda_weight == 0.0
    cfg.objective.conditional, cfg.objective.nda_weight = True, 0.3
    objective = jem_objective(cfg, lambda n, g=None: torch.zeros(n, 1, 8, 8))
    assert objective.conditional is True
    assert objective.nda_weight == pytest.approx(0.3)
