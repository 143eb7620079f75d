"""Image EBMs on the CPU: generation quality at equal CPU time, update throughput.

Parts (``--part``):

* ``generation``: mnist5k (4,000 train / 1,000 test, stratified), FID and KID in
  the features of a small classifier trained once on the 4,000 training images
  (``ebmlab.sample_quality``; **not comparable with Inception FID**), of 1,000
  replay-buffer samples. Two recipes, the same network (the UvA tutorial's
  CNN, ``ConvEnergy`` defaults), the same CPU-time budget per run, 3 seeds:

  - ``ebmlab default``: ``ebmlab train --data builtin:mnist5k``'s recipe, run
    through ``ebmlab.runs.train_run`` (so through ``train.fit``);
  - ``UvA tutorial``: the tutorial's recipe written plainly here with its
    published settings: 60 SGLD steps of size 10, noise 0.005, per-pixel
    gradient clamp 0.03, buffer 8,192 (FIFO), 5% restarts, energy penalty 0.1,
    data noise 0.005, Adam 1e-4 betas (0, 0.999), batch 128.

  ebmlab's number of updates is set from a calibration (CPU seconds per update
  measured on short runs) so that its whole ``train_run`` (data loading and
  buffer set-up included) uses the budget; the UvA loop stops when its CPU time
  reaches the CPU time that ebmlab's run of the same seed used (at least the
  budget). The table states each run's measured CPU time.
  Floor: the same distances for 1,000 held-out real images.

* ``perf``: ebmlab's image update (``train.fit`` with the default recipe's
  objective) against a plain PyTorch loop of the same recipe and network from
  the same weights, interleaved rounds, images per CPU second (and per wall
  second) and the ratio. The plain loop computes 20 gradients per chain run;
  ebmlab's too (the last Langevin move skips the unused end-point gradient).

* ``classification``: mnist5k (4,000 train / 1,000 test, stratified per seed),
  JEM (``EnergyClassifier(backbone="conv", image_shape=(1, 28, 28))``, trained
  through ``train.fit``) against the same network trained by cross-entropy
  alone (``generative_weight=0, energy_reg=0``), LogisticRegression (``C=0.1``)
  and MLPClassifier (one hidden layer of 256) on pixels / 255: accuracy, ECE
  (15 bins), NLL; OOD AUROC of JEM's ``score_samples`` and of the CE network's
  maximum softmax probability and energy score (``logsumexp`` of the logits,
  Liu et al. 2020) against uniform noise and inverted digits (``1 - x``).
  ``--epochs`` sets the budget of both networks (default: the estimator's, 10
  passes for an image trunk); JEM's fit time is reported in wall and CPU seconds.
  Calibration noise: each model's ECE floor (the ECE a perfectly calibrated
  model with its confidences shows on the same 1,000 rows,
  ``ebmlab.estimators.classifier.ece_floor``), its Brier score, and a paired
  bootstrap of the test rows for the ECE difference of JEM and the CE network
  (per seed and for the mean over seeds); ``--reliability PNG`` draws the
  reliability diagram of both over the test rows of all seeds.

* ``heldout``: the same two networks trained on digits 0-4 only; AUROC of
  test digits 0-4 against test digits 5-9 (JEM's ``score_samples`` and maximum
  softmax probability, the CE network's maximum softmax and energy score).

* ``grids``: one JEM fit; 10 class-conditional samples per digit (SGLD on
  ``E(x, y)`` from uniform noise, 200 steps), one row per digit, as a PNG,
  and the share of each row that JEM classifies as the digit asked for.

* ``restoration``: mnist5k test images with the lower half masked, 50% of
  the pixels missing, Gaussian noise 0.3 and 0.6: PSNR of ``ebmlab denoise``
  (an ``ncsm`` run) against KNNImputer, IterativeImputer, PCA projection and a
  Gaussian filter tuned on validation images (``benchmarks/_images_restoration.py``).

* ``density``: 8x8 digits, dequantized test log-likelihood of the image EBM
  (AIS/BDMC bracket) beside GaussianMixture and the Gaussian-Bernoulli RBM.
  The EBM is a product of two experts: the cross-validated mixture times a
  bounded CNN correction ``exp(-c tanh(f / c))``, the CNN trained by
  noise-contrastive estimation against the mixture (through ``train.fit``);
  AIS/BDMC anneals from the mixture, over ``R^64`` as for the baselines
  (``--bound`` sets ``c``, 10 by default; ``--is-check N`` adds a plain
  importance-sampling estimate of log Z from the mixture, N draws).

Run:  python benchmarks/images.py --part generation --budget 150 --seeds 0,1,2
      python benchmarks/images.py --part classification --seeds 0,1,2 --reliability r.png
      python benchmarks/images.py --part density --seeds 0 --bound 10
      python benchmarks/images.py --part perf --updates 10 --rounds 3
      python benchmarks/images.py --part restoration --seeds 0,1,2
Use ``--threads 1`` on a shared machine (the default).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ebmlab.config import RunConfig
from ebmlab.energies import ConvEnergy, Energy
from ebmlab.runs import build_energy, train_run
from ebmlab.runs.images import image_run_config, load_image_data
from ebmlab.sample_quality import image_quality, train_feature_classifier

SOURCE = "builtin:mnist5k"


# ------------------------------------------------------------------ the plain recipe


class PlainRecipe:
    """SGLD with a FIFO replay buffer, as in the UvA tutorial (written plainly)."""

    def __init__(
        self,
        model: nn.Module,
        *,
        n_steps: int = 60,
        step_size: float = 10.0,
        noise: float = 0.005,
        grad_clamp: float = 0.03,
        buffer_size: int = 8192,
        reinit: float = 0.05,
        alpha: float = 0.1,
        lr: float = 1e-4,
        batch: int = 128,
        seed: int = 0,
    ) -> None:
        self.model, self.n_steps, self.step_size, self.noise = model, n_steps, step_size, noise
        self.grad_clamp, self.reinit, self.alpha, self.batch = grad_clamp, reinit, alpha, batch
        self.buffer_size = buffer_size
        self.g = torch.Generator().manual_seed(seed)
        shape = model.event_shape  # type: ignore[attr-defined]
        self.buffer = torch.rand((buffer_size, *shape), generator=self.g) * 2 - 1
        self.opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.0, 0.999))

    def sample(self) -> Tensor:
        n_new = int((torch.rand(self.batch, generator=self.g) < self.reinit).sum())
        fresh = torch.rand((n_new, *self.buffer.shape[1:]), generator=self.g) * 2 - 1
        idx = torch.randint(self.buffer.shape[0], (self.batch - n_new,), generator=self.g)
        x = torch.cat([fresh, self.buffer[idx]]).detach()
        for p in self.model.parameters():
            p.requires_grad_(False)
        x.requires_grad_(True)
        for _ in range(self.n_steps):
            z = torch.randn(x.shape, generator=self.g)
            x.data.add_(z, alpha=self.noise).clamp_(-1, 1)
            (g,) = torch.autograd.grad(self.model(x).sum(), x)  # the energy's gradient
            x.data.add_(g.clamp(-self.grad_clamp, self.grad_clamp), alpha=-self.step_size)
            x.data.clamp_(-1, 1)
        for p in self.model.parameters():
            p.requires_grad_(True)
        x = x.detach()
        self.buffer = torch.cat([x, self.buffer])[: self.buffer_size]
        return x

    def update(self, real: Tensor) -> float:
        real = (real + self.noise * torch.randn(real.shape, generator=self.g)).clamp(-1, 1)
        fake = self.sample()
        e = self.model(torch.cat([real, fake]))
        e_pos, e_neg = e[: real.shape[0]], e[real.shape[0] :]
        loss = e_pos.mean() - e_neg.mean() + self.alpha * (e_pos**2 + e_neg**2).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss)


def uva_model(seed: int) -> ConvEnergy:
    torch.manual_seed(seed)
    return ConvEnergy((1, 28, 28))  # the tutorial's CNN: 16-32-64-64 strided convs, 64 hidden


# ------------------------------------------------------------------ generation


def _cfg(seed: int, steps: int) -> RunConfig:
    cfg = image_run_config(SOURCE)
    cfg.seed = seed
    cfg.train.steps = steps
    cfg.train.checkpoint_every = 0
    cfg.train.threads = 1
    return cfg


def _ebmlab_run(seed: int, steps: int, out: Path) -> tuple[float, Path]:
    t0 = time.process_time()
    train_run(_cfg(seed, steps), out, progress=False, evaluate=False)
    return time.process_time() - t0, out


def _buffer_samples(out: Path, n: int, seed: int) -> Tensor:
    from safetensors.torch import load_file

    buf = load_file(str(out / "train_state.safetensors"))["extra.buffer"]
    g = torch.Generator().manual_seed(seed)
    return buf[torch.randperm(buf.shape[0], generator=g)[:n]].float()


def generation(budget: float, seeds: list[int], tmp: Path) -> dict[str, Any]:
    cfg = image_run_config(SOURCE)
    train, test = load_image_data(cfg, torch.float32)
    from ebmlab.runs.images import _labels

    y_tr, y_te = _labels(cfg)
    assert y_tr is not None and y_te is not None
    clf, prov = train_feature_classifier(train, y_tr, seed=0, x_test=test, y_test=y_te)
    print(f"feature classifier: test accuracy {prov['test_accuracy']:.3f}", flush=True)
    g = torch.Generator().manual_seed(123)
    ref = train[torch.randperm(train.shape[0], generator=g)[:1000]]
    floor = image_quality({}, clf, ref, test[:1000])
    # calibration: CPU seconds per update of ebmlab's run (2 and 6 updates)
    c2, _ = _ebmlab_run(0, 2, tmp / "cal2")
    c6, _ = _ebmlab_run(0, 6, tmp / "cal6")
    per = max((c6 - c2) / 4, 1e-3)
    setup = max(c2 - 2 * per, 0.0)
    steps = max(1, int((budget - setup) / per))
    print(f"ebmlab: {per:.2f} CPU s/update, setup {setup:.1f} s -> {steps} updates", flush=True)
    rows = []
    for seed in seeds:
        cpu, out = _ebmlab_run(seed, steps, tmp / f"ebmlab{seed}")
        q = image_quality({"s": _buffer_samples(out, 1000, seed)}, clf, ref, test[:1000])
        rows.append(
            {
                "recipe": "ebmlab default",
                "seed": seed,
                "updates": steps,
                "cpu_s": cpu,
                "fid": q["fid_s"],
                "kid": q["kid_s"],
            }
        )
        print(rows[-1], flush=True)
        model = uva_model(seed)
        recipe = PlainRecipe(model, seed=seed)
        gb = torch.Generator().manual_seed(seed)
        t0 = time.process_time()
        n_up = 0
        # equal CPU time: the UvA loop gets what ebmlab's run of this seed used
        uva_budget = max(budget, rows[-1]["cpu_s"])
        while time.process_time() - t0 < uva_budget:
            idx = torch.randint(train.shape[0], (128,), generator=gb)
            recipe.update(train[idx])
            n_up += 1
        cpu = time.process_time() - t0
        samples = recipe.buffer[torch.randperm(8192, generator=gb)[:1000]]
        q = image_quality({"s": samples}, clf, ref, test[:1000])
        rows.append(
            {
                "recipe": "UvA tutorial",
                "seed": seed,
                "updates": n_up,
                "cpu_s": cpu,
                "fid": q["fid_s"],
                "kid": q["kid_s"],
            }
        )
        print(rows[-1], flush=True)
    return {"budget_cpu_s": budget, "rows": rows, "floor": floor, "classifier": prov}


# ------------------------------------------------------------------ density (digits)


class ResidualImageEnergy(Energy):
    """``E(x) = -log q(x) + c tanh(f(x) / c)``: a fixed Gaussian mixture ``q`` (flat,
    normalized) times a bounded convolutional correction ``exp(-f)``.

    A product of two experts: ``exp(-E)`` is integrable (at most ``e^c`` times
    ``q``), the mixture carries the mass and the CNN reshapes it where the
    mixture is wrong; ``log Z`` lies in ``[-c, c]`` and AIS from ``q`` is short.
    """

    def __init__(self, q: Energy, shape: tuple[int, int, int], bound: float) -> None:
        super().__init__(shape)
        self.q = q
        for p in q.parameters():
            p.requires_grad_(False)
        self.f = ConvEnergy(shape, [32, 64], hidden=64)
        self.bound = float(bound)

    def correction(self, x: Tensor) -> Tensor:
        """``c tanh(f(x) / c)``: ``E(x) + log q(x)``, in ``(-c, c)``; ``(N, C, H, W) -> (N,)``."""
        return self.bound * torch.tanh(self.f(x) / self.bound)

    def forward(self, x: Tensor) -> Tensor:
        return self.q(x.reshape(x.shape[0], -1)) + self.correction(x)


def importance_log_z(
    energy: ResidualImageEnergy, n: int, seed: int, chunk: int = 10_000
) -> tuple[float, float]:
    """log Z of a :class:`ResidualImageEnergy` by plain importance sampling from its
    (normalized) mixture: ``Z = E_q[exp(-c tanh(f / c))]``, ``n`` draws.

    Unbiased for ``Z`` (so a stochastic lower bound on ``log Z``) and independent
    of the AIS chains: a check on BDMC where its effective sample size is large.

    Returns:
        ``(log Z estimate, effective sample size of the n weights)``.
    """
    g = torch.Generator().manual_seed(seed)
    q: Any = energy.q
    parts = []
    with torch.no_grad():
        for i in range(0, n, chunk):
            x = q.sample(min(chunk, n - i), generator=g)
            parts.append(-energy.correction(x.reshape(-1, *energy.event_shape)))
    log_w = torch.cat(parts).double()
    lse = torch.logsumexp(log_w, 0)
    ess = torch.exp(2 * lse - torch.logsumexp(2 * log_w, 0))
    return float(lse) - math.log(n), float(ess)


class _FlatNoise(nn.Module):
    """A flat mixture as NCE noise for images: ``log_prob`` of flattened images."""

    def __init__(self, q: Energy) -> None:
        super().__init__()
        self.q = q

    def log_prob(self, x: Tensor) -> Tensor:
        return -self.q(x.reshape(x.shape[0], -1))

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return self.q.sample(n, generator=generator)


def density(
    steps: int,
    n_temperatures: int,
    n_chains: int,
    seed: int = 0,
    *,
    n_transitions: int = 1,
    lr: float = 1e-2,
    bound: float = 10.0,
    is_samples: int = 0,
) -> dict[str, Any]:
    """Dequantized digits test log-likelihood: the image EBM (AIS/BDMC bracket)
    beside scikit-learn's GaussianMixture (components by cross-validation; exact)
    and ebmlab's Gaussian-Bernoulli RBM (exact log Z over 2^16 hidden states).

    The EBM is :class:`ResidualImageEnergy` on the cross-validated mixture,
    trained by noise-contrastive estimation against that mixture through
    ``train.fit``; its log Z is bracketed by AIS/BDMC from the mixture.
    """
    from sklearn.mixture import GaussianMixture as SkGaussianMixture
    from sklearn.model_selection import GridSearchCV

    from ebmlab.boltzmann import GaussianBernoulliRBM, fit_cd
    from ebmlab.energies import GaussianMixture
    from ebmlab.objectives import NoiseContrastiveEstimation
    from ebmlab.runs.images import dequantized_log_likelihood, scaling_of
    from ebmlab.train import TrainSettings, fit

    cfg = image_run_config("builtin:digits")
    cfg.seed = seed
    cfg.evaluate.ais_temperatures, cfg.evaluate.ais_chains = n_temperatures, n_chains
    train, test = load_image_data(cfg, torch.float64)
    scaling = scaling_of(cfg)
    assert scaling is not None
    level = 2.0 / (scaling.high - scaling.low)
    d = 64
    jac = d * math.log(level)
    g = torch.Generator().manual_seed(seed + 99)

    def deq(x: Tensor) -> Tensor:
        return x + level * (torch.rand(x.shape, generator=g, dtype=torch.float64) - 0.5)

    tr_t, te_t = deq(train), deq(test)
    tr, te = tr_t.reshape(-1, d).numpy(), te_t.reshape(-1, d).numpy()
    rows = []
    t0 = time.process_time()
    search = GridSearchCV(
        SkGaussianMixture(covariance_type="full", reg_covar=1e-3, random_state=seed),
        {"n_components": [1, 2, 5, 10, 20]},
        cv=3,
    ).fit(tr)
    gm = search.best_estimator_
    ll = gm.score_samples(te) + jac
    rows.append(
        {
            "model": f"GaussianMixture ({gm.n_components} full, CV)",
            "ll": float(ll.mean()),
            "lower": float(ll.mean()),
            "upper": float(ll.mean()),
            "exact": True,
            "cpu_s": time.process_time() - t0,
        }
    )
    print(rows[-1], flush=True)
    t0 = time.process_time()
    torch.manual_seed(seed)
    rbm = GaussianBernoulliRBM(
        d, 16, learn_sigma=True, generator=torch.Generator().manual_seed(seed)
    ).double()
    fit_cd(
        rbm,
        torch.as_tensor(tr),
        n_epochs=30,
        batch_size=20,
        learning_rate=0.01,
        training="cd",
        lr_schedule="linear",
        generator=torch.Generator().manual_seed(seed),
    )
    with torch.no_grad():
        lp = rbm.log_prob(torch.as_tensor(te)) + jac
    rows.append(
        {
            "model": "GaussianBernoulliRBM (16 hidden, CD-1, 30 epochs; exact log Z)",
            "ll": float(lp.mean()),
            "lower": float(lp.mean()),
            "upper": float(lp.mean()),
            "exact": True,
            "cpu_s": time.process_time() - t0,
        }
    )
    print(rows[-1], flush=True)

    def t(a: Any) -> Tensor:
        return torch.as_tensor(a, dtype=torch.float64)

    q = GaussianMixture(t(gm.weights_), t(gm.means_), t(gm.covariances_))
    t0 = time.process_time()
    torch.manual_seed(seed)
    energy = ResidualImageEnergy(q, (1, 8, 8), bound).double()
    # Four dequantizations of each training image (fresh noise per copy).
    data = torch.cat([deq(train) for _ in range(4)])
    nce = NoiseContrastiveEstimation(_FlatNoise(q), 1.0).double()
    fit(
        energy,
        data,
        nce,
        TrainSettings(
            steps=steps, batch_size=128, lr=lr, warmup_steps=50, checkpoint_every=0, seed=seed
        ),
        progress=False,
    )
    train_cpu = time.process_time() - t0
    t0 = time.process_time()
    r = dequantized_log_likelihood(
        energy,
        test,
        scaling,
        cfg,
        seed=seed + 7,
        base=q,
        box=False,
        n_transitions=n_transitions,
        dequantized=te_t,
    )
    ais_cpu = time.process_time() - t0
    t0 = time.process_time()
    log_z_is, is_ess = importance_log_z(energy, is_samples, seed + 13) if is_samples else (0, 0)
    is_cpu = time.process_time() - t0
    fwd, rev = r["ll_log_z"]["details"]["forward"], r["ll_log_z"]["details"]["reverse"]
    rows.append(
        {
            "model": f"ebmlab image EBM (mixture x bounded CNN, c = {bound:g}, NCE, {steps} "
            f"updates; AIS/BDMC {n_chains}x{n_temperatures}x{n_transitions})",
            "bound": bound,
            "ll": r["ll_nats_per_image"],
            "lower": r["ll_nats_per_image_lower"],
            "upper": r["ll_nats_per_image_upper"],
            "exact": False,
            "cpu_s": train_cpu,
            "ais_cpu_s": ais_cpu,
            "bracket": r["ll_bracket_width"],
            "log_z": r["ll_log_z"]["value"],
            "log_z_nce": float(nce.log_z.detach()),
            "forward_ess": fwd["ess"],
            "reverse_ess": rev["ess"],
            "reverse_from_exact_samples": r["ll_samples_exact"],
            "is_samples": is_samples,
            "log_z_is": log_z_is if is_samples else None,
            "is_ess": is_ess if is_samples else None,
            "is_cpu_s": is_cpu,
        }
    )
    print(rows[-1], flush=True)
    for row in rows:
        row["bits_per_dim"] = -row["ll"] / (d * math.log(2))
    return {
        "rows": rows,
        "n_test": int(test.shape[0]),
        "units": "nats per image, per unit of one grey level (17 levels), dequantized uniformly",
    }


# ------------------------------------------------------------------ perf


def perf(n_updates: int, rounds: int) -> dict[str, Any]:
    """ebmlab's fit vs the plain loop of the same recipe, same weights, interleaved."""
    from ebmlab.runs import _objective
    from ebmlab.train import TrainSettings, fit

    cfg = _cfg(0, n_updates)
    train, _ = load_image_data(cfg, torch.float32)
    o, s = cfg.objective, cfg.sampler
    res: dict[str, list[float]] = {"ebmlab": [], "plain": []}
    wall: dict[str, list[float]] = {"ebmlab": [], "plain": []}
    for r in range(rounds + 1):  # round 0: warm-up
        order = ["ebmlab", "plain"] if r % 2 == 0 else ["plain", "ebmlab"]
        for impl in order:
            energy = build_energy(cfg, (1, 28, 28))
            if impl == "ebmlab":
                obj = _objective(cfg, [(-1.0, 1.0)] * 784, (1, 28, 28), torch.device("cpu"), train)
                state = obj.init_state(
                    o.n_chains,
                    reinit_prob=o.reinit_prob,
                    generator=torch.Generator().manual_seed(1),
                )
                obj.n_negatives = cfg.train.batch_size
                st = TrainSettings(
                    steps=n_updates,
                    batch_size=cfg.train.batch_size,
                    lr=cfg.train.lr,
                    betas=cfg.train.betas,
                    lr_schedule="constant",
                    warmup_steps=0,
                )
                t0, w0 = time.process_time(), time.perf_counter()
                fit(energy, train, obj, st, state=state, progress=False)
            else:
                recipe = PlainRecipe(
                    energy,
                    n_steps=o.n_steps,
                    step_size=s.step_size,
                    noise=s.noise_scale or 0.0,
                    grad_clamp=s.grad_clamp or 1.0,
                    buffer_size=o.n_chains or 8192,
                    reinit=o.reinit_prob,
                    alpha=o.alpha,
                    lr=cfg.train.lr,
                    batch=cfg.train.batch_size,
                )
                gb = torch.Generator().manual_seed(2)
                t0, w0 = time.process_time(), time.perf_counter()
                for _ in range(n_updates):
                    recipe.update(train[torch.randint(train.shape[0], (128,), generator=gb)])
            res[impl].append(n_updates * cfg.train.batch_size / (time.process_time() - t0))
            wall[impl].append(n_updates * cfg.train.batch_size / (time.perf_counter() - w0))
            print(impl, f"{res[impl][-1]:.1f} images/CPU-s, {wall[impl][-1]:.1f} wall", flush=True)
    for v in (*res.values(), *wall.values()):
        del v[0]  # the warm-up round
    ratios = [a / b for a, b in zip(res["ebmlab"], res["plain"], strict=True)]
    wall_ratios = [a / b for a, b in zip(wall["ebmlab"], wall["plain"], strict=True)]
    return {
        "images_per_cpu_s": res,
        "images_per_wall_s": wall,
        "wall_ratio_median": statistics.median(wall_ratios),
        "note": "round 0 is a warm-up for both and is not in the ratios",
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
        "threads": torch.get_num_threads(),
        "n_updates": n_updates,
    }


def _auroc(pos: Any, neg: Any) -> float:
    import numpy as np
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]))


def _jem_net(epochs: int | None) -> dict[str, Any]:
    """The image settings of both networks (``epochs=None``: the estimator's default)."""
    net: dict[str, Any] = {"backbone": "conv", "image_shape": (1, 28, 28)}
    if epochs is not None:
        net["n_epochs"] = epochs
    return net


def classification(
    epochs: int | None, seeds: list[int], reliability_png: str | None = None
) -> dict[str, Any]:
    """JEM vs the CE network vs LogisticRegression / MLPClassifier on mnist5k.

    With ``reliability_png``, a reliability diagram of JEM and the CE network over the test
    rows of all seeds together.
    """
    import numpy as np
    from scipy.special import logsumexp
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    from ebmlab.data.images import load_images, stratified_split
    from ebmlab.estimators import EnergyClassifier
    from ebmlab.estimators.classifier import ece_floor, expected_calibration_error
    from ebmlab.plotting import plot_reliability

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _calibration_noise import brier, paired_ece_bootstrap

    data = load_images("builtin:mnist5k")
    assert data.y is not None
    X_all = (data.x.reshape(data.x.shape[0], -1).double().numpy() + 1.0) / 2.0  # [0, 1]
    y_all = data.y.numpy()
    rows: dict[str, list[dict[str, float]]] = {}
    jem_name, ce_name = "JEM (EnergyClassifier)", "CE network (same net, generative_weight=0)"
    differences: list[dict[str, float]] = []
    draws: list[np.ndarray] = []
    pooled: dict[str, list[np.ndarray]] = {jem_name: [], ce_name: [], "y": []}
    for seed in seeds:
        tr, te = stratified_split(X_all.shape[0], data.y, 0.2, seed)
        Xtr, Xte, ytr, yte = (
            X_all[tr.numpy()],
            X_all[te.numpy()],
            y_all[tr.numpy()],
            y_all[te.numpy()],
        )
        rng = np.random.RandomState(10_000 + seed)
        ood = {"noise": rng.rand(*Xte.shape), "inverted": 1.0 - Xte}
        net = _jem_net(epochs)
        probas: dict[str, np.ndarray] = {}
        models: dict[str, Any] = {
            jem_name: EnergyClassifier(**net, random_state=seed),
            ce_name: EnergyClassifier(
                **net, generative_weight=0.0, energy_reg=0.0, random_state=seed
            ),
            "LogisticRegression": LogisticRegression(C=0.1, max_iter=2000),
            "MLPClassifier": MLPClassifier((256,), max_iter=200, random_state=seed),
        }
        for name, model in models.items():
            t0, c0 = time.perf_counter(), time.process_time()
            model.fit(Xtr, ytr)
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            proba = probas[name] = model.predict_proba(Xte)
            n_seen = Xtr.shape[0] * int(getattr(model, "n_epochs_", 0))
            y_idx = np.searchsorted(model.classes_, yte)
            floor, floor_sd = ece_floor(proba, seed=seed)
            row = {
                "accuracy": float((model.classes_[proba.argmax(1)] == yte).mean()),
                "ece": expected_calibration_error(proba, y_idx),
                "ece floor": floor,
                "ece floor sd": floor_sd,
                "nll": float(-np.log(np.clip(proba[np.arange(len(yte)), yte], 1e-12, 1)).mean()),
                "brier": brier(proba, y_idx),
                "fit_seconds": secs,
                "fit_cpu_seconds": cpu,
                "images_per_second": n_seen / secs if n_seen else float("nan"),
                "images_per_cpu_second": n_seen / cpu if n_seen else float("nan"),
            }
            for kind, Xo in ood.items():
                if isinstance(model, EnergyClassifier):
                    if model.generative_weight > 0:
                        row[f"auroc {kind}"] = _auroc(
                            model.score_samples(Xte), model.score_samples(Xo)
                        )
                    else:
                        row[f"auroc {kind} (MSP)"] = _auroc(
                            model.predict_proba(Xte).max(1), model.predict_proba(Xo).max(1)
                        )
                        lo_in, lo_out = model.decision_function(Xte), model.decision_function(Xo)
                        row[f"auroc {kind} (energy)"] = _auroc(
                            logsumexp(lo_in, 1), logsumexp(lo_out, 1)
                        )
                else:
                    row[f"auroc {kind} (MSP)"] = _auroc(
                        model.predict_proba(Xte).max(1), model.predict_proba(Xo).max(1)
                    )
            rows.setdefault(name, []).append(row)
            print(name, seed, {k: round(v, 4) for k, v in row.items()}, flush=True)
        y_te = np.searchsorted(np.unique(ytr), yte)
        for key, value in ((jem_name, probas[jem_name]), (ce_name, probas[ce_name]), ("y", y_te)):
            pooled[key].append(value)
        draws.append(paired_ece_bootstrap(probas[jem_name], probas[ce_name], y_te, 2000, seed))
        differences.append(
            {
                "observed": rows[jem_name][-1]["ece"] - rows[ce_name][-1]["ece"],
                "bootstrap sd": float(draws[-1].std()),
            }
        )
        print("ECE JEM - CE", seed, differences[-1], flush=True)
    summary: dict[str, Any] = {
        name: {
            k: (float(np.mean([r[k] for r in rs])), float(np.std([r[k] for r in rs])))
            for k in rs[0]
        }
        for name, rs in rows.items()
    }
    # The mean over seeds of the paired difference; its spread from the per-seed bootstraps
    # (resamples of each seed's test rows, averaged across seeds draw by draw).
    mean_draws = np.mean(draws, 0)
    if reliability_png:
        y_all_seeds = np.concatenate(pooled["y"])
        curves = {}
        for name, short in ((jem_name, "JEM"), (ce_name, "CE network")):
            p = np.concatenate(pooled[name])
            curves[f"{short} (ECE {100 * expected_calibration_error(p, y_all_seeds):.2f}%)"] = p
        plot_reliability(curves, y_all_seeds, reliability_png)
    summary["ECE JEM - CE, mean over seeds"] = {
        "observed": float(np.mean([d["observed"] for d in differences])),
        "bootstrap sd": float(mean_draws.std()),
        "bootstrap 95% interval": [float(q) for q in np.percentile(mean_draws, [2.5, 97.5])],
    }
    return {
        "epochs": epochs,
        "seeds": seeds,
        "per_seed": rows,
        "ece_difference_per_seed": differences,
        "summary": summary,
    }


def heldout(epochs: int | None, seeds: list[int]) -> dict[str, Any]:
    """JEM and the CE network trained on digits 0-4; digits 5-9 of the test rows are OOD."""
    import numpy as np
    from scipy.special import logsumexp

    from ebmlab.data.images import load_images, stratified_split
    from ebmlab.estimators import EnergyClassifier

    data = load_images("builtin:mnist5k")
    assert data.y is not None
    X_all = (data.x.reshape(data.x.shape[0], -1).double().numpy() + 1.0) / 2.0
    y_all = data.y.numpy()
    out: dict[str, list[float]] = {}
    for seed in seeds:
        tr_t, te_t = stratified_split(X_all.shape[0], data.y, 0.2, seed)
        tr, te = tr_t.numpy(), te_t.numpy()
        keep = tr[y_all[tr] < 5]
        Xin, Xout = X_all[te[y_all[te] < 5]], X_all[te[y_all[te] >= 5]]
        net = _jem_net(epochs)
        jem = EnergyClassifier(**net, random_state=seed).fit(X_all[keep], y_all[keep])
        ce = EnergyClassifier(**net, generative_weight=0.0, energy_reg=0.0, random_state=seed).fit(
            X_all[keep], y_all[keep]
        )
        row = {
            "JEM score_samples": _auroc(jem.score_samples(Xin), jem.score_samples(Xout)),
            "JEM max softmax": _auroc(
                jem.predict_proba(Xin).max(1), jem.predict_proba(Xout).max(1)
            ),
            "JEM max logit": _auroc(
                jem.decision_function(Xin).max(1), jem.decision_function(Xout).max(1)
            ),
            "CE max softmax": _auroc(ce.predict_proba(Xin).max(1), ce.predict_proba(Xout).max(1)),
            "CE energy": _auroc(
                logsumexp(ce.decision_function(Xin), 1), logsumexp(ce.decision_function(Xout), 1)
            ),
        }
        print("held-out", seed, row, flush=True)
        for k, v in row.items():
            out.setdefault(k, []).append(v)
    summary = {k: (float(np.mean(v)), float(np.std(v))) for k, v in out.items()}
    return {"epochs": epochs, "seeds": seeds, "auroc": out, "summary": summary}


def grids(epochs: int | None, seed: int, png: str) -> dict[str, Any]:
    """A JEM fit on mnist5k's 4,000 training images; 10 class-conditional samples per digit."""
    import numpy as np

    from ebmlab.data.images import load_images, stratified_split
    from ebmlab.estimators import EnergyClassifier
    from ebmlab.runs.images import write_image_samples

    data = load_images("builtin:mnist5k")
    assert data.y is not None
    X_all = (data.x.reshape(data.x.shape[0], -1).double().numpy() + 1.0) / 2.0
    tr, _ = stratified_split(X_all.shape[0], data.y, 0.2, seed)
    net = _jem_net(epochs)
    jem = EnergyClassifier(**net, random_state=seed).fit(X_all[tr], data.y.numpy()[tr])
    rows = [jem.sample(10, y=k, n_steps=200) for k in range(10)]
    x = torch.as_tensor(np.concatenate(rows)).reshape(-1, 1, 28, 28).float() * 2 - 1
    write_image_samples(x.clamp(-1, 1), png, None)
    agree = [float(np.mean(jem.predict(r) == k)) for k, r in enumerate(rows)]
    return {"epochs": epochs, "seed": seed, "png": png, "classified_as_asked": agree}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--part",
        choices=[
            "generation",
            "perf",
            "density",
            "classification",
            "heldout",
            "grids",
            "restoration",
        ],
        default="generation",
    )
    ap.add_argument("--steps", type=int, default=1500, help="density: EBM updates")
    ap.add_argument("--temperatures", type=int, default=1500, help="density: AIS temperatures")
    ap.add_argument("--chains", type=int, default=256, help="density: AIS chains")
    ap.add_argument(
        "--transitions", type=int, default=1, help="density: HMC moves per temperature"
    )
    ap.add_argument(
        "--bound", type=float, default=10.0, help="density: bound c of the CNN correction"
    )
    ap.add_argument(
        "--is-check",
        type=int,
        default=200_000,
        help="density: draws from the mixture for a plain importance-sampling check of log Z",
    )
    ap.add_argument("--budget", type=float, default=150.0, help="CPU seconds per training run")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=None, help="JEM: epochs (default: the default)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--png", default="jem_grids.png", help="grids: the PNG to write")
    ap.add_argument(
        "--reliability", help="classification: write a reliability diagram (PNG) of JEM and CE"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.part == "generation":
        with tempfile.TemporaryDirectory() as tmp:
            out = generation(args.budget, [int(s) for s in args.seeds.split(",")], Path(tmp))
    elif args.part == "density":
        out = {
            "seeds": [
                density(
                    args.steps,
                    args.temperatures,
                    args.chains,
                    int(seed),
                    n_transitions=args.transitions,
                    bound=args.bound,
                    is_samples=args.is_check,
                )
                for seed in args.seeds.split(",")
            ]
        }
    elif args.part == "restoration":  # benchmarks/_images_restoration.py
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _images_restoration import restoration

        out = restoration([int(s) for s in args.seeds.split(",")])
    elif args.part == "grids":
        out = grids(args.epochs, int(args.seeds.split(",")[0]), args.png)
    elif args.part == "heldout":
        out = heldout(args.epochs, [int(s) for s in args.seeds.split(",")])
    elif args.part == "classification":
        out = classification(
            args.epochs, [int(s) for s in args.seeds.split(",")], args.reliability
        )
    else:
        out = perf(args.updates, args.rounds)
    text = json.dumps(out, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
