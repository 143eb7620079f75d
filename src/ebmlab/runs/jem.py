"""JEM runs: a classifier trained as an energy model of labelled images.

``ebmlab train --data SOURCE --objective jem`` (or ``objective.name: jem`` in a
config) trains a :class:`~ebmlab.energies.ClassifierEnergy` (logits ``f(x)``,
``E(x) = -logsumexp_y f(x)[y]``, ``E(x, y) = -f(x)[y]``) with the
:class:`~ebmlab.objectives.JointEnergyObjective` through
:func:`ebmlab.train.fit`, on images whose labels come with them (``.npz`` key
``y``, class subfolders, MNIST IDX labels, the built-in sets). The labels are
recorded in ``model.classes`` (their sorted values; a folder's labels are the
indices of its sorted subfolder names), so ``ebmlab sample RUN --label 3``
draws from ``p(x | y = 3)``.

The recipe (:func:`jem_run_config`) follows the estimator
:class:`~ebmlab.estimators.EnergyClassifier` with a convolutional trunk:

==========================  =============================================
model                       ConvEnergy trunk, last layer to ``n_classes``
                            logits (no reference term)
objective                   ``jem``: cross-entropy + 0.3 x contrastive term,
                            energy penalty 0.1, 20 SGLD steps from a replay
                            buffer of 2,000 (5% restarts from uniform noise)
sampler (SGLD)              step 1, noise 0.01, pixels clamped to [-1, 1]
train                       batch 64, Adam 1e-3, constant rate, 1,000 updates
==========================  =============================================

:func:`evaluate_jem` writes the classifier's figures into ``report.json``:
held-out accuracy, expected calibration error (15 bins) beside its noise
floor (the ECE a perfectly calibrated model with the same confidences shows on
as many rows), negative log-likelihood of the labels, and the AUROC with which ``-E(x)`` (what
``score_samples`` of the estimator returns) separates held-out images from
uniform noise and from inverted held-out images; ``samples.png`` holds
class-conditional samples, one row per class, and ``reliability.png`` the
reliability diagram of the held-out predictions.
"""

from __future__ import annotations

__all__ = [
    "build_classifier_energy",
    "class_energy",
    "evaluate_jem",
    "is_jem",
    "jem_objective",
    "jem_run_config",
    "load_labelled_data",
]

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..config import ImageScalingConfig, RunConfig
from ..data.images import is_image_source, load_images, stratified_split
from ..energies import ClassifierEnergy, Energy, MLPEnergy
from ..errors import ConfigError, DataError
from ..objectives import JointEnergyObjective


def is_jem(cfg: RunConfig) -> bool:
    """Whether ``cfg`` trains a classifier energy (``objective.name == "jem"``)."""
    return cfg.objective.name == "jem"


def jem_run_config(source: str) -> RunConfig:
    """The default config of a JEM run on the labelled images ``source`` (module doc)."""
    from .images import image_run_config

    cfg = image_run_config(source)
    cfg.model.base_scale = None
    s = cfg.sampler
    s.method, s.step_size, s.noise_scale = "langevin", 1.0, 0.01
    s.grad_clamp, s.clamp = None, (-1.0, 1.0)
    o = cfg.objective
    o.name, o.n_steps, o.alpha, o.n_chains = "jem", 20, 0.1, 2000
    o.reinit_prob, o.restart, o.data_noise = 0.05, "uniform", 0.0
    o.generative_weight, o.conditional, o.label_smoothing = 0.3, False, 0.0
    o.nda_weight = 0.0  # docs/images.md: why not EnergyClassifier's image recipe here
    t = cfg.train
    t.steps, t.batch_size, t.lr, t.betas = 1000, 64, 1e-3, (0.9, 0.999)
    t.lr_schedule, t.warmup_steps, t.checkpoint_every = "constant", 0, 250
    e = cfg.evaluate
    e.n_samples, e.sample_steps = 100, 200
    return cfg


def load_labelled_data(
    cfg: RunConfig, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Training and held-out images ``(N, C, H, W)`` in ``[-1, 1]`` with their class
    indices ``(N,)`` (positions in ``model.classes``), split stratified by label.

    Records the pixel scaling (``data.image``) and the label values
    (``model.classes``) in ``cfg`` on the first read.

    Raises:
        ConfigError: The data are not images, have no labels or one class only,
            or ``model.classes`` is not a sorted list of distinct values.
        DataError: The images hold labels that ``model.classes`` does not.
    """
    from .images import scaling_of

    d = cfg.data
    if d.file is None or not (d.image is not None or is_image_source(d.file)):
        where = d.file if d.file is not None else f"toy {d.toy!r}"
        raise ConfigError(
            f"objective 'jem' needs labelled images (npz key 'y', class subfolders, "
            f"IDX labels, builtin:digits, builtin:mnist5k); got {where}"
        )
    data = load_images(d.file, dtype=dtype, scaling=scaling_of(cfg))
    if data.y is None:
        raise ConfigError(
            f"{d.file}: objective 'jem' needs labels (npz key 'y', class subfolders or an "
            f"IDX labels file); these images have none"
        )
    values = torch.unique(data.y)
    if cfg.model.classes is None:
        if values.numel() < 2:
            raise ConfigError(f"{d.file}: objective 'jem' needs at least 2 classes, got 1")
        cfg.model.classes = [int(v) for v in values.tolist()]
    if sorted(set(cfg.model.classes)) != cfg.model.classes or len(cfg.model.classes) < 2:
        raise ConfigError(
            f"model.classes must list at least 2 distinct label values in increasing order, "
            f"got {cfg.model.classes}"
        )
    classes = torch.tensor(cfg.model.classes, dtype=torch.long)
    idx = torch.searchsorted(classes, data.y.contiguous()).clamp(max=classes.numel() - 1)
    if not bool((classes[idx] == data.y).all()):
        bad = sorted(set(values.tolist()) - set(cfg.model.classes))
        raise DataError(f"{d.file}: labels {bad[:5]} are not among the run's classes")
    if d.image is None:
        d.image = ImageScalingConfig(**data.scaling.to_dict(), shape=list(data.x.shape[1:]))
    if data.x.shape[0] < 2:
        raise ConfigError(f"{d.file}: need at least 2 images to split train/test")
    tr, te = stratified_split(data.x.shape[0], data.y, d.test_fraction, cfg.seed)
    return data.x[tr], data.x[te], idx[tr], idx[te]


def build_classifier_energy(cfg: RunConfig, event_shape: tuple[int, ...]) -> ClassifierEnergy:
    """The :class:`ClassifierEnergy` of a JEM run: the ``model`` network as a trunk
    (``model.base_scale`` is not used), ``len(model.classes)`` logits.

    The caller seeds the global RNG (as :func:`ebmlab.runs.build_energy` does)."""
    m = cfg.model
    if m.classes is None or len(m.classes) < 2:
        raise ConfigError("objective 'jem': model.classes must list at least 2 labels")
    trunk_cfg = cfg.model_copy(deep=True)
    trunk_cfg.model.base_scale = None
    try:
        if m.type == "mlp":
            trunk: nn.Module = MLPEnergy(
                event_shape, m.hidden, activation=m.activation, spectral_norm=m.spectral_norm,
                base_scale=None,
            )  # fmt: skip
        else:
            from .images import build_image_energy

            trunk = build_image_energy(trunk_cfg, event_shape)
        return ClassifierEnergy(trunk, len(m.classes))
    except ValueError as exc:
        raise ConfigError(f"model: {exc}") from None


def jem_objective(cfg: RunConfig, init_fn: Any) -> JointEnergyObjective:
    """The :class:`JointEnergyObjective` of ``cfg``: the ``objective`` section's
    weights and SGLD steps, the ``sampler`` section's step, noise and clamps."""
    o, s = cfg.objective, cfg.sampler
    try:
        return JointEnergyObjective(
            init_fn,
            generative_weight=o.generative_weight,
            energy_reg=o.alpha,
            n_steps=o.n_steps,
            step_size=1.0 if s.step_size is None else s.step_size,
            noise=0.01 if s.noise_scale is None else s.noise_scale,
            conditional=o.conditional,
            nda_weight=o.nda_weight,
            label_smoothing=o.label_smoothing,
            data_noise=o.data_noise,
            clamp=s.clamp,
            grad_clamp=s.grad_clamp,
        )
    except ValueError as exc:
        raise ConfigError(f"objective 'jem': {exc}") from None


class _ClassEnergy(Energy):
    """``E(x | y) = -f(x)[y]`` of a classifier energy for one fixed class index."""

    def __init__(self, energy: ClassifierEnergy, index: int) -> None:
        super().__init__(energy.event_shape)
        self.energy = energy
        self.index = int(index)

    def forward(self, x: Tensor) -> Tensor:
        y = torch.full((x.shape[0],), self.index, dtype=torch.long, device=x.device)
        return self.energy.joint(x, y)

    def extra_repr(self) -> str:
        return f"class index {self.index}"


def class_energy(run_: Any, label: int) -> Energy:
    """The class-conditional energy ``E(x, y) = -f(x)[y]`` of a JEM run for label ``label``
    (a value of ``model.classes``).

    Raises:
        ConfigError: The run is not a JEM run, or ``label`` is not one of its classes.
    """
    cfg = run_.config
    if not is_jem(cfg) or cfg.model.classes is None:
        raise ConfigError(
            f"--label needs a run trained with labels (objective 'jem'); this run's "
            f"objective is {cfg.objective.name!r}"
        )
    if int(label) not in cfg.model.classes:
        raise ConfigError(f"label {label} is not one of the run's classes {cfg.model.classes}")
    return _ClassEnergy(run_.energy, cfg.model.classes.index(int(label)))


def _logits(energy: ClassifierEnergy, x: Tensor, batch: int = 500) -> Tensor:
    p = next(energy.parameters())
    with torch.no_grad():
        return torch.cat([energy.logits(c.to(p.device, p.dtype)).double().cpu()
                          for c in x.split(batch)])  # fmt: skip


def _auroc(inlier: Tensor, outlier: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    score = torch.cat([inlier, outlier]).numpy()
    truth = np.r_[np.ones(inlier.numel()), np.zeros(outlier.numel())]
    return float(roc_auc_score(truth, score))


def evaluate_jem(
    out: Path,
    run_: Any,
    report: dict[str, Any],
    sample_fn: Callable[..., Tensor],
    *,
    plots: bool = True,
) -> dict[str, Any]:
    """Classifier part of ``evaluate_run`` for a JEM run (see the module doc).

    Report keys: ``test_accuracy``, ``test_ece``, ``test_ece_floor`` and
    ``test_ece_floor_sd`` (mean and standard deviation of the ECE of a calibrated
    model with these confidences on these rows:
    :func:`ebmlab.estimators.classifier.ece_floor`), ``test_nll`` (nats per image),
    ``train_accuracy``, ``ood_auroc_noise``, ``ood_auroc_inverted``,
    ``n_test``, ``classes``, ``n_samples``, ``sample_finite_fraction`` and
    ``samples_classified_as_asked`` (the share of class-conditional samples
    that the classifier assigns to the class they were drawn for).

    Arguments:
        out: Run directory (``samples.png``, ``reliability.png``, ``curves.png`` go there).
        run_: The :class:`ebmlab.runs.Run`.
        report: The report so far; completed in place.
        sample_fn: ``sample_fn(n, seed=..., label=...)`` draws ``n`` samples of
            one class (:func:`ebmlab.runs.sample_run` of this run).
        plots: Write the figures.

    Returns:
        ``report``.
    """
    from ..estimators.classifier import ece_floor, expected_calibration_error
    from .images import image_grid

    cfg = run_.config
    energy = run_.energy.eval()
    for q in energy.parameters():
        q.requires_grad_(False)
    test, y_te = run_.test, run_.test_labels
    logits = _logits(energy, test)
    logp = torch.log_softmax(logits, 1)
    report["classes"] = list(cfg.model.classes)
    report["n_test"] = int(test.shape[0])
    report["test_accuracy"] = float((logits.argmax(1) == y_te).double().mean())
    proba = logp.exp().numpy()
    report["test_ece"] = expected_calibration_error(proba, y_te.numpy())
    report["test_ece_floor"], report["test_ece_floor_sd"] = ece_floor(proba, seed=cfg.seed)
    report["test_nll"] = float(-logp.gather(1, y_te[:, None]).mean())
    m = min(run_.train.shape[0], 2000)
    train_logits = _logits(energy, run_.train[:m])
    report["train_accuracy"] = float(
        (train_logits.argmax(1) == run_.train_labels[:m]).double().mean()
    )
    # score_samples = -E(x) = logsumexp_y f(x)[y]: higher = more like the training data.
    score = torch.logsumexp(logits, 1)
    g = torch.Generator().manual_seed(cfg.seed + 13)
    noise = 2 * torch.rand(test.shape, generator=g, dtype=test.dtype) - 1
    report["ood_auroc_noise"] = _auroc(score, torch.logsumexp(_logits(energy, noise), 1))
    report["ood_auroc_inverted"] = _auroc(score, torch.logsumexp(_logits(energy, -test), 1))
    report["ood_note"] = (
        "AUROC of -E(x) (score_samples): held-out images vs uniform noise in the data's "
        "range, and vs the held-out images inverted (v -> low + high - v)"
    )
    k = len(cfg.model.classes)
    per_class = max(1, min(10, cfg.evaluate.n_samples // k))
    rows = [
        sample_fn(per_class, seed=cfg.seed + i, label=c).detach().cpu()
        for i, c in enumerate(cfg.model.classes)
    ]
    samples = torch.cat(rows)
    report["n_samples"] = int(samples.shape[0])
    report["sample_finite_fraction"] = float(
        torch.isfinite(samples.reshape(samples.shape[0], -1)).all(1).double().mean()
    )
    with torch.no_grad():
        agree = _logits(energy, samples).argmax(1) == torch.arange(k).repeat_interleave(per_class)
    report["samples_classified_as_asked"] = float(agree.double().mean())
    if plots:
        from .images import _atomic_image, _upscale

        grid = _upscale(image_grid(samples, n_cols=per_class))
        _atomic_image(out / "samples.png", lambda fh: grid.save(fh, format="PNG"))
        from ..plotting import plot_curves, plot_reliability
        from ..train.loop import METRICS_NAME

        ece = 100 * report["test_ece"]
        plot_reliability(
            {f"held-out rows (ECE {ece:.2f}%)": proba}, y_te.numpy(), out / "reliability.png"
        )
        if (out / METRICS_NAME).is_file():
            plot_curves(out / METRICS_NAME, out / "curves.png")
    if not math.isfinite(report["test_nll"]):
        report["test_nll"] = None
    return report
