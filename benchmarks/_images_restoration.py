"""Image restoration on mnist5k: ``ebmlab denoise`` against tuned classical baselines.

Protocol (every method in the same run of the script, on the same corrupted images):

- data: mnist5k, the stratified 4,000 train / 1,000 test split of
  ``image_run_config`` for each seed (the split ``benchmarks/images.py`` and
  ``ebmlab train`` use), pixels scaled to ``[-1, 1]``; the 4,000 training
  images are split again (stratified) into 3,200 fit and 800 validation images
  for tuning the baselines (the first 200 validation images are used: KNNImputer
  and IterativeImputer are slow on 784 features). Nothing is tuned on test
  images. For CPU time on a shared machine, a fixed random 500 of the 1,000 test
  images are scored (``N_TEST``; ``n_test=None`` scores all).
- corruptions of the test images (and, for tuning, of the validation images):
  ``lower half`` (rows 14-27 missing), ``50% missing`` (each pixel missing with
  probability 0.5), Gaussian noise ``sigma`` 0.3 and 0.6 on ``[-1, 1]``
  (unclipped).
- ebmlab: one run per seed, ``image_run_config("builtin:mnist5k",
  objective="ncsm")`` (what ``ebmlab train --data builtin:mnist5k --objective
  ncsm`` trains) on the 4,000 training images, through ``train_run``; then
  ``denoise_run`` (the function behind ``ebmlab denoise``) on a ``.npy`` of the
  corrupted test images in the data's units (0-255 floats, NaN = missing):
  noise with ``--noise-std sigma*127.5`` (Tweedie's posterior mean, the default
  method of ``ncsm`` runs), 50% missing with ``--noise mask --method METHOD
  --steps S --chains K`` (the settings in ``EBMLAB_MASK``, chosen on validation
  images of seed 0; those images were part of the run's training set), the
  lower half with ``--noise mask --method exemplar`` (training images nearest
  on the upper half, weighted by the energy; ``restore_from_exemplars``) with
  its settings chosen per seed on the validation images, whose candidates are
  then the 3,200 fit images only (so a validation image is never its own
  candidate; on test images the candidates are the run's 4,000 training
  images, as for the refitted baselines). Also reported on the lower half: the
  exemplar method with its defaults (what ``--method auto`` gives), the same
  candidates averaged without the energy (``temperature=None``: the Gaussian
  kernel on the observed pixels alone, its scale and the number of candidates
  tuned on validation the same way; the ablation), and the annealed Langevin
  chains of ``EBMLAB_MASK``.
- KNNImputer: fitted on the clean fit images, ``n_neighbors`` and ``weights``
  chosen on validation; refitted on all 4,000 training images.
- IterativeImputer (BayesianRidge): fitted on the training images with a
  fraction (0 or 0.5, chosen on validation) of them corrupted like the test
  images (so that it learns to iterate on missing pixels), ``n_nearest_features``
  chosen on validation, ``max_iter`` 10; refitted on all training images.
- PCA projection: fitted on the clean fit images, the number of components
  chosen on validation, refitted on all training images.
- Gaussian filter: ``scipy.ndimage.gaussian_filter`` on each 28x28 image,
  ``sigma`` chosen on validation.
- every output is clipped to ``[-1, 1]``. PSNR per image ``10 log10(2^2 / MSE)``
  (peak-to-peak 2 on ``[-1, 1]``; over all 784 pixels, observed ones included),
  mean and standard error over the 1,000 test images; mean and spread over seeds.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

SOURCE = "builtin:mnist5k"
CORRUPTIONS = ("lower half", "50% missing", "noise 0.3", "noise 0.6")
#: ebmlab's settings for missing pixels (chosen on validation images of seed 0).
EBMLAB_MASK = {"method": "langevin", "n_steps": 40, "n_chains": 16}
#: Validation grids of ``method="exemplar"`` on the lower half: with the energy
#: (temperature, energy level, kernel scale, candidates) and without it (the ablation).
EXEMPLAR_GRID = [
    {"temperature": t, "energy_sigma": s, "distance_scale": tau, "n_candidates": k}
    for t in (10.0, 20.0, 30.0, 50.0)
    for s in (0.3, 0.4)
    for tau in (2.0, 3.0, 4.0)
    for k in (20, 32)
]
EXEMPLAR_ABLATION_GRID = [
    {"temperature": None, "distance_scale": tau, "n_candidates": k}
    for tau in (2.0, 3.0, 4.0)
    for k in (10, 20, 32)
]
KNN_GRID = [(5, "distance"), (10, "distance"), (20, "distance"), (10, "uniform")]
#: Validation images used for tuning (of the 800): KNNImputer is slow on 784 features.
N_VAL = 200
#: Test images scored (a fixed random subset of the 1,000, for CPU time).
N_TEST = 500
ITER_GRID = [(20, 0.0), (20, 0.5)]
PCA_GRID = (5, 10, 15, 20, 30, 40, 50, 70, 100, 150)
FILTER_GRID = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0)


def psnr_per_image(clean: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """PSNR in dB of each row, peak-to-peak 2 (images on ``[-1, 1]``)."""
    mse = np.mean((clean - restored) ** 2, axis=1)
    return 10.0 * np.log10(4.0 / np.maximum(mse, 1e-12))  # type: ignore[no-any-return]


def corrupt(x: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Corrupted rows ``(N, 784)`` on ``[-1, 1]``; NaN marks a missing pixel."""
    y = x.copy()
    if kind == "lower half":
        y.reshape(-1, 28, 28)[:, 14:, :] = np.nan
    elif kind == "50% missing":
        y[rng.random(y.shape) < 0.5] = np.nan
    else:
        sigma = float(kind.split()[1])
        y = y + sigma * rng.standard_normal(y.shape)
    return y


# -- baselines ---------------------------------------------------------------------------


def _knn(fit: np.ndarray, k: int, weights: str) -> Any:
    from sklearn.impute import KNNImputer

    imp = KNNImputer(n_neighbors=k, weights=weights).fit(fit)
    return lambda y: np.clip(imp.transform(y), -1, 1)


def _iterative(fit: np.ndarray, kind: str, point: tuple[int, float], seed: int) -> Any:
    """IterativeImputer fitted on ``fit`` with a fraction ``point[1]`` of its rows
    corrupted like the test rows (0: clean rows, one round of regressions)."""
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    n_near, frac = point
    rng = np.random.default_rng(seed + 77)
    rows = rng.random(fit.shape[0]) < frac
    data = fit.copy()
    data[rows] = corrupt(fit[rows], kind, rng)
    imp = IterativeImputer(
        max_iter=10, n_nearest_features=n_near, random_state=seed, keep_empty_features=True
    ).fit(data)
    return lambda y: np.clip(imp.transform(y), -1, 1)


def _pca(fit: np.ndarray, k: int) -> Any:
    from sklearn.decomposition import PCA

    p = PCA(k).fit(fit)
    return lambda y: np.clip(p.inverse_transform(p.transform(y)), -1, 1)


def _gauss(s: float) -> Any:
    from scipy.ndimage import gaussian_filter

    def f(y: np.ndarray) -> np.ndarray:
        im = y.reshape(-1, 28, 28)
        out = np.stack([gaussian_filter(a, s, mode="reflect") for a in im])
        return np.clip(out.reshape(y.shape), -1, 1)  # type: ignore[no-any-return]

    return f


def _tune(
    make: Any, grid: Any, fit: np.ndarray, val: np.ndarray, val_y: np.ndarray
) -> tuple[Any, float]:
    """The grid point with the best mean validation PSNR."""
    best, best_p = None, -math.inf
    for point in grid:
        p = float(psnr_per_image(val, make(fit, point)(val_y)).mean())
        if p > best_p:
            best, best_p = point, p
    return best, best_p


# -- one seed -----------------------------------------------------------------------------


def _split(seed: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    from ebmlab.runs.images import _labels, image_run_config, load_image_data

    cfg = image_run_config(SOURCE, objective="ncsm")
    cfg.seed = seed
    train, test = load_image_data(cfg, torch.float64)
    y_tr, _ = _labels(cfg)
    tr = train.reshape(train.shape[0], -1).numpy()
    te = test.reshape(test.shape[0], -1).numpy()
    fit, val = train_test_split(
        tr, test_size=0.2, stratify=None if y_tr is None else y_tr.numpy(), random_state=seed
    )
    return cfg, tr, te, fit, val


def _train_ebmlab(cfg: Any, out: Path, steps: int | None) -> float:
    from ebmlab.runs import train_run

    cfg.train.threads, cfg.train.checkpoint_every = 1, 0
    if steps is not None:
        cfg.train.steps = steps
    if (out / "model.safetensors").is_file():  # reuse a run trained by this script
        import json

        state = json.loads((out / "state.json").read_text())
        return float(state.get("train_cpu_seconds", state.get("train_seconds", math.nan)))
    t0 = time.process_time()
    train_run(cfg, out, progress=False, evaluate=False)
    cpu = time.process_time() - t0
    import json

    state = json.loads((out / "state.json").read_text())
    state["train_cpu_seconds"] = cpu
    (out / "state.json").write_text(json.dumps(state))
    return cpu


def _ebmlab(
    run: Path, y: np.ndarray, kind: str, tmp: Path, seed: int, mask: dict[str, Any]
) -> np.ndarray:
    from ebmlab.runs import denoise_run

    f = tmp / "corrupted.npy"
    np.save(f, ((y + 1.0) * 127.5).reshape(-1, 28, 28))  # the data's units, NaN = missing
    if kind.startswith("noise"):
        sigma = float(kind.split()[1])
        out = denoise_run(run, f, noise_std=sigma * 127.5, seed=seed)
    else:
        out = denoise_run(run, f, noise="mask", seed=seed, **mask)
    return out.numpy()  # type: ignore[no-any-return]


def _tune_exemplar(
    run: Path, fit: np.ndarray, val: np.ndarray, val_y: np.ndarray, grid: list[dict[str, Any]]
) -> tuple[dict[str, Any], float]:
    """The exemplar setting of ``grid`` with the best validation PSNR; the candidates
    are the fit images (never the validation image itself)."""
    from ebmlab.energies import NoiseConditionalImageEnergy
    from ebmlab.runs import load_run
    from ebmlab.runs.denoise import _exemplar_options
    from ebmlab.runs.restore import restore_from_exemplars

    energy = load_run(run).energy
    assert isinstance(energy, NoiseConditionalImageEnergy)
    for prm in energy.parameters():
        prm.requires_grad_(False)
    shape = (-1, *energy.event_shape)
    y = torch.tensor(np.nan_to_num(val_y), dtype=torch.float32).reshape(shape)
    obs = torch.tensor(~np.isnan(val_y)).reshape(shape)
    ex = torch.tensor(fit, dtype=torch.float32).reshape(shape)
    best, best_p = grid[0], -math.inf
    for point in grid:
        out = restore_from_exemplars(energy, y, obs, ex, **_exemplar_options(point))
        p = float(psnr_per_image(val, out.reshape(len(val), -1).double().numpy()).mean())
        if p > best_p:
            best, best_p = point, p
    return best, best_p


def one_seed(
    seed: int,
    work: Path,
    *,
    steps: int | None = None,
    n_test: int | None = None,
    mask: dict[str, Any] | None = None,
    tune_ebmlab: bool = False,
) -> dict[str, Any]:
    """Every method on every corruption for one seed (see the module docstring)."""
    mask = dict(EBMLAB_MASK if mask is None else mask)
    cfg, tr, te, fit, val = _split(seed)
    val = val[:N_VAL]
    if n_test is not None:  # a fixed random subset (the split is ordered by class)
        te = te[np.random.default_rng(seed + 31).permutation(len(te))[:n_test]]
    run = work / f"ncsm_seed{seed}"
    train_cpu = _train_ebmlab(cfg, run, steps)
    print(f"seed {seed}: ebmlab ncsm run trained, {train_cpu:.0f} CPU s", flush=True)
    res: dict[str, Any] = {"seed": seed, "train_cpu_s": train_cpu, "n_test": len(te), "rows": []}
    for c_i, kind in enumerate(CORRUPTIONS):
        rng_val = np.random.default_rng(1000 * seed + c_i)
        rng_te = np.random.default_rng(1000 * seed + c_i + 500)
        val_y, te_y = corrupt(val, kind, rng_val), corrupt(te, kind, rng_te)
        is_mask = not kind.startswith("noise")
        baselines: dict[str, tuple[Any, Any]]
        if is_mask:
            baselines = {
                "KNNImputer": (lambda f, p: _knn(f, *p), KNN_GRID),
                "IterativeImputer": (lambda f, p, k=kind: _iterative(f, k, p, seed), ITER_GRID),
            }
        else:
            baselines = {
                "PCA projection": (_pca, PCA_GRID),
                "Gaussian filter": (lambda f, p: _gauss(p), FILTER_GRID),
            }
        if tune_ebmlab and is_mask:
            with tempfile.TemporaryDirectory() as t:
                for m in ("tweedie", "langevin"):
                    for s in (20, 40, 100):
                        opts = {"method": m, "n_steps": s, "n_chains": mask["n_chains"]}
                        out = _ebmlab(run, val_y, kind, Path(t), seed, opts)
                        v = float(psnr_per_image(val, out).mean())
                        print(f"  tune ebmlab {kind} {opts}: validation {v:.2f} dB", flush=True)
        ours: list[tuple[str, dict[str, Any], float | None, float]] = [
            ("ebmlab denoise (ncsm run)", mask, None, 0.0)
        ]
        if kind == "lower half":  # exemplars (tuned; defaults = auto; no energy) and chains
            t0 = time.process_time()
            ex_best, ex_val = _tune_exemplar(run, fit, val, val_y, EXEMPLAR_GRID)
            ex_cpu = time.process_time() - t0
            t0 = time.process_time()
            ab_best, ab_val = _tune_exemplar(run, fit, val, val_y, EXEMPLAR_ABLATION_GRID)
            ab_cpu = time.process_time() - t0
            ours = [
                (
                    "ebmlab denoise (ncsm run)",
                    {"method": "exemplar", "exemplar": ex_best},
                    ex_val,
                    ex_cpu,
                ),
                ("ebmlab exemplar, defaults (= auto)", {"method": "auto"}, None, 0.0),
                (
                    "ablation: same candidates, no energy",
                    {"method": "exemplar", "exemplar": ab_best},
                    ab_val,
                    ab_cpu,
                ),
                ("ebmlab langevin chains", mask, None, 0.0),
            ]
        for name, opts, vp, tune_cpu in ours:
            with tempfile.TemporaryDirectory() as t:
                t0 = time.process_time()
                out = _ebmlab(run, te_y, kind, Path(t), seed, opts)
                cpu = time.process_time() - t0
            p = psnr_per_image(te, out)
            setting = f"Tweedie, sigma {kind.split()[1]}" if not is_mask else str(opts)
            res["rows"].append(_row(kind, name, setting, p, cpu, vp))
            res["rows"][-1]["tune_cpu_s"] = tune_cpu
            print(res["rows"][-1], flush=True)
        for name, (make, grid) in baselines.items():
            t0 = time.process_time()
            best, vp = _tune(make, grid, fit, val, val_y)
            out = make(tr, best)(te_y)
            cpu = time.process_time() - t0
            p = psnr_per_image(te, out)
            res["rows"].append(_row(kind, name, str(best), p, cpu, vp))
            print(res["rows"][-1], flush=True)
        corrupted = np.nan_to_num(te_y, nan=float(tr.mean()))
        p = psnr_per_image(te, np.clip(corrupted, -1, 1))
        res["rows"].append(_row(kind, "input (missing = mean pixel)", "", p, 0.0, None))
    return res


def _row(kind: str, method: str, setting: str, p: np.ndarray, cpu: float, val: Any) -> dict:
    return {
        "corruption": kind,
        "method": method,
        "setting": setting,
        "psnr": float(p.mean()),
        "se": float(p.std(ddof=1) / math.sqrt(len(p))),
        "validation_psnr": val,
        "cpu_s": cpu,
    }


def restoration(
    seeds: list[int],
    *,
    work: str | None = None,
    steps: int | None = None,
    n_test: int | None = N_TEST,
    tune_ebmlab: bool = False,
) -> dict[str, Any]:
    """The restoration benchmark over ``seeds``; ``work`` keeps the trained runs."""
    torch.set_num_threads(1)
    if work is None:
        tmp = tempfile.TemporaryDirectory()
        base = Path(tmp.name)
    else:
        base = Path(work)
        base.mkdir(parents=True, exist_ok=True)
    per_seed = [
        one_seed(s, base, steps=steps, n_test=n_test, tune_ebmlab=tune_ebmlab) for s in seeds
    ]
    return summarize(seeds, per_seed)


def summarize(seeds: list[int], per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The result of :func:`restoration` from per-seed results (also to merge seeds run as
    separate processes: ``summarize(seeds, [r for part in parts for r in part["per_seed"]])``)."""
    summary: dict[str, list[dict[str, Any]]] = {}
    for r in per_seed:
        for row in r["rows"]:
            summary.setdefault(f"{row['corruption']} | {row['method']}", []).append(row)
    table = {
        k: {
            "psnr_mean": float(np.mean([r["psnr"] for r in rows])),
            "psnr_sd_over_seeds": float(np.std([r["psnr"] for r in rows])),
            "se_over_images": float(np.mean([r["se"] for r in rows])),
            "settings": [r["setting"] for r in rows],
        }
        for k, rows in summary.items()
    }
    return {
        "seeds": seeds,
        "ebmlab_mask_settings": EBMLAB_MASK,
        "exemplar_grid": EXEMPLAR_GRID,
        "exemplar_ablation_grid": EXEMPLAR_ABLATION_GRID,
        "per_seed": per_seed,
        "summary": table,
        "psnr": "per image, 10 log10(4 / MSE) on [-1, 1], mean over test images",
    }


def paired_lower_half(seed: int, work: str, result: dict[str, Any]) -> dict[str, Any]:
    """Paired differences on the lower half: ebmlab's exemplar rows minus each baseline,
    per test image, with their standard error; recomputed (deterministically) with the
    settings that ``result`` (this seed's :func:`one_seed` output) chose on validation."""
    import ast

    rows = {r["method"]: r for r in result["rows"] if r["corruption"] == "lower half"}
    _, tr, te, _, _ = _split(seed)
    te = te[np.random.default_rng(seed + 31).permutation(len(te))[:N_TEST]]
    te_y = corrupt(te, "lower half", np.random.default_rng(1000 * seed + 500))
    run = Path(work) / f"ncsm_seed{seed}"
    psnr: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as t:
        for name in ("ebmlab denoise (ncsm run)", "ablation: same candidates, no energy"):
            opts = ast.literal_eval(rows[name]["setting"])
            psnr[name] = psnr_per_image(te, _ebmlab(run, te_y, "lower half", Path(t), seed, opts))
    k, w = ast.literal_eval(rows["KNNImputer"]["setting"])
    psnr["KNNImputer"] = psnr_per_image(te, _knn(tr, k, w)(te_y))
    point = ast.literal_eval(rows["IterativeImputer"]["setting"])
    psnr["IterativeImputer"] = psnr_per_image(te, _iterative(tr, "lower half", point, seed)(te_y))
    out: dict[str, Any] = {"seed": seed, "means": {k: float(v.mean()) for k, v in psnr.items()}}
    for a in ("ebmlab denoise (ncsm run)", "ablation: same candidates, no energy"):
        for b in psnr:
            if a != b:
                d = psnr[a] - psnr[b]
                se = float(d.std(ddof=1) / math.sqrt(len(d)))
                out[f"{a} - {b}"] = {"mean": float(d.mean()), "se": se}
    return out
