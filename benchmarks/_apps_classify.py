"""Classifying digits with JEM: EnergyClassifier vs LogisticRegression and MLPClassifier.

Protocol (every model in the same run, same splits):

- data: scikit-learn's digits, pixels / 16 in ``[0, 1]``; per seed a stratified
  70/30 train/test split (seeds 0-4). Nothing is tuned on test rows.
- LogisticRegression: ``C`` in 0.1, 1, 10, 100 chosen by 5-fold CV accuracy on
  the training rows (``max_iter=5000``).
- MLPClassifier: ``hidden_layer_sizes=(256,)`` (as wide as ours), ``alpha`` in
  1e-4, 1e-2, 1 chosen by 5-fold CV accuracy on the training rows
  (``max_iter=1000``).
- EnergyClassifier: its defaults (chosen once with ``--dev``, i.e. on splits of
  the training rows only).
- accuracy and expected calibration error (15 equal-width confidence bins) on
  the test rows; OOD AUROC of ``score_samples`` (``-E(x) = logsumexp f(x)``,
  higher = in-distribution) of the test digits against as many uniform-noise
  images, the test digits rotated by 90 degrees, and inverted (``1 - x``); the
  baselines' OOD score is their maximum softmax probability (Hendrycks &
  Gimpel 2017), the standard score for a plain classifier.

``run(quick)`` returns the results as a dict, ``markdown(result)`` the table.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

OOD_KINDS = ("noise", "rotated 90°", "inverted")


def ece(proba: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    from ebmlab.estimators.classifier import expected_calibration_error

    return expected_calibration_error(proba, y, n_bins=n_bins)


def _data(seed: int, dev: bool) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=seed)
    if dev:  # tune ebmlab's defaults without touching the test rows
        Xtr, Xte, ytr, yte = train_test_split(
            Xtr, ytr, test_size=0.3, stratify=ytr, random_state=seed
        )
    return Xtr, Xte, ytr, yte


def _ood(X: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.RandomState(10_000 + seed)
    imgs = X.reshape(-1, 8, 8)
    return {
        "noise": rng.rand(*X.shape),
        "rotated 90°": np.rot90(imgs, 1, axes=(1, 2)).reshape(X.shape),
        "inverted": 1.0 - X,
    }


def _auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    labels = np.r_[np.ones(len(s_in)), np.zeros(len(s_out))]
    return float(roc_auc_score(labels, np.r_[s_in, s_out]))


def _models(seed: int, ebm_kwargs: dict[str, Any]) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier

    from ebmlab.estimators import EnergyClassifier

    return {
        "LogisticRegression": lambda: GridSearchCV(
            LogisticRegression(max_iter=5000), {"C": [0.1, 1.0, 10.0, 100.0]}, cv=5
        ),
        "MLPClassifier": lambda: GridSearchCV(
            MLPClassifier((256,), max_iter=1000, random_state=seed),
            {"alpha": [1e-4, 1e-2, 1.0]},
            cv=5,
        ),
        "EnergyClassifier": lambda: EnergyClassifier(random_state=seed, **ebm_kwargs),
    }


def _one_seed(seed: int, ebm_kwargs: dict[str, Any], dev: bool) -> dict[str, Any]:
    Xtr, Xte, ytr, yte = _data(seed, dev)
    ood = _ood(Xte, seed)
    out: dict[str, Any] = {}
    for name, make in _models(seed, ebm_kwargs).items():
        t0 = time.perf_counter()
        model = make().fit(Xtr, ytr)
        seconds = time.perf_counter() - t0
        proba = model.predict_proba(Xte)
        if name == "EnergyClassifier":
            score = model.score_samples
        else:

            def score(Z: np.ndarray, m: Any = model) -> np.ndarray:
                return m.predict_proba(Z).max(1)  # type: ignore[no-any-return]

        s_in = score(Xte)
        row = {
            "accuracy": float(np.mean(proba.argmax(1) == yte)),
            "ece": ece(proba, yte),
            "nll": float(-np.mean(np.log(np.clip(proba[np.arange(len(yte)), yte], 1e-12, 1)))),
            "fit_seconds": seconds,
        }
        for kind, Z in ood.items():
            row[f"auroc {kind}"] = _auroc(s_in, score(Z))
        if hasattr(model, "best_params_"):
            row["tuned"] = model.best_params_
        if name == "EnergyClassifier":
            row["temperature"] = float(model.temperature_)
        out[name] = row
    return out


def run(
    quick: bool = False,
    ebm_kwargs: dict[str, Any] | None = None,
    dev: bool = False,
    n_seeds: int | None = None,
) -> dict[str, Any]:
    """Accuracy, ECE and OOD AUROC of every model, per seed and averaged."""
    import torch

    torch.set_num_threads(1)
    seeds = list(range(n_seeds or (1 if quick else 5)))
    kwargs = dict(ebm_kwargs or {})
    if quick:
        kwargs.setdefault("n_epochs", 5)
    per_seed = []
    for seed in seeds:
        per_seed.append(_one_seed(seed, kwargs, dev))
        print(f"classification: seed {seed} done", flush=True)
    models = list(per_seed[0])
    metrics = [k for k in per_seed[0][models[0]] if k != "tuned"]
    summary = {
        m: {
            k: {
                "mean": float(np.mean([r[m][k] for r in per_seed])),
                "std": float(np.std([r[m][k] for r in per_seed])),
            }
            for k in metrics
            if all(k in r[m] for r in per_seed)
        }
        for m in models
    }
    ours, mlp = summary["EnergyClassifier"], summary["MLPClassifier"]
    return {
        "seeds": seeds,
        "quick": quick,
        "dev": dev,
        "ebm_kwargs": kwargs,
        "summary": summary,
        "accuracy_within_1pt_of_mlp": ours["accuracy"]["mean"] >= mlp["accuracy"]["mean"] - 0.01,
        "lower_ece_than_mlp": ours["ece"]["mean"] < mlp["ece"]["mean"],
        "per_seed": per_seed,
    }


def markdown(result: dict[str, Any]) -> str:
    """The table (mean ± std over seeds) and the verdicts."""
    summary = result["summary"]
    cols = ["accuracy", "ece", "nll", *(f"auroc {k}" for k in OOD_KINDS), "fit_seconds"]
    heads = ["accuracy (%)", "ECE (%)", "NLL", *(f"OOD AUROC {k}" for k in OOD_KINDS), "fit s"]
    lines = ["| model | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for model, row in summary.items():
        cells = []
        for c in cols:
            mean, std = row[c]["mean"], row[c]["std"]
            if c in ("accuracy", "ece"):
                cells.append(f"{100 * mean:.2f} ± {100 * std:.2f}")
            elif c == "fit_seconds":
                cells.append(f"{mean:.1f}")
            else:
                cells.append(f"{mean:.3f} ± {std:.3f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Seeds {result['seeds']}. Accuracy within 1 point of MLPClassifier: "
        f"{'yes' if result['accuracy_within_1pt_of_mlp'] else 'NO'}; lower ECE than "
        f"MLPClassifier: {'yes' if result['lower_ece_than_mlp'] else 'NO'}. Baselines' OOD "
        "score: maximum softmax probability."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ebm", default="{}", help="JSON keyword arguments of EnergyClassifier")
    parser.add_argument("--json", help="write the result here")
    parser.add_argument("--dev", action="store_true", help="tune on training rows only")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 5; quick 1)")
    args = parser.parse_args()
    res = run(args.quick, json.loads(args.ebm), args.dev, args.seeds)
    print(markdown(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1)
