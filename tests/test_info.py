"""``ebmlab info`` / ``ebmlab.show_versions()``: the environment for bug reports, fast."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from importlib import metadata

import torch

import ebmlab


def run_info() -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "ebmlab", "info"], capture_output=True, text=True, check=False
    )
    return time.perf_counter() - t0, proc


def test_info_prints_the_environment_in_under_two_seconds():
    # Wall time of the whole command (interpreter start, imports, report). On a
    # machine shared with other jobs one run can be descheduled: the best of three
    # counts, and the first run that is fast enough ends the loop.
    times = []
    for _ in range(3):
        seconds, proc = run_info()
        assert proc.returncode == 0, proc.stderr
        times.append(seconds)
        if seconds < 2.0:
            break
    assert min(times) < 2.0, f"ebmlab info took {times} s"
    out = proc.stdout
    for needle in (
        f"ebmlab: {ebmlab.__version__}",
        f"version: {torch.__version__}",
        f"numpy: {metadata.version('numpy')}",
        f"scikit-learn: {metadata.version('scikit-learn')}",
        f"safetensors: {metadata.version('safetensors')}",
        f"pydantic: {metadata.version('pydantic')}",
        f"threads: {torch.get_num_threads()}",
        "cuda available:",
        "mps available:",
        "blas:",
        "devices:\n  cpu",
    ):
        assert needle in out, f"{needle!r} missing from:\n{out}"


def test_import_ebmlab_does_not_import_torch():
    code = "import sys, ebmlab; print(sorted({'torch', 'sklearn'} & set(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_show_versions_matches_environment():
    from ebmlab._info import environment

    env = environment()
    assert env["system"]["ebmlab"] == ebmlab.__version__
    assert env["torch"]["cuda available"] == torch.cuda.is_available()
    assert env["devices"][0] == "cpu"
    assert len(env["devices"]) == 1 + torch.cuda.device_count() * torch.cuda.is_available() + (
        torch.backends.mps.is_available()
    )
    buf = io.StringIO()
    ebmlab.show_versions(buf)
    text = buf.getvalue()
    assert text.startswith("system:\n") and "dependencies:" in text
    assert env["torch"]["blas"] in text


def test_lazy_subpackages_resolve():
    assert ebmlab.samplers.MALA is not None
    assert callable(ebmlab.sample)
    assert {"energies", "estimators", "show_versions"} <= set(dir(ebmlab))
    try:
        ebmlab.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
