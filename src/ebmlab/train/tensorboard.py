"""TensorBoard logging of a run: metrics, figures and the resolved config.

An optional writer (the ``tensorboard`` package, ``pip install
'ebmlab[tensorboard]'``) that puts event files into the run directory next to
``metrics.csv``, so ``tensorboard --logdir runs`` shows every run.
:func:`~ebmlab.train.fit` calls :meth:`TensorBoardLogger.log_metrics` with each
row it writes to ``metrics.csv`` (its ``on_log`` hook); the run layer adds the
config at the start and the figures and report after evaluation.
"""

from __future__ import annotations

__all__ = ["TensorBoardLogger"]

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError


class TensorBoardLogger:
    """Write TensorBoard event files into ``log_dir``.

    Tags: ``train/<column>`` for each ``metrics.csv`` column (loss, energies,
    acceptance rate, gradient norm, learning rate), ``eval/<key>`` for the
    numeric entries of ``report.json``, ``figures/<name>`` for the PNG figures,
    and ``config`` (text) for the resolved config.

    Arguments:
        log_dir: The run directory.

    Raises:
        ConfigError: The ``tensorboard`` package is not installed.
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "TensorBoard logging (train.tensorboard, --tensorboard) needs the tensorboard "
                "package: pip install 'ebmlab[tensorboard]'"
            ) from None
        self.log_dir = Path(log_dir)
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_metrics(self, row: Mapping[str, float]) -> None:
        """One ``metrics.csv`` row (keyed by column; ``step`` gives the x axis)."""
        step = int(row["step"])
        for key, value in row.items():
            if key != "step" and math.isfinite(value):
                self.writer.add_scalar(f"train/{key}", value, step)
        self.writer.flush()

    def log_config(self, yaml_text: str, step: int = 0) -> None:
        """The resolved config, shown as a code block in TensorBoard's text tab."""
        block = "\n".join("    " + line for line in yaml_text.splitlines())
        self.writer.add_text("config", block, step)
        self.writer.flush()

    def log_figures(self, paths: Mapping[str, str | os.PathLike[str]], step: int) -> None:
        """PNG figures (name -> file); files that do not exist are skipped."""
        import matplotlib.image

        for name, path in paths.items():
            if not Path(path).is_file():
                continue
            img = matplotlib.image.imread(Path(path))  # (H, W, 3 or 4), floats in [0, 1]
            self.writer.add_image(f"figures/{name}", img[..., :3], step, dataformats="HWC")
        self.writer.flush()

    def log_report(self, report: Mapping[str, Any], step: int) -> None:
        """The finite numeric entries of an evaluation report as ``eval/<key>``."""
        for key, value in report.items():
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if is_number and math.isfinite(value):
                self.writer.add_scalar(f"eval/{key}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
