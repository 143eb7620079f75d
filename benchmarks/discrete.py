"""Discrete models: Ising spin updates per second, L = 64 physics, RBM on digits.

Sections (``--section``, repeatable; default ``throughput`` and ``rbm``):

``throughput``
    Spin updates per second of checkerboard heat-bath sweeps of the 2D Ising
    model (periodic, J = 1, T = T_c) at L = 64, 256, 1024 with one chain and
    with 16 chains, three implementations in one process:

    - ``ebmlab``: ``CheckerboardGibbs(sweeps_per_step=n).step(state, model)``,
      the public sampler (packed bytes, exact thresholds, threads per size);
    - ``numpy``: a plain vectorized NumPy checkerboard sampler written here
      (int8 spins, ``np.roll`` neighbour sums over the whole lattice, a
      5-entry table of ``P(up)``, ``rng.random(float32)``, ``np.where`` on the
      colour mask) -- the textbook vectorized version;
    - ``thrml``: the PyPI package (JAX), driven through its public API:
      ``IsingEBM`` on the periodic square lattice (one ``SpinNode`` per
      site, the two bond directions as edges, zero biases, unit weights,
      ``beta``), ``IsingSamplingProgram`` with the two checkerboard colours as
      free blocks, and ``sample_states`` with
      ``SamplingSchedule(n_warmup=n, n_samples=1, steps_per_sample=1)``, under
      ``jax.jit`` and, for 16 chains, ``jax.vmap`` over keys and initial
      states (as thrml's own ``estimate_kl_grad`` does). Compilation is done
      in the warm-up run, outside the timings.

    Each row: one warm-up run per implementation (which also sets its number
    of sweeps so that a run takes about ``--seconds``), then ``--rounds``
    rounds in which every implementation runs once, the order rotating; the
    table gives median wall-clock rates, the CPU-time rate of this process,
    and the energy per spin of the final configurations (all three sample
    the same model; at T_c it approaches -sqrt(2) as chains equilibrate).

``physics`` (about 10 minutes)
    The L = 64 checks at full precision: energy and |m| per spin at
    T = 1.5, 2.0, 2.1 against Onsager (and the exact finite-lattice energy of
    Kaufman), |m| at L = 128 for the finite-size effect, and the peak of the
    susceptibility ``chi = beta N (<m^2> - <|m|>^2)`` at L = 64 from
    Swendsen-Wang runs at 7 temperatures (one batch, one beta per chain) with
    single-histogram reweighting onto a fine grid, jackknife errors over
    chain blocks; the specific-heat peak of the same runs against Kaufman's
    exact one validates the procedure.

``rbm``
    The RBM table of ``benchmarks/rbm_digits.py`` (its ``run(markdown=...)``),
    when that file exists.

The peers live in ``.bench-venv`` (repository root, git-ignored), never in
ebmlab's dependencies: unless ``--no-venv`` is given, the script makes sure it
holds ``torch==2.13.0`` (installed first; the pin is repeated on every later
install), ``thrml`` and an editable ebmlab, then re-executes itself there.

Usage::

    python3 benchmarks/discrete.py                         # throughput + RBM
    python3 benchmarks/discrete.py --section throughput --markdown
    python3 benchmarks/discrete.py --section physics --markdown
    python3 benchmarks/discrete.py --quick                 # smoke run
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv"
BENCH_PY = VENV / "bin" / "python"
TORCH_SPEC = "torch==2.13.0"
T_C = 2.0 / math.log1p(math.sqrt(2.0))
IMPLS = ("ebmlab", "numpy", "thrml")


# --------------------------------------------------------------------------- venv
def _in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def _pip(*args: str) -> None:
    cmd = [str(BENCH_PY), "-m", "pip", "install", "--disable-pip-version-check", "-q", *args]
    print("[setup]", " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True)


def setup_venv() -> None:
    """Create or complete ``.bench-venv`` (torch first, then thrml, then ebmlab)."""
    if not BENCH_PY.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    probe = subprocess.run(
        [
            str(BENCH_PY),
            "-c",
            "import importlib.util as u;"
            "print(*[bool(u.find_spec(m)) for m in ('torch', 'thrml', 'ebmlab', 'sklearn')])",
        ],
        capture_output=True,
        text=True,
    )
    have = dict(zip(("torch", "thrml", "ebmlab", "sklearn"), probe.stdout.split(), strict=False))
    if have.get("torch") != "True":
        _pip(TORCH_SPEC)
    if have.get("thrml") != "True":
        try:
            _pip("thrml", TORCH_SPEC)
        except subprocess.CalledProcessError:
            print("[setup] thrml failed to install; it will be reported as not run", flush=True)
    if have.get("ebmlab") != "True" or have.get("sklearn") != "True":
        _pip("-e", str(REPO), TORCH_SPEC)


# --------------------------------------------------------------------------- implementations
DEVICE = "cpu"  # ebmlab's device (--device); thrml and NumPy run on the CPU


class EbmlabImpl:
    name = "ebmlab"

    def __init__(self, size: int, n_chains: int, beta: float, seed: int) -> None:
        import torch

        from ebmlab.lattice import IsingModel
        from ebmlab.samplers import CheckerboardGibbs

        self.torch = torch
        self.device = torch.device(DEVICE)
        self.model = IsingModel.lattice(size, beta=beta).to(self.device)
        self.sampler_cls = CheckerboardGibbs
        g = torch.Generator(device=self.device).manual_seed(seed)
        x = torch.randint(0, 2, (n_chains, size, size), generator=g, device=self.device)
        self.state = CheckerboardGibbs().init(x.float() * 2 - 1, self.model)
        self.generator = g

    def run(self, n_sweeps: int) -> None:
        sampler = self.sampler_cls(sweeps_per_step=n_sweeps)
        self.state, _ = sampler.step(self.state, self.model, generator=self.generator)
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def energy_per_spin(self) -> float:
        x = self.state.x
        return float((self.model.hamiltonian(x) / x[0].numel()).mean())


class NumpyImpl:
    """Plain vectorized NumPy checkerboard heat bath (the textbook version)."""

    name = "numpy"

    def __init__(self, size: int, n_chains: int, beta: float, seed: int) -> None:
        import numpy as np

        self.np = np
        self.rng = np.random.default_rng(seed)
        self.s = np.where(self.rng.random((n_chains, size, size)) < 0.5, 1, -1).astype(np.int8)
        i, j = np.indices((size, size))
        black = (i + j) % 2 == 0
        self.masks = (black, ~black)
        # P(up | neighbour sum in -4, -2, 0, 2, 4)
        self.p_up = (1.0 / (1.0 + np.exp(-2.0 * beta * np.arange(-4, 5, 2)))).astype(np.float32)

    def run(self, n_sweeps: int) -> None:
        np = self.np
        s = self.s
        for _ in range(n_sweeps):
            for mask in self.masks:
                nb = np.roll(s, 1, 1) + np.roll(s, -1, 1) + np.roll(s, 1, 2) + np.roll(s, -1, 2)
                p = self.p_up[(nb + 4) // 2]
                up = self.rng.random(s.shape, dtype=np.float32) < p
                s = np.where(mask, np.where(up, 1, -1).astype(np.int8), s)
        self.s = s

    def energy_per_spin(self) -> float:
        np = self.np
        s = self.s.astype(np.float64)
        bonds = s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)
        return float(-bonds.sum((1, 2)).mean() / s[0].size)


class ThrmlImpl:
    """thrml's block Gibbs sampling of its IsingEBM on the periodic square lattice."""

    name = "thrml"
    _built: typing.ClassVar[dict[tuple[int, float], Any]] = {}

    def __init__(self, size: int, n_chains: int, beta: float, seed: int) -> None:
        import jax
        import jax.numpy as jnp
        import thrml
        from thrml.models import IsingEBM, IsingSamplingProgram, hinton_init

        self.jax, self.jnp, self.thrml = jax, jnp, thrml
        key = (size, beta)
        if key not in self._built:
            t0 = time.perf_counter()
            nodes = [thrml.SpinNode() for _ in range(size * size)]
            edges = []
            for i in range(size):
                for j in range(size):
                    a = nodes[i * size + j]
                    edges.append((a, nodes[i * size + (j + 1) % size]))
                    edges.append((a, nodes[((i + 1) % size) * size + j]))
            model = IsingEBM(
                nodes, edges, jnp.zeros(size * size), jnp.ones(len(edges)), jnp.array(beta)
            )
            colours = [
                thrml.Block(
                    [
                        nodes[i * size + j]
                        for i in range(size)
                        for j in range(size)
                        if (i + j) % 2 == c
                    ]
                )
                for c in (0, 1)
            ]
            program = IsingSamplingProgram(model, colours, clamped_blocks=[])
            self._built[key] = (model, colours, program, time.perf_counter() - t0)
        self.model, self.blocks, self.program, self.build_seconds = self._built[key]
        self.size, self.n_chains = size, n_chains
        k = jax.random.key(seed)
        self.key, k_init = jax.random.split(k)
        self.state = hinton_init(k_init, self.model, self.blocks, (n_chains,))
        self._fns: dict[int, Any] = {}
        self.compile_seconds = 0.0

    def _fn(self, n_sweeps: int) -> Any:
        if n_sweeps not in self._fns:
            thrml, jax = self.thrml, self.jax
            schedule = thrml.SamplingSchedule(n_warmup=n_sweeps, n_samples=1, steps_per_sample=1)
            program, blocks = self.program, self.blocks

            def one(key: Any, *state: Any) -> Any:
                return thrml.sample_states(key, program, schedule, list(state), [], blocks)

            self._fns[n_sweeps] = jax.jit(jax.vmap(one))
        return self._fns[n_sweeps]

    def run(self, n_sweeps: int) -> None:
        jax = self.jax
        fn = self._fn(n_sweeps)
        self.key, k = jax.random.split(self.key)
        keys = jax.random.split(k, self.n_chains)
        out = fn(keys, *self.state)
        # out: one (n_chains, 1, n_block) array per colour; the last sample is the new state.
        self.state = [o[:, -1] for o in out]
        jax.block_until_ready(self.state)

    def energy_per_spin(self) -> float:
        import numpy as np

        size = self.size
        s = np.zeros((self.n_chains, size * size))
        for c, _block in enumerate(self.blocks):
            idx = [i * size + j for i in range(size) for j in range(size) if (i + j) % 2 == c]
            s[:, idx] = np.asarray(self.state[c], dtype=np.float64) * 2 - 1
        s = s.reshape(self.n_chains, size, size)
        bonds = s * np.roll(s, -1, 1) + s * np.roll(s, -1, 2)
        return float(-bonds.sum((1, 2)).mean() / (size * size))


MAKERS = {"ebmlab": EbmlabImpl, "numpy": NumpyImpl, "thrml": ThrmlImpl}


def _timed(impl: Any, n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    impl.run(n)
    return time.perf_counter() - w0, time.process_time() - c0


def throughput(
    sizes: list[int], chains: list[int], impls: list[str], rounds: int, seconds: float
) -> list[dict[str, Any]]:
    beta = 1.0 / T_C
    rows = []
    for size in sizes:
        for n_chains in chains:
            spins = size * size * n_chains
            live: dict[str, Any] = {}
            sweeps: dict[str, int] = {}
            notes: dict[str, str] = {}
            for name in impls:
                try:
                    t0 = time.perf_counter()
                    impl = MAKERS[name](size, n_chains, beta, seed=0)
                    setup = time.perf_counter() - t0
                    # Warm-up / calibration: a short run (compiles thrml), then size the runs.
                    # Each new sweep count compiles a new thrml program: time a second call.
                    n = 2
                    _timed(impl, n)
                    wall, _ = _timed(impl, n)
                    while wall < 0.05 and n < 1 << 20:
                        n *= 4
                        _timed(impl, n)
                        wall, _ = _timed(impl, n)
                    sweeps[name] = max(2, int(n * seconds / max(wall, 1e-9)))
                    _timed(impl, sweeps[name])  # compile / warm at the final size
                    live[name] = impl
                    notes[name] = f"setup {setup:.1f} s"
                except Exception as exc:
                    notes[name] = f"not run: {type(exc).__name__}: {exc}"[:200]
                    print(f"[{name}] L={size} C={n_chains}: {notes[name]}", flush=True)
            walls: dict[str, list[float]] = {k: [] for k in live}
            cpus: dict[str, list[float]] = {k: [] for k in live}
            order = list(live)
            for r in range(rounds):
                for name in order[r % len(order) :] + order[: r % len(order)]:
                    wall, cpu = _timed(live[name], sweeps[name])
                    walls[name].append(wall)
                    cpus[name].append(cpu)
            for name in impls:
                row: dict[str, Any] = {"L": size, "chains": n_chains, "impl": name}
                if name in live:
                    updates = sweeps[name] * spins
                    row.update(
                        sweeps=sweeps[name],
                        rate=updates / statistics.median(walls[name]),
                        rate_cpu=updates / statistics.median(cpus[name]),
                        energy_per_spin=live[name].energy_per_spin(),
                        note=notes[name],
                    )
                else:
                    row.update(rate=None, note=notes.get(name, "not run"))
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def throughput_table(rows: list[dict[str, Any]], markdown: bool) -> str:
    lines = []
    head = (
        "| L | chains | implementation | sweeps/run | updates/s (wall, median) | "
        "updates/s (CPU time) | ebmlab / impl (wall) | e per spin at end |"
    )
    lines.append(head if markdown else head.replace("|", " "))
    if markdown:
        lines.append("|---:|---:|---|---:|---:|---:|---:|---:|")
    ref = {(r["L"], r["chains"]): r["rate"] for r in rows if r["impl"] == "ebmlab"}
    for r in rows:
        if r.get("rate") is None:
            cells = [r["L"], r["chains"], r["impl"], "-", r["note"], "-", "-", "-"]
        else:
            base = ref.get((r["L"], r["chains"]))
            ratio = f"{base / r['rate']:.2f}x" if base else "-"
            cells = [
                r["L"],
                r["chains"],
                r["impl"],
                r["sweeps"],
                f"{r['rate']:.3g}",
                f"{r['rate_cpu']:.3g}",
                ratio,
                f"{r['energy_per_spin']:.4f}",
            ]
        text = " | ".join(str(c) for c in cells)
        lines.append(f"| {text} |" if markdown else text)
    return "\n".join(lines)


# --------------------------------------------------------------------------- physics
def physics(quick: bool) -> dict[str, Any]:
    import numpy as np
    import torch

    from ebmlab.lattice import (
        IsingModel,
        estimate_observables,
        kaufman_observables,
        onsager_energy,
        onsager_magnetization,
        reweight_observables,
        simulate,
    )
    from ebmlab.samplers import CheckerboardGibbs, SwendsenWang

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    out: dict[str, Any] = {"onsager": [], "chi": {}}
    # (a) Energy and |m| at L = 64 (and |m| at L = 128 for the finite-size effect).
    n_rec = 100 if quick else 1000
    for size, temps in ((64, (1.5, 2.0, 2.1)), (128, (2.1,))):
        for t in temps:
            model = IsingModel.lattice(size, beta=1.0 / t)
            chains = 64 if size == 64 else 32
            run = simulate(
                model,
                CheckerboardGibbs(sweeps_per_step=4),
                torch.ones(chains, size, size),
                n_rec,
                burn_in=50,
                generator=g,
            )
            obs = estimate_observables(run.magnetization, run.energy_per_spin, 1 / t, size**2)
            row = {
                "L": size,
                "T": t,
                "sweeps": 4 * n_rec,
                "chains": chains,
                "m": obs.magnetization.value,
                "m_stderr": obs.magnetization.stderr,
                "m_onsager": onsager_magnetization(t),
                "e": obs.energy_per_spin.value,
                "e_stderr": obs.energy_per_spin.stderr,
                "e_onsager": onsager_energy(t),
                "e_kaufman": kaufman_observables(size, t)["energy_per_spin"],
                "seconds": run.seconds,
            }
            out["onsager"].append(row)
            print(json.dumps(row), flush=True)
    # (b) Susceptibility peak at L = 64: SW at 7 temperatures in one batch.
    size, per_t = 64, (8 if quick else 32)
    n_steps = 100 if quick else 1000
    temps0 = np.round(np.arange(2.27, 2.331, 0.01), 3)
    betas = torch.tensor(np.repeat(1.0 / temps0, per_t), dtype=torch.float32)
    model = IsingModel.lattice(size, beta=betas)
    run = simulate(
        model, SwendsenWang(), torch.ones(len(betas), size, size), n_steps, burn_in=50, generator=g
    )
    m_all, e_all = run.magnetization, run.energy_per_spin
    grid = np.round(np.arange(2.265, 2.3351, 0.0025), 4)
    n_blocks = 8

    def curves(exclude: int | None) -> tuple[np.ndarray, np.ndarray]:
        chi, heat = [], []
        for t in grid:
            k = int(np.argmin(np.abs(temps0 - t)))
            cols = np.arange(k * per_t, (k + 1) * per_t)
            if exclude is not None:
                cols = np.array([c for j, c in enumerate(cols) if j % n_blocks != exclude])
            o = reweight_observables(
                m_all[:, cols], e_all[:, cols], 1.0 / temps0[k], 1.0 / t, size**2
            )
            chi.append(o.susceptibility.value)
            heat.append(o.specific_heat.value)
        return np.asarray(chi), np.asarray(heat)

    def peak(y: np.ndarray) -> float:
        i = int(np.argmax(y))
        lo, hi = max(0, i - 4), min(len(grid), i + 5)
        a, b, _ = np.polyfit(grid[lo:hi], y[lo:hi], 2)
        return float(-b / (2 * a)) if a < 0 else float(grid[i])

    chi, heat = curves(None)
    t_chi, t_heat = peak(chi), peak(heat)
    jk_chi, jk_heat = [], []
    for b in range(n_blocks):
        c_b, h_b = curves(b)
        jk_chi.append(peak(c_b))
        jk_heat.append(peak(h_b))

    def jk_err(v: list[float]) -> float:
        a = np.asarray(v)
        return float(math.sqrt((len(a) - 1) / len(a) * ((a - a.mean()) ** 2).sum()))

    exact_heat = np.asarray([kaufman_observables(size, t)["specific_heat"] for t in grid])
    out["chi"] = {
        "L": size,
        "temperatures": temps0.tolist(),
        "chains_per_temperature": per_t,
        "sw_steps": n_steps,
        "seconds": run.seconds,
        "chi_peak_T": t_chi,
        "chi_peak_T_stderr": jk_err(jk_chi),
        "chi_peak_value": float(chi.max()),
        "heat_peak_T": t_heat,
        "heat_peak_T_stderr": jk_err(jk_heat),
        "heat_peak_T_exact": peak(exact_heat),
        "T_c": T_C,
        "grid": grid.tolist(),
        "chi": chi.tolist(),
        "heat": heat.tolist(),
    }
    print(json.dumps({k: v for k, v in out["chi"].items() if k not in ("grid", "chi", "heat")}))
    return out


def physics_report(res: dict[str, Any], markdown: bool) -> str:
    lines = [
        "| L | T | sweeps x chains | mean abs(m) | Onsager M | diff | e per spin | Onsager u "
        "| diff |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["onsager"]:
        lines.append(
            f"| {r['L']} | {r['T']} | {r['sweeps']} x {r['chains']} | "
            f"{r['m']:.5f} ± {r['m_stderr']:.5f} | {r['m_onsager']:.5f} | "
            f"{r['m'] - r['m_onsager']:+.5f} | {r['e']:.5f} ± {r['e_stderr']:.5f} | "
            f"{r['e_onsager']:.5f} | {r['e'] - r['e_onsager']:+.5f} |"
        )
    c = res["chi"]
    lines += [
        "",
        f"Susceptibility peak at L = {c['L']}: T = {c['chi_peak_T']:.4f} ± "
        f"{c['chi_peak_T_stderr']:.4f} (T_c = {c['T_c']:.4f}, shift "
        f"{c['chi_peak_T'] - c['T_c']:+.4f}); specific-heat peak of the same runs "
        f"T = {c['heat_peak_T']:.4f} ± {c['heat_peak_T_stderr']:.4f}, exact (Kaufman) "
        f"{c['heat_peak_T_exact']:.4f}. Swendsen-Wang, {c['chains_per_temperature']} chains "
        f"at each of {len(c['temperatures'])} temperatures, {c['sw_steps']} steps, "
        f"{c['seconds']:.0f} s.",
    ]
    text = "\n".join(lines)
    return text if markdown else text.replace("|", " ")


# --------------------------------------------------------------------------- rbm
def rbm_section(markdown: bool, quick: bool) -> str:
    path = Path(__file__).with_name("rbm_digits.py")
    if not path.exists():
        return "(RBM benchmark not available: benchmarks/rbm_digits.py does not exist yet)"
    spec = importlib.util.spec_from_file_location("_rbm_digits", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["_rbm_digits"] = module
    spec.loader.exec_module(module)
    if quick:
        return str(module.run(markdown, seeds=1, sizes=(20,), ais_repeats=0, time_rounds=2))
    return str(module.run(markdown))


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--section", action="append", choices=["throughput", "physics", "rbm"], default=None
    )
    parser.add_argument("--sizes", default="64,256,1024")
    parser.add_argument("--chains", default="1,16")
    parser.add_argument("--impl", default=",".join(IMPLS), help="comma-separated subset")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="target seconds per run")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="write raw results here")
    parser.add_argument("--quick", action="store_true", help="smoke run")
    parser.add_argument("--no-venv", action="store_true", help="run in this interpreter")
    parser.add_argument("--device", default="cpu", help="torch device of ebmlab's sampler")
    args = parser.parse_args(argv)
    global DEVICE
    DEVICE = args.device
    if not args.no_venv and not _in_bench_venv():
        setup_venv()
        os.execv(str(BENCH_PY), [str(BENCH_PY), __file__, *(argv or sys.argv[1:])])
    sections = args.section or ["throughput", "rbm"]
    import torch

    torch.set_num_threads(1)  # ebmlab chooses its threads per size; numpy is single-threaded
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}, python {platform.python_version()}, "
        f"torch {torch.__version__}"
    }
    report = []
    if "throughput" in sections:
        sizes = [int(s) for s in args.sizes.split(",")]
        chains = [int(c) for c in args.chains.split(",")]
        rounds, seconds = (args.rounds, args.seconds)
        if args.quick:
            sizes, rounds, seconds = [s for s in sizes if s <= 256] or sizes[:1], 2, 0.1
        impls = [i for i in args.impl.split(",") if i]
        rows = throughput(sizes, chains, impls, rounds, seconds)
        results["throughput"] = rows
        report.append(throughput_table(rows, args.markdown))
    if "physics" in sections:
        res = physics(args.quick)
        results["physics"] = res
        report.append(physics_report(res, args.markdown))
    if "rbm" in sections:
        text = rbm_section(args.markdown, args.quick)
        results["rbm"] = text
        report.append(text)
    print()
    print(results["machine"])
    print("\n\n".join(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
