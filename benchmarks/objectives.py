"""Training objectives compared on the six 2D toys: exact held-out NLL against the entropy floor.

Every objective of ebmlab (contrastive divergence in its forms, improved CD,
score matching exact / sliced / denoising, noise-contrastive estimation) and,
where they implement the same objective, those of the PyPI packages
``torchebm`` and ``ebmkit``, train the *same* network from the *same* initial
weights on the *same* data with the same optimizer (Adam, cosine learning rate
with 100 warm-up steps, batch 512), for the same budget:

* ``--mode time``: ``--budget`` seconds of CPU time per cell (the learning-rate
  schedule runs on the fraction of the budget spent);
* ``--mode updates``: ``--updates`` parameter updates per cell.

Each cell then reports the exact held-out NLL (log Z by quadrature on a
512 x 512 grid, ``ebmlab.partition.quadrature_log_z``, as
``ebmlab.evaluation.heldout_nll`` does; 20,000 test points), its gap
to the toy's entropy floor (Monte Carlo over 1e6 exact samples of the toy's
exact density: the NLL of any model is at least the entropy, and the gap is
the KL divergence from data to model), the squared MMD between 2,000 exact
samples of the *model* (drawn from its density on the quadrature grid, so MMD
measures the model, not a sampler) and 2,000 test points, the number of
updates and the seconds (CPU and wall). One cell per process, one torch thread
each (``--jobs`` cells at a time); CPU-time budgets keep the cells comparable
on a machine that other jobs share.

Usage::

    python3 benchmarks/objectives.py --quick                   # smoke run, ~3 min
    python3 benchmarks/objectives.py --budget 60 --jobs 2      # the table of docs/benchmarks.md
    python3 benchmarks/objectives.py --mode updates --updates 2000
    python3 benchmarks/objectives.py --toys rings --objectives pcd,dsm --peers none
    python3 benchmarks/objectives.py --report benchmarks/results/objectives.json

The peers live only in ``.bench-venv`` (set up by ``benchmarks/sampling.py``'s
``setup_venv``, reused here); ``--no-venv`` runs in the current interpreter and
reports missing peers as not run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sampling import BENCH_PY, VENV, _cpu_model, _in_bench_venv, setup_venv

TOYS = ["eight_gaussians", "two_moons", "rings", "checkerboard", "spirals", "pinwheel"]
OURS = ["cd", "pcd", "short-run", "pcd-kl", "sm", "ssm", "dsm", "dsm-multi", "nce", "nce-mix"]
#: Objectives each peer implements (and how they are named there).
PEER_OBJECTIVES: dict[str, dict[str, str]] = {
    "torchebm": {
        "cd": "losses.ContrastiveDivergence(persistent=False) + samplers.LangevinDynamics",
        "pcd": "losses.ContrastiveDivergence(persistent=True) + samplers.LangevinDynamics",
        "sm": 'losses.ScoreMatching(hessian_method="exact")',
        "ssm": 'losses.SlicedScoreMatching(projection_type="gaussian")',
        "dsm": "losses.DenoisingScoreMatching",
    },
    "ebmkit": {
        "cd": "losses.ContrastiveDivergence(init_fn=<the data batch>) + samplers.MALA",
        "pcd": "losses.ContrastiveDivergence(buffer=ReplayBuffer) + samplers.MALA",
        "short-run": "losses.ContrastiveDivergence(init_fn=<uniform>) + samplers.MALA",
        "sm": "losses.ExactScoreMatching",
        "ssm": "losses.SlicedScoreMatching(vr=True)",
        "dsm": "losses.DenoisingScoreMatching",
        "nce": "losses.NoiseContrastiveEstimation",
    },
}
PEERS = list(PEER_OBJECTIVES)

#: The shared recipe (network, optimizer, data) and each objective's hyperparameters.
RECIPE: dict[str, Any] = {
    "hidden": [64, 64, 64],
    "activation": "silu",
    "base_scale": 4.0,
    "lr": 5e-3,
    "warmup_steps": 100,
    "batch_size": 512,
    "n_train": 50_000,
    "n_test": 20_000,
    "entropy_samples": 1_000_000,
    "mmd_samples": 2000,
    "seed": 0,
}
HYPER: dict[str, Any] = {
    "step_size": 0.02,  # MALA (Langevin for torchebm, which has no MALA) for every CD form
    "n_steps": 10,  # cd, pcd, pcd-kl
    "short_run_steps": 20,
    "n_chains": 512,  # pcd replay buffer, uniform starts over the toy's bounds
    "kl_weight": 1.0,
    "noise_std": 0.025,  # dsm
    "noise_levels": [0.1, 0.05, 0.025],  # dsm-multi
    "n_projections": 1,  # ssm (Gaussian directions, variance-reduced)
    "noise_ratio": 4.0,  # nce; noise: a Gaussian fitted to the training data
    "noise_components": 16,  # nce-mix; noise: a 16-component Gaussian mixture fitted by EM
}

HOW_OURS = {
    "cd": "`ContrastiveDivergence(MALA(0.02), 10, mode='cd')`",
    "pcd": "`ContrastiveDivergence(MALA(0.02), 10, mode='pcd')`, 512 persistent chains",
    "short-run": "`ContrastiveDivergence(MALA(0.02), 20, mode='short-run')`, uniform starts",
    "pcd-kl": "pcd with the improved-CD KL term, `kl_weight=1`",
    "sm": "`ScoreMatching()` (exact Hessian trace)",
    "ssm": "`SlicedScoreMatching(1)` (Gaussian directions, variance-reduced)",
    "dsm": "`DenoisingScoreMatching(0.025)`",
    "dsm-multi": "`DenoisingScoreMatching(noise_levels=[0.1, 0.05, 0.025])`",
    "nce": "`NoiseContrastiveEstimation(fit_gaussian_noise(train), noise_ratio=4)`",
    "nce-mix": "`NoiseContrastiveEstimation(fit_mixture_noise(train, 16), noise_ratio=4)`",
}


# --------------------------------------------------------------------------------------
# One cell (runs in its own process)
# --------------------------------------------------------------------------------------


def _data(toy_name: str) -> tuple[Any, Any, Any, list[tuple[float, float]]]:
    from ebmlab.data import make_toy

    toy = make_toy(toy_name)
    seed = RECIPE["seed"]
    train = toy.sample(RECIPE["n_train"], seed=seed)
    test = toy.sample(RECIPE["n_test"], seed=seed + 1_000_003)
    b = toy.bounds
    return toy, train, test, [(b[0], b[1]), (b[2], b[3])]


def _uniform(bounds: list[tuple[float, float]]) -> Any:
    import torch

    lo = torch.tensor([b[0] for b in bounds])
    hi = torch.tensor([b[1] for b in bounds])

    def init(n: int | tuple[int, ...], generator: Any = None) -> Any:
        m = n if isinstance(n, int) else n[0]
        return lo + (hi - lo) * torch.rand(m, 2, generator=generator)

    return init


def _energy() -> Any:
    import torch

    from ebmlab.energies import MLPEnergy

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE["seed"])
        return MLPEnergy(
            2,
            RECIPE["hidden"],
            activation=RECIPE["activation"],
            base_scale=RECIPE["base_scale"],
        )


def _ours(objective: str, energy: Any, train: Any, bounds: Any) -> tuple[Any, list[Any]]:
    """``step(x, generator) -> loss`` and extra parameters, for an ebmlab objective."""
    from ebmlab.objectives import (
        ContrastiveDivergence,
        DenoisingScoreMatching,
        NoiseContrastiveEstimation,
        ScoreMatching,
        SlicedScoreMatching,
        fit_gaussian_noise,
        fit_mixture_noise,
    )
    from ebmlab.samplers import MALA

    h = HYPER
    init = _uniform(bounds)
    if objective in ("cd", "pcd", "short-run", "pcd-kl"):
        mode = "pcd" if objective == "pcd-kl" else objective
        steps = h["short_run_steps"] if objective == "short-run" else h["n_steps"]
        obj: Any = ContrastiveDivergence(
            MALA(h["step_size"]),
            steps,
            mode=mode,
            init_fn=init,
            kl_weight=h["kl_weight"] if objective == "pcd-kl" else 0.0,
        )
    elif objective == "sm":
        obj = ScoreMatching()
    elif objective == "ssm":
        obj = SlicedScoreMatching(h["n_projections"])
    elif objective == "dsm":
        obj = DenoisingScoreMatching(h["noise_std"])
    elif objective == "dsm-multi":
        obj = DenoisingScoreMatching(noise_levels=h["noise_levels"])
    elif objective == "nce":
        obj = NoiseContrastiveEstimation(fit_gaussian_noise(train), h["noise_ratio"])
    elif objective == "nce-mix":
        noise = fit_mixture_noise(train, h["noise_components"], random_state=RECIPE["seed"])
        obj = NoiseContrastiveEstimation(noise, h["noise_ratio"])
    else:
        raise ValueError(f"unknown objective {objective!r}")
    import torch

    state = [
        obj.init_state(h["n_chains"], generator=torch.Generator().manual_seed(RECIPE["seed"] + 1))
    ]

    def step(x: Any, generator: Any) -> Any:
        loss, _, state[0] = obj(energy, x, state[0], generator=generator)
        return loss

    extra = list(obj.parameters()) if isinstance(obj, torch.nn.Module) else []
    return step, extra


def _torchebm(objective: str, energy: Any, train: Any, bounds: Any) -> tuple[Any, list[Any]]:
    import torch
    from torch import nn
    from torchebm.core import BaseModel
    from torchebm.losses import (
        ContrastiveDivergence,
        DenoisingScoreMatching,
        ScoreMatching,
        SlicedScoreMatching,
    )
    from torchebm.samplers import LangevinDynamics

    class Model(BaseModel):
        """torchebm's model contract around the shared energy module."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    model = Model(energy)
    h = HYPER
    kw = {"dtype": torch.float32, "device": "cpu"}
    if objective in ("cd", "pcd"):
        # Euler-Maruyama: x - eps grad + noise_scale sqrt(2 eps) z, so noise_scale=1 is ULA.
        sampler = LangevinDynamics(model, step_size=h["step_size"], noise_scale=1.0, **kw)
        loss_fn: Any = ContrastiveDivergence(
            model,
            sampler,
            k_steps=h["n_steps"],
            persistent=objective == "pcd",
            buffer_size=h["n_chains"],
            new_sample_ratio=0.0,
            init_steps=0,
            energy_reg_weight=0.0,
            **kw,
        )
        if objective == "pcd":  # start the buffer uniformly over the bounds, as the others
            loss_fn.initialize_buffer((2,))
            loss_fn.replay_buffer.copy_(_uniform(bounds)(h["n_chains"]))

        def step(x: Any, generator: Any) -> Any:
            return loss_fn(x, generator=generator)[0]

        return step, []
    if objective == "sm":
        loss_fn = ScoreMatching(model, hessian_method="exact", **kw)
    elif objective == "ssm":
        loss_fn = SlicedScoreMatching(
            model, n_projections=h["n_projections"], projection_type="gaussian", **kw
        )
    elif objective == "dsm":
        loss_fn = DenoisingScoreMatching(model, noise_scale=h["noise_std"], **kw)
    else:
        raise ValueError(f"torchebm has no {objective!r}")

    def step2(x: Any, generator: Any) -> Any:
        return loss_fn(x, generator=generator)

    return step2, []


def _ebmkit(objective: str, energy: Any, train: Any, bounds: Any) -> tuple[Any, list[Any]]:
    import torch
    from ebm.buffer import ReplayBuffer
    from ebm.losses import (
        ContrastiveDivergence,
        DenoisingScoreMatching,
        ExactScoreMatching,
        NoiseContrastiveEstimation,
        SlicedScoreMatching,
    )
    from ebm.samplers import MALA

    h = HYPER
    extra: list[Any] = []
    if objective in ("cd", "pcd", "short-run"):
        steps = h["short_run_steps"] if objective == "short-run" else h["n_steps"]
        sampler = MALA(step_size=h["step_size"], steps=steps)
        current: list[Any] = [None]
        if objective == "pcd":
            buffer = ReplayBuffer(
                h["n_chains"], (2,), reinit_prob=0.0, init_fn=lambda s: _uniform(bounds)(s)
            )
            loss_fn: Any = ContrastiveDivergence(sampler, buffer=buffer)
        elif objective == "cd":  # CD-k: the chains start at the data batch
            loss_fn = ContrastiveDivergence(sampler, init_fn=lambda s: current[0].clone())
        else:
            loss_fn = ContrastiveDivergence(sampler, init_fn=lambda s: _uniform(bounds)(s))

        def step(x: Any, generator: Any) -> Any:
            current[0] = x
            return loss_fn(energy, x).loss

        return step, extra
    if objective == "sm":
        loss_fn = ExactScoreMatching()
    elif objective == "ssm":
        loss_fn = SlicedScoreMatching(h["n_projections"], vr=True)
    elif objective == "dsm":
        loss_fn = DenoisingScoreMatching(h["noise_std"])
    elif objective == "nce":
        flat = train.reshape(train.shape[0], -1)
        noise = torch.distributions.MultivariateNormal(flat.mean(0), torch.cov(flat.T))
        loss_fn = NoiseContrastiveEstimation(noise, noise_ratio=int(h["noise_ratio"]))
        extra = list(loss_fn.parameters())
    else:
        raise ValueError(f"ebmkit has no {objective!r}")

    def step2(x: Any, generator: Any) -> Any:
        return loss_fn(energy, x).loss

    return step2, extra


BUILDERS = {"ebmlab": _ours, "torchebm": _torchebm, "ebmkit": _ebmkit}


def _grid_samples(energy: Any, bounds: Any, n: int, generator: Any) -> Any:
    """Exact samples of ``exp(-E)`` up to a 512 x 512 grid over the quadrature box."""
    import torch

    from ebmlab.partition.quadrature import grid_points

    pts, _ = grid_points(bounds, 512, dtype=torch.float64)
    with torch.no_grad():
        e = torch.cat([energy(c) for c in pts.split(65536)])
    p = torch.softmax(-e, 0)
    idx = torch.multinomial(p, n, replacement=True, generator=generator)
    cell = torch.tensor([(hi - lo) / 512 for lo, hi in bounds], dtype=torch.float64)
    jitter = (torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5) * cell
    return pts[idx] + jitter


def _points_name(spec: dict[str, Any]) -> str:
    return f"{spec['toy']}__{spec['impl']}__{spec['objective']}.npy"


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (toy, implementation, objective) cell."""
    import copy

    import torch

    from ebmlab.evaluation import mmd
    from ebmlab.partition.quadrature import quadrature_log_z

    torch.set_num_threads(1)
    toy_name, impl, objective = spec["toy"], spec["impl"], spec["objective"]
    seed = RECIPE["seed"]
    toy, train, test, bounds = _data(toy_name)
    energy = _energy()
    torch.manual_seed(seed)  # for the peers that draw from the global RNG
    generator = torch.Generator().manual_seed(seed)
    # The clock starts before the objective is built: fitting NCE's noise counts.
    cpu0, wall0 = time.process_time(), time.perf_counter()
    step, extra = BUILDERS[impl](objective, energy, train, bounds)
    params = [*energy.parameters(), *extra]
    optimizer = torch.optim.Adam(params, lr=RECIPE["lr"])
    budget, updates = spec.get("budget"), spec.get("updates")
    n = train.shape[0]
    done = 0
    status = "ok"
    energy.train()
    while True:
        spent = time.process_time() - cpu0
        frac = spent / budget if budget else done / updates
        if frac >= 1.0:
            break
        warm = min(1.0, (done + 1) / RECIPE["warmup_steps"])
        for group in optimizer.param_groups:
            group["lr"] = RECIPE["lr"] * warm * 0.5 * (1.0 + math.cos(math.pi * frac))
        idx = torch.randint(n, (RECIPE["batch_size"],), generator=generator)
        loss = step(train[idx], generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if not bool(torch.isfinite(loss)):
            status = f"diverged at update {done} (non-finite loss)"
            break
        optimizer.step()
        done += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result: dict[str, Any] = {
        **spec,
        "status": status,
        "n_updates": done,
        "train_cpu_s": cpu,
        "train_wall_s": wall,
        "ms_per_update": 1000 * cpu / max(done, 1),
    }
    e64 = copy.deepcopy(energy).double().eval()
    for p in e64.parameters():
        p.requires_grad_(False)
    t0 = time.perf_counter()
    try:
        if status != "ok":
            raise FloatingPointError(status)
        # heldout_nll's computation, with the quadrature result kept for its box.
        q = quadrature_log_z(e64, bounds)
        with torch.no_grad():
            nll_i = e64(test.double()) + q.log_z
        nll = float(nll_i.mean())
        if spec.get("points_dir"):  # per-point NLLs, for paired comparisons between cells
            import numpy as np

            np.save(Path(spec["points_dir"]) / _points_name(spec), nll_i.numpy())
        samples = _grid_samples(
            e64, q.bounds, RECIPE["mmd_samples"], torch.Generator().manual_seed(1)
        )
        m = RECIPE["mmd_samples"]
        # Paired with the toy's exact density on the same test points: KL(data || model)
        # estimated without the test set's own sampling noise in the entropy.
        kl_i = toy.log_prob(test.double()) + nll_i
        result.update(
            kl=float(kl_i.mean()),
            kl_stderr=float(kl_i.std() / math.sqrt(kl_i.numel())),
        )
        result.update(
            nll=nll,
            nll_stderr=float(nll_i.std() / math.sqrt(nll_i.numel())),
            log_z=q.log_z,
            log_z_error=q.error,
            mmd=mmd(samples[:m], test[:m].double()),
        )
        if not math.isfinite(nll):
            result["status"] = "non-finite NLL"
    except Exception as exc:  # report, never fabricate
        result.update(nll=None, nll_stderr=None, log_z=None, log_z_error=None, mmd=None)
        if result["status"] == "ok":
            result["status"] = f"evaluation failed: {type(exc).__name__}: {exc}"
    result["eval_s"] = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------


def _run_cell_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one cell in a fresh interpreter (one torch thread, its own CPU clock)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--cell", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)  # type: ignore[no-any-return]
    tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
    return {**spec, "status": f"cell process failed: {tail}", "nll": None, "mmd": None}


def entropy_floor(toy_name: str) -> tuple[float, float]:
    from ebmlab.data import make_toy

    return make_toy(toy_name).entropy(n=RECIPE["entropy_samples"], seed=RECIPE["seed"])


def _peer_status(names: list[str]) -> dict[str, str | None]:
    """Version of each peer, or None when it cannot be imported."""
    import importlib

    import _peers

    out: dict[str, str | None] = {}
    for name in names:
        dist, module = _peers.PEERS[name]
        try:
            importlib.import_module(module)
            out[name] = _peers.version(dist)
        except Exception:
            out[name] = None
    return out


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_table(results: list[dict[str, Any]], floors: dict[str, Any]) -> str:
    """Markdown table: one block of rows per toy, sorted by gap."""
    lines = [
        "| toy (entropy floor, nats) | implementation | objective | held-out NLL | gap | "
        "KL (paired) | MMD² | updates | ms/update | train CPU s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for toy in TOYS:
        rows = [r for r in results if r["toy"] == toy]
        if not rows:
            continue
        h, se = floors[toy]
        rows.sort(key=lambda r: (r.get("nll") is None, r.get("nll") or 0.0))
        for i, r in enumerate(rows):
            label = f"{toy} ({h:.3f} ± {se:.3f})" if i == 0 else ""
            nll = r.get("nll")
            gap = nll - h if nll is not None else None
            gap_s = _fmt(gap)
            if gap is not None and i == 0:
                gap_s = f"**{gap_s}**"
            obj = (
                r["objective"] if r.get("status") == "ok" else f"{r['objective']} ({r['status']})"
            )
            kl = r.get("kl")
            kl_s = f"{kl:.3f} ± {r['kl_stderr']:.3f}" if kl is not None else "—"
            lines.append(
                f"| {label} | {r['impl']} | {obj} | {_fmt(nll)} | {gap_s} | {kl_s} | "
                f"{_fmt(r.get('mmd'), 4)} | {r.get('n_updates', '—')} | "
                f"{_fmt(r.get('ms_per_update'), 1)} | {_fmt(r.get('train_cpu_s'), 1)} |"
            )
    return "\n".join(lines)


def comparisons(results: list[dict[str, Any]], points_dir: str | None) -> list[dict[str, Any]]:
    """Per toy: ebmlab's best cell against the best peer cell, paired on the test points.

    The difference of held-out NLLs ``peer - ebmlab`` is averaged over the same 20,000
    test points, so its standard error excludes the test set's own sampling noise.
    """
    import numpy as np

    out = []
    for toy in TOYS:
        rows = [r for r in results if r["toy"] == toy and r.get("nll") is not None]
        ours = [r for r in rows if r["impl"] == "ebmlab"]
        peers = [r for r in rows if r["impl"] != "ebmlab"]
        if not ours:
            continue
        best = min(ours, key=lambda r: r["nll"])
        item: dict[str, Any] = {"toy": toy, "ebmlab": best["objective"], "ebmlab_nll": best["nll"]}
        if peers:
            peer = min(peers, key=lambda r: r["nll"])
            item.update(peer=f"{peer['impl']}/{peer['objective']}", peer_nll=peer["nll"])
            a = Path(points_dir or "") / _points_name(best)
            b = Path(points_dir or "") / _points_name(peer)
            if points_dir and a.exists() and b.exists():
                d = np.load(b).astype(np.float64) - np.load(a).astype(np.float64)
                item.update(diff=float(d.mean()), diff_stderr=float(d.std() / np.sqrt(d.size)))
        out.append(item)
    return out


def summary(
    results: list[dict[str, Any]], floors: dict[str, Any], paired: list[dict[str, Any]]
) -> str:
    """Per toy: ebmlab's best objective and gap, the best peer cell, and their paired gap."""
    lines = [
        "| toy | ebmlab best: objective, gap | best peer: package/objective, gap | "
        "peer NLL - ebmlab NLL (paired, ± SE) | verdict |",
        "|---|---|---|---:|---|",
    ]
    for item in paired:
        h = floors[item["toy"]][0]
        a = f"{item['ebmlab']}, {item['ebmlab_nll'] - h:.3f}"
        b = f"{item['peer']}, {item['peer_nll'] - h:.3f}" if "peer" in item else "—"
        if "diff" in item:
            d, se = item["diff"], item["diff_stderr"]
            diff = f"{d:+.4f} ± {se:.4f}"
            verdict = (
                "ebmlab better" if d > 2 * se else "peer better" if d < -2 * se else "tie (< 2 SE)"
            )
        else:
            diff, verdict = "—", "no peer" if "peer" not in item else "—"
        lines.append(f"| {item['toy']} | {a} | {b} | {diff} | {verdict} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--toys", help=f"comma-separated subset of {','.join(TOYS)}")
    parser.add_argument("--objectives", help=f"comma-separated subset of {','.join(OURS)}")
    parser.add_argument(
        "--peers", default=",".join(PEERS), help="comma-separated peers to run, or 'none'"
    )
    parser.add_argument("--mode", choices=["time", "updates"], default="time")
    parser.add_argument("--budget", type=float, default=60.0, help="CPU seconds per cell")
    parser.add_argument("--updates", type=int, default=2000, help="updates per cell")
    parser.add_argument("--jobs", type=int, default=1, help="cells run at a time")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per cell, 2 toys")
    parser.add_argument("--json", metavar="PATH", help="write raw results to PATH")
    parser.add_argument("--report", metavar="PATH", help="print the tables of a --json file")
    parser.add_argument("--no-venv", action="store_true", help="run without .bench-venv")
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.cell:
        print(json.dumps(run_cell(json.loads(args.cell))))
        return
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print(format_table(saved["results"], saved["floors"]))
        print()
        print(summary(saved["results"], saved["floors"], saved.get("comparisons", [])))
        return
    if not args.no_venv and not _in_bench_venv():
        if os.environ.get("EBMLAB_BENCH_CHILD"):
            sys.exit(f"re-execution did not land in {VENV} (sys.prefix={sys.prefix})")
        setup_venv()
        os.environ["EBMLAB_BENCH_CHILD"] = "1"
        os.execv(str(BENCH_PY), [str(BENCH_PY), str(Path(__file__).resolve()), *sys.argv[1:]])

    import torch

    toys = args.toys.split(",") if args.toys else (TOYS[:2] if args.quick else TOYS)
    objectives = args.objectives.split(",") if args.objectives else OURS
    peers = [] if args.peers in ("", "none") else args.peers.split(",")
    for name, valid, what in ((toys, TOYS, "toy"), (objectives, OURS, "objective")):
        bad = sorted(set(name) - set(valid))
        if bad:
            sys.exit(f"unknown {what}(s) {bad}; valid: {valid}")
    if sorted(set(peers) - set(PEERS)):
        sys.exit(f"unknown peer(s) {sorted(set(peers) - set(PEERS))}; valid: {PEERS}")
    budget = 3.0 if args.quick else args.budget
    updates = 30 if args.quick else args.updates
    versions = _peer_status(peers)
    points_dir = tempfile.mkdtemp(prefix="ebmlab-objectives-")
    specs = []
    for toy in toys:
        for obj in objectives:
            impls = ["ebmlab"] + [p for p in peers if obj in PEER_OBJECTIVES[p] and versions[p]]
            for impl in impls:
                spec = {"toy": toy, "impl": impl, "objective": obj, "points_dir": points_dir}
                spec.update({"budget": budget} if args.mode == "time" else {"updates": updates})
                specs.append(spec)
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python3", "benchmarks/objectives.py", *sys.argv[1:]]),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "peers": versions,
        "recipe": RECIPE,
        "hyperparameters": HYPER,
        "load_average_start": os.getloadavg(),
    }
    print(f"# {len(specs)} cells, {args.jobs} at a time; peers {versions}", flush=True)
    t_start = time.perf_counter()
    floors: dict[str, tuple[float, float]] = {}
    results: list[dict[str, Any]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(_run_cell_process, s) for s in specs]
        for toy in toys:  # the entropy floors, while the first cells train
            floors[toy] = entropy_floor(toy)
        for fut in concurrent.futures.as_completed(futures):
            r = fut.result()
            results.append(r)
            h = floors.get(r["toy"], (math.nan, 0))[0]
            nll = r.get("nll")
            print(
                f"{r['toy']:16s} {r['impl']:9s} {r['objective']:10s} "
                f"nll {_fmt(nll)} gap {_fmt(nll - h if nll is not None else None)} "
                f"mmd {_fmt(r.get('mmd'), 4)} updates {r.get('n_updates')} "
                f"cpu {_fmt(r.get('train_cpu_s'), 1)} s  {r['status']}",
                flush=True,
            )
    env["wall_s"] = time.perf_counter() - t_start
    env["load_average_end"] = os.getloadavg()
    order = {(s["toy"], s["impl"], s["objective"]): i for i, s in enumerate(specs)}
    results.sort(key=lambda r: order[(r["toy"], r["impl"], r["objective"])])
    print(f"# total {env['wall_s']:.0f} s wall; load average at end {env['load_average_end']}")
    print()
    paired = comparisons(results, points_dir)
    shutil.rmtree(points_dir, ignore_errors=True)
    for r in results:
        r.pop("points_dir", None)
    print(format_table(results, floors))
    print()
    print(summary(results, floors, paired))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        how = {"ebmlab": HOW_OURS, **PEER_OBJECTIVES}
        payload = {
            "environment": env,
            "how": how,
            "floors": floors,
            "results": results,
            "comparisons": paired,
        }
        path.write_text(json.dumps(payload, indent=2))
        print(f"# wrote {path}")


if __name__ == "__main__":
    main()
