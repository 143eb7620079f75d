"""The training loop: checkpoints, resume equivalence, divergence guard."""

from __future__ import annotations

import csv
import json
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import load_file

from ebmlab.energies import MLPEnergy
from ebmlab.errors import TrainingDivergedError
from ebmlab.objectives import ContrastiveDivergence
from ebmlab.samplers import Langevin
from ebmlab.train import TrainSettings, fit, learning_rate


def noise(n, g):
    return torch.randn(n, 2, generator=g) * 2


def make(seed=0):
    torch.manual_seed(seed)
    energy = MLPEnergy(2, hidden=(16, 16), base_scale=3.0)
    cd = ContrastiveDivergence(Langevin(0.01), n_steps=3, mode="pcd", init_fn=noise)
    state = cd.init_state(32, reinit_prob=0.1, generator=torch.Generator().manual_seed(seed))
    return energy, cd, state


def data():
    return torch.randn(500, 2, generator=torch.Generator().manual_seed(5))


def test_learning_rate_schedules():
    s = TrainSettings(steps=100, lr=1.0, warmup_steps=10, lr_schedule="cosine")
    assert learning_rate(s, 0) == pytest.approx(0.1, rel=1e-2)
    assert learning_rate(s, 99) < 0.01
    s = TrainSettings(steps=100, lr=1.0, warmup_steps=0, lr_schedule="constant")
    assert learning_rate(s, 50) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainSettings(lr_schedule="step")


def test_fit_writes_metrics_and_checkpoint(tmp_path):
    energy, cd, state = make()
    s = TrainSettings(steps=20, batch_size=32, log_every=5, checkpoint_every=10)
    res = fit(energy, data(), cd, s, state=state, run_dir=tmp_path, progress=False)
    assert res.step == 20 and len(res.metrics) == 4
    rows = list(csv.DictReader((tmp_path / "metrics.csv").read_text().splitlines()))
    assert [int(float(r["step"])) for r in rows] == [5, 10, 15, 20]
    tensors = load_file(str(tmp_path / "train_state.safetensors"))
    assert "rng" in tensors and "extra.buffer" in tensors
    assert any(k.startswith("optimizer.") for k in tensors)
    assert not list(tmp_path.glob("*.tmp")), "no temporary files left behind"


def test_resume_gives_identical_weights(tmp_path):
    s = TrainSettings(steps=30, batch_size=32, log_every=5, checkpoint_every=10)
    energy, cd, state = make()
    fit(energy, data(), cd, s, state=state, run_dir=tmp_path / "full", progress=False)
    # Interrupted during step 24 (last checkpoint at 20), then resumed from scratch objects.
    energy2, cd2, state2 = make()

    class Interrupt:
        calls = 0

        def __call__(self, *args, **kwargs):
            self.calls += 1
            if self.calls == 24:
                raise KeyboardInterrupt
            return cd2(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        fit(
            energy2, data(), Interrupt(), s, state=state2, run_dir=tmp_path / "cut", progress=False
        )
    energy3, cd3, state3 = make(seed=123)  # different init: everything comes from the checkpoint
    fit(
        energy3,
        data(),
        cd3,
        s,
        state=state3,
        run_dir=tmp_path / "cut",
        resume=True,
        progress=False,
    )
    for (k, a), b in zip(energy.state_dict().items(), energy3.state_dict().values(), strict=True):
        assert torch.equal(a, b), f"{k} differs after resume"
    rows = list(csv.DictReader((tmp_path / "cut" / "metrics.csv").read_text().splitlines()))
    assert [int(float(r["step"])) for r in rows] == [5, 10, 15, 20, 25, 30]


def _rows(path):
    """metrics.csv rows without the wall-clock column."""
    rows = list(csv.DictReader(path.read_text().splitlines()))
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def test_resume_mid_window_writes_the_same_metrics(tmp_path):
    """A checkpoint between two metric rows keeps the partial window: the first row after
    the resume averages the same steps as in an uninterrupted run."""
    s = TrainSettings(
        steps=20, batch_size=32, log_every=10, checkpoint_every=15, lr_schedule="constant"
    )
    energy, cd, state = make()
    fit(energy, data(), cd, s, state=state, run_dir=tmp_path / "full", progress=False)
    energy2, cd2, state2 = make()

    def interrupted(*args, calls=[0], **kwargs):  # noqa: B006 - a call counter
        calls[0] += 1
        if calls[0] == 18:  # after the checkpoint at step 15, before the row at 20
            raise KeyboardInterrupt
        return cd2(*args, **kwargs)

    with pytest.raises(KeyboardInterrupt):
        fit(energy2, data(), interrupted, s, state=state2, run_dir=tmp_path / "cut",
            progress=False)  # fmt: skip
    energy3, cd3, state3 = make(seed=123)
    fit(energy3, data(), cd3, s, state=state3, run_dir=tmp_path / "cut", resume=True,
        progress=False)  # fmt: skip
    full = _rows(tmp_path / "full" / "metrics.csv")
    resumed = _rows(tmp_path / "cut" / "metrics.csv")
    assert [r["step"] for r in resumed] == ["10", "20"]
    assert resumed == full, (resumed, full)


def test_resume_applies_new_optimizer_settings_with_a_warning(tmp_path):
    energy, cd, state = make()
    s = TrainSettings(steps=10, batch_size=32, log_every=5)
    fit(energy, data(), cd, s, state=state, run_dir=tmp_path, progress=False)
    more = TrainSettings(steps=15, batch_size=32, log_every=5, betas=(0.5, 0.9), weight_decay=0.1)
    with pytest.warns(UserWarning, match=r"betas: \[0.9, 0.999\] -> \(0.5, 0.9\)"):
        fit(energy, data(), cd, more, state=state, run_dir=tmp_path, resume=True, progress=False)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "train_state.safetensors"), framework="pt") as fh:
        groups = json.loads(fh.metadata()["optimizer"])["param_groups"]
    assert groups[0]["betas"] == [0.5, 0.9] and groups[0]["weight_decay"] == 0.1


class _Diag(NamedTuple):
    loss: torch.Tensor
    energy_pos: torch.Tensor
    energy_neg: torch.Tensor
    energy_gap: torch.Tensor
    acceptance_rate: torch.Tensor


class ExplodingObjective:
    """Finite for a few steps, then a NaN energy."""

    def __init__(self, bad_step: int) -> None:
        self.calls = 0
        self.bad_step = bad_step

    def __call__(self, energy, x, state, *, generator=None):
        self.calls += 1
        e = energy(x).mean()
        if self.calls > self.bad_step:
            e = e * float("nan")
        one = torch.tensor(1.0)
        return e, _Diag(e.detach(), e.detach(), e.detach(), 0 * one, one), state


def test_divergence_stops_with_clear_message_and_keeps_checkpoint(tmp_path):
    energy = MLPEnergy(2, hidden=(8,))
    s = TrainSettings(steps=50, batch_size=8, checkpoint_every=10, log_every=5)
    with pytest.raises(TrainingDivergedError, match=r"step 25.*checkpoint \(step 20\)"):
        fit(energy, data(), ExplodingObjective(25), s, run_dir=tmp_path, progress=False)
    from safetensors import safe_open

    with safe_open(str(tmp_path / "train_state.safetensors"), "pt") as fh:
        assert fh.metadata()["step"] == "20"
    assert all(torch.isfinite(p).all() for p in energy.parameters())
