"""The command line: run directory contents, user errors, kill-and-resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from ebmlab.cli import main

TINY = {
    "name": "tiny",
    "model": {"hidden": [16, 16]},
    "objective": {"n_steps": 3},
    "train": {"steps": 30, "batch_size": 64, "log_every": 10, "checkpoint_every": 10},
    "evaluate": {
        "n_samples": 200,
        "sample_steps": 20,
        "mmd_samples": 200,
        "quadrature_resolution": 128,
    },
    "data": {"n_train": 2000, "n_test": 1000},
}


def write_config(tmp_path: Path, overrides: dict | None = None) -> Path:
    cfg = json.loads(json.dumps(TINY))
    for section, values in (overrides or {}).items():
        cfg.setdefault(section, {}).update(values)
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def ebmlab(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "ebmlab", *args], capture_output=True, text=True, **kw
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    cfg = write_config(tmp)
    assert main(["train", str(cfg), "--out", str(tmp / "run"), "--quiet"]) == 0
    return tmp / "run"


def test_run_directory_contents(trained):
    names = {p.name for p in trained.iterdir()}
    assert {
        "config.yaml",
        "model.safetensors",
        "state.json",
        "metrics.csv",
        "report.json",
        "samples.png",
        "energy.png",
        "curves.png",
        "train_state.safetensors",
    } <= names
    report = json.loads((trained / "report.json").read_text())
    for key in (
        "nll_heldout",
        "entropy_floor",
        "nll_gap",
        "log_z",
        "log_z_stderr",
        "log_z_method",
        "mmd",
        "train_seconds",
        "steps",
    ):
        assert key in report, key
    assert report["steps"] == 30 and report["log_z_method"] == "quadrature"
    assert report["nll_gap"] == pytest.approx(report["nll_heldout"] - report["entropy_floor"])
    cfg = yaml.safe_load((trained / "config.yaml").read_text())
    assert cfg["train"]["lr"] is not None and "sampler" in cfg  # defaults written out
    assert not list(trained.glob(".*tmp*"))


def test_sample_score_evaluate(trained, tmp_path, capsys):
    out = tmp_path / "s.npy"
    assert (
        main(["sample", str(trained), "-n", "50", "-o", str(out), "--steps", "5", "--quiet"]) == 0
    )
    x = np.load(out)
    assert x.shape == (50, 2) and np.isfinite(x).all()
    rows = np.array([[0.0, 0.0], [2.0, 0.0], [9.0, 9.0]])
    np.savetxt(tmp_path / "d.csv", rows, delimiter=",")
    assert (
        main(["score", str(trained), str(tmp_path / "d.csv"), "-o", str(tmp_path / "e.csv")]) == 0
    )
    energies = np.loadtxt(tmp_path / "e.csv")
    assert energies.shape == (3,)
    assert energies[2] > energies[1], "far-away point must have higher energy than a mode"
    capsys.readouterr()
    assert main(["evaluate", str(trained), "--quiet"]) == 0
    assert "nll_heldout" in json.loads(capsys.readouterr().out)


def test_train_on_user_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(600, 2)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    cfg = write_config(tmp_path, {"train": {"steps": 10}})
    assert (
        main(
            [
                "train",
                str(cfg),
                "--data",
                str(tmp_path / "x.npy"),
                "--out",
                str(tmp_path / "r"),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["entropy_floor"] is None and report["nll_heldout"] is not None


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "{missing}"], "not found"),
        (["train", "{badkey}"], "did you mean 'steps'"),
        (["train", "{cfg}", "--data", "{nanfile}"], "nan.csv"),
        (["sample", "{missing}", "-o", "x.npy"], "not found"),
        (["score", "{run}", "{wrongdim}"], "wrongdim.csv"),
        (["train", "{cfg}", "--device", "cuda:7"], "cuda"),
    ],
)
def test_user_errors_one_line_exit_2(args, needle, tmp_path, trained):
    (tmp_path / "bad.yaml").write_text("train:\n  stesp: 3\n")
    (tmp_path / "nan.csv").write_text("1,2\n3,nan\n")
    (tmp_path / "wrongdim.csv").write_text("1,2,3\n")
    paths = {
        "missing": str(tmp_path / "nope"),
        "badkey": str(tmp_path / "bad.yaml"),
        "cfg": str(write_config(tmp_path)),
        "nanfile": str(tmp_path / "nan.csv"),
        "run": str(trained),
        "wrongdim": str(tmp_path / "wrongdim.csv"),
    }
    argv = [a.format(**paths) for a in args]
    if "cuda" in needle and torch.cuda.is_available():
        pytest.skip("CUDA present")
    proc = ebmlab(*argv, "--quiet", check=False, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert needle in lines[0] and "Traceback" not in proc.stderr


def _checkpoint_step(path: Path) -> int:
    try:
        with safe_open(str(path), "pt") as fh:
            return int(fh.metadata()["step"])
    except Exception:
        return -1


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    cfg = write_config(
        tmp_path, {"train": {"steps": 1500, "checkpoint_every": 100, "log_every": 50}}
    )
    ebmlab("train", str(cfg), "--out", str(tmp_path / "full"), "--no-eval", "--quiet")
    run = tmp_path / "cut"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ebmlab",
            "train",
            str(cfg),
            "--out",
            str(run),
            "--no-eval",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while _checkpoint_step(run / "train_state.safetensors") < 200 and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _checkpoint_step(run / "train_state.safetensors")
    assert 0 < killed_at < 1500, f"run was not interrupted mid-way (step {killed_at})"
    assert not (run / "model.safetensors").exists()
    ebmlab("resume", str(run), "--no-eval", "--quiet")
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after SIGKILL + resume"
    state = json.loads((run / "state.json").read_text())
    assert state["step"] == 1500 and state["status"] == "trained"


def test_resume_extends_steps(tmp_path):
    cfg = write_config(tmp_path, {"train": {"steps": 10}})
    assert main(["train", str(cfg), "--out", str(tmp_path / "r"), "--no-eval", "--quiet"]) == 0
    assert main(["resume", str(tmp_path / "r"), "--steps", "20", "--no-eval", "--quiet"]) == 0
    assert json.loads((tmp_path / "r" / "state.json").read_text())["step"] == 20
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["train"]["steps"] == 20


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--method", "hmc", "--warmup", "40"], "adapted HMC: step_size="),
        (["--method", "chees", "--warmup", "40"], "trajectory_length="),
        (["--method", "pt", "--warmup", "30", "--replicas", "3"], "round trips per scan"),
    ],
)
def test_sample_adaptive_options(trained, tmp_path, capsys, extra, needle):
    out = tmp_path / "s.npy"
    argv = ["sample", str(trained), "-n", "20", "-o", str(out), "--steps", "5", "--quiet"]
    assert main([*argv, *extra]) == 0
    assert needle in capsys.readouterr().err
    assert np.load(out).shape == (20, 2)


def test_sample_bad_adaptive_option_exits_2(trained, tmp_path):
    proc = ebmlab(
        "sample",
        str(trained),
        "-o",
        "x.npy",
        "--target-accept",
        "1.5",
        "--quiet",
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "target_accept" in proc.stderr.strip().splitlines()[-1]
