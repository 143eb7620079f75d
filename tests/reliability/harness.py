"""Shared pieces of the fault-injection suite: tiny runs in forked children.

Forking the test process (torch already imported) keeps each trial to the time
of its training steps instead of a fresh interpreter's start-up. A child runs
:func:`ebmlab.cli.main` with its stderr in a file and exits with main's status.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import torch
import yaml

from ebmlab.train.checkpoint import load_tensors

TINY = {
    "name": "tiny",
    "model": {"hidden": [16, 16]},
    "objective": {"n_steps": 3},
    "train": {"steps": 120, "batch_size": 32, "log_every": 10, "checkpoint_every": 10},
    "data": {"n_train": 400, "n_test": 100},
    "evaluate": {"n_samples": 100, "sample_steps": 5, "mmd_samples": 100},
}
CKPT = "train_state.safetensors"


def write_config(directory: Path, **train: int) -> Path:
    cfg = yaml.safe_load(yaml.safe_dump(TINY))
    cfg["train"].update(train)
    path = directory / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def spawn(args: list[str], err: Path) -> int:
    """Fork a child running ``ebmlab ARGS``; returns its pid (stderr goes to ``err``)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - pytest's is not fd 2
            sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            from ebmlab.cli import main

            code = main(args)
        except BaseException as exc:  # an unexpected traceback is a failure
            import traceback

            traceback.print_exception(exc)
            code = 99
        finally:
            sys.stderr.flush()
            os._exit(code)
    return pid


def wait(pid: int, timeout: float = 180.0) -> int:
    """Exit status of a child (``-N`` when killed by signal ``N``); a hung child fails."""
    deadline = time.time() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {pid} hung for {timeout} s")
        time.sleep(0.002)


def ebmlab(args: list[str], err: Path) -> tuple[int, str]:
    """Run ``ebmlab ARGS`` in a forked child; ``(status, stderr)``."""
    code = wait(spawn(args, err))
    return code, err.read_text()


def train(cfg: Path, out: Path, *extra: str) -> tuple[int, str]:
    return ebmlab(
        ["train", str(cfg), "--out", str(out), "--no-eval", "--quiet", *extra],
        out.parent / f"{out.name}.train.err",
    )


def resume(out: Path, *extra: str) -> tuple[int, str]:
    return ebmlab(
        ["resume", str(out), "--no-eval", "--quiet", *extra], out.parent / f"{out.name}.resume.err"
    )


def checkpoint_step(out: Path) -> int:
    """Step of the run's checkpoint, -1 when absent; raises on a corrupt one."""
    if not (out / CKPT).is_file():
        return -1
    _, meta = load_tensors(out / CKPT)
    return int(meta["step"])


def wait_for_step(out: Path, step: int, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if checkpoint_step(out) >= step:
                return
        except Exception:  # a checkpoint being replaced: try again
            pass
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint at step {step} in {out} after {timeout} s")


def same_weights(a: Path, b: Path) -> bool:
    ta, _ = load_tensors(a / "model.safetensors")
    tb, _ = load_tensors(b / "model.safetensors")
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
