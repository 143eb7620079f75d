"""Check the built sdist and wheel before a release (``make dist`` runs it).

The wheel must hold every module and data file under ``src/ebmlab`` (the
package reads nothing else), ``py.typed``, the LICENSE, the ``ebmlab`` console
script and the version of ``src/ebmlab/_version.py``; it must hold nothing
else (no tests, benchmarks, examples, caches). The sdist must hold the LICENSE,
the sources and ``pyproject.toml``. The core requirements stay lean: the
optional extras' packages are never unconditional requirements.

    python tools/check_dist.py dist/            # checks the newest wheel and sdist there
    python tools/check_dist.py dist/ebmlab-0.1.0-py3-none-any.whl

Exits 1 with one line per problem, 0 with a one-line summary.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "ebmlab"
EXTRAS = {"dev", "images", "docs", "bench", "tensorboard"}
#: Distributions that only optional extras may bring.
NOT_CORE = {"tensorboard", "pillow", "mlxtend", "mkdocs", "pytest", "build", "twine"}
FORBIDDEN = re.compile(r"(^|/)(tests?|benchmarks|examples|__pycache__|\.[^/]+)(/|$)|\.py[co]$")


def source_version() -> str:
    m = re.search(r'^__version__ = "([^"]+)"', (PACKAGE / "_version.py").read_text(), re.M)
    if m is None:
        raise SystemExit("src/ebmlab/_version.py: no __version__ line")
    return m.group(1)


def package_files() -> set[str]:
    """Every file the package consists of: modules and data, no caches."""
    return {
        "ebmlab/" + p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def check_wheel(path: Path) -> list[str]:
    problems: list[str] = []
    version = source_version()
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        dist_info = f"ebmlab-{version}.dist-info/"
        if not any(n.startswith(dist_info) for n in names):
            problems.append(f"{path.name}: no {dist_info} (version is not {version}?)")
            return problems
        missing = sorted(package_files() - names)
        if missing:
            problems.append(f"{path.name}: missing package files {missing}")
        for name in sorted(names):
            if not (name.startswith(("ebmlab/", dist_info))):
                problems.append(f"{path.name}: unexpected top-level entry {name}")
            elif FORBIDDEN.search(name):
                problems.append(f"{path.name}: holds {name}")
        if "ebmlab/py.typed" not in names:
            problems.append(f"{path.name}: no ebmlab/py.typed")
        license_name = dist_info + "licenses/LICENSE"
        if license_name not in names:
            problems.append(f"{path.name}: no {license_name}")
        elif b"Apache License" not in zf.read(license_name):
            problems.append(f"{path.name}: {license_name} is not the Apache License")
        meta = Parser().parsestr(zf.read(dist_info + "METADATA").decode())
        if meta["Version"] != version:
            problems.append(f"{path.name}: METADATA version {meta['Version']} != {version}")
        if meta.get("License-Expression") != "Apache-2.0":
            problems.append(f"{path.name}: License-Expression {meta.get('License-Expression')}")
        extras = set(meta.get_all("Provides-Extra") or [])
        if not extras >= EXTRAS:
            problems.append(f"{path.name}: extras {sorted(extras)} lack {sorted(EXTRAS - extras)}")
        for req in meta.get_all("Requires-Dist") or []:
            name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0].lower()
            if "extra ==" not in req and name in NOT_CORE:
                problems.append(f"{path.name}: core requirement {req!r} belongs in an extra")
        entry = zf.read(dist_info + "entry_points.txt").decode()
        if not re.search(r"^ebmlab\s*=\s*ebmlab\.cli:main$", entry, re.M):
            problems.append(f"{path.name}: no ebmlab = ebmlab.cli:main console script")
    return problems


def check_sdist(path: Path) -> list[str]:
    problems: list[str] = []
    root = f"ebmlab-{source_version()}/"
    with tarfile.open(path) as tf:
        names = set(tf.getnames())
    for need in ("LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "PKG-INFO"):
        if root + need not in names:
            problems.append(f"{path.name}: no {need}")
    missing = sorted(f for f in package_files() if root + "src/" + f not in names)
    if missing:
        problems.append(f"{path.name}: missing package files {missing}")
    for name in sorted(names):
        if "/benchmarks/" in name or "__pycache__" in name or name.endswith(".pyc"):
            problems.append(f"{path.name}: holds {name}")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[0] + "\nusage: check_dist.py DIST_DIR_OR_FILE")
        return 2
    target = Path(argv[0])
    if target.is_dir():
        version = source_version()
        files = [target / f"ebmlab-{version}-py3-none-any.whl"]
        files.append(target / f"ebmlab-{version}.tar.gz")
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            print(f"{target}: {', '.join(missing)} not built")
            return 1
    else:
        files = [target]
    problems: list[str] = []
    for f in files:
        problems += check_wheel(f) if f.suffix == ".whl" else check_sdist(f)
    for p in problems:
        print(p)
    if not problems:
        print(f"ok: {', '.join(f.name for f in files)}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
