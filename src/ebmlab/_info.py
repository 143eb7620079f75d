"""The environment, for bug reports: ``ebmlab info`` and :func:`ebmlab.show_versions`.

Like ``sklearn.show_versions()`` and ``python -m torch.utils.collect_env``:
ebmlab, Python and the platform; torch's build (CUDA/ROCm version, MPS), the
devices it sees and its thread counts; the versions of the libraries ebmlab
builds on; and the BLAS libraries in use (torch's own, numpy's, and what
threadpoolctl finds loaded). Package versions come from their installed
metadata, without importing them, so the report costs little more than
``import torch``.
"""

from __future__ import annotations

__all__ = ["environment", "show_versions"]

import os
import platform
import re
import sys
from importlib import metadata
from typing import Any, TextIO

#: Distributions whose versions the report lists (installed name -> shown name).
DEPENDENCIES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "safetensors",
    "pydantic",
    "matplotlib",
    "PyYAML",
    "tqdm",
    "threadpoolctl",
)
#: Optional extras: listed as "not installed" when absent.
OPTIONAL = ("tensorboard", "pillow", "mlxtend")
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _torch_section() -> tuple[dict[str, Any], list[str]]:
    import torch

    config = torch.__config__.show()
    build = dict(re.findall(r"(\w+)=([^,\s]*)", config))
    cuda_ok = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None)
    mps_built = bool(mps is not None and mps.is_built())
    mps_ok = bool(mps is not None and mps.is_available())
    info: dict[str, Any] = {
        "version": torch.__version__,
        "cuda build": torch.version.cuda,
        "rocm build": torch.version.hip,
        "cudnn": torch.backends.cudnn.version() if cuda_ok else None,
        "cuda available": cuda_ok,
        "cuda devices": torch.cuda.device_count() if cuda_ok else 0,
        "mps built": mps_built,
        "mps available": mps_ok,
        "cpu capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "interop threads": torch.get_num_interop_threads(),
        "blas": build.get("BLAS_INFO"),
        "lapack": build.get("LAPACK_INFO"),
        "openmp": torch.backends.openmp.is_available(),
    }
    devices = ["cpu"]
    if cuda_ok:
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append(f"cuda:{i} {p.name} ({p.total_memory / 2**30:.1f} GiB)")
    if mps_ok:
        devices.append("mps")
    return info, devices


def _blas_section() -> dict[str, Any]:
    blas: dict[str, Any] = {}
    try:
        import numpy as np

        deps = np.show_config(mode="dicts").get("Build Dependencies", {})  # numpy >= 1.26
        b = deps.get("blas", {})
        blas["numpy"] = f"{b.get('name')} {b.get('version')}" if b else None
    except Exception:  # older numpy: no dict form
        blas["numpy"] = None
    try:
        from threadpoolctl import threadpool_info

        blas["loaded"] = [
            f"{p.get('internal_api')} {p.get('version') or ''} "
            f"({p.get('num_threads')} threads, {os.path.basename(p.get('filepath', ''))})"
            for p in threadpool_info()
        ]
    except ImportError:
        blas["loaded"] = "threadpoolctl not installed"
    return blas


def environment() -> dict[str, Any]:
    """The environment as a nested dictionary (what :func:`show_versions` prints).

    Returns:
        Sections ``system``, ``torch``, ``devices``, ``dependencies``, ``blas``.

    Example:
        >>> env = environment()
        >>> sorted(env)
        ['blas', 'dependencies', 'devices', 'system', 'torch']
        >>> env["devices"][0]
        'cpu'
    """
    from ._version import __version__

    system = {
        "ebmlab": __version__,
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        **{name: os.environ.get(name) for name in _THREAD_VARIABLES},
    }
    torch_info, devices = _torch_section()
    deps: dict[str, str | None] = {d: _version(d) for d in DEPENDENCIES}
    deps.update({d: _version(d) or "not installed" for d in OPTIONAL})
    return {
        "system": system,
        "torch": torch_info,
        "devices": devices,
        "dependencies": deps,
        "blas": _blas_section(),
    }


def _format(env: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, values in env.items():
        lines.append(f"{section}:")
        if isinstance(values, list):
            lines.extend(f"  {v}" for v in values)
        else:
            for key, value in values.items():
                if isinstance(value, list):
                    lines.append(f"  {key}:")
                    lines.extend(f"    {v}" for v in value)
                else:
                    lines.append(f"  {key:>20}: {value}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def show_versions(file: TextIO | None = None) -> None:
    """Print the environment for a bug report (``ebmlab info`` prints the same).

    Arguments:
        file: Where to write (default: standard output).

    Example:
        >>> import io
        >>> buf = io.StringIO()
        >>> show_versions(buf)
        >>> buf.getvalue().splitlines()[0]
        'system:'
    """
    (file or sys.stdout).write(_format(environment()))
