"""The optimizer of the training loop: which one a :class:`TrainSettings` asks for, and
its settings put back after a checkpoint's optimizer state is loaded."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def make_optimizer(
    energy: nn.Module, s: Any, extra: nn.Module | None = None
) -> torch.optim.Optimizer:
    """The optimizer of :func:`~ebmlab.train.fit` over the energy's (and ``extra``'s)
    trainable parameters: Adam, AdamW (weight decay), SGD with momentum or L-BFGS, as
    ``s`` (a :class:`~ebmlab.train.TrainSettings`; not imported here, which would be a
    cycle with the loop) asks."""
    params = [p for p in energy.parameters() if p.requires_grad]
    if extra is not None:
        params += [p for p in extra.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the energy has no trainable parameters")
    if s.optimizer == "lbfgs":  # one iteration per step of the loop
        return torch.optim.LBFGS(
            params,
            lr=s.lr,
            max_iter=1,
            max_eval=26,  # the line search's budget: up to 25 evaluations per iteration
            tolerance_grad=1e-12,
            tolerance_change=1e-15,
            history_size=s.lbfgs_history,
            line_search_fn="strong_wolfe",
        )
    groups: list[dict[str, Any]] = [{"params": params}]
    if s.weight_decay > 0 and s.weight_decay_matrices_only:
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": s.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
    if s.optimizer == "sgd":
        # The fused kernel on CPU and CUDA: one call per step instead of a Python loop
        # over the parameters (what costs for small models); the same update.
        fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
        return torch.optim.SGD(
            groups,
            lr=s.lr,
            momentum=s.momentum,
            weight_decay=s.weight_decay,
            fused=fused or None,
        )
    if s.weight_decay > 0:
        return torch.optim.AdamW(groups, lr=s.lr, betas=s.betas, weight_decay=s.weight_decay)
    return torch.optim.Adam(groups, lr=s.lr, betas=s.betas)


def _same_setting(a: Any, b: Any) -> bool:
    """Equality of optimizer settings across a JSON round trip (tuples come back as lists)."""
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return list(a) == list(b)
    return bool(a == b)


def keep_new_settings(optimizer: torch.optim.Optimizer, new: list[dict[str, Any]]) -> list[str]:
    """Put this run's optimizer settings back after loading a checkpoint's state.

    ``Optimizer.load_state_dict`` takes the checkpoint's settings (betas, weight
    decay...) too; the ones asked for now win. Returns ``"name: old -> new"`` for
    each setting that differed (the learning rate is set every step anyway).
    """
    changed: list[str] = []
    for group, fresh in zip(optimizer.param_groups, new, strict=True):
        for key, value in fresh.items():
            if key in ("lr", "initial_lr"):
                continue
            old = group.get(key)
            if not _same_setting(old, value):
                changed.append(f"{key}: {old} -> {value}")
            group[key] = value
    return changed
