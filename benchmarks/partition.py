"""Partition function estimators: error versus compute, the issue's targets, BDMC coverage,
and ebmkit's AIS on the same energies in the same run.

Test energies (exact log Z known; the same constructions as ``tests/partition/targets.py``):

- ``gauss2``, ``gauss10``, ``gauss50``: correlated Gaussians ``N(mu, Q diag(l) Q^T)``, random
  rotation, eigenvalues log-spaced in [0.1, 10] (condition number 100); closed form;
- ``mix2`` (8 components), ``mix10`` (4 components): well-separated Gaussian mixtures with
  random full covariances and unequal weights; log Z = 0 (the energy is the normalized
  negative log density; quadrature confirms it in 2-D);
- ``boltz20``: a binary Boltzmann energy ``-x^T W x / 2 - b^T x`` on {0,1}^20; enumeration.

Sections (all in one process, implementations interleaved per seed):

1. ``exact``: enumeration of 2^20 .. 2^26 states and quadrature in 2-D: value and time.
2. ``curve``: error versus compute. For every energy and number of temperatures K, each
   implementation runs once per seed (order rotating); the table gives the RMS error over
   seeds, the median reported standard error, median ESS, and median wall and CPU seconds.
   Implementations: ``ebmlab`` (``ais_log_z`` with the event shape alone: pilot base,
   adaptive schedule, HMC), ``ebmlab+data`` (base fitted to 5000 exact samples),
   ``ebmkit`` (``ebm.ais_log_z`` with its defaults: base ``N(0, I)``, linear schedule, HMC
   with 5 leapfrog steps and its step-size adaptation), ``ebmkit+base`` (``ebm.ais_log_z``
   given the same data-fitted Gaussian base as ``ebmlab+data``). On ``boltz20`` ebmlab uses
   single-site Gibbs sweeps from the uniform base and ebmkit its Gibbs-with-gradients sampler
   (one flip proposal per temperature, its default ``transitions=1``) from a Bernoulli(1/2)
   base.
3. ``targets``: the issue's "Done when" rows, repeated over seeds: 50-D Gaussian with
   ``log_z(energy, method="ais")`` defaults; 10-D and 2-D mixtures.
4. ``coverage``: ``bdmc_log_z`` (event shape alone; reverse runs from exact samples) on every
   test energy, 40 seeds: share of brackets ``[lower, upper]`` that contain the exact log Z.

Unless ``--no-venv``, the script runs inside ``.bench-venv`` (created or completed by
``benchmarks/sampling.py``'s set-up: torch==2.13.0 first, then the peers, then ebmlab
editable), re-executing itself there. Usage::

    python3 benchmarks/partition.py                 # everything (about 45 min on 2 busy cores)
    python3 benchmarks/partition.py --quick         # smoke run, a few minutes
    python3 benchmarks/partition.py --section curve --energy gauss50 --json out.json
    python3 benchmarks/partition.py --report out.json   # tables of an earlier run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv"
BENCH_PY = VENV / "bin" / "python"
SECTIONS = ("exact", "curve", "targets", "coverage")
ENERGY_NAMES = ("gauss2", "gauss10", "gauss50", "mix2", "mix10", "boltz20")
IMPLS = ("ebmlab", "ebmlab+data", "ebmkit", "ebmkit+base")


# --------------------------------------------------------------------------------------
# Virtualenv (the peers live only there)
# --------------------------------------------------------------------------------------


def _in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _ensure_venv() -> None:
    ok = BENCH_PY.exists() and (
        subprocess.run(
            [str(BENCH_PY), "-c", "import torch, ebm, ebmlab.partition"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not ok:  # create or complete it the way the sampling benchmark does
        sys.path.insert(0, str(Path(__file__).parent))
        from sampling import setup_venv

        setup_venv()


# --------------------------------------------------------------------------------------
# Test energies
# --------------------------------------------------------------------------------------


def correlated_gaussian(d: int, seed: int = 0) -> Any:
    import torch

    from ebmlab.energies import Gaussian

    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = torch.logspace(-1.0, 1.0, d, dtype=torch.float64)
    cov = q @ torch.diag(lam) @ q.T
    return Gaussian(torch.randn(d, generator=g, dtype=torch.float64), 0.5 * (cov + cov.T))


def mixture(d: int, k: int, seed: int = 0, spread: float = 3.0) -> Any:
    import torch

    from ebmlab.energies import GaussianMixture

    g = torch.Generator().manual_seed(seed)
    means = spread * torch.randn(k, d, generator=g, dtype=torch.float64)
    covs = []
    for _ in range(k):
        a = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d)
        covs.append(0.3 * torch.eye(d, dtype=torch.float64) + 0.5 * a @ a.T)
    w = torch.rand(k, generator=g, dtype=torch.float64) + 0.5
    return GaussianMixture(w, means, torch.stack(covs))


def boltzmann(d: int, seed: int = 0, scale: float = 1.0) -> Any:
    import torch

    from ebmlab.energies import Energy

    class Boltzmann(Energy):
        domain = "binary"

        def __init__(self) -> None:
            super().__init__((d,))
            g = torch.Generator().manual_seed(seed)
            w = torch.randn(d, d, generator=g, dtype=torch.float64) * scale / math.sqrt(d)
            w = 0.5 * (w + w.T)
            w.fill_diagonal_(0.0)
            self.register_buffer("w", w)
            self.register_buffer("b", 0.5 * torch.randn(d, generator=g, dtype=torch.float64))

        def forward(self, x: Any) -> Any:
            x = x.reshape(x.shape[0], -1)
            return -0.5 * ((x @ self.w) * x).sum(-1) - x @ self.b

    return Boltzmann()


def build_energy(name: str) -> dict[str, Any]:
    """``energy``, exact ``truth``, ``discrete`` flag and an exact ``sample(n, g)``."""
    import torch

    from ebmlab.partition import enumerate_log_z, exact_log_probs

    if name.startswith("gauss"):
        e = correlated_gaussian(int(name[5:]), seed=int(name[5:]))
        return {"energy": e, "truth": float(e.log_z), "discrete": False, "sample": e.sample}
    if name.startswith("mix"):
        d = int(name[3:])
        e = mixture(d, 8 if d == 2 else 4, seed=1 if d == 2 else 0)
        return {"energy": e, "truth": 0.0, "discrete": False, "sample": e.sample}
    if name == "boltz20":
        e = boltzmann(20, seed=2, scale=2.0)
        x, lp = exact_log_probs(e, max_states=2**20)
        p = lp.exp()

        def sample(n: int, generator: torch.Generator | None = None) -> Any:
            return x[torch.multinomial(p, n, replacement=True, generator=generator)]

        truth = enumerate_log_z(e).value
        return {"energy": e, "truth": truth, "discrete": True, "sample": sample}
    raise ValueError(f"energy must be one of {ENERGY_NAMES}, got {name!r}")


# --------------------------------------------------------------------------------------
# Implementations: each returns value, stderr, ess
# --------------------------------------------------------------------------------------


def run_ebmlab(
    spec: dict[str, Any], impl: str, k: int, n: int, seed: int, data: Any
) -> dict[str, Any]:
    import torch

    from ebmlab.partition import ais_log_z

    g = torch.Generator().manual_seed(seed)
    opts: dict[str, Any] = {}
    if impl == "ebmlab+data":
        if spec["discrete"]:
            return {"skipped": "no data-fitted base for binary energies (uniform base)"}
        opts["data"] = data
    est = ais_log_z(spec["energy"], n_chains=n, n_temperatures=k, generator=g, min_ess=0, **opts)
    return {"value": est.value, "stderr": est.stderr, "ess": est.ess}


def _torch_base(base_energy: Any) -> Any:
    """Our data-fitted Gaussian base as a torch distribution (for ebmkit)."""
    import torch

    gauss = base_energy.gaussian
    return torch.distributions.MultivariateNormal(gauss.mean, scale_tril=gauss.scale_tril)


def run_ebmkit(
    spec: dict[str, Any], impl: str, k: int, n: int, seed: int, data: Any
) -> dict[str, Any]:
    import ebm
    import torch

    from ebmlab.partition import fit_gaussian

    energy = spec["energy"]
    shape = tuple(energy.event_shape)
    kwargs: dict[str, Any] = {"n_temps": k, "n_chains": n}
    if spec["discrete"]:
        if impl == "ebmkit+base":
            return {"skipped": "same as ebmkit on binary energies"}
        probs = torch.full(shape, 0.5, dtype=torch.float64)
        kwargs["base"] = torch.distributions.Independent(torch.distributions.Bernoulli(probs), 1)
        kwargs["sampler"] = ebm.samplers.GibbsWithGradients(steps=1)
    elif impl == "ebmkit+base":
        kwargs["base"] = _torch_base(fit_gaussian(data, inflation=1.5))
    torch.manual_seed(seed)  # ebmkit draws from the global RNG
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # its default base is built in the default dtype
    try:
        res = ebm.ais_log_z(energy, shape, **kwargs)
    finally:
        torch.set_default_dtype(default)
    return {"value": float(res.log_z), "stderr": float(res.stderr), "ess": float(res.ess)}


RUNNERS: dict[str, Callable[..., dict[str, Any]]] = {
    "ebmlab": run_ebmlab,
    "ebmlab+data": run_ebmlab,
    "ebmkit": run_ebmkit,
    "ebmkit+base": run_ebmkit,
}


def timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = fn()
    except Exception as exc:  # a peer failing is reported, not fatal
        out = {"error": f"{type(exc).__name__}: {exc}"}
        traceback.print_exc(limit=2)
    out.update(wall=time.perf_counter() - t0, cpu=time.process_time() - c0)
    return out


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------


def section_exact(quick: bool) -> list[dict[str, Any]]:
    import torch

    from ebmlab.partition import enumerate_log_z, exact_log_z

    rows = []
    e = build_energy("boltz20")["energy"]
    for name, energy, domain, check in [
        ("boltz20 (2^20 states)", e, None, None),
        *[
            (f"independent fields (2^{d} states)", None, "binary", d)
            for d in ((20,) if quick else (22, 24, 26))
        ],
    ]:
        if check is not None:
            h = torch.randn(check, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

            def energy(x: Any, h: Any = h) -> Any:
                return x @ h

            exact = float(torch.log1p(torch.exp(-h)).sum())
            shape: Any = check
        else:
            exact, shape = None, None
        r = timed(
            lambda energy=energy, shape=shape, domain=domain: {
                "value": enumerate_log_z(energy, shape, domain, dtype=torch.float64).value
            }
        )
        if exact is not None:
            r["error"] = abs(r["value"] - exact)
        rows.append({"what": name, "method": "enumeration", **r})
    for name in ("gauss2", "mix2"):
        spec = build_energy(name)
        r = timed(
            lambda spec=spec: (lambda est: {"value": est.value, "stderr": est.stderr})(
                exact_log_z(spec["energy"], bounds=[(-15.0, 15.0)] * 2)
            )
        )
        r["error"] = abs(r["value"] - spec["truth"])
        rows.append({"what": name, "method": "quadrature", **r})
    return rows


def section_curve(
    energies: list[str], ks: list[int], seeds: int, n: int, impls: list[str]
) -> list[dict[str, Any]]:
    import torch

    rows = []
    for name in energies:
        spec = build_energy(name)
        data = (
            None
            if spec["discrete"]
            else spec["sample"](5000, generator=torch.Generator().manual_seed(99))
        )
        for k in ks:
            runs: dict[str, list[dict[str, Any]]] = {i: [] for i in impls}
            for seed in range(seeds):
                order = impls[seed % len(impls) :] + impls[: seed % len(impls)]
                for impl in order:

                    def fn(
                        impl: str = impl,
                        seed: int = seed,
                        k: int = k,
                        spec: Any = spec,
                        data: Any = data,
                    ) -> dict[str, Any]:
                        return RUNNERS[impl](spec, impl, k, n, seed, data)

                    r = timed(fn)
                    runs[impl].append(r)
                    print(
                        f"  {name} K={k} seed={seed} {impl}: {_short(r, spec['truth'])}",
                        flush=True,
                    )
            for impl in impls:
                rows.append(_summarize(name, impl, k, n, runs[impl], spec["truth"]))
    return rows


def _short(r: dict[str, Any], truth: float) -> str:
    if "value" not in r:
        return r.get("skipped") or r.get("error", "?")
    return (
        f"err {r['value'] - truth:+.4f} se {r['stderr']:.4f} ess {r['ess']:.0f} {r['wall']:.1f}s"
    )


def _summarize(
    name: str, impl: str, k: int, n: int, runs: list[dict[str, Any]], truth: float
) -> dict[str, Any]:
    row: dict[str, Any] = {"energy": name, "impl": impl, "K": k, "chains": n, "runs": len(runs)}
    ok = [r for r in runs if "value" in r and math.isfinite(r["value"])]
    if not ok:
        row["note"] = runs[0].get("skipped") or runs[0].get("error", "failed") if runs else ""
        return row
    errs = [r["value"] - truth for r in ok]
    row.update(
        rms_error=math.sqrt(sum(e * e for e in errs) / len(errs)),
        max_abs_error=max(abs(e) for e in errs),
        mean_error=sum(errs) / len(errs),
        median_stderr=statistics.median(r["stderr"] for r in ok),
        median_ess=statistics.median(r["ess"] for r in ok),
        median_wall=statistics.median(r["wall"] for r in ok),
        median_cpu=statistics.median(r["cpu"] for r in ok),
        max_wall=max(r["wall"] for r in ok),
        max_cpu=max(r["cpu"] for r in ok),
        failed=len(runs) - len(ok),
    )
    return row


def section_targets(quick: bool) -> list[dict[str, Any]]:
    import torch

    from ebmlab.partition import ais_log_z, log_z

    seeds = 2 if quick else 10
    rows = []
    configs = [
        ("gauss50", "log_z(energy, method='ais') defaults: event shape only, 256 chains, K=1000",
         0.1, lambda e, g, data: log_z(e, "ais", generator=g)),
        ("mix10", "event shape only, 1024 chains, K=1000", 0.05,
         lambda e, g, data: ais_log_z(e, n_chains=1024, n_temperatures=1000, generator=g)),
        ("mix10", "data base (5000 samples), 1024 chains, K=1000", 0.05,
         lambda e, g, data: ais_log_z(e, data=data, n_chains=1024, n_temperatures=1000,
                                      generator=g)),
        ("mix2", "event shape only, 256 chains, K=1000", 0.05,
         lambda e, g, data: ais_log_z(e, n_chains=256, n_temperatures=1000, generator=g)),
        ("gauss10", "event shape only, 256 chains, K=1000", 0.05,
         lambda e, g, data: ais_log_z(e, n_chains=256, n_temperatures=1000, generator=g)),
    ]  # fmt: skip
    for name, what, tol, fn in configs:
        spec = build_energy(name)
        data = spec["sample"](5000, generator=torch.Generator().manual_seed(99))
        runs = []
        for seed in range(seeds):

            def one(
                fn: Any = fn, seed: int = seed, spec: Any = spec, data: Any = data
            ) -> dict[str, Any]:
                est = fn(spec["energy"], torch.Generator().manual_seed(seed), data)
                return {"value": est.value, "stderr": est.stderr, "ess": est.ess}

            r = timed(one)
            runs.append(r)
            print(f"  target {name} [{what}] seed={seed}: {_short(r, spec['truth'])}", flush=True)
        row = _summarize(name, what, 1000, 0, runs, spec["truth"])
        row.update(tolerance=tol, within=sum(abs(r["value"] - spec["truth"]) <= tol for r in runs))
        rows.append(row)
    return rows


def section_coverage(energies: list[str], runs: int, k: int, n: int) -> list[dict[str, Any]]:
    import torch

    from ebmlab.partition import bdmc_log_z

    rows = []
    for name in energies:
        spec = build_energy(name)
        truth, hits, tight, widths, walls, gaps = spec["truth"], 0, 0, [], [], []
        for seed in range(runs):
            g = torch.Generator().manual_seed(1000 + seed)
            x = spec["sample"](n, generator=g)
            t0 = time.perf_counter()
            est = bdmc_log_z(
                spec["energy"], x, n_chains=n, n_temperatures=k, generator=g, min_ess=0
            )
            walls.append(time.perf_counter() - t0)
            hit = est.lower <= truth <= est.upper
            hits += hit
            tight += bool(est.is_tight)
            widths.append(est.upper - est.lower)
            gaps.append(est.details["gap"])
            print(
                f"  coverage {name} seed={seed}: [{est.lower - truth:+.4f}, "
                f"{est.upper - truth:+.4f}] {'ok' if hit else 'MISS'} {walls[-1]:.1f}s",
                flush=True,
            )
        rows.append(
            {
                "energy": name,
                "runs": runs,
                "K": k,
                "chains": n,
                "covered": hits,
                "tight": tight,
                "median_width": statistics.median(widths),
                "median_gap": statistics.median(gaps),
                "median_wall": statistics.median(walls),
            }
        )
    return rows


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def environment(threads: int) -> dict[str, Any]:
    import torch

    versions: dict[str, str | None] = {}
    for dist in ("ebmkit", "torch"):
        try:
            import importlib.metadata as md

            versions[dist] = md.version(dist)
        except Exception:
            versions[dist] = None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": threads,
        "load_average_start": os.getloadavg()[0],
        "versions": versions,
        "torch": torch.__version__,
    }


def _f(v: Any, fmt: str = "{:.4f}") -> str:
    return "" if v is None else fmt.format(v)


def markdown(results: dict[str, Any]) -> str:
    out = []
    env = results["environment"]
    out.append(
        f"Run {env['date']}, {env['cpus']} CPUs shared with other jobs (load average "
        f"{env['load_average_start']:.1f} at the start, {env.get('load_average_end', 0):.1f} at "
        f"the end), torch {env['torch']} with {env['torch_threads']} thread(s), ebmkit "
        f"{env['versions'].get('ebmkit')}; {results.get('seconds', 0):.0f} s in all."
    )
    if results.get("exact"):
        out += [
            "",
            "| what | method | log Z | error | wall s | CPU s |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for r in results["exact"]:
            out.append(
                f"| {r['what']} | {r['method']} | {_f(r.get('value'))} | "
                f"{_f(r.get('error'), '{:.1e}')} | {r['wall']:.2f} | {r['cpu']:.2f} |"
            )
    if results.get("curve"):
        out += [
            "",
            "| energy | impl | K | chains | runs | RMS error | max abs error | median stderr "
            "| median ESS | median wall s | median CPU s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["curve"]:
            if "rms_error" not in r:
                out.append(
                    f"| {r['energy']} | {r['impl']} | {r['K']} | {r['chains']} | "
                    f"{r['runs']} | n/a: {r.get('note', '')} | | | | | |"
                )
                continue
            out.append(
                f"| {r['energy']} | {r['impl']} | {r['K']} | {r['chains']} | {r['runs']} | "
                f"{r['rms_error']:.4f} | {r['max_abs_error']:.4f} | {r['median_stderr']:.4f} | "
                f"{r['median_ess']:.0f} | {r['median_wall']:.1f} | {r['median_cpu']:.1f} |"
            )
    if results.get("targets"):
        out += [
            "",
            "| energy | configuration | runs | within tolerance | tolerance | max abs error "
            "| RMS error | median stderr | max wall s | max CPU s |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["targets"]:
            out.append(
                f"| {r['energy']} | {r['impl']} | {r['runs']} | {r.get('within')} | "
                f"{r.get('tolerance')} | {_f(r.get('max_abs_error'))} | "
                f"{_f(r.get('rms_error'))} | "
                f"{_f(r.get('median_stderr'))} | {_f(r.get('max_wall'), '{:.1f}')} | "
                f"{_f(r.get('max_cpu'), '{:.1f}')} |"
            )
    if results.get("coverage"):
        out += [
            "",
            "| energy | K | chains | runs | bracket holds exact log Z | tight (width <= 0.2) "
            "| median width | median gap (reverse - forward) | median wall s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["coverage"]:
            out.append(
                f"| {r['energy']} | {r['K']} | {r['chains']} | {r['runs']} | "
                f"{r['covered']}/{r['runs']} ({100 * r['covered'] / r['runs']:.0f}%) | "
                f"{r['tight']}/{r['runs']} | {r['median_width']:.3f} | {r['median_gap']:+.4f} | "
                f"{r['median_wall']:.1f} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--section", action="append", choices=SECTIONS, help="default: all")
    parser.add_argument("--energy", action="append", choices=ENERGY_NAMES, help="default: all")
    parser.add_argument("--impl", action="append", choices=IMPLS, help="default: all")
    parser.add_argument("--seeds", type=int, help="runs per curve point (default 3, quick 1)")
    parser.add_argument("--temperatures", help="curve K values, comma separated")
    parser.add_argument("--chains", type=int, default=256, help="AIS chains (curve)")
    parser.add_argument("--coverage-runs", type=int, help="BDMC runs per energy (default 40)")
    parser.add_argument("--coverage-temperatures", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", metavar="PATH", help="write raw results to PATH")
    parser.add_argument("--report", metavar="PATH", help="only print the tables of a --json file")
    parser.add_argument("--no-venv", action="store_true", help="run in this interpreter")
    args = parser.parse_args(argv)
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return
    if not args.no_venv and not _in_bench_venv():
        _ensure_venv()
        os.execv(str(BENCH_PY), [str(BENCH_PY), __file__, *(argv or sys.argv[1:])])
    import torch

    torch.set_num_threads(args.threads)
    sections = args.section or list(SECTIONS)
    energies = args.energy or list(ENERGY_NAMES)
    impls = args.impl or list(IMPLS)
    ks = (
        [int(v) for v in args.temperatures.split(",")]
        if args.temperatures
        else ([30, 100] if args.quick else [100, 300, 1000])
    )
    seeds = args.seeds or (1 if args.quick else 3)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"environment": environment(args.threads), "args": vars(args)}
    if "exact" in sections:
        print("[exact]", flush=True)
        results["exact"] = section_exact(args.quick)
    if "curve" in sections:
        print("[curve]", flush=True)
        results["curve"] = section_curve(energies, ks, seeds, args.chains, impls)
    if "targets" in sections:
        print("[targets]", flush=True)
        results["targets"] = section_targets(args.quick)
    if "coverage" in sections:
        print("[coverage]", flush=True)
        runs = args.coverage_runs or (3 if args.quick else 40)
        k = 50 if args.quick else args.coverage_temperatures
        results["coverage"] = section_coverage(energies, runs, k, 256)
    results["seconds"] = time.perf_counter() - t0
    results["environment"]["load_average_end"] = os.getloadavg()[0]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    print()
    print(markdown(results))


if __name__ == "__main__":
    main()
