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
import os
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
from ebmlab.objectives import ContrastiveDivergence, NoiseContrastiveEstimation
from ebmlab.samplers import MALA
from ebmlab.train import TrainSettings, fit
from ebmlab.train.distributed import rank_seed, world_size

pytestmark = pytest.mark.slow

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.6], [0.6, 0.8]], dtype=torch.float64)
N_DATA, GLOBAL_BATCH, STEPS = 20_000, 400, 400
NCE_STEPS = 300


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


def _leave() -> None:
    """End a spawned worker that finished its work: ``os._exit(0)`` after flushing, so
    torch.distributed's C++ static destructors never run at interpreter exit (under load
    they can abort the child with SIGABRT after a successful run, which ``mp.spawn`` reports
    as a failure; ``ebmlab train --nproc`` ranks end the same way, ``cli._exit_rank``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _worker(r: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    try:
        save_file(train_quadratic(seed=0), f"{out}.{r}")
    finally:
        dist.destroy_process_group()
    _leave()


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


def train_nce(seed: int) -> dict[str, torch.Tensor]:
    """NCE with a learned log Z (initialized from each rank's first noise batch)."""
    data = Gaussian(MU, COV).sample(N_DATA, generator=torch.Generator().manual_seed(1))
    energy = Quadratic()
    nce = NoiseContrastiveEstimation(data, noise_ratio=1.0, noise_scale=1.3)
    settings = TrainSettings(
        steps=NCE_STEPS, batch_size=GLOBAL_BATCH, lr=2e-2, warmup_steps=20,
        checkpoint_every=0, seed=seed,
    )  # fmt: skip
    fit(energy, data, nce, settings, progress=False)
    precision = energy.precision().detach()
    exact = math.log(2 * math.pi) - 0.5 * torch.logdet(precision)  # log Z of exp(-E), d = 2
    return {
        "log_z": nce.log_z.detach().clone().reshape(1),
        "exact_log_z": exact.reshape(1),
        "mean": energy.mean.detach().clone(),
        "raw": energy.raw.detach().clone(),
    }


def _nce_worker(r: int, store: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    try:
        save_file(train_nce(seed=0), f"{out}.{r}")
    finally:
        dist.destroy_process_group()
    _leave()


def test_nce_log_z_is_shared_by_two_processes(tmp_path):
    out = tmp_path / "nce.safetensors"
    mp.spawn(_nce_worker, args=(str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    two, other = load_file(f"{out}.0"), load_file(f"{out}.1")
    for k in two:  # log_z: same start, averaged gradients, so the very same value
        assert torch.equal(two[k], other[k]), f"ranks disagree on {k}: {two[k]} vs {other[k]}"
    one = train_nce(seed=0)
    # log Z of a 2-D Gaussian is log 2 pi + log det(Sigma) / 2; a covariance estimated from
    # n points has Var(log det) ~ 2 d / n, so sd(log Z) ~ sqrt(d / (2 n)) with n the global
    # batch (as above: the end-of-training noise comes from the last batches). Two
    # independent runs differ by sqrt(2) times that; allow z = 5.
    tol = 5 * math.sqrt(2) * math.sqrt(2 / (2 * GLOBAL_BATCH))
    diff = float(two["log_z"] - one["log_z"])
    assert abs(diff) < tol, (float(two["log_z"]), float(one["log_z"]), tol)
    for run in (one, two):  # and each learned log Z normalizes its own energy
        assert abs(float(run["log_z"] - run["exact_log_z"])) < tol, run


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


def _fake_nccl_worker(r: int, store: str, out: str) -> None:
    """A gloo group dressed as NCCL: collectives on CPU tensors through the default group
    raise, as NCCL's do ("Tensors must be CUDA"); a gloo group of their own still works."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    real = {name: getattr(dist, name) for name in ("all_gather", "all_reduce", "broadcast")}
    real_backend = dist.get_backend

    def on_default(group) -> bool:
        return group is None or group is dist.group.WORLD

    def nccl(name):
        def collective(*args, group=None, **kwargs):
            tensors = args[0] if name == "all_gather" else [args[0]]
            tensors = [*tensors, args[1]] if name == "all_gather" else tensors
            if on_default(group) and any(t.device.type == "cpu" for t in tensors):
                raise RuntimeError(f"NCCL {name}: tensors must be CUDA")
            return real[name](*args, group=group, **kwargs)

        return collective

    for name in real:
        setattr(dist, name, nccl(name))
    dist.get_backend = lambda group=None: "nccl" if on_default(group) else real_backend(group)
    try:
        data = Gaussian(MU, COV).sample(2000, generator=torch.Generator().manual_seed(1))
        energy = Quadratic()
        cd = ContrastiveDivergence(MALA(0.3), n_steps=2, mode="pcd", init_fn=noise)
        state = cd.init_state(16, generator=torch.Generator().manual_seed(rank_seed(0)))
        settings = TrainSettings(steps=6, batch_size=32, log_every=4, checkpoint_every=3)
        fit(energy, data, cd, settings, state=state, run_dir=out, progress=False)
    finally:
        for name, fn in real.items():
            setattr(dist, name, fn)
        dist.get_backend = real_backend
        dist.destroy_process_group()
    _leave()


def test_checkpoint_gathers_cpu_rng_states_under_nccl(tmp_path):
    """The generators' states are CPU tensors: under NCCL their gather must take a CPU
    group (the landed code raised at the first checkpoint)."""
    out = tmp_path / "run"
    mp.spawn(_fake_nccl_worker, args=(str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    tensors = load_file(str(out / "train_state.safetensors"))
    assert not torch.equal(tensors["extra.rng.0"], tensors["extra.rng.1"])  # one stream each


def test_rank_comes_from_torchrun_before_the_group_exists(monkeypatch):
    # `ebmlab resume --nproc 2` rewrites state.json before the group is built: only
    # rank 0 may, or the two atomic writes race for the same temporary file.
    from ebmlab.train.distributed import is_main_process

    assert not dist.is_initialized()
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()
