"""Self-tuning samplers: effective samples per gradient and per second, vs blackjax and NumPyro.

Targets (exact moments known):

- ``gaussian-100``: 100-D diagonal Gaussian, variances log-spaced from 1e-2
  to 1e2 (four orders of magnitude), means spread over [-1, 1];
- ``funnel-10``: Neal's funnel with ``v ~ N(0, 1.5^2)`` and 9 coordinates
  ``x_i | v ~ N(0, e^v)`` (the scale-3 funnel defeats every sampler here
  without reparameterization);
- ``mixture``: 1-D ``0.3 N(5, 1) + 0.7 N(-5, 1)`` (modes 10 sd apart), every
  chain started at -5.

Implementations, all from the same bad start (step size 1e-4 for ebmlab; the
peers' own initial step):

- ebmlab ``MALA``, ``HMC`` (10 leapfrog steps), ``ChEESHMC``, each after
  :func:`ebmlab.samplers.warmup` (step size by dual averaging pooled over
  chains, windowed diagonal mass), batched over 256 chains;
- ebmlab ``pt`` (parallel tempering, adapted MALA base, 8 replicas, adaptive
  schedule) on the mixture;
- blackjax ``window_adaptation`` + NUTS and + HMC (10 steps), NumPyro NUTS
  (``chain_method="vectorized"``), 4 chains each, in ``.bench-venv-jax`` (JAX on
  the CPU; installed by this script on first use, never an ebmlab dependency).

Each uses 1,000 warm-up and 1,000 kept draws per chain. ESS is ebmlab's
estimator (Geyer initial monotone sequence, chains combined) for every
implementation, minimum over coordinates, of the mean (``x``) and of the
variance (``(x - mu)^2``); "grads" counts gradient evaluations after warm-up
over all chains (ebmlab: rows through the energy; peers: their integration
step counts). ESS per second divides by the time of warm-up plus sampling
(blackjax and NumPyro time both in one call); times exclude JAX compilation
(each peer is run once before the timed run) and use one thread everywhere.
Moments are checked within ``4 sd / sqrt(ESS)`` (Bonferroni over coordinates).

Usage::

    python3 benchmarks/samplers.py --markdown --json benchmarks/results/samplers.json
    python3 benchmarks/samplers.py --quick          # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv-jax"
JAX_PY = VENV / "bin" / "python"
PEER_PKGS = ["jax", "jaxlib", "blackjax", "numpyro", "numpy"]
PEERS = ["blackjax-nuts", "blackjax-hmc", "numpyro-nuts"]
SEED = 0


def setup_venv() -> None:
    """Create ``.bench-venv-jax`` with CPU JAX, blackjax and NumPyro if missing."""
    probe = "import jax, blackjax, numpyro"
    if JAX_PY.exists() and subprocess.run([str(JAX_PY), "-c", probe]).returncode == 0:
        return
    if not JAX_PY.exists():
        print(f"[setup] {sys.executable} -m venv {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print(f"[setup] pip install {' '.join(PEER_PKGS)}", flush=True)
    cmd = [str(JAX_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PEER_PKGS]
    subprocess.run(cmd, check=True)


def targets(quick: bool) -> dict[str, dict[str, Any]]:
    import torch

    d = 100
    var = torch.logspace(-2.0, 2.0, d, dtype=torch.float64)
    mu = torch.linspace(-1.0, 1.0, d, dtype=torch.float64)
    return {
        "gaussian-100": {"kind": "gaussian", "mu": mu.tolist(), "var": var.tolist(), "d": d},
        "funnel-10": {"kind": "funnel", "d": 10, "sv": 1.5},
        "mixture": {"kind": "mixture", "weight": 0.3, "sep": 10.0, "d": 1},
    }


def torch_energy(t: dict[str, Any]):
    import torch

    if t["kind"] == "gaussian":
        mu = torch.tensor(t["mu"], dtype=torch.float64)
        var = torch.tensor(t["var"], dtype=torch.float64)
        return lambda x: 0.5 * ((x - mu) ** 2 / var).sum(1)
    if t["kind"] == "funnel":
        d, sv = t["d"], t["sv"]

        def funnel(x):
            v, z = x[:, 0], x[:, 1:]
            return 0.5 * v * v / sv**2 + 0.5 * (z * z).sum(1) * torch.exp(-v) + 0.5 * (d - 1) * v

        return funnel
    w, sep = t["weight"], t["sep"]

    def mixture(x):
        a = -0.5 * (x[:, 0] - sep / 2) ** 2 + math.log(w)
        b = -0.5 * (x[:, 0] + sep / 2) ** 2 + math.log1p(-w)
        return -torch.logaddexp(a, b)

    return mixture


def exact_moments(t: dict[str, Any]) -> tuple[list[float], list[float]]:
    if t["kind"] == "gaussian":
        return t["mu"], t["var"]
    if t["kind"] == "funnel":
        # v ~ N(0, sv^2); x_i has mean 0 and variance E[e^v] = e^(sv^2 / 2)
        return [0.0] * t["d"], [t["sv"] ** 2] + [math.exp(t["sv"] ** 2 / 2)] * (t["d"] - 1)
    w, s = t["weight"], t["sep"] / 2
    m = w * s - (1 - w) * s
    return [m], [1.0 + s * s - m * m]


def start(t: dict[str, Any], n: int) -> Any:
    import torch

    if t["kind"] == "mixture":
        return torch.full((n, 1), -5.0, dtype=torch.float64)
    g = torch.Generator().manual_seed(SEED)
    return torch.randn(n, t["d"], dtype=torch.float64, generator=g)


def summarize(draws: Any, t: dict[str, Any], grads: float, seconds: float) -> dict[str, Any]:
    import torch

    from ebmlab.diagnostics import effective_sample_size

    x = torch.as_tensor(draws, dtype=torch.float64)
    mu_l, var_l = exact_moments(t)
    mu = torch.tensor(mu_l, dtype=torch.float64)
    var = torch.tensor(var_l, dtype=torch.float64)
    sq = (x - mu) ** 2
    ess_m = effective_sample_size(x)
    ess_v = effective_sample_size(sq)
    from scipy.stats import norm

    d = x.shape[-1]
    z = float(norm.isf(2 * norm.sf(4.0) / (2 * d)))
    err_m = (x.mean((0, 1)) - mu).abs() / (x.reshape(-1, d).std(0) / ess_m.sqrt())
    err_v = (sq.mean((0, 1)) - var).abs() / (sq.reshape(-1, d).std(0) / ess_v.sqrt())
    ok = bool((err_m < z).all() and (err_v < z).all())
    ess = float(torch.minimum(ess_m, ess_v).min())
    return {
        "ess_min_mean": float(ess_m.min()),
        "ess_min_var": float(ess_v.min()),
        "grads": grads,
        "seconds": seconds,
        "ess_per_grad": ess / grads,
        "ess_per_second": ess / seconds,
        "moments_within_mcse": ok,
        "max_z_mean": float(err_m.max()),
        "max_z_var": float(err_v.max()),
        "n_draws": int(x.shape[0]),
        "n_chains": int(x.shape[1]),
    }


class Counter:
    """Energy wrapper counting rows evaluated (= gradient evaluations)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.rows = fn, 0

    def __call__(self, x: Any) -> Any:
        self.rows += x.shape[0]
        return self.fn(x)


def run_ebmlab(name: str, t: dict[str, Any], n_chains: int, n_warm: int, n_draws: int) -> Any:
    import torch

    from ebmlab.samplers import HMC, MALA, ChEESHMC, ParallelTempering, pt_summary, run, warmup

    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    energy = Counter(torch_energy(t))
    x0 = start(t, n_chains)
    base = {"mala": MALA(1e-4), "hmc": HMC(1e-4, 10), "chees": ChEESHMC(1e-4), "pt": MALA(1e-4)}
    t0 = time.perf_counter()
    if name == "pt":
        w = warmup(base[name], energy, x0, n_warm // 4, generator=g)
        pt, state = ParallelTempering(w.sampler, 8, beta_min=0.005).adapt(
            energy, w.state.x, n_warm, generator=g
        )
        sampler: Any = pt
    else:
        w = warmup(base[name], energy, x0, n_warm, generator=g)
        sampler, state = w.sampler, w.state
    warm_s = time.perf_counter() - t0
    warm_rows = energy.rows
    t0 = time.perf_counter()
    out = run(sampler, energy, state, n_draws, thin=1, generator=g)
    seconds = time.perf_counter() - t0
    # ESS per second over warm-up + sampling, as the peers' timed runs include both
    res = summarize(out.samples, t, float(energy.rows - warm_rows), warm_s + seconds)
    res.update(
        sampling_seconds=seconds,
        warmup_grads=float(warm_rows),
        warmup_seconds=warm_s,
        adapted=w.summary(),
        draws=out.samples if t["kind"] == "mixture" else None,
    )
    if name == "pt":
        res["pt"] = pt_summary(out.state)
    return res


def run_peers(t: dict[str, Any], chains: int, n_warm: int, n_draws: int) -> dict[str, Any]:
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        job = {
            "target": t,
            "x0": start(t, chains).tolist(),
            "chains": chains,
            "warmup": n_warm,
            "draws": n_draws,
            "n_leapfrog": 10,
            "seed": SEED,
            "impls": PEERS,
            "out": str(Path(tmp) / "peers.npz"),
        }
        (Path(tmp) / "job.json").write_text(json.dumps(job))
        env = dict(os.environ)
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        env["JAX_PLATFORMS"] = "cpu"
        proc = subprocess.run(
            [
                str(JAX_PY),
                str(REPO / "benchmarks" / "_samplers_peers.py"),
                str(Path(tmp) / "job.json"),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.stderr.strip():
            print(proc.stderr.strip()[-2000:], file=sys.stderr)
        if not Path(job["out"]).exists():
            return {}
        data = np.load(job["out"])
        out: dict[str, Any] = {"versions": json.loads(str(data["versions"]))}
        for impl in PEERS:
            if f"{impl}/draws" not in data:
                continue
            draws = data[f"{impl}/draws"]
            res = summarize(draws, t, float(data[f"{impl}/grads"]), float(data[f"{impl}/seconds"]))
            res["warmup_grads"] = float(data[f"{impl}/warm_grads"])
            if t["kind"] == "mixture":
                res["draws"] = draws
            out[impl] = res
        return out


def markdown(results: dict[str, Any]) -> str:
    lines = []
    for tname, rows in results["targets"].items():
        lines.append(f"\n**{tname}**\n")
        lines.append(
            "| implementation | chains | min ESS (mean) | min ESS (var) | grads after warm-up | "
            "ESS / grad | ESS / s (warm-up + sampling) | moments within MCSE | adapted |"
        )
        lines.append("|---|---:|---:|---:|---:|---:|---:|---|---|")
        for impl, r in rows.items():
            if impl == "versions" or not isinstance(r, dict) or "ess_per_grad" not in r:
                continue
            lines.append(
                f"| {impl} | {r['n_chains']} | {r['ess_min_mean']:.0f} | {r['ess_min_var']:.0f} | "
                f"{r['grads']:.3g} | {r['ess_per_grad']:.4f} | {r['ess_per_second']:.0f} | "
                f"{'yes' if r['moments_within_mcse'] else 'no'} "
                f"(max z {max(r['max_z_mean'], r['max_z_var']):.1f}) | "
                f"{r.get('adapted', '').replace('adapted ', '').replace('|', '/')} |"
            )
    if "mixture_weights" in results:
        lines.append(
            "\n**mixture: weight of the +5 mode (true 0.3), all chains started at -5; "
            "SE from the ESS of the indicator (chains stuck in one mode: binomial over chains)**\n"
        )
        lines.append("| implementation | weight (all kept draws) | SE | within 3 SE |")
        lines.append("|---|---:|---:|---|")
        for impl, (w, se) in results["mixture_weights"].items():
            ok = abs(w - 0.3) < 3 * se
            lines.append(f"| {impl} | {w:.3f} | {se:.3f} | {'yes' if ok else 'no'} |")
    if "pt" in results:
        p = results["pt"]
        lines.append("\n**parallel tempering on the mixture (8 replicas, adapted schedule)**\n")
        lines.append(
            "| Lambda | round trips / scan | 1 / (2 + 2 Lambda) | ratio "
            "| swap acceptance per pair |"
        )
        lines.append("|---:|---:|---:|---:|---|")
        lines.append(
            f"| {p['Lambda']:.3f} | {p['round_trip_rate']:.4f} | {p['round_trip_rate_deo']:.4f} | "
            f"{p['round_trip_rate'] / p['round_trip_rate_deo']:.2f} | "
            f"{', '.join(f'{a:.2f}' for a in p['swap_acceptance'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--no-peers", action="store_true", help="ebmlab only")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--from-json", help="only print the markdown of an earlier results file")
    args = ap.parse_args()
    if args.from_json:
        print(markdown(json.loads(Path(args.from_json).read_text())))
        return
    import torch

    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    if not args.no_peers:
        setup_venv()
    n_warm, n_draws = (200, 200) if args.quick else (1000, 1000)
    n_chains, peer_chains = (64, 2) if args.quick else (256, 4)
    results: dict[str, Any] = {
        "machine": "2 CPU cores shared with other jobs (busy); 1 thread per implementation",
        "torch": torch.__version__,
        "targets": {},
    }
    for tname, t in targets(args.quick).items():
        rows: dict[str, Any] = {}
        names = ["mala", "pt"] if t["kind"] == "mixture" else ["mala", "hmc", "chees"]
        for name in names:
            print(f"[run] {tname} ebmlab-{name}", flush=True)
            rows[f"ebmlab-{name}"] = run_ebmlab(name, t, n_chains, n_warm, n_draws)
        if not args.no_peers:
            print(f"[run] {tname} peers", flush=True)
            rows.update(run_peers(t, peer_chains, n_warm, n_draws))
        results["targets"][tname] = rows
        if t["kind"] == "mixture":
            from ebmlab.diagnostics import effective_sample_size

            weights = {}
            for impl, r in rows.items():
                if isinstance(r, dict) and r.get("draws") is not None:
                    ind = (torch.as_tensor(r["draws"])[..., :1] > 0).double()
                    w = float(ind.mean())
                    ess = float(effective_sample_size(ind)[0])
                    if math.isfinite(ess) and 0.0 < w < 1.0:
                        se = float(ind.std()) / math.sqrt(ess)
                    else:  # no chain ever moved between modes: chains are the samples
                        se = math.sqrt(0.3 * 0.7 / ind.shape[1])
                    weights[impl] = (w, se)
            results["mixture_weights"] = weights
            results["pt"] = rows["ebmlab-pt"]["pt"]
    for rows in results["targets"].values():
        for r in rows.values():
            if isinstance(r, dict):
                r.pop("draws", None)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.markdown:
        print(markdown(results))


if __name__ == "__main__":
    main()
