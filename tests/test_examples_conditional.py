"""The examples on shaping energies and on maximum likelihood run and show their point.

Each example runs as a script (``runpy``, as ``__main__``, in a scratch
directory, in this process to spare the interpreter start-up), must finish
within a minute, and its printed table must show what its docstring claims.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import time
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).parents[1] / "examples"


def _run(name: str, tmp_path: Path) -> str:
    threads = torch.get_num_threads()
    cwd = Path.cwd()
    buffer = io.StringIO()
    start = time.perf_counter()
    try:
        os.chdir(tmp_path)
        with contextlib.redirect_stdout(buffer):
            runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    finally:
        os.chdir(cwd)
        torch.set_num_threads(threads)  # the examples set one thread
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"{name} took {elapsed:.1f} s"
    return buffer.getvalue()


def _row(text: str, start: str) -> list[str]:
    for line in text.splitlines():
        if line.strip().startswith(start):
            return line.split()
    raise AssertionError(f"no row starting with {start!r} in:\n{text}")


@pytest.mark.slow
def test_contrastive_example(tmp_path):
    out = _run("shape_energy_contrastive.py", tmp_path)
    assert _row(out, "nll")[1] == "100%", out  # both branches found for every x
    assert _row(out, "energy")[1] == "0%", out
    assert float(re.search(r"mean \|prediction\| = ([\d.]+)", out).group(1)) < 0.1
    for loss in ("hinge", "log", "nll", "perceptron", "square-square"):
        row = [r for r in out.splitlines() if r.strip().startswith(loss + " ")][-1]
        assert float(row.split()[1].rstrip("%")) > 90, row


@pytest.mark.slow
def test_architectural_example(tmp_path):
    out = _run("shape_energy_architectural.py", tmp_path)
    for name in ("pca", "k-means"):
        row = _row(out, name)
        assert float(row[1]) < 0.1 < float(row[2]), row
        assert float(row[3].rstrip("%")) < 15, row
    assert float(re.search(r"true plane: ([\d.]+)", out).group(1)) < 1.0


@pytest.mark.slow
def test_regularized_example(tmp_path):
    out = _run("shape_energy_regularized.py", tmp_path)
    flat, sparse = _row(out, "0.0"), _row(out, "0.3")
    assert float(flat[1]) < 1e-3 and float(flat[2]) < 1e-3, flat  # collapsed
    assert float(sparse[2]) > 1.3 * float(sparse[1]), sparse
    assert float(sparse[3].rstrip("%")) < 30, sparse
    assert int(sparse[4].split("/")[0]) >= 24, sparse


@pytest.mark.slow
def test_saturation_example(tmp_path):
    out = _run("mse_vs_bce_saturation.py", tmp_path)
    s8 = _row(out, "8")
    assert float(s8[2]) < 1e-3 < 0.99 < float(s8[3]), s8
    last = out.strip().splitlines()[-1].split()
    assert last[0] == "400" and float(last[1].rstrip("%")) < 10 < 95 < float(last[2].rstrip("%"))
