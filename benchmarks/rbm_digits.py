"""RBM on binarized digits: training time and exact held-out log-likelihood.

scikit-learn's ``BernoulliRBM`` against ``ebmlab.estimators.BernoulliRBM`` on the
8x8 digits bundled with scikit-learn, pixels binarized at 0.5 after scaling to
[0, 1] (value > 8 of 16), a fixed 80/20 split (``train_test_split``,
``random_state=0``). Same hidden sizes (16 and 20) and the same number of
epochs for every implementation:

* ``scikit-learn``: its defaults (PCD, learning rate 0.1, batch 10);
* ``ebmlab, sklearn settings``: the drop-in with the same defaults (PCD, 0.1, 10);
* ``ebmlab, tuned``: CD-1, batch 20, learning rate 0.1 decayed linearly to 0,
  momentum 0.8, weight decay 1e-4.

The held-out log-likelihood is exact for every model: ``log Z`` by enumerating
the 2^16 or 2^20 hidden states (``ebmlab.boltzmann.BernoulliRBM.exact_log_z``),
applied to each implementation's fitted parameters. Each configuration runs
with several seeds; implementations are interleaved in rounds (one seed of
each, then the next) so that load on the machine hits all alike; the table
gives the median training time and the mean and standard deviation of the
log-likelihood over seeds. It also checks the RBM AIS of Salakhutdinov &
Murray (2008) against the exact log Z of a tuned 20-hidden-unit model.

Run:  python benchmarks/rbm_digits.py [--quick] [--epochs 20] [--seeds 3]
``run(markdown=True)`` returns the report (used by ``benchmarks/discrete.py``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnRBM

from ebmlab.boltzmann import BernoulliRBM as RBMModel
from ebmlab.estimators import BernoulliRBM

TUNED: dict[str, Any] = {
    "training": "cd-1",
    "batch_size": 20,
    "learning_rate": 0.1,
    "lr_schedule": "linear",
    "momentum": 0.8,
    "weight_decay": 1e-4,
}

IMPLEMENTATIONS = ("scikit-learn", "ebmlab, sklearn settings", "ebmlab, tuned")


def load_binarized_digits() -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows of the digits, pixels > 8 of 16 set to 1."""
    x = (load_digits().data / 16.0 > 0.5).astype(np.float64)
    train, test = train_test_split(x, test_size=0.2, random_state=0)
    return train, test


def module_of(est: Any) -> RBMModel:
    """An ebmlab RBM module holding a fitted estimator's parameters (float64)."""
    w = torch.as_tensor(np.asarray(est.components_, dtype=np.float64))
    rbm = RBMModel(w.shape[1], w.shape[0], weight_scale=0.0, dtype=torch.float64)
    with torch.no_grad():
        rbm.weight.copy_(w)
        rbm.visible_bias.copy_(torch.as_tensor(np.asarray(est.intercept_visible_, np.float64)))
        rbm.hidden_bias.copy_(torch.as_tensor(np.asarray(est.intercept_hidden_, np.float64)))
    return rbm


def exact_loglik(est: Any, *xs: np.ndarray) -> list[float]:
    """Mean exact log-likelihood (nats per image) of each array."""
    rbm = module_of(est)
    log_z = rbm.exact_log_z().value
    return [float(rbm.log_prob(torch.as_tensor(x), log_z).mean()) for x in xs]


def make(impl: str, n_hidden: int, epochs: int, seed: int) -> Any:
    if impl == "scikit-learn":
        return SklearnRBM(n_components=n_hidden, n_iter=epochs, random_state=seed)
    if impl == "ebmlab, sklearn settings":
        return BernoulliRBM(n_components=n_hidden, n_iter=epochs, random_state=seed)
    return BernoulliRBM(n_components=n_hidden, n_iter=epochs, random_state=seed, **TUNED)


def measure(
    sizes: tuple[int, ...], epochs: int, seeds: int, time_rounds: int = 0
) -> dict[tuple[str, int], dict[str, list[float]]]:
    train, test = load_binarized_digits()
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    for n_hidden in sizes:
        # Extra timing-only rounds (fits without the log-likelihood), interleaved too.
        for r in range(time_rounds):
            for impl in IMPLEMENTATIONS:
                est = make(impl, n_hidden, epochs, seeds + r)  # other seeds
                t0 = time.perf_counter()
                est.fit(train)
                row = results.setdefault((impl, n_hidden), {"s": [], "test": [], "train": []})
                row["s"].append(time.perf_counter() - t0)
        for seed in range(seeds):
            for impl in IMPLEMENTATIONS:  # interleaved: one seed of each in turn
                est = make(impl, n_hidden, epochs, seed)
                t0 = time.perf_counter()
                est.fit(train)
                seconds = time.perf_counter() - t0
                ll_test, ll_train = exact_loglik(est, test, train)
                row = results.setdefault((impl, n_hidden), {"s": [], "test": [], "train": []})
                row["s"].append(seconds)
                row["test"].append(ll_test)
                row["train"].append(ll_train)
    return results


def ais_check(epochs: int, repeats: int) -> dict[str, Any]:
    """AIS log Z (500 chains, 3000 temperatures, base rates from the data) vs exact."""
    train, _ = load_binarized_digits()
    est = make("ebmlab, tuned", 20, epochs, 0).fit(train)
    rbm = module_of(est)
    exact = rbm.exact_log_z().value
    g = torch.Generator().manual_seed(0)
    errors, stderrs, secs = [], [], []
    for _ in range(repeats):
        est_ais = rbm.ais_log_z(
            n_chains=500, n_betas=3000, data=torch.as_tensor(train), generator=g
        )
        errors.append(est_ais.value - exact)
        stderrs.append(est_ais.stderr)
        secs.append(est_ais.seconds)
    return {"exact": exact, "errors": errors, "stderrs": stderrs, "seconds": secs}


def report(
    results: dict[tuple[str, int], dict[str, list[float]]],
    ais: dict[str, Any] | None,
    epochs: int,
    seeds: int,
    markdown: bool,
) -> str:
    lines = []
    header = (
        "| implementation | hidden | epochs | train time (s, median) | time / scikit-learn "
        "| held-out log-lik (nats/image) | train log-lik |"
    )
    lines += [header, "|---|---:|---:|---:|---:|---:|---:|"]
    for (impl, n_hidden), row in results.items():
        t = statistics.median(row["s"])
        t_ref = statistics.median(results[("scikit-learn", n_hidden)]["s"])
        test = np.array(row["test"])
        sd = f" ± {test.std(ddof=1):.2f}" if len(test) > 1 else ""
        lines.append(
            f"| {impl} | {n_hidden} | {epochs} | {t:.2f} | {t / t_ref:.2f}x "
            f"| {test.mean():.2f}{sd} | {np.mean(row['train']):.2f} |"
        )
    lines.append("")
    n_fits = len(next(iter(results.values()))["s"])
    lines.append(
        f"Log-likelihoods: mean ± standard deviation over {seeds} seeds (`random_state` "
        f"0..{seeds - 1}), exact (log Z by enumerating the hidden layer). Times: median "
        f"of {n_fits} fits per row, implementations interleaved."
    )
    if ais is not None:
        errs = ", ".join(f"{e:+.4f}" for e in ais["errors"])
        lines.append("")
        lines.append(
            f"RBM AIS (500 chains, 3000 temperatures, base rates from the data) on the tuned "
            f"20-hidden-unit model (seed 0): exact log Z = {ais['exact']:.4f}; AIS - exact "
            f"over {len(ais['errors'])} runs: {errs} (standard errors about "
            f"{np.mean(ais['stderrs']):.3f}; {np.median(ais['seconds']):.1f} s per run); "
            f"largest |error| {max(abs(e) for e in ais['errors']):.4f} nats."
        )
    text = "\n".join(lines)
    if not markdown:
        text = text.replace("| ", "").replace(" |", "  ").replace("|", "")
    return text


def run(
    markdown: bool = True,
    *,
    epochs: int = 20,
    seeds: int = 3,
    sizes: tuple[int, ...] = (16, 20),
    ais_repeats: int = 3,
    time_rounds: int = 7,
) -> str:
    """Run the benchmark and return its report (a Markdown table by default)."""
    torch.set_num_threads(1)
    results = measure(sizes, epochs, seeds, time_rounds)
    ais = ais_check(epochs, ais_repeats) if ais_repeats > 0 and 20 in sizes else None
    return report(results, ais, epochs, seeds, markdown)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one seed, 20 hidden, no AIS")
    parser.add_argument("--text", action="store_true", help="plain text instead of Markdown")
    args = parser.parse_args(argv)
    if args.quick:
        print(
            run(
                not args.text,
                epochs=args.epochs,
                seeds=1,
                sizes=(20,),
                ais_repeats=0,
                time_rounds=0,
            )
        )
    else:
        print(run(not args.text, epochs=args.epochs, seeds=args.seeds))


if __name__ == "__main__":
    main()
