"""Scale benchmark: sampler and training throughput on CPU (1 and 2 processes)
and, when CUDA is available, on the GPU with the fraction of peak FLOP/s.

Run:  .venv/bin/python benchmarks/scale.py [--quick] [--json out.json]

Every comparison is measured in this one run, implementations interleaved in
rounds (A, B, C, A, B, C, ...) and summarized by the median, so a busy machine
slows all of them alike. Rows:

1. fast path: Langevin on the 64-D MLP energy (3 x 128 SiLU) with 10,000 chains:
   plain hand-written PyTorch loop vs ebmlab eager vs ebmlab ``compile=True``;
2. Langevin chain-steps per second versus chains and dimension (eager and
   compiled), in 1 process and split over 2 processes;
3. training updates per second of the default PCD recipe, 1 vs 2 processes
   (DistributedDataParallel, gloo), with the sampler's fast path off and on;
4. GPU (if any): chain-steps per second, CPU->GPU speed-up, and achieved
   FLOP/s of the energy-gradient evaluation as a fraction of the device's
   dense FP32/TF32 peak.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ebmlab.energies import MLPEnergy, energy_and_grad
from ebmlab.samplers import Langevin, run

HIDDEN = (128, 128, 128)
THREADS = 1  # per process; set by --threads
EPS = 0.01


def energy_for(d: int, device: str = "cpu", hidden=HIDDEN) -> MLPEnergy:
    torch.manual_seed(0)
    return MLPEnergy(d, hidden).to(device).eval()


def plain_loop(f, x, n):
    sig = (2 * EPS) ** 0.5
    for _ in range(n):
        x = x.detach().requires_grad_()
        (g,) = torch.autograd.grad(f(x).sum(), x)
        x = x - EPS * g + sig * torch.randn_like(x)
    return x


def ebmlab_loop(sampler):
    """Steady-state steps: the chains' first energy and gradient (``sampler.init``)
    are computed once, outside the timed rounds, as the plain loop's ``x`` is given.
    Every timed step then evaluates one energy gradient, in both loops."""
    states: list = []  # (f, x, state); identity checks, so a reused id() cannot mismatch

    def go(f, x, n):
        found = [s for g, y, s in states if g is f and y is x]
        if not found:
            found = [sampler.init(x, f)]
            states.append((f, x, found[0]))
        gen = torch.Generator(x.device).manual_seed(0)
        return run(sampler, f, found[0], n, generator=gen).state.x

    return go


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def interleaved(fns: dict, f, x, n_steps: int, rounds: int, device="cpu") -> dict[str, float]:
    """Median seconds per step for each implementation, measured in rounds."""
    for fn in fns.values():  # warm-up (and compile)
        fn(f, x, 2)
    sync(device)
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            fn(f, x, n_steps)
            sync(device)
            times[k].append((time.perf_counter() - t) / n_steps)
    return {k: statistics.median(v) for k, v in times.items()}


def fast_path_row(quick: bool) -> dict:
    torch.set_num_threads(THREADS)
    f = energy_for(64)
    x = torch.randn(10_000, 64)
    fns = {
        "plain": plain_loop,
        "ebmlab": ebmlab_loop(Langevin(EPS)),
        "ebmlab_compiled": ebmlab_loop(Langevin(EPS, compile=True)),
    }
    t = interleaved(fns, f, x, 5 if quick else 20, 3 if quick else 11)
    return {k: {"ms_per_step": 1e3 * v, "ratio_vs_plain": t["plain"] / v} for k, v in t.items()}


def _split_worker(r, d, n_chains, n_steps, compiled, store, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=2)
    f = energy_for(d)
    x = torch.randn(n_chains // 2, d)
    go = ebmlab_loop(Langevin(EPS, compile=compiled))
    go(f, x, 2)
    dist.barrier()
    t = time.perf_counter()
    go(f, x, n_steps)
    dist.barrier()
    if r == 0:
        Path(out).write_text(str(time.perf_counter() - t))
    dist.destroy_process_group()


def two_process_seconds(d, n_chains, n_steps, compiled) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "t")
        mp.spawn(
            _split_worker,
            args=(d, n_chains, n_steps, compiled, os.path.join(tmp, "s"), out),
            nprocs=2,
            join=True,
        )
        return float(Path(out).read_text()) / n_steps


def grid_rows(quick: bool) -> list[dict]:
    rows = []
    dims = (2, 64) if quick else (2, 16, 64, 256)
    chains = (1_000, 10_000) if quick else (256, 1_000, 10_000)
    for d in dims:
        for n in chains:
            torch.set_num_threads(THREADS)
            f = energy_for(d)
            x = torch.randn(n, d)
            steps = 10 if quick else max(10, min(200, int(2e6 / (n * (d + 256)))))
            fns = {
                "eager": ebmlab_loop(Langevin(EPS)),
                "compiled": ebmlab_loop(Langevin(EPS, compile=True)),
            }
            t = interleaved(fns, f, x, steps, 3)
            two = two_process_seconds(d, n, steps, compiled=True)
            rows.append(
                {
                    "dim": d,
                    "chains": n,
                    "eager_chain_steps_per_s": n / t["eager"],
                    "compiled_chain_steps_per_s": n / t["compiled"],
                    "two_proc_compiled_chain_steps_per_s": n / two,
                }
            )
            print(rows[-1], flush=True)
    return rows


def _train_worker(r, world, steps, store, out, fast):
    from ebmlab.config import RunConfig
    from ebmlab.runs.build import _prepare
    from ebmlab.runs.training import _train

    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r))
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=r, world_size=world)
    cfg = RunConfig()
    cfg.train.steps = steps
    cfg.train.checkpoint_every = 0
    cfg.sampler.compile = fast
    with tempfile.TemporaryDirectory() as tmp:
        run_, dev = _prepare(cfg)
        seconds = _train(run_, dev, Path(tmp), resume=False, progress=False)
    if r == 0:
        Path(out).write_text(str(seconds))
    if world > 1:
        dist.destroy_process_group()


def training_rows(quick: bool) -> list[dict]:
    steps = 100 if quick else 400
    rows = []
    for world, fast in ((1, False), (1, True), (2, False), (2, True)):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "t")
            mp.spawn(
                _train_worker,
                args=(world, steps, os.path.join(tmp, "s"), out, fast),
                nprocs=world,
                join=True,
            )
            sec = float(Path(out).read_text())
        rows.append(
            {
                "processes": world,
                "fast_path": fast,
                "updates_per_s": steps / sec,
                "recipe": "default PCD (global batch 512, 10 MALA steps)",
            }
        )
        print(rows[-1], flush=True)
    return rows


# Dense peak FP32 / TF32 (tensor cores, dense) in TFLOP/s for common GPUs.
PEAKS = {
    "H100": (67.0, 494.7),
    "H200": (67.0, 494.7),
    "A100": (19.5, 156.0),
    "L40S": (91.6, 183.0),
    "A10": (31.2, 62.5),
    "V100": (15.7, 15.7),
    "T4": (8.1, 8.1),
}


def mlp_grad_flops(d: int, hidden: tuple[int, ...], n: int) -> float:
    widths = (d, *hidden, 1)
    macs = sum(a * b for a, b in itertools.pairwise(widths))
    return 2.0 * 2.0 * macs * n  # forward + input-gradient backward, 2 FLOPs per MAC


def grad_loop(f, x, n):
    """The energy-gradient evaluation alone (ebmlab's ``energy_and_grad``), n times."""
    for _ in range(n):
        energy_and_grad(f, x)
    return x


def cpu_seconds_per_step(d: int, hidden: tuple[int, ...], n: int, steps: int) -> float:
    """ebmlab's eager Langevin step on this host's CPU with all its cores (for the speed-up)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(os.cpu_count() or 1)
    try:
        f = energy_for(d, "cpu", hidden)
        x = torch.randn(n, d)
        go = ebmlab_loop(Langevin(EPS))
        go(f, x, 1)
        t = time.perf_counter()
        go(f, x, steps)
        return (time.perf_counter() - t) / steps
    finally:
        torch.set_num_threads(threads)


def gpu_rows(quick: bool) -> list[dict]:
    if not torch.cuda.is_available():
        return []
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    rows = []
    for d, hidden, n in (
        (64, HIDDEN, 10_000),
        (64, (512, 512, 512), 100_000),
        (256, (1024, 1024, 1024), 200_000),
    ):
        f = energy_for(d, "cuda", hidden)
        x = torch.randn(n, d, device="cuda")
        fns = {
            "plain": plain_loop,
            "ebmlab": ebmlab_loop(Langevin(EPS)),
            "ebmlab_compiled": ebmlab_loop(Langevin(EPS, compile=True)),
            "grad_eval": grad_loop,
        }
        t = interleaved(fns, f, x, 20, 3 if quick else 5, device="cuda")
        flops = mlp_grad_flops(d, hidden, n)
        step = min(t["plain"], t["ebmlab"], t["ebmlab_compiled"])
        cpu = cpu_seconds_per_step(d, hidden, n, 1 if quick else 2)
        row = {
            "device": name,
            "dim": d,
            "hidden": hidden,
            "chains": n,
            **{f"{k}_ms": 1e3 * v for k, v in t.items()},
            "cpu_ebmlab_ms": 1e3 * cpu,
            "cpu_threads": os.cpu_count(),
            "speedup_vs_cpu": cpu / t["ebmlab"],
            "chain_steps_per_s": n / t["ebmlab"],
            "tflops_grad_eval": flops / t["grad_eval"] / 1e12,
            "tflops_full_step": flops / step / 1e12,
        }
        if peak:
            row["fraction_fp32_peak"] = row["tflops_grad_eval"] / peak[0]
            row["fraction_tf32_peak"] = row["tflops_grad_eval"] / peak[1]
            row["fraction_tf32_peak_full_step"] = row["tflops_full_step"] / peak[1]
        rows.append(row)
        print(row, flush=True)
        del f, x
        torch.cuda.empty_cache()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--skip", nargs="*", default=[], choices=["fast", "grid", "train", "gpu"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads
    info = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    print(info, flush=True)
    res: dict = {"info": info}
    if "fast" not in args.skip:
        res["fast_path"] = fast_path_row(args.quick)
        print("fast path (64-D MLP, 10,000 chains):", json.dumps(res["fast_path"], indent=1))
    if "grid" not in args.skip:
        res["grid"] = grid_rows(args.quick)
    if "train" not in args.skip:
        res["training"] = training_rows(args.quick)
    if "gpu" not in args.skip:
        res["gpu"] = gpu_rows(args.quick)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
