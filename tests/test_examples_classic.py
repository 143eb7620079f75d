"""The classic-model examples and the RBM benchmark run (quick settings) and show their point."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).parents[1]

pytestmark = pytest.mark.slow


def load(relpath: str) -> ModuleType:
    path = ROOT / relpath
    name = "_example_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_hopfield_capacity_quick(capsys):
    out = load("examples/hopfield_capacity.py").main(["--quick"])
    # Quick mode: N = 100..400 only, so a looser extrapolation than the full run.
    assert abs(out["alpha_c"] - 0.138) < 0.02, out
    assert out["modern_recall_at_5N"] == 1.0
    assert "extrapolated capacity" in capsys.readouterr().out


def test_products_of_experts_quick():
    out = load("examples/products_of_experts.py").main(["--quick"])
    # Each expert alone and their naive product are poor; the jointly trained
    # product comes close to the data's entropy.
    assert out["joint"] < out["naive"] - 0.5 and out["joint"] < out["best_alone"] - 0.5, out
    assert out["joint"] < out["entropy"] + 0.25, out


def test_rbm_digits_example_quick():
    out = load("examples/rbm_digits.py").main(["--quick"])
    assert out["heldout"] > -22.0, out
    assert abs(out["ais_error"]) < 5 * out["ais_stderr"] + 0.02, out


def test_rbm_digits_benchmark_quick():
    bench = load("benchmarks/rbm_digits.py")
    text = bench.run(True, epochs=3, seeds=1, sizes=(16,), ais_repeats=0, time_rounds=1)
    assert text.count("| 16 | 3 |") == 3  # one row per implementation
    assert "scikit-learn" in text and "ebmlab, tuned" in text
