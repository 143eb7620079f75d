"""Full-batch L-BFGS inside ``train.fit``: optimum, exact resume, refusals."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from ebmlab.train import TrainSettings, fit
from ebmlab.train.checkpoint import load_tensors


def _logistic_problem() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g, dtype=torch.float64)
    w = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64)
    y = (torch.rand(200, generator=g, dtype=torch.float64) < torch.sigmoid(x @ w)).double()
    return x, y


def _nll(model, batch, state, *, generator=None):
    x, y = batch
    logits = model(x).squeeze(-1)
    loss = (
        nn.functional.binary_cross_entropy_with_logits(logits, y)
        + 1e-3 * model.weight.square().sum()
    )
    return loss, None, state


def _model() -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(3, 1).double()


SETTINGS = dict(
    lr=1.0, lr_schedule="constant", warmup_steps=0, log_every=1, batches="full",
    optimizer="lbfgs",
)  # fmt: skip


def test_lbfgs_reaches_the_optimum_of_a_convex_loss():
    x, y = _logistic_problem()
    model = _model()
    result = fit(model, x, _nll, TrainSettings(steps=30, **SETTINGS), labels=y, progress=False)
    losses = [row["loss"] for row in result.metrics]
    assert len(losses) == 30 and losses[-1] < losses[0]
    # At the optimum the gradient vanishes (a convex, strictly penalized loss).
    model.zero_grad()
    _nll(model, (x, y), None)[0].backward()
    grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert float(grad.abs().max()) < 1e-6, grad
    # L-BFGS never increases the loss (strong-Wolfe line search).
    assert all(b <= a + 1e-6 for a, b in itertools.pairwise(losses)), losses


def test_lbfgs_resume_gives_the_weights_of_an_uninterrupted_fit(tmp_path):
    x, y = _logistic_problem()
    whole, part = _model(), _model()
    # Stop after 4 iterations, while the curvature history is still being filled.
    fit(whole, x, _nll, TrainSettings(steps=8, checkpoint_every=4, **SETTINGS), labels=y,
        run_dir=tmp_path / "whole", progress=False)  # fmt: skip
    fit(part, x, _nll, TrainSettings(steps=4, checkpoint_every=4, **SETTINGS), labels=y,
        run_dir=tmp_path / "part", progress=False)  # fmt: skip
    tensors, _ = load_tensors(tmp_path / "part" / "train_state.safetensors")
    assert any(k.startswith("optimizer.0.old_dirs.") for k in tensors)  # the history is kept
    resumed = _model()
    fit(resumed, x, _nll, TrainSettings(steps=8, checkpoint_every=4, **SETTINGS), labels=y,
        run_dir=tmp_path / "part", resume=True, progress=False)  # fmt: skip
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"optimizer": "rmsprop"}, "optimizer must be"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum is a setting of optimizer .sgd."),
        ({"optimizer": "sgd", "momentum": 1.0}, "momentum must be in"),
        ({"optimizer": "lbfgs", "grad_clip": 1.0}, "no weight_decay and no grad_clip"),
        ({"optimizer": "lbfgs", "weight_decay": 0.1}, "no weight_decay and no grad_clip"),
        ({"batches": "some"}, "batches must be"),
    ],
)
def test_bad_settings_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        TrainSettings(**options)
