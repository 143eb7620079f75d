"""Command line: ``ebmlab COMMAND``, COMMAND one of train, resume, sample, evaluate,
score, detect, denoise, logz, ising, config, info.

Thin: parse arguments, call library functions, write results. User errors
print one line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, EbmlabError, TrainingInterruptedError

EXIT_USER_ERROR = 2
#: ``ebmlab train --objective`` choices: the keys of ``ebmlab.objectives.OBJECTIVES``
#: (listed here so that building the parser does not import torch).
OBJECTIVE_NAMES = ("cd", "pcd", "short-run", "sm", "dsm", "ssm", "nce", "jem", "ncsm")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2 (argparse's own convention)
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message}\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (overrides config)")
    p.add_argument("--device", default=None, help="torch device: cpu (default), cuda, cuda:1")
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="floating-point precision (overrides config)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _nproc(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="processes for DistributedDataParallel training (launched with torchrun)",
    )


def _launch(nproc: int, argv: Sequence[str]) -> int:
    """Re-run this command under ``torch.distributed.run`` with ``nproc`` ranks."""
    import os
    import subprocess

    rest: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        rest.append(a)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "ebmlab",
        *rest,
    ]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(cmd, env=env)


def _under_torchrun() -> bool:
    import os

    return "WORLD_SIZE" in os.environ


def build_parser() -> argparse.ArgumentParser:
    """The ``ebmlab`` argument parser."""
    parser = _Parser(prog="ebmlab", description="Energy-based models: fit, sample, evaluate.")
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"ebmlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train from a YAML config (default: built-in demo)")
    p.add_argument("config", nargs="?", help="YAML config; omitted: eight Gaussians by PCD")
    p.add_argument(
        "--data",
        help=".npy/.npz/.csv of rows, or images: .npy/.npz (N,H,W), (N,C,H,W), (N,H,W,C), a "
        "folder of PNG/JPEG, an MNIST IDX file, builtin:digits or builtin:mnist5k",
    )
    p.add_argument("--steps", type=int, help="parameter updates (overrides config)")
    p.add_argument(
        "--objective",
        choices=OBJECTIVE_NAMES,
        help="training objective (overrides config): contrastive divergence (cd, pcd, "
        "short-run), score matching (sm, dsm, ssm), noise-contrastive estimation (nce), or "
        "jem: a classifier that is also an energy model, on labelled images (npz key y, "
        "class subfolders, builtin:digits, builtin:mnist5k); the default for a labelled "
        "image file or folder given by --data; "
        "noise-conditional score matching of image runs (ncsm: the model for denoise)",
    )
    p.add_argument("--out", help="run directory (default runs/NAME)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log metrics, figures and the config for TensorBoard (into the run directory)",
    )
    _nproc(p)
    _common(p)

    p = sub.add_parser("resume", help="continue a run from its last checkpoint")
    p.add_argument("run", help="run directory")
    p.add_argument("--steps", type=int, help="extend to this many updates in all")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    _nproc(p)
    _common(p)

    p = sub.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run", help="run directory")
    p.add_argument("-n", "--n", type=int, default=1000, help="number of samples")
    p.add_argument(
        "-o", "--out", required=True, help="output .npy file (image runs: or a .png grid)"
    )
    p.add_argument("--steps", type=int, help="MCMC steps (default: the run's sample_steps)")
    p.add_argument(
        "--method",
        choices=["langevin", "mala", "hmc", "chees", "pt"],
        help="sampler (default: the run's sampler.method)",
    )
    p.add_argument("--step-size", type=float, help="fixed step size (default: adapted)")
    p.add_argument("--warmup", type=int, help="warm-up steps adapting step size and mass")
    p.add_argument("--target-accept", type=float, help="target acceptance of the warm-up")
    p.add_argument("--no-adapt-mass", action="store_true", help="keep a unit mass")
    p.add_argument("--replicas", type=int, help="temperatures of --method pt (default 8)")
    p.add_argument("--beta-min", type=float, help="lowest inverse temperature of pt")
    p.add_argument(
        "--label",
        type=int,
        help="JEM runs: sample this class, p(x | y), from noise (a value of the data's labels)",
    )
    _common(p)

    p = sub.add_parser("evaluate", help="evaluate a trained run, rewrite report.json")
    p.add_argument("run", help="run directory")
    _common(p)

    p = sub.add_parser("score", help="energy of each row of a data file")
    p.add_argument("run", help="run directory")
    p.add_argument("file", help=".npy/.npz/.csv of rows")
    p.add_argument("-o", "--out", help="output .csv (default: stdout), one energy per line")
    _common(p)

    p = sub.add_parser(
        "detect", help="anomaly scores (energy; higher = more anomalous) and +1/-1 labels"
    )
    p.add_argument("run", help="run directory")
    p.add_argument("file", help=".npy/.npz/.csv of rows")
    p.add_argument("-o", "--out", help="output .csv (default: stdout): energy,label per row")
    p.add_argument(
        "--contamination",
        type=float,
        default=0.05,
        help="fraction of training rows above the energy threshold (default 0.05)",
    )
    _common(p)

    p = sub.add_parser("denoise", help="restore noisy or partly missing rows with a trained run")
    p.add_argument("run", help="run directory")
    p.add_argument("file", help=".npy/.npz/.csv of corrupted rows (NaN in .npy = missing)")
    p.add_argument("-o", "--out", required=True, help="output .npy file")
    p.add_argument(
        "--noise",
        choices=["gaussian", "mask"],
        help="noise model (default: gaussian when --noise-std is given, else mask)",
    )
    p.add_argument("--noise-std", type=float, help="Gaussian noise standard deviation")
    p.add_argument("--mask", help=".npy of the same shape, nonzero where an entry is observed")
    p.add_argument(
        "--method",
        choices=["auto", "descent", "langevin", "tweedie", "exemplar"],
        default="auto",
        help="descent: MAP by gradient descent; langevin: posterior mean of Langevin chains; "
        "tweedie: Tweedie's posterior mean (image runs trained with --objective ncsm); "
        "exemplar (ncsm image runs): missing pixels from the run's TRAINING IMAGES nearest "
        "on the observed pixels, weighted by the energy and averaged (importance sampling "
        "over a candidate set); auto (default): on ncsm runs exemplar for images with a "
        "large hole (a missing square a quarter of the side), langevin for the others; "
        "descent on other runs",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=200,
        help="descent or Langevin steps (ncsm runs: noise levels of the annealed inpainting)",
    )
    p.add_argument(
        "--step-size",
        type=float,
        help="first step size (default: noise-std^2 / 4 for Gaussian noise; for missing "
        "entries the run's sampler.step_size, 0.01 when that is adapted)",
    )
    p.add_argument("--chains", type=int, default=16, help="Langevin chains per row")
    for flag, kind, text in (
        ("--candidates", int, "training images per image (default 20)"),
        ("--temperature", float, "of the energy weights (default 20; inf: no energy)"),
        ("--energy-sigma", float, "noise level of the energy (default 0.4)"),
        ("--distance-scale", float, "kernel scale on observed pixels, [-1, 1] (default 3)"),
    ):
        p.add_argument(flag, type=kind, help=f"exemplar: {text}")
    _common(p)

    p = sub.add_parser("logz", help="log partition function of a trained run, with its error")
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--method",
        choices=["auto", "exact", "quadrature", "ais", "bdmc"],
        default="auto",
        help="auto: quadrature in 1-3 dimensions, AIS above",
    )
    p.add_argument("--n-chains", type=int, help="AIS chains (default: evaluate.ais_chains)")
    p.add_argument(
        "--n-temperatures", type=int, help="AIS temperatures (default: evaluate.ais_temperatures)"
    )
    p.add_argument("--json", action="store_true", help="print the estimate as one JSON object")
    _common(p)

    p = sub.add_parser("ising", help="simulate the periodic Ising model and print its observables")
    p.add_argument("--size", type=int, required=True, help="lattice side L")
    p.add_argument("--temperature", type=float, required=True, help="temperature T (J = 1)")
    p.add_argument("--sweeps", type=int, required=True, help="recorded sweeps per chain")
    p.add_argument(
        "--method",
        choices=["gibbs", "metropolis", "wolff", "swendsen-wang"],
        default="gibbs",
        help="update: checkerboard heat bath, Metropolis, or a cluster move",
    )
    p.add_argument("--dim", type=int, choices=[2, 3], default=2, help="lattice dimension")
    p.add_argument("--chains", type=int, default=8, help="independent chains (default 8)")
    p.add_argument("--burn-in", type=int, help="discarded sweeps (default sweeps / 5)")
    p.add_argument("--field", type=float, default=0.0, help="uniform field h (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    p.add_argument("--device", default=None, help="torch device: cpu (default), cuda")

    p = sub.add_parser(
        "config", help="print a complete training config (YAML) that ebmlab train accepts"
    )
    p.add_argument(
        "config", nargs="?", help="YAML config to validate and print with every default filled in"
    )
    p.add_argument(
        "--defaults", action="store_true", help="print the default config (the built-in demo)"
    )
    p.add_argument("-o", "--out", help="write the YAML to this file instead of stdout")

    sub.add_parser("info", help="print versions, devices and BLAS, for bug reports")
    return parser


def _summary(report: dict[str, Any]) -> str:
    def f(key: str) -> str:
        v = report.get(key)
        return "n/a" if v is None else f"{v:.4f}"

    if "test_accuracy" in report:  # JEM runs
        return (
            f"test accuracy {f('test_accuracy')} | ECE {f('test_ece')} | NLL {f('test_nll')} | "
            f"OOD AUROC noise {f('ood_auroc_noise')} / inverted {f('ood_auroc_inverted')} | "
            f"trained {f('train_seconds')} s"
        )
    if "fid" in report:  # image runs
        return (
            f"FID {f('fid')} (buffer) / {f('fid_fresh')} (fresh chains) | floor "
            f"{f('fid_floor')} (held-out images; classifier features, not Inception) | "
            f"trained {f('train_seconds')} s"
        )
    return (
        f"held-out NLL {f('nll_heldout')} nats | entropy floor {f('entropy_floor')} | "
        f"gap {f('nll_gap')} | log Z {f('log_z')} ({report.get('log_z_method')}) | "
        f"MMD {f('mmd')} | trained {f('train_seconds')} s"
    )


def _train(args: argparse.Namespace) -> int:
    from .config import RunConfig, load_config
    from .runs import train_run

    cfg = load_config(args.config) if args.config else RunConfig()
    if args.data and not args.config:
        from .data.images import is_image_source

        if is_image_source(args.data):  # image hook: ConvEnergy + the image recipe
            from .data.images import has_labels
            from .runs.images import image_run_config
            from .runs.jem import jem_run_config

            jem = args.objective == "jem"
            if args.objective is None and not args.data.startswith("builtin:"):
                # A user's labelled images train JEM: a classifier that is also the
                # energy model (samples, scores); the built-in sets stay generative
                # unless asked, as the README's walk-through shows.
                jem = has_labels(args.data)
                if jem and not args.quiet and not _under_torchrun():
                    print(
                        f"{args.data}: labelled images, training JEM (classifier and energy);"
                        " --objective pcd trains the energy alone"
                    )
            if jem:
                args.objective = "jem"
            cfg = (
                jem_run_config(args.data)
                if jem
                else image_run_config(args.data, objective=args.objective or "pcd")
            )
    if args.data and cfg.data.file != args.data:
        cfg.data.file = args.data
        cfg.data.toy = None
        if not args.config:
            cfg.name = Path(args.data).stem
    if args.steps is not None:
        cfg.train.steps = args.steps
    if args.objective is not None:
        cfg.objective.name = args.objective
    if args.tensorboard:
        cfg.train.tensorboard = True
    _override(cfg, args)
    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if args.nproc > 1 and not _under_torchrun():
        from .runs import load_data

        load_data(cfg)  # refuse bad data here, with one line, before spawning
        return _launch(args.nproc, args.argv)
    out = Path(args.out) if args.out else Path("runs") / cfg.name
    report = train_run(cfg, out, progress=not args.quiet, evaluate=not args.no_eval)
    if _is_main():
        print(f"run written to {out}")
    if report:
        print(_summary(report))
    return 0


def _is_main() -> bool:
    from .train.distributed import is_main_process

    return is_main_process()


def _override(cfg: Any, args: argparse.Namespace) -> None:
    from .errors import ConfigError

    try:
        if args.seed is not None:
            cfg.seed = args.seed
        if args.device is not None:
            cfg.device = args.device
        if args.dtype is not None:
            cfg.dtype = args.dtype
    except ValueError as exc:
        raise ConfigError(f"bad command-line override: {exc}") from None


def _resume(args: argparse.Namespace) -> int:
    from .runs import resume_run

    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if args.nproc > 1 and not _under_torchrun():
        return _launch(args.nproc, args.argv)
    report = resume_run(
        args.run, steps=args.steps, progress=not args.quiet, evaluate=not args.no_eval
    )
    if _is_main():
        print(f"run {args.run} resumed")
    if report:
        print(_summary(report))
    return 0


def _sample(args: argparse.Namespace) -> int:
    import logging

    import numpy as np

    from .runs import sample_run
    from .train import atomic_write_bytes

    names = {
        "method": "method",
        "step_size": "step_size",
        "warmup": "warmup",
        "target_accept": "target_accept",
        "replicas": "n_replicas",
        "beta_min": "beta_min",
    }
    options = {k: getattr(args, a) for a, k in names.items() if getattr(args, a) is not None}
    if args.no_adapt_mass:
        options["adapt_mass"] = False
    log = logging.getLogger("ebmlab.samplers")  # print the adapted parameters
    handler = logging.StreamHandler(sys.stderr)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        x = sample_run(
            args.run,
            args.n,
            steps=args.steps,
            seed=args.seed or 0,
            device=args.device,
            progress=not args.quiet,
            options=options,
            label=args.label,
        )
    finally:
        log.removeHandler(handler)
    import io

    from .config import load_config

    cfg = load_config(Path(args.run) / "config.yaml")
    if cfg.data.image is not None:  # image hook: a PNG grid or an array in the data's range
        from .runs.images import scaling_of, write_image_samples

        print(write_image_samples(x, args.out, scaling_of(cfg)))
        return 0
    buf = io.BytesIO()
    np.save(buf, x.detach().cpu().numpy())
    atomic_write_bytes(args.out, buf.getvalue())
    print(f"{x.shape[0]} samples of shape {tuple(x.shape[1:])} written to {args.out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .runs import evaluate_run, load_run

    report = evaluate_run(
        args.run, load_run(args.run, device=args.device), progress=not args.quiet
    )
    print(json.dumps({k: v for k, v in report.items() if k != "versions"}, indent=2))
    return 0


def _emit(out: str | None, blocks: Any) -> None:
    """Text blocks to ``out`` (atomically) or to stdout, one block at a time."""
    from .train import atomic_write_chunks

    if out:
        atomic_write_chunks(out, (b.encode() for b in blocks))
    else:
        for b in blocks:
            sys.stdout.write(b)


def _score(args: argparse.Namespace) -> int:  # streams: constant memory for any file size
    from .runs import iter_score_run

    n = [0]

    def blocks() -> Any:
        for e in iter_score_run(args.run, args.file, device=args.device):
            n[0] += e.numel()
            yield "".join(f"{v:.9g}\n" for v in e.tolist())

    _emit(args.out, blocks())
    if args.out:
        print(f"{n[0]} energies written to {args.out}", file=sys.stderr)
    return 0


def _denoise(args: argparse.Namespace) -> int:
    import numpy as np

    from .runs import iter_denoise_run
    from .train import atomic_save_npy_chunks

    noise = args.noise or ("gaussian" if args.noise_std is not None and not args.mask else "mask")
    chunks = iter_denoise_run(
        args.run,
        args.file,
        noise=noise,
        noise_std=args.noise_std,
        mask=args.mask,
        method=args.method,
        n_steps=args.steps,
        step_size=args.step_size,
        n_chains=args.chains,
        seed=args.seed or 0,
        device=args.device,
        exemplar={
            key: value
            for key, value in (
                ("n_candidates", args.candidates),
                ("temperature", args.temperature),
                ("energy_sigma", args.energy_sigma),
                ("distance_scale", args.distance_scale),
            )
            if value is not None
        },
    )
    from .config import load_config

    cfg = load_config(Path(args.run) / "config.yaml")
    if cfg.data.image is not None:  # images: back to the data's range, dtype, layout
        import torch

        from .runs.images import scaling_of, write_image_samples

        x = torch.cat(list(chunks))
        shape = (x.shape[0], *cfg.data.image.shape)
        print(write_image_samples(x.reshape(shape), args.out, scaling_of(cfg)))
        return 0
    n = atomic_save_npy_chunks(args.out, (c.numpy() for c in chunks), dtype=np.float64)
    print(f"{n} rows restored ({noise}, {args.method}) written to {args.out}")
    return 0


def _detect(args: argparse.Namespace) -> int:
    from .runs import iter_detect_run

    threshold, chunks = iter_detect_run(
        args.run, args.file, contamination=args.contamination, device=args.device
    )
    n, n_out = [0], [0]

    def blocks() -> Any:  # streams: constant memory for any file size
        yield "energy,label\n"
        for e, labels in chunks:
            n[0] += labels.numel()
            n_out[0] += int((labels == -1).sum())
            rows = zip(e.tolist(), labels.tolist(), strict=True)
            yield "".join(f"{v:.9g},{lab}\n" for v, lab in rows)

    _emit(args.out, blocks())
    summary = (
        f"{n_out[0]} of {n[0]} rows flagged (-1): energy > {threshold:.6g}, "
        f"the {1 - args.contamination:.3g} quantile of the training energies"
    )
    print(f"{summary}; written to {args.out}" if args.out else summary, file=sys.stderr)
    return 0


def _logz(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .runs import log_z_run

    for name in ("n_chains", "n_temperatures"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "n_chains" else 1):
            raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
    est = log_z_run(
        args.run,
        args.method,
        n_chains=args.n_chains,
        n_temperatures=args.n_temperatures,
        seed=args.seed,
        device=args.device,
    )
    print(json.dumps(est.to_dict()) if args.json else str(est))
    return 0


def _ising(args: argparse.Namespace) -> int:
    from .errors import ConfigError
    from .lattice import run_ising

    try:
        out = run_ising(
            args.size,
            args.temperature,
            args.sweeps,
            args.method,
            dim=args.dim,
            n_chains=args.chains,
            burn_in=args.burn_in,
            field=args.field,
            seed=0 if args.seed is None else args.seed,
            device=args.device or "cpu",
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.json:
        print(json.dumps(out))
        return 0
    print(
        f"Ising {args.dim}D, L={out['size']}, T={out['temperature']:g}, {out['method']}, "
        f"{out['n_chains']} chains x {out['sweeps']} sweeps (+{out['burn_in']} burn-in), "
        f"{out['seconds']:.2f} s"
    )
    for key in ("magnetization", "energy_per_spin", "susceptibility", "specific_heat"):
        print(
            f"{key:16s} {out[key]:12.6f} +- {out[key + '_stderr']:.6f}   "
            f"(tau {out[key + '_tau']:.1f})"
        )
    return 0


def _config(args: argparse.Namespace) -> int:
    from .config import RunConfig, commented_yaml, load_config

    if args.defaults == (args.config is not None):
        raise ConfigError("give either --defaults or a config file to validate")
    cfg = RunConfig() if args.defaults else load_config(args.config)
    text = commented_yaml(cfg)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out} ({exc.strerror})") from None
    else:
        sys.stdout.write(text)
    return 0


def _info(args: argparse.Namespace) -> int:
    from ._info import show_versions

    show_versions()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ebmlab`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    handlers = {
        "train": _train,
        "resume": _resume,
        "sample": _sample,
        "evaluate": _evaluate,
        "score": _score,
        "detect": _detect,
        "denoise": _denoise,
        "logz": _logz,
        "ising": _ising,
        "config": _config,
        "info": _info,
    }
    try:
        rc = handlers[args.command](args)
    except TrainingInterruptedError as exc:
        print(f"ebmlab {args.command}: {exc}", file=sys.stderr)
        rc = 128 + exc.signum
    except EbmlabError as exc:
        print(f"ebmlab {args.command}: error: {exc}", file=sys.stderr)
        rc = EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"ebmlab {args.command}: interrupted", file=sys.stderr)
        rc = 130
    if _under_torchrun():
        _exit_rank(rc)
    return rc


def _exit_rank(rc: int) -> None:
    """End a torchrun rank at once, its work done and its files written.

    A rank that returns to the interpreter's normal exit can abort in the C++ static
    destructors of torch.distributed ("terminate called without an active exception",
    SIGABRT: seen about one run in five on 2 gloo ranks), and torchrun then fails the whole
    job. So leave the process group, flush the streams and skip the interpreter teardown.
    """
    import os

    from .train.distributed import shutdown

    shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
