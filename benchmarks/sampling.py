"""Langevin sampling throughput: ebmlab against a plain PyTorch loop and two peers.

Every implementation runs the same unadjusted Langevin update

    x' = x - eps * grad E(x) + sigma * z,    z ~ N(0, I),

on its own copy of one ``MLPEnergy(D, hidden=(128, 128, 128), activation="silu")``
(identical weights), from the same starting points and with the same seed, so
that all of them follow the same chains. A last row uses ``E(x) = |x|^2 / 2``,
whose gradient is almost free, to expose each sampler's own per-step cost.
Implementations:

- ``plain``: the reference, a hand-written loop (``x.requires_grad_``,
  ``torch.autograd.grad``, ``x - eps * g + sigma * randn_like(x)``);
- ``ebmlab``: ``ebmlab.samplers.run(Langevin(eps, sigma), energy, x0, n_steps)``;
- ``ebmlab-compiled``: the same with ``compile=True``, the fast path;
- ``torchebm`` and ``ebmkit``: the Langevin samplers of those PyPI packages,
  driven through their public API (see ``_peers.py``).

The peers are never ebmlab dependencies. Unless ``--no-venv`` is given, the
script first makes sure the virtualenv ``.bench-venv`` in the repository root
holds ``torch==2.13.0`` (the CPU build), the peers and an editable ebmlab
(installing what is missing), then re-executes itself with that interpreter so
that every implementation is timed in one process.

Each row is timed with one warm-up run per implementation, then ``--repeats``
rounds (more for short rows) in which every implementation runs once, the order
rotating between rounds; the table gives medians. Usage::

    python3 benchmarks/sampling.py                      # full run, default threads
    python3 benchmarks/sampling.py --threads 1          # ~4 min on 2 busy cores
    python3 benchmarks/sampling.py --quick              # smoke run
    python3 benchmarks/sampling.py --markdown --json benchmarks/results/sampling.json
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv"
BENCH_PY = VENV / "bin" / "python"
SETUP_NOTES = VENV / "ebmlab-bench-setup.json"
TORCH_SPEC = "torch==2.13.0"
EBMLAB_DEPS = [
    "numpy",
    "scipy",
    "scikit-learn",
    "matplotlib",
    "pydantic",
    "pyyaml",
    "safetensors",
    "tqdm",
]
PEER_DISTS = ["torchebm", "ebmkit"]
IMPLS = ["plain", "ebmlab", "ebmlab-compiled", "torchebm", "ebmkit"]

#: (D, n_chains, n_steps, energy) of the default run. The last row swaps the MLP for
#: E(x) = |x|^2 / 2, whose gradient costs next to nothing: it exposes each sampler's
#: own per-step cost (Python, dispatch, small kernels), and its samples must have
#: mean ~0 and variance ~1/(1 - eps/2) (the ULA bias for a standard Gaussian).
ROWS: list[tuple[int, int, int, str]] = [
    (2, 256, 1000, "mlp"),
    (2, 1_000, 200, "mlp"),
    (2, 10_000, 100, "mlp"),
    (64, 1_000, 200, "mlp"),
    (64, 10_000, 100, "mlp"),
    (2, 256, 2000, "quadratic"),
]
ENERGIES = {"mlp": "MLP", "quadratic": "‖x‖²/2"}
HIDDEN = (128, 128, 128)
STEP_SIZE = 0.01
NOISE_SCALE = math.sqrt(2 * STEP_SIZE)
SEED = 0


# --------------------------------------------------------------------------------------
# .bench-venv set-up (runs under any python3; no torch needed)
# --------------------------------------------------------------------------------------


def _in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    print(f"[setup] pip install {' '.join(args)}", flush=True)
    cmd = [str(BENCH_PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)


def _tail(proc: subprocess.CompletedProcess[str], n: int = 3) -> str:
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
    lines = [ln for ln in lines if "is ignored: it is neither a file" not in ln]
    return " | ".join(lines[-n:]) or f"pip exited with status {proc.returncode}"


_PROBE = r"""
import importlib.metadata as m, importlib.util, json, sys
names = sys.argv[1:]
out = {}
for n in names:
    try:
        out[n] = m.version(n)
    except m.PackageNotFoundError:
        out[n] = None
spec = importlib.util.find_spec("ebmlab")
out["ebmlab_origin"] = spec.origin if spec else None
print(json.dumps(out))
"""


def _probe() -> dict[str, Any]:
    names = ["torch", *PEER_DISTS, "ebmlab", *EBMLAB_DEPS]
    proc = subprocess.run(
        [str(BENCH_PY), "-c", _PROBE, *names], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def _requirements(dist: str) -> list[str]:
    code = "import importlib.metadata as m, sys; print('\\n'.join(m.requires(sys.argv[1]) or []))"
    proc = subprocess.run(
        [str(BENCH_PY), "-c", code, dist], capture_output=True, text=True, check=False
    )
    reqs = []
    for line in proc.stdout.splitlines():
        name = re.split(r"[\s<>=!~\[(;]", line.strip(), maxsplit=1)[0].lower()
        if name and name != "torch" and ";" not in line:  # skip extras and markers
            reqs.append(line.strip())
    return reqs


def setup_venv() -> None:
    """Create/complete ``.bench-venv``; notes on peers go to ``SETUP_NOTES``."""
    if not BENCH_PY.exists():
        print(f"[setup] {sys.executable} -m venv {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    have = _probe()
    torch_version = (have.get("torch") or "").split("+")[0]
    if torch_version != TORCH_SPEC.split("==")[1]:
        proc = _pip(TORCH_SPEC)
        if proc.returncode:
            sys.exit(f"[setup] cannot install {TORCH_SPEC}: {_tail(proc)}")
    notes: dict[str, str] = {}
    if SETUP_NOTES.exists():
        notes = json.loads(SETUP_NOTES.read_text())
    missing = [d for d in PEER_DISTS if have.get(d) is None]
    for dist in missing:  # a fresh attempt replaces an old note
        notes.pop(dist, None)
    if missing and _pip(*missing, TORCH_SPEC).returncode:
        for dist in missing:  # one by one, to tell which one fails and why
            proc = _pip(dist, TORCH_SPEC)
            if proc.returncode == 0:
                continue
            reason = _tail(proc)
            nodeps = _pip("--no-deps", dist)
            if nodeps.returncode:
                notes[dist] = f"failed to install: {reason}"
                continue
            extra = _requirements(dist)
            if extra and _pip(*extra, TORCH_SPEC).returncode:
                notes[dist] = f"installed with --no-deps but its requirements {extra} failed"
            else:
                notes[dist] = (
                    f"installed with --no-deps (its torch requirement conflicts with "
                    f"{TORCH_SPEC}: {reason}); other requirements installed: {extra}"
                )
    origin = have.get("ebmlab_origin") or ""
    if not origin.startswith(str(REPO / "src")) or any(have.get(d) is None for d in EBMLAB_DEPS):
        for args in (("-e", str(REPO), "--no-deps"), (*EBMLAB_DEPS, TORCH_SPEC)):
            proc = _pip(*args)
            if proc.returncode:
                sys.exit(f"[setup] cannot install ebmlab into {VENV}: {_tail(proc)}")
    after = _probe()
    if (after.get("torch") or "").split("+")[0] != TORCH_SPEC.split("==")[1]:
        sys.exit(f"[setup] torch in {VENV} is {after.get('torch')}, expected {TORCH_SPEC}")
    for dist in PEER_DISTS:
        if after.get(dist) is None and dist not in notes:
            notes[dist] = "failed to install (see the pip output of the set-up)"
    SETUP_NOTES.write_text(json.dumps(notes, indent=2))


# --------------------------------------------------------------------------------------
# Implementations (run inside .bench-venv)
# --------------------------------------------------------------------------------------


def make_energy(kind: str, dim: int) -> Any:
    """The energy module of a row: ``MLPEnergy`` or the standard Gaussian's."""
    import torch
    from torch import nn

    from ebmlab.energies import MLPEnergy

    if kind == "mlp":
        return MLPEnergy(dim, hidden=HIDDEN, activation="silu")
    if kind != "quadratic":
        raise ValueError(f"energy must be one of {sorted(ENERGIES)}, got {kind!r}")

    class Quadratic(nn.Module):
        """``E(x) = |x|^2 / 2`` (a buffer tells adapters the device and dtype)."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.tensor(0.5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale * (x * x).sum(-1)

    return Quadratic()


def make_plain(energy: Any, eps: float, sigma: float) -> Any:
    """The reference: a hand-written PyTorch Langevin loop."""
    import torch

    def run_fn(x0: Any, n_steps: int, generator: Any) -> Any:
        del generator  # global RNG, seeded by the harness
        x = x0.clone()
        for _ in range(n_steps):
            x.requires_grad_(True)
            e = energy(x).sum()
            (g,) = torch.autograd.grad(e, x)
            x = (x - eps * g + sigma * torch.randn_like(x)).detach()
        return x

    return run_fn


def make_ebmlab(energy: Any, eps: float, sigma: float) -> Any:
    """``ebmlab.samplers.run`` with ``ebmlab.samplers.Langevin``."""
    from ebmlab.samplers import Langevin, run

    sampler = Langevin(eps, sigma)

    def run_fn(x0: Any, n_steps: int, generator: Any) -> Any:
        return run(sampler, energy, x0, n_steps, generator=generator).state.x

    return run_fn


def make_ebmlab_compiled(energy: Any, eps: float, sigma: float) -> Any:
    """``ebmlab`` with the fast path (``Langevin(..., compile=True)``): the blocked
    MLP kernel on the CPU for ``MLPEnergy``, ``torch.compile`` otherwise."""
    from ebmlab.samplers import Langevin, run

    sampler = Langevin(eps, sigma, compile=True)

    def run_fn(x0: Any, n_steps: int, generator: Any) -> Any:
        return run(sampler, energy, x0, n_steps, generator=generator).state.x

    return run_fn


HOW_OURS = {
    "plain": "`for _ in range(n): x.requires_grad_(True); e = f(x).sum(); "
    "(g,) = torch.autograd.grad(e, x); x = (x - eps * g + sigma * torch.randn_like(x))"
    ".detach()`",
    "ebmlab": "`ebmlab.samplers.run(Langevin(eps, sigma), f, x0, n, generator=g).state.x`; "
    "`run` starts with `Langevin.init`, one extra energy and gradient evaluation per run "
    "(1/n of a step per step)",
    "ebmlab-compiled": "the same with `Langevin(eps, sigma, compile=True)`, the fast path: for "
    "`MLPEnergy` on the CPU, the energy and its input gradient computed without autograd in "
    "cache-sized row blocks (`MLPEnergy.fused_energy_and_grad`); for other energies, the step "
    "fused by `torch.compile` (compiled once in the warm-up, not timed)",
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(device: str) -> dict[str, Any]:
    """Machine, versions and threading, for the record."""
    import torch

    import _peers

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python3", "benchmarks/sampling.py", *sys.argv[1:]]),
        "device": device,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "cuda_device": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "versions": {
            "ebmlab": _peers.version("ebmlab"),
            **{name: _peers.version(dist) for name, (dist, _) in _peers.PEERS.items()},
        },
        "load_average_start": os.getloadavg(),
        "hidden": list(HIDDEN),
        "step_size": STEP_SIZE,
        "noise_scale": NOISE_SCALE,
    }


def _setup_notes() -> dict[str, str]:
    """What ``setup_venv`` recorded about the peers (failures, --no-deps installs)."""
    if SETUP_NOTES.exists() and _in_bench_venv():
        return json.loads(SETUP_NOTES.read_text())  # type: ignore[no-any-return]
    return {}


def build_impls(
    selected: list[str], ref: Any, device: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run functions of the implementations, and reasons for those that cannot run."""
    import copy

    import _peers

    notes = _setup_notes()
    makers = {
        "plain": make_plain,
        "ebmlab": make_ebmlab,
        "ebmlab-compiled": make_ebmlab_compiled,
        **_peers.MAKERS,
    }
    impls: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name in selected:
        energy = copy.deepcopy(ref)  # a fresh module per implementation ...
        energy.load_state_dict(ref.state_dict())  # ... with the reference weights
        energy.to(device)
        try:
            impls[name] = makers[name](energy, STEP_SIZE, NOISE_SCALE)
        except Exception as exc:  # report, never fabricate
            reason = f"{type(exc).__name__}: {exc}"
            if name in notes:
                reason = f"{notes[name]}; {reason}"
            skipped[name] = reason
    return impls, skipped


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def bench_row(
    impls: dict[str, Any],
    skipped: dict[str, str],
    dim: int,
    n_chains: int,
    n_steps: int,
    repeats: int,
    device: str,
    energy: str = "mlp",
    min_time: float = 0.0,
) -> dict[str, Any]:
    """Time one (D, n_chains, n_steps) row of every implementation."""
    import torch

    gen = torch.Generator(device=device)
    x0 = torch.randn(n_chains, dim, generator=gen.manual_seed(SEED + 1), device=device)
    live = dict(impls)
    errors = dict(skipped)
    times: dict[str, list[float]] = {name: [] for name in impls}
    cpu_times: dict[str, list[float]] = {name: [] for name in impls}
    finals: dict[str, Any] = {}

    def once(name: str, steps: int) -> float:
        torch.manual_seed(SEED)  # same noise for implementations on the global RNG ...
        gen.manual_seed(SEED)  # ... and for those taking a generator
        gc.collect()
        _sync(device)
        c0, t0 = time.process_time(), time.perf_counter()
        x = live[name](x0, steps, gen)
        _sync(device)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        finals[name] = x
        if steps == n_steps:
            cpu_times[name].append(cpu)
        return elapsed

    load_start = os.getloadavg()[0]
    for name in list(live):  # warm-up
        try:
            once(name, max(5, n_steps // 10))
        except Exception as exc:
            errors[name] = f"failed at run time: {type(exc).__name__}: {exc}"
            del live[name]
    names = list(live)
    # At least `repeats` rounds; short rows get more (up to 5x) until each
    # implementation has run for `min_time` seconds, as single runs of a few
    # milliseconds are at the mercy of the scheduler.
    r, spent = 0, 0.0
    while r < repeats or (spent < min_time and r < 5 * repeats):
        k = r % max(len(names), 1)
        for name in names[k:] + names[:k]:
            try:
                times[name].append(once(name, n_steps))
            except Exception as exc:
                errors[name] = f"failed at run time: {type(exc).__name__}: {exc}"
                del live[name]
                names.remove(name)
        spent = min((sum(times[n]) for n in names), default=min_time)
        r += 1

    row: dict[str, Any] = {
        "energy": energy,
        "dim": dim,
        "n_chains": n_chains,
        "n_steps": n_steps,
        "repeats": r,
        "load_average_1min": [load_start, os.getloadavg()[0]],
        "results": {},
    }
    plain = times.get("plain") or None
    t_plain = statistics.median(plain) if plain else None
    x_plain = finals.get("plain")
    for name in impls:
        if name not in live:
            row["results"][name] = {"error": errors[name]}
            continue
        ts = times[name]
        t = statistics.median(ts)
        x = finals[name].detach().float()
        res: dict[str, Any] = {
            "times_s": ts,
            "cpu_times_s": cpu_times[name],
            "median_s": t,
            "min_s": min(ts),
            "chain_steps_per_s": n_chains * n_steps / t,
            "us_per_step": t / n_steps * 1e6,
            "sample_mean": x.mean().item(),
            "sample_var": x.var().item(),
            "finite": bool(torch.isfinite(x).all()),
        }
        if t_plain is not None and plain is not None:
            res["ratio_vs_plain"] = t_plain / t
            res["paired_ratio_vs_plain"] = statistics.median(
                p / q for p, q in zip(plain, ts, strict=True)
            )
            res["overhead_us_per_step"] = (t - t_plain) / n_steps * 1e6
            # Noise from other processes only ever adds time: the fastest rounds are
            # the best estimate of the intrinsic cost on a busy machine.
            res["min_overhead_us_per_step"] = (min(ts) - min(plain)) / n_steps * 1e6
            # CPU time of this process: with one torch thread it leaves out the time
            # spent waiting for a core that other processes hold (not their effect on
            # caches, nor a hypervisor's steal time).
            c_plain, c = statistics.median(cpu_times["plain"]), statistics.median(cpu_times[name])
            res["cpu_ratio_vs_plain"] = c_plain / c
            res["cpu_overhead_us_per_step"] = (c - c_plain) / n_steps * 1e6
        if x_plain is not None:
            res["max_abs_diff_vs_plain"] = (x - x_plain.float()).abs().max().item()
        row["results"][name] = res
    for name, reason in skipped.items():
        row["results"].setdefault(name, {"error": reason})
    return row


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------

COLUMNS = [
    "energy",
    "D",
    "chains",
    "steps",
    "impl",
    "chain-steps/s",
    "µs/step",
    "× plain",
    "× plain, range over rounds",
    "overhead µs/step",
    "× plain, CPU time (overhead µs/step)",
    "mean / var of samples",
    "max abs Δx vs plain",
]


def _cpu_cell(row: dict[str, Any], name: str) -> str:
    res, plain = row["results"][name], row["results"].get("plain", {})
    if "cpu_times_s" not in res or "cpu_times_s" not in plain:
        return ""
    if name == "plain":
        return "1.000"
    c_plain, c = statistics.median(plain["cpu_times_s"]), statistics.median(res["cpu_times_s"])
    return f"{c_plain / c:.3f} ({(c - c_plain) / row['n_steps'] * 1e6:+,.1f})"


def _cells(row: dict[str, Any], name: str) -> list[str]:
    energy = ENERGIES[row.get("energy", "mlp")]
    head = [energy, str(row["dim"]), f"{row['n_chains']:,}", f"{row['n_steps']:,}", name]
    res = row["results"][name]
    if "error" in res:
        return [*head, f"not run: {res['error']}", "", "", "", "", "", "", ""]
    ratio = res.get("ratio_vs_plain")
    over = res.get("overhead_us_per_step")
    diff = res.get("max_abs_diff_vs_plain")
    spread = ""
    plain = row["results"].get("plain", {})
    if ratio is not None and name != "plain" and "times_s" in plain:
        rs = [p / q for p, q in zip(plain["times_s"], res["times_s"], strict=True)]
        spread = f"{min(rs):.2f}–{max(rs):.2f}"
    sanity = f"{res['sample_mean']:+.3f} / {res['sample_var']:.3f}"
    if not res["finite"]:
        sanity += " (NON-FINITE)"
    return [
        *head,
        f"{res['chain_steps_per_s'] / 1e6:.3f} M",
        f"{res['us_per_step']:,.0f}",
        "" if ratio is None else f"{ratio:.3f}",
        spread,
        "" if over is None or name == "plain" else f"{over:+,.1f}",
        _cpu_cell(row, name),
        sanity,
        "" if diff is None or name == "plain" else f"{diff:.1e}",
    ]


def _busy_warning(env: dict[str, Any]) -> str | None:
    load, n_cpu = env["load_average_start"][0], env["cpu_count"] or 1
    if load < 0.5 * n_cpu:
        return None
    text = f"load average {load:.2f} on {n_cpu} CPUs before the run: other processes compete"
    if env["torch_num_threads"] > 1:
        text += (
            f"; with {env['torch_num_threads']} torch threads every parallel region waits for "
            "its slowest (descheduled) thread, so timings are unreliable: try --threads 1"
        )
    return text


def format_text(rows: list[dict[str, Any]]) -> str:
    table = [COLUMNS] + [_cells(row, name) for row in rows for name in row["results"]]
    widths = [max(len(r[i]) for r in table if len(r[i]) < 40) for i in range(len(COLUMNS))]
    lines = []
    for r in table:
        pairs = enumerate(zip(r, widths, strict=True))
        cells = [c.ljust(w) if i in (0, 4) else c.rjust(w) for i, (c, w) in pairs]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_markdown(env: dict[str, Any], rows: list[dict[str, Any]], how: dict[str, str]) -> str:
    v = env["versions"]
    load = [round(x, 2) for x in env["load_average_start"]]
    lines = [
        f"- command: `{env['command']}` ({env['date']})",
        f"- machine: {env['cpu']}, {env['cpu_count']} CPUs, {env['platform']}; "
        f"device `{env['device']}`" + (f" ({env['cuda_device']})" if env["cuda_device"] else ""),
        f"- Python {env['python']}, torch {env['torch']} "
        f"(num_threads={env['torch_num_threads']}"
        + (" set by --threads" if env.get("threads_set_by_option") else ", the default")
        + f"; interop threads {env['torch_num_interop_threads']})",
        f"- ebmlab {v['ebmlab']}, torchebm {v['torchebm']}, ebmkit {v['ebmkit']}",
        f"- load average at start: {load}"
        + (f" (warning: {_busy_warning(env)})" if _busy_warning(env) else ""),
        f"- energy: MLP = `MLPEnergy(D, hidden={HIDDEN}, activation='silu')`, same weights "
        "in every implementation; ‖x‖²/2 = standard Gaussian (gradient almost free: the row "
        f"shows each sampler's own per-step cost); eps={STEP_SIZE}, "
        f"sigma=sqrt(2 eps)={NOISE_SCALE:.4f}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i in (0, 4, 11) else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    for row in rows:
        for name in row["results"]:
            lines.append("| " + " | ".join(_cells(row, name)) + " |")
    lines.append("")
    lines.append("How each implementation was driven:")
    lines.append("")
    for name, text in how.items():
        lines.append(f"- `{name}`: {text}")
    return "\n".join(lines)


def _parse_row(text: str) -> tuple[int, int, int, str]:
    parts = text.split(",")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ENERGIES):
        raise SystemExit(f"--row must be D,CHAINS,STEPS[,{'|'.join(ENERGIES)}], got {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2]), parts[3] if len(parts) == 4 else "mlp"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few steps/repeats")
    parser.add_argument("--json", metavar="PATH", help="write raw results to PATH")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument(
        "--repeats",
        type=int,
        help="timed rounds per row, at least (default 5, quick 2; short rows get more)",
    )
    parser.add_argument(
        "--impl", action="append", choices=IMPLS, help="implementation(s) to run (default all)"
    )
    parser.add_argument(
        "--row",
        action="append",
        metavar="D,CHAINS,STEPS[,ENERGY]",
        help="run this row instead of the default ones (repeatable), e.g. --row 2,256,1000 "
        "or --row 2,256,2000,quadratic",
    )
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch.set_num_threads(N) (default: leave torch's default, which is recorded)",
    )
    parser.add_argument(
        "--report", metavar="PATH", help="only print the tables of an earlier --json file"
    )
    parser.add_argument(
        "--no-venv", action="store_true", help="run in this interpreter, without .bench-venv"
    )
    args = parser.parse_args(argv)
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print(format_text(saved["rows"]))
        if args.markdown:
            print()
            print(format_markdown(saved["environment"], saved["rows"], saved["how"]))
        return

    if not args.no_venv and not _in_bench_venv():
        if os.environ.get("EBMLAB_BENCH_CHILD"):
            sys.exit(f"re-execution did not land in {VENV} (sys.prefix={sys.prefix})")
        setup_venv()
        os.environ["EBMLAB_BENCH_CHILD"] = "1"
        script = str(Path(__file__).resolve())
        os.execv(str(BENCH_PY), [str(BENCH_PY), script, *sys.argv[1:]])

    import torch

    import _peers

    threads_default = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    selected = args.impl or IMPLS
    if "plain" not in selected:
        selected = ["plain", *selected]
    repeats = args.repeats or (2 if args.quick else 5)
    min_time = 0.2 if args.quick else 3.0
    rows_spec = [_parse_row(r) for r in args.row] if args.row else ROWS
    if args.quick:
        rows_spec = [(d, c, max(10, s // 10), e) for d, c, s, e in rows_spec]

    env = environment(args.device)
    env["torch_num_threads_default"] = threads_default
    env["threads_set_by_option"] = bool(args.threads)
    print(
        f"# torch {env['torch']} on {env['device']} ({env['cpu']}, {env['cpu_count']} CPUs), "
        f"num_threads={env['torch_num_threads']}; versions {env['versions']}",
        flush=True,
    )
    busy = _busy_warning(env)
    if busy:
        print(f"# warning: {busy}", flush=True)
    rows = []
    t_start = time.perf_counter()
    for dim, n_chains, n_steps, kind in rows_spec:
        torch.manual_seed(SEED)
        ref = make_energy(kind, dim)
        impls, skipped = build_impls(selected, ref, args.device)
        row = bench_row(
            impls, skipped, dim, n_chains, n_steps, repeats, args.device, kind, min_time
        )
        rows.append(row)
        print(format_text([row]).split("\n", 1)[1] if rows[1:] else format_text([row]))
        sys.stdout.flush()
    env["load_average_end"] = os.getloadavg()
    env["wall_s"] = time.perf_counter() - t_start
    how = {k: HOW_OURS[k] for k in HOW_OURS if k in selected}
    how.update({k: _peers.HOW[k] for k in _peers.HOW if k in selected})
    for name, note in _setup_notes().items():
        if name in how and not note.startswith("failed"):
            how[name] += f" [set-up: {note}]"
    print(f"# total {env['wall_s']:.0f} s; load average at end {env['load_average_end']}")
    if args.markdown:
        print()
        print(format_markdown(env, rows, how))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"environment": env, "how": how, "rows": rows}
        path.write_text(json.dumps(payload, indent=2))
        print(f"# wrote {path}")


if __name__ == "__main__":
    main()
