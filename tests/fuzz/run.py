"""``make fuzz``: run every fuzz target of :mod:`tests.fuzz.targets` under atheris.

Usage: ``python tests/fuzz/run.py [--budget SECONDS] [TARGET ...]``. Each target
runs in its own process for ``--budget`` seconds (libFuzzer's
``-max_total_time``), starting from the seeds of ``targets.seeds``, with
libFuzzer's hang (``-timeout``, 10 s per input) and memory (``-rss_limit_mb``)
checks; the corpus grows in ``fuzz-artifacts/corpus-TARGET``. A crash, hang or
memory blow-up leaves its input in ``fuzz-artifacts/``
(turn it into a regression test in ``tests/fuzz/test_fuzz.py``) and makes the
command exit 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _one(target: str, budget: int) -> None:  # pragma: no cover - runs under atheris
    import atheris

    sys.path.insert(0, str(ROOT))
    with atheris.instrument_imports(include=["ebmlab"]):
        import ebmlab.config
        import ebmlab.data.loaders
        import ebmlab.runs  # noqa: F401
    from tests.fuzz.targets import TARGETS, seeds

    artifacts = ROOT / "fuzz-artifacts"
    corpus = artifacts / f"corpus-{target}"  # kept: the next run starts from it
    corpus.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds(target)):
        (corpus / f"seed{i}").write_bytes(s)
    argv = [
        sys.argv[0],
        f"-max_total_time={budget}",
        "-timeout=10",
        "-rss_limit_mb=3072",
        "-max_len=65536",
        f"-artifact_prefix={artifacts}/{target}-",
        "-print_final_stats=1",
        str(corpus),
    ]
    atheris.Setup(argv, TARGETS[target])
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*")
    parser.add_argument("--budget", type=int, default=60, help="seconds per target")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args.one, args.budget)
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.fuzz.targets import TARGETS

    failed = []
    for target in args.targets or list(TARGETS):
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, __file__, "--one", target, "--budget", str(args.budget)],
            capture_output=True,
            text=True,
        )
        runs = [ln for ln in proc.stderr.splitlines() if "stat::number_of_executed_units" in ln]
        n = runs[-1].split(":")[-1].strip() if runs else "?"
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        print(f"{target:18s} {time.time() - t0:6.0f} s {n:>8s} inputs  {status}", flush=True)
        if proc.returncode != 0:
            failed.append(target)
            print("\n".join(proc.stderr.splitlines()[-40:]))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
