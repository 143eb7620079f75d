"""Denoising and inpainting digits: EnergyDenoiser vs PCA and a Gaussian filter.

Protocol (every method in the same run, same corrupted images):

- data: scikit-learn's digits, pixels / 16 in ``[0, 1]``; per seed a stratified
  70/30 train/test split; the training part is split again 80/20 into
  fit/validation rows for tuning the baselines. Nothing is tuned on test rows.
- corruptions of the test rows: Gaussian noise ``sigma`` in 0.1, 0.2, 0.4
  (unclipped), and 30% of the pixels missing at random (``mask``).
- EnergyDenoiser: fitted on the clean training rows with its defaults and the
  noise model at hand (``noise_std=sigma``; ``noise="mask"``), restored with
  ``method="tweedie"`` (the default); output clipped to the training range.
- PCA: fitted on the clean fit rows; Gaussian noise: projection onto the first
  ``k`` components, ``k`` in 4, 6, ..., 64 chosen by validation PSNR;
  missing pixels: the probabilistic-PCA conditional mean given the observed
  pixels (ridge ``nu / lambda_j`` on component ``j``), ``k`` in 4, 8, ..., 64 and
  ``nu`` in 0.001, 0.01, 0.03, 0.1 chosen on validation; refitted on all
  training rows with the chosen settings.
- Gaussian filter: ``scipy.ndimage.gaussian_filter`` on each 8x8 image,
  ``sigma`` in 0.1..1.5 and ``mode`` reflect/constant chosen on validation;
  missing pixels: normalized convolution ``G*(m x) / G*m`` fills them (observed
  pixels kept), ``sigma`` chosen on validation.
- Every output is clipped to ``[0, 1]``. PSNR = ``10 log10(1 / MSE)`` over all
  test pixels (dB), mean and standard deviation over seeds.

``run(quick)`` returns the results as a dict, ``markdown(result)`` the table.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

LEVELS = (0.1, 0.2, 0.4)
MASK_FRACTION = 0.3
PCA_KS = tuple(range(4, 65, 2))  # up to 64 = keep everything
FILTER_SIGMAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.2, 1.5)
PPCA_NUS = (1e-3, 1e-2, 3e-2, 1e-1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def _data(seed: int, dev: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(train, test, fit, validation)``; ``dev``: the training rows play all four roles."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, _ = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    if dev:  # tune ebmlab's defaults without touching the test rows
        Xtr, Xte, ytr, _ = train_test_split(
            Xtr, ytr, test_size=0.3, stratify=ytr, random_state=seed
        )
    Xfit, Xval = train_test_split(Xtr, test_size=0.2, stratify=ytr, random_state=seed)
    return Xtr, Xte, Xfit, Xval


# -- baselines ---------------------------------------------------------------------------


def _pca_project(train: np.ndarray, k: int) -> Any:
    from sklearn.decomposition import PCA

    pca = PCA(k).fit(train)
    return lambda Y: np.clip(pca.inverse_transform(pca.transform(Y)), 0, 1)


def _ppca_inpaint(train: np.ndarray, k: int, nu: float) -> Any:
    """Conditional mean of missing pixels under PCA with a Gaussian prior on the codes."""
    from sklearn.decomposition import PCA

    pca = PCA(k).fit(train)
    W, mu = pca.components_.T, pca.mean_
    lam = np.maximum(pca.explained_variance_, 1e-12)  # constant pixels: zero-variance components

    def restore(Y: np.ndarray, M: np.ndarray) -> np.ndarray:
        out = np.empty_like(Y)
        for i in range(Y.shape[0]):
            o = M[i]
            Wo = W[o]
            A = Wo.T @ Wo + nu * np.diag(1.0 / lam)
            c = np.linalg.solve(A, Wo.T @ (Y[i, o] - mu[o]))
            out[i] = np.where(o, Y[i], np.clip(mu + W @ c, 0, 1))
        return out

    return restore


def _gauss(Y: np.ndarray, sigma: float, mode: str) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    imgs = Y.reshape(-1, 8, 8)
    out = np.stack([gaussian_filter(im, sigma, mode=mode) for im in imgs])
    return np.clip(out.reshape(Y.shape), 0, 1)


def _normconv(Y: np.ndarray, M: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    out = np.empty_like(Y)
    for i in range(Y.shape[0]):
        m = M[i].reshape(8, 8).astype(float)
        x = np.where(M[i], Y[i], 0.0).reshape(8, 8)
        num = gaussian_filter(x * m, sigma, mode="constant")
        den = gaussian_filter(m, sigma, mode="constant")
        fill = np.where(den > 1e-8, num / np.maximum(den, 1e-8), 0.0).reshape(-1)
        out[i] = np.where(M[i], Y[i], np.clip(fill, 0, 1))
    return out


def _gaussian_noise(X: np.ndarray, s: float, seed: int) -> np.ndarray:
    return X + s * np.random.RandomState(seed).randn(*X.shape)


def _mask(X: np.ndarray, seed: int) -> np.ndarray:
    """True = observed; each pixel missing with probability MASK_FRACTION."""
    return np.random.RandomState(seed).rand(*X.shape) >= MASK_FRACTION


# -- the run -----------------------------------------------------------------------------


def _one_seed(seed: int, ebm_kwargs: dict[str, Any], dev: bool) -> dict[str, Any]:
    from ebmlab.estimators import EnergyDenoiser

    Xtr, Xte, Xfit, Xval = _data(seed, dev)
    rows: dict[str, dict[str, float]] = {}
    tuned: dict[str, dict[str, Any]] = {}
    times: dict[str, float] = {}
    for j, s in enumerate(LEVELS):
        name = f"gaussian {s}"
        Yval = _gaussian_noise(Xval, s, 1000 * seed + 10 + j)
        Yte = _gaussian_noise(Xte, s, 1000 * seed + 20 + j)
        k = max(PCA_KS, key=lambda k: psnr(Xval, _pca_project(Xfit, k)(Yval)))
        fs, mode = max(
            ((f, m) for f in FILTER_SIGMAS for m in ("reflect", "constant")),
            key=lambda p: psnr(Xval, _gauss(Yval, *p)),
        )
        t0 = time.perf_counter()
        den = EnergyDenoiser(noise_std=s, random_state=seed, **ebm_kwargs).fit(Xtr)
        times[name] = time.perf_counter() - t0
        rows[name] = {
            "noisy input": psnr(Xte, np.clip(Yte, 0, 1)),
            "PCA": psnr(Xte, _pca_project(Xtr, k)(Yte)),
            "Gaussian filter": psnr(Xte, _gauss(Yte, fs, mode)),
            "EnergyDenoiser": psnr(Xte, den.transform(Yte)),
        }
        tuned[name] = {"pca_k": k, "filter_sigma": fs, "filter_mode": mode}
    name = f"mask {MASK_FRACTION:.0%}"
    Mval, Mte = _mask(Xval, 1000 * seed + 30), _mask(Xte, 1000 * seed + 31)
    k, nu = max(
        ((k, nu) for k in PCA_KS[::2] for nu in PPCA_NUS),
        key=lambda p: psnr(Xval, _ppca_inpaint(Xfit, *p)(Xval, Mval)),
    )
    fs = max(FILTER_SIGMAS, key=lambda f: psnr(Xval, _normconv(Xval, Mval, f)))
    t0 = time.perf_counter()
    den = EnergyDenoiser(noise="mask", random_state=seed, **ebm_kwargs).fit(Xtr)
    times[name] = time.perf_counter() - t0
    restored = den.transform(np.where(Mte, Xte, np.nan))
    assert np.array_equal(restored[Mte], Xte[Mte]), "observed pixels must stay unchanged"
    rows[name] = {
        "noisy input": psnr(Xte, np.where(Mte, Xte, Xtr.mean(0))),
        "PCA": psnr(Xte, _ppca_inpaint(Xtr, k, nu)(Xte, Mte)),
        "Gaussian filter": psnr(Xte, _normconv(Xte, Mte, fs)),
        "EnergyDenoiser": psnr(Xte, restored),
    }
    tuned[name] = {"pca_k": k, "ppca_nu": nu, "filter_sigma": fs}
    return {"psnr": rows, "tuned": tuned, "fit_seconds": times}


def run(
    quick: bool = False,
    ebm_kwargs: dict[str, Any] | None = None,
    dev: bool = False,
    n_seeds: int | None = None,
) -> dict[str, Any]:
    """PSNR of every method at every corruption, per seed and averaged."""
    import torch

    torch.set_num_threads(1)
    seeds = list(range(n_seeds or (1 if quick else 3)))
    kwargs = dict(ebm_kwargs or {})
    if quick:
        kwargs.setdefault("n_steps", 300)
    per_seed = []
    for seed in seeds:
        per_seed.append(_one_seed(seed, kwargs, dev))
        print(f"denoising: seed {seed} done", flush=True)
    corruptions = list(per_seed[0]["psnr"])
    methods = list(per_seed[0]["psnr"][corruptions[0]])
    summary = {
        c: {
            m: {
                "mean": float(np.mean([r["psnr"][c][m] for r in per_seed])),
                "std": float(np.std([r["psnr"][c][m] for r in per_seed])),
            }
            for m in methods
        }
        for c in corruptions
    }
    wins = {
        c: all(
            summary[c]["EnergyDenoiser"]["mean"] > summary[c][m]["mean"]
            for m in ("PCA", "Gaussian filter")
        )
        for c in corruptions
    }
    return {
        "seeds": seeds,
        "quick": quick,
        "dev": dev,
        "ebm_kwargs": kwargs,
        "summary": summary,
        "wins": wins,
        "per_seed": per_seed,
    }


def markdown(result: dict[str, Any]) -> str:
    """The PSNR table (dB, mean ± std over seeds) and the fit times."""
    summary = result["summary"]
    corruptions = list(summary)
    methods = list(summary[corruptions[0]])
    lines = [
        "| corruption | " + " | ".join(methods) + " | EBM best? |",
        "|---|" + "---:|" * len(methods) + "---|",
    ]
    for c in corruptions:
        cells = [f"{summary[c][m]['mean']:.2f} ± {summary[c][m]['std']:.2f}" for m in methods]
        lines.append(
            f"| {c} | " + " | ".join(cells) + f" | {'yes' if result['wins'][c] else 'NO'} |"
        )
    fits = [t for r in result["per_seed"] for t in r["fit_seconds"].values()]
    lines.append("")
    lines.append(
        f"PSNR in dB over {len(result['seeds'])} seed(s) {result['seeds']}; EnergyDenoiser fit "
        f"time median {np.median(fits):.1f} s (1 thread)."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ebm", default="{}", help="JSON keyword arguments of EnergyDenoiser")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--dev", action="store_true", help="tune on training rows only")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 3; quick 1)")
    args = parser.parse_args()
    res = run(args.quick, json.loads(args.ebm), args.dev, args.seeds)
    print(markdown(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
