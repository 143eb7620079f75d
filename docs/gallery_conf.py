"""mkdocs-gallery settings that mkdocs.yml cannot hold (``conf_script`` there).

The examples that take ``--quick`` run with it on the site, so that ``make docs``
stays within its time budget; each example's docstring names its full settings.
"""

from __future__ import annotations

from pathlib import Path


def _reset_argv(script: object) -> list[str]:
    """Command-line arguments of an example run by mkdocs-gallery."""
    path = Path(str(getattr(script, "src_py_file", "")))
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    return ["--quick"] if '"--quick"' in text else []


conf = {"reset_argv": _reset_argv}
