"""Training: the loop, checkpoints, resume, divergence guard, several processes.

* :mod:`~ebmlab.train.loop`: :func:`fit`, the one loop every model trains
  through (optimizer, learning-rate schedule, progress, ``metrics.csv``,
  divergence guard, resume), configured by :class:`TrainSettings`.
* :mod:`~ebmlab.train.checkpoint`: crash-safe atomic writes and the training
  checkpoint (model, optimizer, replay buffer, RNG states, checksums).
* :mod:`~ebmlab.train.distributed`: data-parallel training under ``torchrun``.
* :mod:`~ebmlab.train.tensorboard`: an optional TensorBoard writer of the
  metrics, figures and config of a run (``ebmlab train --tensorboard``).

Knows nothing of objectives or models: it takes any energy and any objective.
"""

from __future__ import annotations

from .checkpoint import (
    atomic_save_npy_chunks,
    atomic_save_tensors,
    atomic_write_bytes,
    atomic_write_chunks,
    atomic_write_json,
    atomic_write_text,
    load_training_state,
    save_training_state,
)
from .loop import FitResult, TrainSettings, fit, learning_rate

__all__ = [
    "FitResult",
    "TrainSettings",
    "atomic_save_npy_chunks",
    "atomic_save_tensors",
    "atomic_write_bytes",
    "atomic_write_chunks",
    "atomic_write_json",
    "atomic_write_text",
    "fit",
    "learning_rate",
    "load_training_state",
    "save_training_state",
]
