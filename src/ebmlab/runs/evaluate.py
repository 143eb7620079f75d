"""Evaluating a trained run: held-out likelihood, log Z, sample quality, figures.

:func:`evaluate_run` writes ``report.json``: the held-out negative log-likelihood
(exact by quadrature in 1-3 dimensions, through an AIS or BDMC estimate of log Z
above), the entropy floor of a toy with a known density, the MMD between samples
and held-out data, timings and versions, plus the PNG figures.
"""

from __future__ import annotations

__all__ = ["evaluate_run"]

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluation import heldout_nll, mmd
from ..partition import log_likelihood
from ..train import atomic_write_json
from ..train.loop import METRICS_NAME
from .apply import _estimate_log_z, sample_run
from .build import Run, _read_state, _tensorboard, _versions, build_energy, load_run
from .images import (
    _fresh_chains,
    _labels,
    _samples_png,
    dequantized_log_likelihood,
    scaling_of,
    write_chains_gif,
)


def evaluate_run(
    out: str | os.PathLike[str],
    run_: Run | None = None,
    *,
    train_seconds: float | None = None,
    progress: bool = False,
    plots: bool = True,
) -> dict[str, Any]:
    """Evaluate a trained run and write ``report.json`` (and figures).

    Report keys: ``nll_heldout`` (+ ``nll_heldout_stderr``), ``entropy_floor``
    (+ stderr; null without a known density), ``nll_gap``, ``log_z``,
    ``log_z_stderr``, ``log_z_method``, ``mmd``, ``train_seconds``, ``steps``,
    ``eval_seconds``. log Z is exact (quadrature) in 1-3 dimensions; above, it is
    estimated by ``evaluate.log_z_method`` (AIS or BDMC, base fitted to the training
    data) and the report adds ``log_z_lower``, ``log_z_upper``, ``log_z_ess`` and
    ``log_z_seconds``; ``nll_heldout_stderr`` then counts the examples' spread only
    (add ``log_z_stderr`` for the estimate's own error). Image runs report sample
    quality instead (:mod:`ebmlab.runs.images`), JEM runs the classifier's accuracy,
    calibration and OOD AUROCs (:func:`ebmlab.runs.jem.evaluate_jem`).
    """

    t0 = time.perf_counter()
    out_p = Path(out)
    run_ = run_ or load_run(out_p)
    cfg = run_.config
    energy = run_.energy.eval()
    ev = cfg.evaluate
    dim = energy.dim
    report: dict[str, Any] = {"name": cfg.name, "dim": dim}
    state = _read_state(out_p)
    report["steps"] = state.get("step")
    report["train_seconds"] = (
        train_seconds if train_seconds is not None else state.get("train_seconds")
    )
    if cfg.data.image is not None:  # images: samples, grids, FID/KID, 8x8 likelihood
        if run_.train_labels is not None:  # JEM: accuracy, ECE, NLL, OOD AUROCs
            from .jem import evaluate_jem

            def draw(n: int, *, seed: int, label: int) -> torch.Tensor:
                return sample_run(out_p, n, seed=seed, run_=run_, label=label, progress=progress)

            evaluate_jem(out_p, run_, report, draw, plots=plots)
        else:
            _evaluate_images(out_p, run_, report, plots=plots, progress=progress)
        report["eval_seconds"] = time.perf_counter() - t0
        report["versions"] = _versions()
        tb = _tensorboard(cfg, out_p) if plots else None
        if tb is not None:
            step = int(report["steps"] or 0)
            tb.log_figures({n: out_p / f"{n}.png" for n in ("samples", "curves")}, step)
            tb.log_report(report, step)
            tb.close()
        atomic_write_json(out_p / "report.json", report)
        return report
    # Exact NLL by quadrature for 1-3 dimensions, in float64.
    e64 = build_energy(cfg, energy.event_shape).double()
    e64.load_state_dict(energy.state_dict())
    e64 = e64.cpu().eval()
    if 1 <= dim <= 3:
        r = heldout_nll(
            e64,
            run_.test.double().reshape(-1, dim),
            run_.bounds,
            resolution=ev.quadrature_resolution,
        )
        report.update(
            nll_heldout=r.nll,
            nll_heldout_stderr=r.nll_stderr,
            log_z=r.log_z,
            log_z_stderr=r.log_z_error,
            log_z_method=r.method,
        )
    else:
        # Above 3 dimensions: log Z by AIS (or BDMC), base fitted to the training data;
        # the held-out NLL then uses log_likelihood (its stderr is over examples only).
        est = _estimate_log_z(run_, e64, ev.log_z_method)
        nll = -log_likelihood(e64, run_.test.double(), est)
        report.update(
            nll_heldout=float(nll.mean()),
            nll_heldout_stderr=float(nll.std() / math.sqrt(nll.numel())),
            log_z=est.value,
            log_z_stderr=est.stderr,
            log_z_method=est.method,
            log_z_lower=est.lower,
            log_z_upper=est.upper,
            log_z_ess=est.ess,
            log_z_seconds=est.seconds,
        )
    if run_.toy is not None and run_.toy.has_log_prob:
        h, h_se = run_.toy.entropy(n=ev.entropy_samples, seed=cfg.seed)
        report.update(entropy_floor=h, entropy_floor_stderr=h_se)
    else:
        report.update(entropy_floor=None, entropy_floor_stderr=None)
    if report["nll_heldout"] is not None and report["entropy_floor"] is not None:
        report["nll_gap"] = report["nll_heldout"] - report["entropy_floor"]
        report["nll_gap_stderr"] = math.hypot(
            report["nll_heldout_stderr"], report["entropy_floor_stderr"]
        )
    else:
        report["nll_gap"] = None
        report["nll_gap_stderr"] = None
    samples = sample_run(out_p, ev.n_samples, seed=cfg.seed, run_=run_, progress=progress)
    samples = samples.detach().cpu()
    m = min(ev.mmd_samples, samples.shape[0], run_.test.shape[0])
    report["mmd"] = mmd(samples[:m], run_.test[:m])
    report["sample_finite_fraction"] = float(
        torch.isfinite(samples.reshape(samples.shape[0], -1)).all(1).double().mean()
    )
    report["eval_seconds"] = time.perf_counter() - t0
    report["versions"] = _versions()
    if plots:
        from ..plotting import plot_curves, plot_density, plot_samples

        plot_samples(samples, run_.test, out_p / "samples.png", run_.bounds)
        if dim in (1, 2):
            true_lp = run_.toy.log_prob if run_.toy is not None and run_.toy.has_log_prob else None
            plot_density(e64, run_.bounds, out_p / "energy.png", true_lp)
        if (out_p / METRICS_NAME).is_file():
            plot_curves(out_p / METRICS_NAME, out_p / "curves.png")
        tb = _tensorboard(cfg, out_p)
        if tb is not None:
            step = int(report["steps"] or 0)
            names = ("samples", "energy", "curves")
            tb.log_figures({n: out_p / f"{n}.png" for n in names}, step)
            tb.log_report(report, step)
            tb.close()
    atomic_write_json(out_p / "report.json", report)
    return report


def _evaluate_images(
    out: Path, run_: Any, report: dict[str, Any], *, plots: bool = True, progress: bool = False
) -> dict[str, Any]:
    """Image part of ``evaluate_run``: samples, figures, FID/KID, 8x8 log-likelihood.

    Arguments:
        out: Run directory.
        run_: The :class:`ebmlab.runs.Run`.
        report: The report so far (name, steps, times); completed in place.
        plots: Write ``samples.png``, ``chains.gif`` and ``curves.png``.
        progress: Show the sampler's progress bar.

    Returns:
        ``report``.
    """
    from ..sample_quality import image_quality, train_feature_classifier

    cfg = run_.config
    ev = cfg.evaluate
    energy = run_.energy.eval()
    for q in energy.parameters():
        q.requires_grad_(False)
    dev = next(energy.parameters()).device
    g = torch.Generator(device=dev).manual_seed(cfg.seed + 11)
    n = ev.n_samples
    buffer = sample_run(out, n, seed=cfg.seed, run_=run_, progress=progress).detach().cpu()
    fresh, frames = _fresh_chains(run_, n, ev.sample_steps, g, n_frames=16)
    fresh = fresh.cpu()
    report["n_samples"] = n
    report["sample_finite_fraction"] = float(
        torch.isfinite(buffer.reshape(n, -1)).all(1).double().mean()
    )
    y_tr, y_te = _labels(cfg)
    if y_tr is not None and y_te is not None and int(torch.unique(y_tr).numel()) >= 2:
        clf, provenance = train_feature_classifier(
            run_.train.float(), y_tr, seed=cfg.seed, x_test=run_.test.float(), y_test=y_te
        )
        gr = torch.Generator().manual_seed(cfg.seed + 5)
        m = min(n, run_.test.shape[0])
        ref = run_.train[torch.randperm(run_.train.shape[0], generator=gr)[: max(m, 2)]]
        q = image_quality(
            {"buffer": buffer[:m].float(), "fresh": fresh[:m].float()},
            clf,
            ref.float(),
            run_.test[:m].float(),
            seed=cfg.seed,
        )
        report.update(q)
        report["fid"] = q["fid_buffer"]
        report["kid"] = q["kid_buffer"]
        report["fid_floor"] = q["fid_heldout"]
        report["kid_floor"] = q["kid_heldout"]
        report["feature_network"] = provenance
    else:
        report["fid"] = report["kid"] = None
        report["fid_note"] = "FID/KID need integer labels (npz 'y', subfolders, IDX labels)"
    scaling = scaling_of(cfg)
    c, h, w = energy.event_shape
    if scaling is not None and h * w * c <= 64 and np.dtype(scaling.dtype).kind in "iu":
        report.update(
            dequantized_log_likelihood(
                energy, run_.test, scaling, cfg, seed=cfg.seed + 7, train=run_.train
            )
        )
    if plots:
        _samples_png(buffer[:64], fresh[:64], out / "samples.png")
        write_chains_gif(frames, out / "chains.gif")
        if (out / METRICS_NAME).is_file():
            from ..plotting import plot_curves

            plot_curves(out / METRICS_NAME, out / "curves.png")
    return report
