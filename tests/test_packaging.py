"""The built wheel, installed outside the checkout, runs; the dist checker catches bad wheels.

The wheel is built offline (``python -m build --no-isolation`` with the dev
extra's hatchling) and installed without its dependencies into a fresh virtual
environment in a temporary directory; a ``.pth`` file there appends the
running interpreter's site-packages, so torch and the other requirements are
reused and nothing downloads (``venv --system-site-packages`` would expose the
base interpreter's packages, not this venv's). Every command then runs from
another directory with no ``PYTHONPATH``, so only the installed copy can be
imported.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import check_dist  # noqa: E402

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=REPO,
    )
    (whl,) = out.glob("ebmlab-*.whl")
    return whl


def _dependency_dirs() -> list[str]:
    """Where this interpreter finds torch & co. (not the checkout's src)."""
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"]]
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    seen: list[str] = []
    for d in dirs:
        resolved = Path(d).resolve()
        in_checkout_src = resolved in (REPO, REPO / "src") or (REPO / "src") in resolved.parents
        if d not in seen and resolved.is_dir() and not in_checkout_src:
            seen.append(d)  # the project's .venv may sit inside the checkout (CI): keep it
    return seen


def test_wheel_passes_the_dist_checker(wheel):
    assert check_dist.check_wheel(wheel) == []


def test_dist_checker_catches_a_bad_wheel(wheel, tmp_path):
    bad = tmp_path / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            if item.filename not in ("ebmlab/py.typed", "ebmlab/cli.py"):
                dst.writestr(item, src.read(item))
        dst.writestr("tests/test_x.py", "")
        dst.writestr("ebmlab/__pycache__/cli.cpython-311.pyc", b"")
    problems = "\n".join(check_dist.check_wheel(bad))
    for needle in ("ebmlab/cli.py", "no ebmlab/py.typed", "tests/test_x.py", "__pycache__"):
        assert needle in problems, problems


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    # pip from this interpreter installs into the new environment; --no-deps and
    # --no-index: nothing downloads, and the checkout's own ebmlab is never touched.
    pip = [sys.executable, "-m", "pip", "--python", str(py), "--disable-pip-version-check"]
    _run([*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)])
    purelib = _run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    ).stdout.strip()
    (Path(purelib) / "_ebmlab_test_deps.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
    }
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONNOUSERSITE="1")
    work = tmp_path / "elsewhere"
    work.mkdir()
    ebmlab = str(venv / "bin" / "ebmlab")

    def run(*cmd: str) -> str:
        return _run(list(cmd), cwd=work, env=env).stdout

    # the installed copy, not the checkout's, with its typing marker
    code = "import ebmlab.estimators, ebmlab, sys; print(ebmlab.__file__); print(sys.path)"
    where = run(str(py), "-c", code)
    assert where.startswith(str(venv)), where
    assert str(REPO / "src") not in where
    assert (Path(where.splitlines()[0]).parent / "py.typed").is_file()
    assert "train" in run(ebmlab, "--help")
    assert "run written to" in run(ebmlab, "train", "--steps", "20", "--quiet", "--out", "run")
    run(ebmlab, "sample", "run", "-n", "50", "--steps", "5", "-o", "s.npy", "--quiet")
    assert np.load(work / "s.npy").shape == (50, 2)
    out = run(ebmlab, "ising", "--size", "8", "--temperature", "2.27", "--sweeps", "10", "--json")
    assert '"magnetization"' in out
    assert "ebmlab: " in run(ebmlab, "info")
    shutil.rmtree(venv)
