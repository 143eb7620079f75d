"""One-to-many regression: least squares against a conditional EBM with multi-restart inference.

Two tasks where one x has several right answers y:

- ``sqrt``: y = +sqrt(x) or -sqrt(x) with equal probability, plus N(0, 0.03^2)
  noise, x ~ U(0, 1) (the curve y^2 = x: two branches);
- ``cubic``: y ~ U(-1.3, 1.3) and x = y^3 - y plus N(0, 0.02^2) noise: the
  inverse of a cubic, three branches for |x| < 2 / (3 sqrt 3) = 0.385, one
  outside.

Methods (same MLP width, same number of Adam updates):

- ``mse``: an MLP trained with mean squared error (``GaussianEnergy``, whose
  negative log-likelihood is the squared error);
- ``ebm``: ``ebmlab.estimators.EnergyRegressor``: a conditional energy F(x, y)
  trained with the negative log-likelihood loss (normalized on a grid over y),
  predicting by gradient descent on y from 16 starts; ``predict`` gives the
  lowest-energy answer, ``predict_modes`` the distinct ones.

Metrics on a grid of test inputs (``sqrt``: x in [0.1, 1]; ``cubic``: x in
[-0.85, 0.85]):

- ``point``: share of point predictions within 0.1 of a true branch;
- ``all branches``: share of x for which every true branch is within 0.1 of
  one of the model's answers (at most 2 answers for ``sqrt``, 3 for ``cubic``,
  answers more than 3 nats above the best dropped);
- ``recall``: share of true branches recovered, averaged over x;
- ``precision``: share of the model's answers within 0.1 of a true branch;
- ``answers``: mean number of answers per x;
- ``mean abs pred`` (``sqrt``): how close to 0, the average of the branches, the
  point predictions are.

Usage::

    python3 benchmarks/conditional.py                  # 3 seeds, ~10 min on 2 busy cores
    python3 benchmarks/conditional.py --quick          # 1 seed, fewer updates
    python3 benchmarks/conditional.py --markdown --json benchmarks/results/conditional.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ebmlab.conditional import GaussianEnergy, fit_conditional
from ebmlab.estimators import EnergyRegressor

TOL = 0.1  # a prediction within this of a true branch is right
ENERGY_GAP = 3.0  # nats: answers this much less probable than the best are dropped


def make_task(name: str, n: int, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
    if name == "sqrt":
        x = rng.uniform(0.0, 1.0, n)
        sign = rng.choice([-1.0, 1.0], n)
        return x[:, None], sign * np.sqrt(x) + 0.03 * rng.randn(n)
    y = rng.uniform(-1.3, 1.3, n)
    return (y**3 - y + 0.02 * rng.randn(n))[:, None], y


def true_branches(name: str, x: np.ndarray) -> list[np.ndarray]:
    if name == "sqrt":
        return [np.array([-np.sqrt(v), np.sqrt(v)]) for v in x]
    out = []
    for v in x:
        roots = np.roots([1.0, 0.0, -1.0, -v])
        real = roots[np.abs(roots.imag) < 1e-9].real
        out.append(np.sort(real[(real >= -1.3) & (real <= 1.3)]))
    return out


def test_inputs(name: str) -> np.ndarray:
    return np.linspace(0.1, 1.0, 400) if name == "sqrt" else np.linspace(-0.85, 0.85, 400)


def scores(branches: list[np.ndarray], pred: np.ndarray, modes: np.ndarray) -> dict[str, float]:
    point = [np.min(np.abs(b - p)) < TOL for b, p in zip(branches, pred, strict=True)]
    recall, found_all, precision, count = [], [], [], []
    for b, m in zip(branches, modes, strict=True):
        m = m[np.isfinite(m)]
        hit = [bool(np.any(np.abs(m - v) < TOL)) for v in b]
        recall.append(np.mean(hit))
        found_all.append(all(hit))
        precision.extend(np.min(np.abs(b - v)) < TOL for v in m)
        count.append(len(m))
    return {
        "point": float(np.mean(point)),
        "all branches": float(np.mean(found_all)),
        "recall": float(np.mean(recall)),
        "precision": float(np.mean(precision)),
        "answers": float(np.mean(count)),
        "mean abs pred": float(np.mean(np.abs(pred))),
    }


def run_mse(X, y, x_test, seed, hidden, n_steps):
    g = torch.Generator().manual_seed(seed)
    xm, xs, ym, ys = X.mean(0), X.std(0), y.mean(), y.std()
    xt = torch.tensor((X - xm) / xs, dtype=torch.float64)
    yt = torch.tensor((y - ym) / ys, dtype=torch.float64)[:, None]
    model = GaussianEnergy(1, 1, hidden, generator=g).double()
    start = time.perf_counter()
    fit_conditional(model, xt, yt, "nll", n_steps=n_steps, batch_size=128, lr=3e-3, generator=g)
    fit_s = time.perf_counter() - start
    with torch.no_grad():
        xq = torch.tensor((x_test[:, None] - xm) / xs, dtype=torch.float64)
        pred = model.mean(xq)[:, 0].numpy() * ys + ym
    return pred, pred[:, None], fit_s


def run_ebm(X, y, x_test, seed, hidden, n_steps, max_modes):
    reg = EnergyRegressor(
        hidden,
        n_steps=n_steps,
        batch_size=128,
        learning_rate=3e-3,
        n_grid=64,
        n_restarts=16,
        n_infer_steps=100,
        random_state=seed,
    )
    start = time.perf_counter()
    reg.fit(X, y)
    fit_s = time.perf_counter() - start
    pred = reg.predict(x_test[:, None])
    modes, _ = reg.predict_modes(x_test[:, None], max_modes=max_modes, energy_gap=ENERGY_GAP)
    return pred, modes, fit_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=4000)
    parser.add_argument("--n-steps", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="1 seed, 300 updates")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.n_steps = 1, 300
    torch.set_num_threads(args.threads)
    hidden = (64, 64)
    rows = []
    for task in ("sqrt", "cubic"):
        x_test = test_inputs(task)
        branches = true_branches(task, x_test)
        max_modes = 2 if task == "sqrt" else 3
        per_method: dict[str, list[dict[str, float]]] = {"mse": [], "ebm": []}
        for seed in range(args.seeds):
            X, y = make_task(task, args.n_train, np.random.RandomState(seed))
            for method in ("mse", "ebm"):  # interleaved: contention hits both alike
                if method == "mse":
                    pred, modes, fit_s = run_mse(X, y, x_test, seed, hidden, args.n_steps)
                else:
                    pred, modes, fit_s = run_ebm(
                        X, y, x_test, seed, hidden, args.n_steps, max_modes
                    )
                result = scores(branches, pred, modes)
                result["fit s"] = fit_s
                per_method[method].append(result)
                print(f"{task} seed {seed} {method}: {result}", flush=True)
        for method, results in per_method.items():
            summary = {"task": task, "method": method, "seeds": len(results)}
            for key in results[0]:
                values = [r[key] for r in results]
                summary[key] = statistics.mean(values)
                summary[key + " sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(summary)

    keys = ["point", "all branches", "recall", "precision", "answers", "mean abs pred", "fit s"]
    header = "| task | method | " + " | ".join(keys) + " |"
    lines = [header, "|" + "---|" * (len(keys) + 2)]
    for r in rows:
        cells = []
        for k in keys:
            pct = k in ("point", "all branches", "recall", "precision")
            value = f"{100 * r[k]:.1f}%" if pct else f"{r[k]:.3g}"
            if r["seeds"] > 1 and k != "fit s":
                value += f" ± {100 * r[k + ' sd']:.1f}" if pct else f" ± {r[k + ' sd']:.2g}"
            cells.append(value)
        lines.append(f"| {r['task']} | {r['method']} | " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print()
    print(table if args.markdown else table.replace("|", " "))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "n_train": args.n_train,
            "n_steps": args.n_steps,
            "seeds": args.seeds,
        }
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
