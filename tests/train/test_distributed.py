"""Two-process DistributedDataParallel training on CPU (gloo).

1. ``fit`` in 2 processes with the same global batch reaches the same model as
   in 1 process, within the statistical tolerance of either estimate.
2. ``ebmlab train --nproc 2`` interrupted and resumed with 2 processes gives the
   same weights as an uninterrupted 2-process run; a 2-process checkpoint also
   resumes in 1 process.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import yaml
from safetensors.torch import load_file, save_file
from torch import nn

from ebmlab.energies import Energy, Gaussian
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit
from ebmlab.train.distributed import rank_seed, world_size

pytestmark = pytest.mark.slow

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
N_DATA, GLOBAL_BATCH, STEPS = 20_000, 400, 400


class Quadratic(Energy):
    def __init__(self) -> None:
        super().__init__(2)
        self.mean = nn.Parameter(torch.zeros(2, dtype=torch.float64))
        self.raw = nn.Parameter(torch.eye(2, dtype=torch.float64))

    def precision(self) -> torch.Tensor:
        chol = torch.tril(self.raw)
        return chol @ chol.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = x - self.mean
        return 0.5 * ((r @ self.precision()) * r).sum(-1)


def noise(n, g):
    return torch.randn(n, 2, generator=g, dtype=torch.float64) * 2


def train_quadratic(seed: int) -> dict[str, torch.Tensor]:
    data = Gaussian(MU, COV).sample(N_DATA, generator=torch.Generator().manual_seed(1))
    energy = Quadratic()
    cd = ContrastiveDivergence(MALA(0.3), n_steps=3, mode="pcd", init_fn=noise)
    chains = GLOBAL_BATCH // world_size()
    state = cd.init_state(chains, generator=torch.Generator().manual_seed(rank_seed(seed)))
    settings = TrainSettings(
        steps=STEPS,
        batch_size=GLOBAL_BATCH,
        lr=2e-2,
        warmup_steps=20,
        checkpoint_every=0,
        seed=seed,
    )
    fit(energy, data, cd, settings, state=state, progress=False)
    cov = torch.linalg.inv(energy.precision().detach())
    return {"mean": energy.mean.detach().clone(), "cov": cov.contiguous()}


def _worker(r: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    try:
        save_file(train_quadratic(seed=0), f"{out}.{r}")
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp.safetensors"
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    two = load_file(f"{out}.0")
    other = load_file(f"{out}.1")
    # Gradients are averaged over ranks, so both ranks hold the same model even
    # though each drew its own batches and negatives.
    for k in two:
        assert torch.equal(two[k], other[k]), f"ranks disagree on {k}: gradients not synced"
    one = train_quadratic(seed=0)
    # Each estimate carries Monte Carlo noise of order sd / sqrt(GLOBAL_BATCH) from
    # the negatives at the end of training; their difference has sqrt(2) times
    # that. Allow z = 5 (Bonferroni over 2 + 4 entries, ~1e-5 false alarms each).
    sd = COV.diagonal().sqrt()
    tol_mean = 5 * math.sqrt(2) * sd / math.sqrt(GLOBAL_BATCH)
    assert torch.all((two["mean"] - one["mean"]).abs() < tol_mean), (two["mean"], one["mean"])
    tol_cov = 5 * math.sqrt(2) * COV.diagonal().max() * math.sqrt(2 / GLOBAL_BATCH)
    assert torch.all((two["cov"] - one["cov"]).abs() < tol_cov), (two["cov"], one["cov"])
    # And both are near the truth (the data's MLE), so neither run is broken alike.
    tol_truth = 5 * (sd / math.sqrt(N_DATA) + sd / math.sqrt(GLOBAL_BATCH))
    assert torch.all((two["mean"] - MU).abs() < tol_truth)


CFG = {
    "name": "ddp",
    "model": {"hidden": [16, 16]},
    "objective": {"n_steps": 3},
    "train": {
        "steps": 60,
        "batch_size": 64,
        "log_every": 10,
        "checkpoint_every": 20,
        "lr_schedule": "constant",
        "warmup_steps": 0,
    },
    "data": {"n_train": 2000, "n_test": 500},
}


def ebmlab(*args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ebmlab", *args], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_two_processes_resume(tmp_path: Path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(CFG))
    ebmlab(
        "train", str(cfg), "--nproc", "2", "--out", str(tmp_path / "full"), "--no-eval", "--quiet"
    )
    # A constant learning rate makes "40 steps, then resume to 60" the same run.
    ebmlab(
        "train",
        str(cfg),
        "--nproc",
        "2",
        "--steps",
        "40",
        "--out",
        str(tmp_path / "cut"),
        "--no-eval",
        "--quiet",
    )
    ebmlab(
        "resume", str(tmp_path / "cut"), "--steps", "60", "--nproc", "2", "--no-eval", "--quiet"
    )
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after a 2-process resume"
    rows = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 6
    # A 2-process checkpoint continues in 1 process (fresh RNG streams, same model).
    ebmlab("resume", str(tmp_path / "cut"), "--steps", "80", "--no-eval", "--quiet")
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["step"] == 80
