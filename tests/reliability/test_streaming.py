"""Bounded memory: score, detect and denoise in chunks give the one-shot results.

A float32 matrix product may round differently for a different number of rows
(measured: at most 1 ulp, on 50 of 1003 rows, chunks of 7 against one chunk),
so chunked results are compared to 4 ulp; rows out of order or lost would
differ by O(1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebmlab.cli import main
from ebmlab.data import load_array
from ebmlab.data.loaders import iter_array_chunks
from ebmlab.errors import DataError
from ebmlab.runs import denoise_run, detect_run, score_run
from ebmlab.train import atomic_save_npy_chunks

from .harness import write_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("stream")
    cfg = write_config(base, steps=20, checkpoint_every=0)
    assert main(["train", str(cfg), "--out", str(base / "run"), "--no-eval", "--quiet"]) == 0
    x = np.random.default_rng(0).normal(size=(1003, 2)) * 2
    np.savetxt(base / "x.csv", x, delimiter=",", header="a,b", comments="")
    np.save(base / "x.npy", x)
    return base


@pytest.mark.parametrize("ext", ["csv", "npy"])
def test_chunks_give_the_one_shot_results(run, ext):
    path = run / f"x.{ext}"
    whole = score_run(run / "run", path)
    assert whole.shape == (1003,)
    ulp4 = 4 * torch.finfo(torch.float32).eps
    torch.testing.assert_close(
        score_run(run / "run", path, chunk_rows=7), whole, rtol=ulp4, atol=ulp4
    )
    one, many = (detect_run(run / "run", path, chunk_rows=c) for c in (10**6, 7))
    torch.testing.assert_close(one.energy, many.energy, rtol=ulp4, atol=ulp4)
    assert torch.equal(one.labels, many.labels)
    kw = {"noise_std": 0.3, "n_steps": 5}
    a = denoise_run(run / "run", path, chunk_rows=10**6, **kw)
    b = denoise_run(run / "run", path, chunk_rows=7, **kw)
    assert a.shape == (1003, 2)
    torch.testing.assert_close(a, b, rtol=ulp4, atol=ulp4)


def test_cli_streams_in_input_order(run, capsys):
    out = run / "scores.txt"
    assert main(["score", str(run / "run"), str(run / "x.csv"), "-o", str(out)]) == 0
    got = np.loadtxt(out)
    want = score_run(run / "run", run / "x.npy").numpy()
    np.testing.assert_array_equal(got.astype(np.float32), want)
    assert main(["denoise", str(run / "run"), str(run / "x.csv"), "--noise-std", "0.3",
                 "--steps", "5", "-o", str(run / "d.npy")]) == 0  # fmt: skip
    np.testing.assert_array_equal(
        np.load(run / "d.npy"), denoise_run(run / "run", run / "x.npy", noise_std=0.3, n_steps=5)
    )


def test_csv_chunks_keep_line_numbers(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("a,b\n" + "1,2\n" * 20 + "1,x\n")
    with pytest.raises(DataError, match="line 22, column 2"):
        list(iter_array_chunks(p, chunk_rows=3))
    p.write_text("1,2\n" * 10 + "1,inf\n")
    with pytest.raises(DataError, match="line 11, column 2"):
        list(iter_array_chunks(p, chunk_rows=4))
    np.save(tmp_path / "n.npy", np.r_[np.zeros((9, 2)), [[0, np.inf]]])
    with pytest.raises(DataError, match="row 10, column 2"):
        list(iter_array_chunks(tmp_path / "n.npy", chunk_rows=4))


def test_large_npy_is_memory_mapped(tmp_path):
    x = np.random.default_rng(1).normal(size=(500, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    mapped = load_array(tmp_path / "x.npy", mmap_above=0)
    assert isinstance(mapped, np.memmap) and np.array_equal(mapped, x)
    assert not isinstance(load_array(tmp_path / "x.npy"), np.memmap)
    x[7, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match="row 8, column 2"):
        load_array(tmp_path / "x.npy", mmap_above=0)


def test_npy_chunks_writer(tmp_path):
    chunks = [np.arange(6.0).reshape(3, 2), np.arange(4.0).reshape(2, 2)]
    assert atomic_save_npy_chunks(tmp_path / "o.npy", iter(chunks), dtype=np.float64) == 5
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), np.concatenate(chunks))
