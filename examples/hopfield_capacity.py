"""# Recall versus the number of stored patterns: classical vs modern Hopfield networks.

Random patterns in {-1, +1}^N are stored; each stored pattern is then used as a
query and the network runs to a fixed point (classical: asynchronous updates;
modern: one attention step from a query with 10% of its bits flipped). A
pattern counts as recalled when the final overlap ``m = s . xi / N`` exceeds 0.9.

Classical capacity. With the Hebbian rule, retrieval breaks down at
``P = alpha_c N`` with ``alpha_c = 0.138`` (Amit, Gutfreund & Sompolinsky 1985)
as N grows; at finite N the breakdown is smeared and shifted up. For each size
N the script fits a logistic curve to the fraction recalled versus
``alpha = P / N``, takes its midpoint ``alpha_50(N)``, and extrapolates
``alpha_50(N) = alpha_c + a / sqrt(N)`` to ``N -> infinity`` (least squares,
with the standard error of the intercept). The modern network (Ramsauer et
al. 2020) keeps recalling far beyond ``P = N``.

`--quick` (the documentation site runs it): sizes N = 100, 200, 400 with 100 queries
each; the full run: N = 200, 400, 800, 1600 with up to 200 queries each.

Run:

```
python examples/hopfield_capacity.py [--quick] [--seed 0]
```
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from scipy.optimize import curve_fit

from ebmlab.boltzmann import HopfieldNetwork, ModernHopfield

ALPHA_C = 0.138
THRESHOLD = 0.9


def random_patterns(p: int, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (p, n), generator=g).to(torch.float32) * 2 - 1


def classical_recall(
    n: int, alpha: float, n_queries: int, rule: str, g: torch.Generator
) -> np.ndarray:
    """Final overlaps of ``n_queries`` stored patterns used as queries (fresh networks)."""
    p = max(1, round(alpha * n))
    overlaps = []
    while sum(len(o) for o in overlaps) < n_queries:
        xi = random_patterns(p, n, g)
        net = HopfieldNetwork(n, dtype=torch.float32).store(xi, rule)
        q = xi[: min(p, n_queries)]
        out = net.recall(q, mode="async", max_sweeps=20, generator=g)
        overlaps.append(((out.states * q).sum(-1) / n).numpy())
    return np.concatenate(overlaps)[:n_queries]


def modern_recall(n: int, alpha: float, n_queries: int, g: torch.Generator) -> np.ndarray:
    """Overlaps after one attention step from queries with 10% of bits flipped."""
    p = max(1, round(alpha * n))
    xi = random_patterns(p, n, g)
    net = ModernHopfield(xi, beta=8.0 / math.sqrt(n))
    q = xi[: min(p, n_queries)].clone()
    flips = torch.rand(q.shape, generator=g) < 0.1
    q[flips] *= -1
    out = net.retrieve(q, n_steps=1).sign()
    return ((out * xi[: q.shape[0]]).sum(-1) / n).numpy()


def logistic(alpha: np.ndarray, mid: float, width: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp((alpha - mid) / width))


def midpoint(alphas: np.ndarray, frac: np.ndarray, n_queries: int) -> tuple[float, float]:
    """Logistic midpoint of the recalled fraction, and its standard error."""
    sigma = np.sqrt(np.clip(frac * (1 - frac), 0.02, None) / n_queries)
    (mid, _width), cov = curve_fit(
        logistic, alphas, frac, p0=(0.15, 0.01), sigma=sigma, absolute_sigma=True
    )
    return float(mid), float(np.sqrt(cov[0, 0]))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description="Recall versus the number of stored patterns")
    parser.add_argument("--quick", action="store_true", help="smaller networks (a few seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()

    sizes = [100, 200, 400] if args.quick else [200, 400, 800, 1600]
    queries = {n: (100 if args.quick else max(100, min(200, 160_000 // n))) for n in sizes}
    print(f"Classical Hopfield, Hebbian rule: fraction recalled (overlap > {THRESHOLD})")
    # Scan alpha upwards for each size until recall has all but vanished (the
    # failing runs are the expensive ones).
    table: dict[int, dict[float, float]] = {n: {} for n in sizes}
    for n in sizes:
        for a in np.round(np.arange(0.10, 0.3001, 0.01), 3):
            frac = float((classical_recall(n, a, queries[n], "hebbian", g) > THRESHOLD).mean())
            table[n][float(a)] = frac
            if frac < 0.05:
                break
    alphas_all = sorted({a for n in sizes for a in table[n]})
    print("alpha = P/N  " + "  ".join(f"N={n:>5}" for n in sizes))
    for a in alphas_all:
        cells = [f"{table[n][a]:7.2f}" if a in table[n] else " " * 7 for n in sizes]
        print(f"{a:11.2f}  " + "  ".join(cells))

    mids, ses = [], []
    for n in sizes:
        alphas = np.array(list(table[n]))
        mid, se = midpoint(alphas, np.array(list(table[n].values())), queries[n])
        mids.append(mid)
        ses.append(se)
        print(f"N={n:5d}: alpha_50 = {mid:.4f} +- {se:.4f}")
    x = 1 / np.sqrt(np.array(sizes, dtype=float))
    w = 1 / np.array(ses) ** 2
    design = np.stack([np.ones_like(x), x], 1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    alpha_c, slope = cov @ design.T @ (w * np.array(mids))
    alpha_c_se = float(np.sqrt(cov[0, 0]))
    print(
        f"extrapolated capacity alpha_c = {alpha_c:.4f} +- {alpha_c_se:.4f} "
        f"(alpha_50 = alpha_c + {slope:.2f}/sqrt(N)); theory {ALPHA_C}: "
        f"|difference| = {abs(alpha_c - ALPHA_C):.4f} N"
    )

    n_small = sizes[1]
    n_queries = queries[n_small]
    print(f"\nN = {n_small}: fraction recalled by rule (modern: one step, 10% of bits flipped)")
    print(f"{'alpha':>7} {'hebbian':>8} {'storkey':>8} {'modern':>8}")
    modern_alphas = [0.05, 0.1, 0.138, 0.2, 0.3, 1.0, 2.0, 5.0]
    for a in modern_alphas:
        heb = (classical_recall(n_small, a, n_queries, "hebbian", g) > THRESHOLD).mean()
        if a <= 0.3:
            sto = (classical_recall(n_small, a, n_queries, "storkey", g) > THRESHOLD).mean()
        else:
            sto = float("nan")
        mod = (modern_recall(n_small, a, n_queries, g) > THRESHOLD).mean()
        print(f"{a:7.3g} {heb:8.2f} {sto:8.2f} {mod:8.2f}")
    modern_at_5 = float((modern_recall(n_small, 5.0, n_queries, g) > THRESHOLD).mean())
    print(f"\ntime {time.perf_counter() - t0:.1f} s")
    return {
        "alpha_c": float(alpha_c),
        "alpha_c_se": alpha_c_se,
        "modern_recall_at_5N": modern_at_5,
    }


if __name__ == "__main__":
    main()
