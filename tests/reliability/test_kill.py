"""SIGKILL at random moments of training and of checkpoint writing, then resume.

Each trial starts ``ebmlab train`` in a forked child, kills it with SIGKILL
after a random delay (uniform over the length of an uninterrupted run), checks
that the checkpoint left behind loads (no corrupt or lost checkpoint), resumes
(or restarts when the kill came before the first checkpoint) and compares the
final weights bit for bit with the uninterrupted run's. Half the trials
checkpoint every 10 steps (kills land mostly in training steps), half every
step (kills land often inside a checkpoint write: a temporary file is left).

``make test`` runs a seeded slice of 4 trials; ``EBMLAB_RELIABILITY_KILLS=100``
(``make reliability``) runs 100 and prints the table of docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from ebmlab.cli import main

from .harness import checkpoint_step, resume, same_weights, spawn, train, wait, write_config

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def kill_trials(tmp: Path, n: int, seed: int) -> Counter[str]:
    """``n`` kill-and-resume trials; counts of what happened (see the module docstring)."""
    rng = random.Random(seed)
    counts: Counter[str] = Counter()
    for mode, every in (("training", 10), ("checkpoint writing", 1)):
        base = tmp / f"every{every}"
        base.mkdir()
        cfg = write_config(base, checkpoint_every=every)
        # The reference runs in this process: it also warms up (lazy imports, first
        # calls), so the forked children spend their time in training, as a long run does.
        if every == 10:
            main(["train", str(cfg), "--out", str(base / "warm-up"), "--no-eval", "--quiet"])
        t0 = time.perf_counter()
        assert main(["train", str(cfg), "--out", str(base / "ref"), "--no-eval", "--quiet"]) == 0
        length = time.perf_counter() - t0
        want = n // 2 if mode == "training" else n - n // 2
        i = 0
        while counts[f"{mode}: killed"] < want:  # a child that had finished is not a kill
            i += 1
            out = base / f"kill{i}"
            pid = spawn(["train", str(cfg), "--out", str(out), "--no-eval", "--quiet"], base / "e")
            time.sleep(rng.uniform(0.0, length))
            os.kill(pid, signal.SIGKILL)
            status = wait(pid)
            counts[f"{mode}: trials"] += 1
            killed = status == -signal.SIGKILL
            counts[f"{mode}: killed" if killed else f"{mode}: had finished (not counted)"] += 1
            if any(out.glob(".*.tmp")):
                counts[f"{mode}: killed inside a write (temporary file left)"] += 1
            try:
                step = checkpoint_step(out)
            except Exception as exc:
                counts[f"{mode}: corrupt checkpoint"] += 1
                raise AssertionError(f"trial {i}: corrupt checkpoint: {exc}") from exc
            if step < 0 or not (out / "config.yaml").is_file():
                counts[f"{mode}: killed before the first checkpoint (restarted)"] += 1
                code, err = train(cfg, out)
            else:
                code, err = resume(out)
            assert code == 0, f"trial {i} ({mode}): resume failed: {err}"
            assert not any(out.glob(".*.tmp")), "temporary files left after resume"
            if same_weights(base / "ref", out):
                counts[f"{mode}: resumed bit-identical"] += 1
            else:
                counts[f"{mode}: resumed with different weights"] += 1
                raise AssertionError(f"trial {i} ({mode}): weights differ after kill + resume")
    return counts


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    n = int(os.environ.get("EBMLAB_RELIABILITY_KILLS", "4"))
    counts = kill_trials(tmp_path, n, seed=18)
    print()
    for key in sorted(counts):
        print(f"| {key} | {counts[key]} |")
    assert sum(v for k, v in counts.items() if k.endswith(": killed")) == n
    trials = sum(v for k, v in counts.items() if k.endswith(": trials"))
    assert sum(v for k, v in counts.items() if k.endswith("bit-identical")) == trials
