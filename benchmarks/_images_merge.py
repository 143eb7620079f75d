"""Merge per-seed JSONs of ``images.py --part classification`` or ``--part heldout``.

On a shared machine the seeds run as separate processes (one per seed, each
with its own ``--json``); this joins them and writes the summary (mean and
standard deviation over the seeds) that a single multi-seed run would give.

Usage::

    python benchmarks/_images_merge.py OUT.json SEED0.json SEED1.json SEED2.json
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any


def _mean_std(values: list[float]) -> tuple[float, float]:
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    return statistics.fmean(values), statistics.pstdev(values)


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One result from per-seed results (classification or held-out classes)."""
    seeds = [s for p in parts for s in p["seeds"]]
    out: dict[str, Any] = {"epochs": parts[0]["epochs"], "seeds": seeds}
    if "per_seed" in parts[0]:  # classification
        rows: dict[str, list[dict[str, float]]] = {}
        for p in parts:
            for name, rs in p["per_seed"].items():
                rows.setdefault(name, []).extend(rs)
        out["per_seed"] = rows
        out["summary"] = {
            name: {k: _mean_std([r[k] for r in rs]) for k in rs[0]} for name, rs in rows.items()
        }
    else:  # held-out classes
        auroc: dict[str, list[float]] = {}
        for p in parts:
            for k, v in p["auroc"].items():
                auroc.setdefault(k, []).extend(v)
        out["auroc"] = auroc
        out["summary"] = {k: _mean_std(v) for k, v in auroc.items()}
    return out


def main(argv: list[str]) -> None:
    parts = [json.loads(Path(p).read_text()) for p in argv[1:]]
    text = json.dumps(merge(parts), indent=2)
    Path(argv[0]).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
