"""Atomic files and exact optimizer/RNG round trips."""

from __future__ import annotations

import json

import pytest
import torch

from ebmlab.errors import RunDirError
from ebmlab.train import (
    atomic_write_json,
    atomic_write_text,
    load_training_state,
    save_training_state,
)


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})
    atomic_write_text(p, '{"x": 2}')
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    p = tmp_path / "a.json"
    atomic_write_json(p, {"x": 1})

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(p, {"x": 2})
    monkeypatch.undo()
    assert json.loads(p.read_text()) == {"x": 1}
    assert [f.name for f in tmp_path.iterdir()] == ["a.json"]


def test_training_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    g = torch.Generator().manual_seed(7)
    torch.rand(3, generator=g)
    extra = {"buffer": torch.randn(5, 3)}
    save_training_state(
        tmp_path / "s.safetensors",
        step=11,
        model=model,
        optimizer=opt,
        generator=g,
        extra_tensors=extra,
        extra={"a": 1},
    )
    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5)
    g2 = torch.Generator()
    step, tensors, meta = load_training_state(
        tmp_path / "s.safetensors", model=model2, optimizer=opt2, generator=g2
    )
    assert step == 11 and meta == {"a": 1}
    assert torch.equal(tensors["buffer"], extra["buffer"])
    assert torch.equal(torch.rand(3, generator=g), torch.rand(3, generator=g2))
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert opt2.param_groups[0]["lr"] == 0.1
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for k in s1:
        for key in s1[k]:
            assert torch.equal(torch.as_tensor(s1[k][key]), torch.as_tensor(s2[k][key]))


def test_missing_checkpoint_is_a_user_error(tmp_path):
    model = torch.nn.Linear(1, 1)
    with pytest.raises(RunDirError, match="not found"):
        load_training_state(
            tmp_path / "nope.safetensors",
            model=model,
            optimizer=torch.optim.Adam(model.parameters()),
            generator=torch.Generator(),
        )


def test_directory_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    import os
    import stat

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert events == ["fsync file", "rename", "fsync dir"], events


def test_load_tensors_refuses_non_finite_corrupt_and_unrecorded_files(tmp_path):
    from safetensors.torch import save_file

    from ebmlab.train import atomic_save_tensors
    from ebmlab.train.checkpoint import load_tensors

    p = tmp_path / "w.safetensors"
    atomic_save_tensors(p, {"w": torch.tensor([1.0, float("nan")])})
    with pytest.raises(RunDirError, match=r"w\.safetensors: tensor 'w' holds NaN or infinity"):
        load_tensors(p)
    atomic_save_tensors(p, {"w": torch.tensor([1.0, 2.0])})
    assert torch.equal(load_tensors(p)[0]["w"], torch.tensor([1.0, 2.0]))
    data = bytearray(p.read_bytes())
    data[-1] ^= 0x01  # a bit of the last float
    p.write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="corrupt file"):
        load_tensors(p)
    p.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(RunDirError, match=r"w\.safetensors: corrupt or unreadable"):
        load_tensors(p)
    save_file({"w": torch.ones(2)}, str(p))  # no digest: not written by ebmlab
    with pytest.raises(RunDirError, match="no SHA-256 record"):
        load_tensors(p)
    assert torch.equal(load_tensors(p, require_digest=False)[0]["w"], torch.ones(2))
