"""Stop signals, the run lock, a full disk or read-only directory at each write,
and corruption of each file of a run directory."""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import stat
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from ebmlab.cli import main
from ebmlab.train.checkpoint import load_tensors

from .harness import (
    CKPT,
    checkpoint_step,
    ebmlab,
    resume,
    same_weights,
    spawn,
    wait,
    wait_for_step,
    write_config,
)

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
QUIET = ("--no-eval", "--quiet")


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def long_cfg(tmp_path_factory) -> tuple[Path, Path]:
    """A 300-step config without periodic checkpoints and its uninterrupted run."""
    base = tmp_path_factory.mktemp("long")
    cfg = write_config(base, steps=300, checkpoint_every=0)
    assert main(["train", str(cfg), "--out", str(base / "ref"), *QUIET]) == 0
    return cfg, base / "ref"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_writes_a_checkpoint_and_resume_is_exact(long_cfg, tmp_path, sig):
    cfg, ref = long_cfg
    out = tmp_path / "run"
    pid = spawn(["train", str(cfg), "--out", str(out), *QUIET], tmp_path / "err")
    wait_for_step(out, 0)
    time.sleep(0.3)
    os.kill(pid, sig)
    assert wait(pid) == 128 + sig
    line = one_line((tmp_path / "err").read_text())
    assert f"stopped by {signal.Signals(sig).name}" in line and "ebmlab resume" in line
    step = checkpoint_step(out)
    assert 0 < step < 300, f"the stop checkpoint is at step {step}"
    code, err = resume(out)
    assert code == 0, err
    assert same_weights(ref, out)


def test_second_process_on_a_run_directory_is_refused(long_cfg, tmp_path):
    cfg, _ = long_cfg
    out = tmp_path / "run"
    pid = spawn(["train", str(cfg), "--out", str(out), *QUIET], tmp_path / "err")
    try:
        wait_for_step(out, 0)
        for args in (["train", str(cfg), "--out", str(out)], ["resume", str(out)]):
            code, err = ebmlab([*args, *QUIET], tmp_path / "err2")
            assert code == 2
            assert "another ebmlab process" in one_line(err)
    finally:
        os.kill(pid, signal.SIGTERM)
        assert wait(pid) == 128 + signal.SIGTERM
    code, err = resume(out)  # the lock went with the process
    assert code == 0, err


# ---------------------------------------------------------------- full disk, read-only directory

SHORT = {"steps": 20, "checkpoint_every": 10}


@pytest.fixture(scope="module")
def short_ref(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("short")
    cfg = write_config(base, **SHORT)
    assert main(["train", str(cfg), "--out", str(base / "ref"), *QUIET]) == 0
    return cfg, base / "ref"


def _count_writes(cfg: Path, out: Path, monkeypatch) -> int:
    calls = []
    real = tempfile.mkstemp

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", counting)
    assert main(["train", str(cfg), "--out", str(out), *QUIET]) == 0
    monkeypatch.undo()
    return len(calls)


def _inject(monkeypatch, kind: str, at: int) -> None:
    """Make the ``at``-th atomic write (1-based) fail: ENOSPC at its fsync, EACCES at creation."""
    seen = [0]
    if kind == "EACCES":
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*a, **kw):
            seen[0] += 1
            if seen[0] == at:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return real_mkstemp(*a, **kw)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    else:
        real_fsync = os.fsync

        def fsync(fd):
            if stat.S_ISREG(os.fstat(fd).st_mode):  # files, not the directory fsync
                seen[0] += 1
                if seen[0] == at:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ENOSPC", "EACCES"])
def test_failed_write_keeps_the_previous_checkpoint(
    short_ref, tmp_path, monkeypatch, capsys, kind
):
    cfg, ref = short_ref
    n_writes = _count_writes(cfg, tmp_path / "count", monkeypatch)
    assert n_writes >= 6
    for at in range(1, n_writes + 1):
        out = tmp_path / f"{kind}{at}"
        _inject(monkeypatch, kind, at)
        capsys.readouterr()
        code = main(["train", str(cfg), "--out", str(out), *QUIET])
        monkeypatch.undo()
        err = capsys.readouterr().err
        assert code == 2, f"write {at}: exit {code}: {err}"
        line = one_line(err)
        assert "cannot write" in line and ("kept unchanged" in line or "nothing written" in line)
        assert not list(out.glob(".*.tmp")), "a temporary file was left behind"
        for f in out.glob("*.safetensors"):
            load_tensors(f)  # what is there loads: never half a file
        if checkpoint_step(out) >= 0 and (out / "config.yaml").is_file():
            assert main(["resume", str(out), *QUIET]) == 0
        else:
            assert main(["train", str(cfg), "--out", str(out), *QUIET]) == 0
        assert same_weights(ref, out), f"write {at}: weights differ after recovery"
    with capsys.disabled():
        print(f"\n| {kind} | {n_writes} writes, each failed once | exit 2, previous file kept |")


# ---------------------------------------------------------------- corruption of each file


def _corruptions(data: bytes, rng: random.Random) -> list[tuple[str, bytes]]:
    out = [("emptied", b""), ("truncated to half", data[: len(data) // 2])]
    out.append(("random bytes", bytes(rng.getrandbits(8) for _ in range(len(data)))))
    for _ in range(6):
        i = rng.randrange(len(data))
        flipped = bytearray(data)
        flipped[i] ^= 1 << rng.randrange(8)
        out.append((f"bit flipped at byte {i}", bytes(flipped)))
    return out


FILES = ["config.yaml", "state.json", "model.safetensors", CKPT, "metrics.csv"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_corrupt_file_is_named_or_harmless(short_ref, tmp_path, capsys, name):
    _, ref = short_ref
    points = tmp_path / "points.csv"
    np.savetxt(points, np.random.default_rng(0).normal(size=(5, 2)), delimiter=",")
    assert main(["score", str(ref), str(points), "--out", str(tmp_path / "good.txt")]) == 0
    good_scores = (tmp_path / "good.txt").read_text()
    rng = random.Random(f"corrupt {name}")
    seen = {"named": 0, "harmless": 0}
    for what, data in _corruptions((ref / name).read_bytes(), rng):
        run = tmp_path / "run"
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(ref, run)
        (run / name).write_bytes(data)
        capsys.readouterr()
        code = main(["score", str(run), str(points), "--out", str(tmp_path / "s.txt")])
        err = capsys.readouterr().err
        if code == 0:
            assert (tmp_path / "s.txt").read_text() == good_scores, f"{name} {what}: wrong scores"
        else:
            assert code == 2 and name in one_line(err), f"{name} {what}: {err}"
        seen["harmless" if code == 0 else "named"] += 1
        code = main(["resume", str(run), "--steps", "30", *QUIET])
        err = capsys.readouterr().err
        if code != 0:
            assert code == 2 and name in one_line(err), f"{name} {what}: {err}"
        seen["harmless" if code == 0 else "named"] += 1
    with capsys.disabled():
        print(f"\n| {name} | {seen['named']} named in one line, {seen['harmless']} harmless |")
