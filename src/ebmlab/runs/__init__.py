"""Run directories: build a run from its config, train or resume it, evaluate it, apply it.

A run directory (DESIGN.md) holds ``config.yaml`` (every default written out),
``model.safetensors``, ``state.json``, ``train_state.safetensors`` (optimizer,
replay buffer, RNG), ``metrics.csv``, ``report.json`` and PNG figures. Every
command that reads a run rebuilds the model from ``config.yaml`` and
``model.safetensors``; nothing is unpickled. The ``ebmlab`` command line is a thin
layer over these functions.

Modules:

* :mod:`~ebmlab.runs.build`: data, energy, sampler and objective from a config;
  :func:`load_run` rebuilds a trained run.
* :mod:`~ebmlab.runs.training`: :func:`train_run`, :func:`resume_run`.
* :mod:`~ebmlab.runs.evaluate`: :func:`evaluate_run` (``report.json``, figures).
* :mod:`~ebmlab.runs.apply`: :func:`sample_run`, :func:`score_run`,
  :func:`detect_run`, :func:`log_z_run`; ``iter_score_run`` and
  ``iter_detect_run`` stream a file of any size in chunks.
* :mod:`~ebmlab.runs.denoise`: :func:`denoise_run` and the streaming
  ``iter_denoise_run``: restoring noisy rows or filling missing entries.
* :mod:`~ebmlab.runs.restore`: :func:`~ebmlab.runs.restore.restore_images`,
  denoising and inpainting images with a noise-conditional energy (Tweedie's
  formula, annealed chains, energy-weighted training exemplars:
  :func:`~ebmlab.runs.restore.restore_from_exemplars`): what ``denoise`` does
  on ``ncsm`` image runs.
* :mod:`~ebmlab.runs.images`: image runs: the image recipe's default config,
  the data split, the convolutional energy, PNG grids, ``chains.gif`` and the
  dequantized log-likelihood of 8x8 images (evaluated by ``evaluate``).
* :mod:`~ebmlab.runs.jem`: JEM runs on labelled images (``objective.name:
  jem``): the recipe, the labelled split, the classifier energy, the
  class-conditional energy of ``sample --label`` and the report's accuracy,
  calibration and OOD AUROCs.

Builds on every library layer below it (data, energies, samplers, objectives,
partition, train); nothing in the library imports it but the command line.
"""

from __future__ import annotations

from .apply import (
    DetectResult,
    detect_run,
    iter_detect_run,
    iter_score_run,
    log_z_run,
    sample_run,
    score_run,
)
from .build import Run, build_energy, build_run_sampler, load_data, load_run, run_generator
from .denoise import DENOISE_METHODS, DENOISE_NOISES, denoise_run, iter_denoise_run
from .evaluate import evaluate_run
from .training import resume_run, train_run

__all__ = [
    "DENOISE_METHODS",
    "DENOISE_NOISES",
    "DetectResult",
    "Run",
    "build_energy",
    "build_run_sampler",
    "denoise_run",
    "detect_run",
    "evaluate_run",
    "iter_denoise_run",
    "iter_detect_run",
    "iter_score_run",
    "load_data",
    "load_run",
    "log_z_run",
    "resume_run",
    "run_generator",
    "sample_run",
    "score_run",
    "train_run",
]
