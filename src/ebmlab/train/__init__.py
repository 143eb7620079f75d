"""Training: the loop, checkpoints, resume, divergence guard."""

from __future__ import annotations

from .checkpoint import (
    atomic_save_tensors,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_training_state,
    save_training_state,
)
from .loop import FitResult, TrainSettings, fit, learning_rate

__all__ = [
    "FitResult",
    "TrainSettings",
    "atomic_save_tensors",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "fit",
    "learning_rate",
    "load_training_state",
    "save_training_state",
]
