"""Sample quality for images: FID and KID in the features of a small classifier.

Inception FID needs a 100 MB network trained on ImageNet, which ebmlab does
not download; on 8x8 or 28x28 digits its features are also a poor fit. Here the
feature network is a small CNN classifier trained on the run's own training
images and labels (:func:`train_feature_classifier`), and the distances are
computed in its 128-d penultimate layer. **These numbers are not comparable
with Inception FID** or with FIDs from other feature networks; they compare
models on the same data set with the same classifier (its provenance is stored
beside them). The same distances for held-out real images against the training
images give the floor: a perfect sampler scores about that, not 0.

References:
    Heusel, M. et al. (2017). GANs trained by a two time-scale update rule
    converge to a local Nash equilibrium (FID). https://arxiv.org/abs/1706.08500
    Binkowski, M. et al. (2018). Demystifying MMD GANs (KID).
    https://arxiv.org/abs/1801.01401
"""

from __future__ import annotations

__all__ = [
    "FeatureClassifier",
    "fid",
    "image_quality",
    "kid",
    "train_feature_classifier",
]

import math
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .train.loop import TrainSettings, fit


class FeatureClassifier(nn.Module):
    """A small CNN classifier whose 128-d penultimate layer serves as features.

    Arguments:
        event_shape: ``(C, H, W)`` of the images (in ``[-1, 1]``).
        n_classes: Number of labels.
        width: Channels of the first convolution (the second has twice as many).
    """

    def __init__(self, event_shape: tuple[int, ...], n_classes: int, width: int = 32) -> None:
        super().__init__()
        c = int(event_shape[0])
        self.event_shape = tuple(int(s) for s in event_shape)
        self.n_classes = int(n_classes)
        self.width = int(width)
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1),
            nn.SiLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.SiLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(2 * width * 16, 128),
            nn.SiLU(),
        )
        self.head = nn.Linear(128, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits ``(N, n_classes)`` of images ``(N, C, H, W)``."""
        return self.head(self.features(x))

    @torch.no_grad()
    def embed(self, x: Tensor, batch: int = 500) -> Tensor:
        """Features ``(N, 128)`` (float64, CPU) of images ``(N, C, H, W)``."""
        was = self.training
        self.eval()
        p = next(self.parameters())
        out = [self.features(c.to(p.device, p.dtype)).double().cpu() for c in x.split(batch)]
        self.train(was)
        return torch.cat(out)


def _cross_entropy(
    net: Any, batch: tuple[Tensor, Tensor], state: Any, *, generator: torch.Generator | None = None
) -> tuple[Tensor, None, Any]:
    """The feature network's objective for :func:`ebmlab.train.fit`: cross-entropy."""
    x, y = batch
    return nn.functional.cross_entropy(net(x), y), None, state


def train_feature_classifier(
    x: Tensor,
    y: Tensor,
    *,
    epochs: int = 3,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    x_test: Tensor | None = None,
    y_test: Tensor | None = None,
) -> tuple[FeatureClassifier, dict[str, Any]]:
    """Train the feature network on labelled images; return it and its provenance.

    Arguments:
        x: Training images ``(N, C, H, W)`` in ``[-1, 1]``.
        y: Labels ``(N,)``, integers from 0.
        epochs: Passes over ``x``.
        batch_size: Images per Adam step.
        lr: Adam's learning rate.
        seed: Seed of the initialization and the batch order.

    Trains through :func:`ebmlab.train.fit` (Adam at a constant rate, passes
    over the images in a fresh random order each).
        x_test: Held-out images for the accuracy in the provenance (optional).
        y_test: Their labels.

    Returns:
        ``(classifier, provenance)``; the provenance names the network, data
        sizes, epochs, seed, training time and (held-out) accuracy.
    """
    n_classes = int(y.max()) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureClassifier(tuple(x.shape[1:]), n_classes)
    x = x.float()
    batch = min(int(batch_size), x.shape[0])
    per_epoch = -(-x.shape[0] // batch)
    settings = TrainSettings(
        steps=int(epochs) * per_epoch,
        batch_size=batch,
        lr=float(lr),
        lr_schedule="constant",
        warmup_steps=0,
        log_every=max(1, per_epoch),
        checkpoint_every=0,
        seed=int(seed),
        device=str(x.device),
        batches="epochs",
    )
    t0 = time.perf_counter()
    fit(net, x, _cross_entropy, settings, labels=y.long(), progress=False)
    net.eval()
    provenance: dict[str, Any] = {
        "network": "FeatureClassifier (2 conv + 128-d layer, SiLU), ebmlab.sample_quality",
        "features": "128-d penultimate layer",
        "trained_on": f"{x.shape[0]} training images of the run, {n_classes} classes",
        "epochs": int(epochs),
        "seed": int(seed),
        "seconds": time.perf_counter() - t0,
        "comparable_with_inception_fid": False,
    }
    if x_test is not None and y_test is not None:
        with torch.no_grad():
            pred = torch.cat([net(c.float()).argmax(1) for c in x_test.split(500)])
        provenance["test_accuracy"] = float((pred == y_test).double().mean())
    return net, provenance


def fid(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to features ``a`` and ``b`` ``(N, F)``."""
    from scipy import linalg

    a_np, b_np = a.double().numpy(), b.double().numpy()
    mu1, mu2 = a_np.mean(0), b_np.mean(0)
    s1, s2 = np.cov(a_np, rowvar=False), np.cov(b_np, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # nearly singular: regularize, as pytorch-fid does
        eps = 1e-6 * np.eye(s1.shape[0])
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))
    return max(d, 0.0)


def kid(
    a: Tensor, b: Tensor, *, n_subsets: int = 50, subset_size: int = 200, seed: int = 0
) -> tuple[float, float]:
    """Kernel inception distance: unbiased MMD² with ``k(x, y) = (x.y / F + 1)^3``.

    Averaged over ``n_subsets`` random subsets of ``subset_size`` rows of each.

    Returns:
        ``(kid, stderr)`` over the subsets.
    """
    g = torch.Generator().manual_seed(seed)
    m = min(subset_size, a.shape[0], b.shape[0])
    f = a.shape[1]
    vals = []
    for _ in range(n_subsets):
        x = a[torch.randperm(a.shape[0], generator=g)[:m]].double()
        y = b[torch.randperm(b.shape[0], generator=g)[:m]].double()
        kxx = (x @ x.T / f + 1) ** 3
        kyy = (y @ y.T / f + 1) ** 3
        kxy = (x @ y.T / f + 1) ** 3
        off = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
        vals.append(float(off - 2 * kxy.mean()))
    v = np.asarray(vals)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0


def image_quality(
    samples: dict[str, Tensor],
    classifier: FeatureClassifier,
    reference: Tensor,
    heldout: Tensor,
    *,
    seed: int = 0,
) -> dict[str, Any]:
    """FID and KID of each set of ``samples`` against ``reference``, plus the floor.

    Arguments:
        samples: Named sets of generated images ``(n, C, H, W)`` in ``[-1, 1]``.
        classifier: The feature network (:func:`train_feature_classifier`).
        reference: Real images the samples are compared with (training images).
        heldout: Real held-out images; their distances are the floor.
        seed: Seed of the KID subsets.

    Returns:
        ``{"fid_NAME", "kid_NAME", "kid_NAME_stderr"}`` for each set and for
        ``heldout`` (the floor), plus ``n`` per set.
    """
    ref = classifier.embed(reference)
    out: dict[str, Any] = {}
    for name, x in {**samples, "heldout": heldout}.items():
        feats = classifier.embed(x)
        k, k_se = kid(feats, ref, seed=seed)
        out[f"fid_{name}"] = fid(feats, ref)
        out[f"kid_{name}"] = k
        out[f"kid_{name}_stderr"] = k_se
        out[f"n_{name}"] = int(x.shape[0])
    out["n_reference"] = int(reference.shape[0])
    return out
