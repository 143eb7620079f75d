"""mkdocs-gallery settings that mkdocs.yml cannot hold (``conf_script`` there).

The examples that take ``--quick`` run with it on the site, so that ``make docs``
stays within its time budget (each example's docstring names its full settings);
files an example writes go to a temporary folder, not into the source tree; progress
bars are off.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"  # progress bars would fill the pages' output
_OUT = Path(tempfile.mkdtemp(prefix="ebmlab-gallery-"))


def _reset_argv(script: object) -> list[str]:
    """Command-line arguments of an example run by mkdocs-gallery."""
    path = Path(str(getattr(script, "src_py_file", "")))
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    argv = []
    if '"--quick"' in text:
        argv.append("--quick")
    if '"--out-dir"' in text:
        argv += ["--out-dir", str(_OUT)]
    elif '"--out"' in text:
        argv += ["--out", str(_OUT / f"{path.stem}.png")]
    return argv


conf = {"reset_argv": _reset_argv}
