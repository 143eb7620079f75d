"""Using a trained EBM: anomaly detection, classification (JEM), denoising, on sklearn's digits.

Sections (``--section``):

- ``anomaly``: for each digit d (ten splits), the inliers are the training
  images of d (a stratified 50/50 split of the 1797 digits, seed 0); the test
  set is every held-out image, d's as normal and the other nine digits as
  anomalies; AUROC of each detector's anomaly score. Detectors:
  ``EnergyOutlierDetector`` (defaults) vs IsolationForest, OneClassSVM,
  LocalOutlierFactor (novelty), KernelDensity, GaussianMixture, plus pyod's
  ECOD and COPOD when pyod installs into ``.bench-venv``. Tuning uses the
  inliers only (5-fold CV log-likelihood for KDE's bandwidth and the mixture's
  components/regularization); no anomaly is ever seen before scoring. An
  ablation row gives the Gaussian reference of the EBM alone (Ledoit-Wolf
  Mahalanobis distance after the same global scaling).
- ``classification`` and ``denoising``: see ``_apps_classify.py`` and
  ``_apps_denoise.py`` (``run(quick) -> dict``, ``markdown(result) -> str``).

Usage::

    python benchmarks/applications.py --section anomaly --markdown --json results/apps.json
    python benchmarks/applications.py --quick          # all sections, small
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
VENV = REPO / ".bench-venv"
BENCH_PY = VENV / "bin" / "python"
TORCH_SPEC = "torch==2.13.0"
SECTIONS = ("anomaly", "classification", "denoising")


# -- anomaly detection -------------------------------------------------------------------


def digits_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)


def _baselines(seed: int) -> dict[str, Any]:
    """name -> factory of an unfitted detector with ``score_samples`` (higher = normal)."""
    from sklearn.ensemble import IsolationForest
    from sklearn.mixture import GaussianMixture
    from sklearn.model_selection import GridSearchCV
    from sklearn.neighbors import KernelDensity, LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    return {
        "IsolationForest": lambda: IsolationForest(n_estimators=200, random_state=seed),
        "OneClassSVM": lambda: OneClassSVM(gamma="scale", nu=0.1),
        "LOF (novelty)": lambda: LocalOutlierFactor(n_neighbors=20, novelty=True),
        "KernelDensity": lambda: GridSearchCV(
            KernelDensity(), {"bandwidth": np.logspace(-0.5, 1.5, 12)}, cv=5
        ),
        "GaussianMixture": lambda: GridSearchCV(
            GaussianMixture(covariance_type="full", random_state=seed),
            {"n_components": [1, 2, 3], "reg_covar": [1e-2, 1e-1, 1.0, 3.0]},
            cv=5,
        ),
    }


def _reference_only(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Ablation: the EBM's Gaussian reference alone, -Mahalanobis^2 (higher = normal)."""
    from sklearn.covariance import LedoitWolf

    m = A.mean(0)
    s = float(np.sqrt(np.mean(A.var(0))))
    return -LedoitWolf().fit((A - m) / s).mahalanobis((B - m) / s)  # type: ignore[no-any-return]


_PYOD_SNIPPET = """
import json, sys, numpy as np
sys.path.insert(0, {bench!r})
from applications import digits_split
from sklearn.metrics import roc_auc_score
from pyod.models.ecod import ECOD
from pyod.models.copod import COPOD
Xtr, Xte, ytr, yte = digits_split({seed})
out = {{}}
for name, cls in (("ECOD (pyod)", ECOD), ("COPOD (pyod)", COPOD)):
    aucs, secs = [], []
    import time
    for d in range(10):
        t = time.perf_counter()
        m = cls().fit(Xtr[ytr == d])
        s = m.decision_function(Xte)  # higher = more anomalous
        secs.append(time.perf_counter() - t)
        aucs.append(roc_auc_score(yte != d, s))
    out[name] = {{"auroc": aucs, "seconds": secs}}
print(json.dumps(out))
"""


def _setup_pyod() -> str | None:
    """Make sure pyod is in ``.bench-venv``; the reason when it cannot be."""
    if not BENCH_PY.exists():
        proc = subprocess.run([sys.executable, "-m", "venv", str(VENV)], capture_output=True)
        if proc.returncode:
            return "cannot create .bench-venv"
        subprocess.run([str(BENCH_PY), "-m", "pip", "install", "-q", TORCH_SPEC], check=False)
    probe = subprocess.run([str(BENCH_PY), "-c", "import pyod, sklearn"], capture_output=True)
    if probe.returncode == 0:
        return None
    pip = [str(BENCH_PY), "-m", "pip", "install", "-q"]
    proc = subprocess.run(
        [*pip, "pyod", "scikit-learn", TORCH_SPEC], capture_output=True, text=True
    )
    if proc.returncode:
        return "pyod failed to install: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return None


def _pyod_results(seed: int) -> tuple[dict[str, Any], str | None]:
    why = _setup_pyod()
    if why is not None:
        return {}, why
    code = _PYOD_SNIPPET.format(bench=str(REPO / "benchmarks"), seed=seed)
    proc = subprocess.run([str(BENCH_PY), "-c", code], capture_output=True, text=True)
    if proc.returncode:
        return {}, "pyod run failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return json.loads(proc.stdout.strip().splitlines()[-1]), None


def run_anomaly(quick: bool, seed: int = 0) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from ebmlab.estimators import EnergyOutlierDetector

    torch.set_num_threads(1)
    Xtr, Xte, ytr, yte = digits_split(seed)
    digits = [0, 1, 8] if quick else list(range(10))
    factories: dict[str, Any] = {
        "EnergyOutlierDetector": lambda: EnergyOutlierDetector(
            random_state=seed, **({"n_steps": 100} if quick else {})
        ),
        **_baselines(seed),
    }
    results: dict[str, Any] = {name: {"auroc": [], "seconds": []} for name in factories}
    results["EBM reference alone (ablation)"] = {"auroc": [], "seconds": []}
    for d in digits:
        A = Xtr[ytr == d]
        is_anomaly = yte != d
        for name, make in factories.items():
            t = time.perf_counter()
            model = make().fit(A)
            score = model.score_samples(Xte)
            results[name]["seconds"].append(time.perf_counter() - t)
            results[name]["auroc"].append(float(roc_auc_score(is_anomaly, -score)))
        t = time.perf_counter()
        ref = _reference_only(A, Xte)
        results["EBM reference alone (ablation)"]["seconds"].append(time.perf_counter() - t)
        results["EBM reference alone (ablation)"]["auroc"].append(
            float(roc_auc_score(is_anomaly, -ref))
        )
        print(
            f"[anomaly] digit {d}: "
            + ", ".join(f"{k} {v['auroc'][-1]:.4f}" for k, v in results.items()),
            file=sys.stderr,
            flush=True,
        )
    pyod_note = None
    if not quick:
        pyod, pyod_note = _pyod_results(seed)
        results.update(pyod)
    for r in results.values():
        r["mean_auroc"] = float(np.mean(r["auroc"]))
        r["mean_seconds"] = float(np.mean(r["seconds"]))
    baselines = [
        k for k in results if k != "EnergyOutlierDetector" and not k.startswith("EBM reference")
    ]
    best = max(baselines, key=lambda k: results[k]["mean_auroc"])
    return {
        "digits": digits,
        "seed": seed,
        "quick": quick,
        "results": results,
        "best_baseline": best,
        "target_met": results["EnergyOutlierDetector"]["mean_auroc"]
        >= results[best]["mean_auroc"],
        "pyod_note": pyod_note,
        "torch_threads": 1,
    }


def markdown_anomaly(res: dict[str, Any]) -> str:
    digits = res["digits"]
    head = "| detector | " + " | ".join(str(d) for d in digits) + " | mean AUROC | s/fit |"
    lines = [head, "|" + "---|" * (len(digits) + 3)]
    order = sorted(res["results"], key=lambda k: -res["results"][k]["mean_auroc"])
    for name in order:
        r = res["results"][name]
        cells = " | ".join(f"{a:.3f}" for a in r["auroc"])
        bold = "**" if name == "EnergyOutlierDetector" else ""
        lines.append(
            f"| {bold}{name}{bold} | {cells} | {bold}{r['mean_auroc']:.4f}{bold} "
            f"| {r['mean_seconds']:.2f} |"
        )
    ebm = res["results"]["EnergyOutlierDetector"]["mean_auroc"]
    best = res["best_baseline"]
    lines.append("")
    lines.append(
        f"EnergyOutlierDetector {ebm:.4f} vs best baseline {best} "
        f"{res['results'][best]['mean_auroc']:.4f}: target "
        f"{'met' if res['target_met'] else 'NOT met'}."
    )
    if res.get("pyod_note"):
        lines.append(f"ECOD/COPOD not run: {res['pyod_note']}.")
    return "\n".join(lines)


# -- driver ------------------------------------------------------------------------------


def _section(name: str) -> tuple[Any, Any] | None:
    if name == "anomaly":
        return run_anomaly, markdown_anomaly
    module = {"classification": "_apps_classify", "denoising": "_apps_denoise"}[name]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return mod.run, mod.markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=[*SECTIONS, "all"], default="all")
    parser.add_argument("--quick", action="store_true", help="small, fast version")
    parser.add_argument("--markdown", action="store_true", help="print markdown tables")
    parser.add_argument("--json", help="write all results to this JSON file")
    args = parser.parse_args(argv)
    names = SECTIONS if args.section == "all" else (args.section,)
    out: dict[str, Any] = {}
    for name in names:
        funcs = _section(name)
        if funcs is None:
            print(f"## {name}: section not available", flush=True)
            continue
        run, markdown = funcs
        t = time.perf_counter()
        out[name] = run(args.quick)
        out[name]["wall_seconds"] = time.perf_counter() - t
        if args.markdown:
            print(f"\n## {name}\n\n{markdown(out[name])}\n", flush=True)
        else:
            print(json.dumps({name: out[name]}, default=str)[:2000], flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
