"""``ebmlab denoise``: Gaussian denoising and inpainting with a tiny trained run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from ebmlab.cli import main
from ebmlab.runs import denoise_run

#: A 3-D data file whose rows lie near the line x = y = z: easy to restore.
CONFIG = {
    "name": "line",
    "model": {"hidden": [32, 32]},
    "objective": {"name": "dsm", "noise_std": 0.1},
    "train": {"steps": 300, "batch_size": 128, "log_every": 100, "checkpoint_every": 0},
    "data": {"test_fraction": 0.2},
}


def line(n: int, seed: int) -> np.ndarray:
    rng = np.random.RandomState(seed)
    t = rng.uniform(-1.5, 1.5, size=(n, 1))
    return t * np.ones((1, 3)) + 0.03 * rng.randn(n, 3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("denoise")
    np.save(tmp / "train.npy", line(1000, 0).astype(np.float32))
    cfg = json.loads(json.dumps(CONFIG))
    cfg["data"]["file"] = str(tmp / "train.npy")
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert (
        main(["train", str(tmp / "cfg.yaml"), "--out", str(tmp / "run"), "--quiet", "--no-eval"])
        == 0
    )
    return tmp / "run"


def mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2))


def test_gaussian_denoising_moves_rows_towards_the_data(trained, tmp_path, capsys):
    clean = line(200, 1)
    noisy = clean + 0.3 * np.random.RandomState(2).randn(*clean.shape)
    np.save(tmp_path / "noisy.npy", noisy)
    out = tmp_path / "out.npy"
    code = main(
        [
            "denoise",
            str(trained),
            str(tmp_path / "noisy.npy"),
            "-o",
            str(out),
            "--noise-std",
            "0.3",
        ]
    )
    assert code == 0 and "200 rows restored" in capsys.readouterr().out
    restored = np.load(out)
    assert restored.shape == clean.shape
    # Noise off the line is most of the error: a fair restoration removes half of it.
    assert mse(restored, clean) < 0.6 * mse(noisy, clean), (
        mse(restored, clean),
        mse(noisy, clean),
    )
    lang = denoise_run(
        trained, tmp_path / "noisy.npy", noise_std=0.3, method="langevin", n_chains=4
    )
    assert mse(lang.numpy(), clean) < 0.6 * mse(noisy, clean)


def test_inpainting_keeps_observed_entries(trained, tmp_path):
    clean = line(100, 3)
    mask = np.ones_like(clean, dtype=bool)
    mask[:, 2] = False  # the third coordinate is missing: it should follow the other two
    with_nan = np.where(mask, clean, np.nan)
    np.save(tmp_path / "nan.npy", with_nan)
    out = tmp_path / "filled.npy"
    assert (
        main(
            ["denoise", str(trained), str(tmp_path / "nan.npy"), "-o", str(out), "--noise", "mask"]
        )
        == 0
    )
    filled = np.load(out)
    np.testing.assert_array_equal(filled[mask], clean[mask])
    mean_fill = np.where(mask, clean, 0.0)
    assert mse(filled, clean) < 0.3 * mse(mean_fill, clean)
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "mask.npy", mask)
    via_mask = denoise_run(
        trained, tmp_path / "clean.npy", noise="mask", mask=tmp_path / "mask.npy"
    )
    np.testing.assert_allclose(via_mask.numpy(), filled, rtol=1e-6, atol=1e-6)
    # Without --noise and --noise-std, NaN entries are the missing ones (mask).
    default = tmp_path / "default.npy"
    assert main(["denoise", str(trained), str(tmp_path / "nan.npy"), "-o", str(default)]) == 0
    np.testing.assert_array_equal(np.load(default), filled)


def test_user_errors_exit_2(trained, tmp_path, capsys):
    np.save(tmp_path / "x.npy", line(5, 4))
    np.save(tmp_path / "bad_mask.npy", np.ones((4, 3)))
    o = str(tmp_path / "o.npy")
    x = str(tmp_path / "x.npy")
    assert main(["denoise", str(trained), x, "-o", o]) == 2
    assert "nothing to restore" in capsys.readouterr().err
    assert main(["denoise", str(trained), x, "-o", o, "--noise", "gaussian"]) == 2
    assert "--noise-std > 0" in capsys.readouterr().err
    assert (
        main(["denoise", str(trained), x, "-o", o, "--mask", str(tmp_path / "bad_mask.npy")]) == 2
    )
    assert "mask shape (4, 3) differs" in capsys.readouterr().err
    assert main(["denoise", str(trained), x, "-o", o, "--noise", "mask"]) == 2
    assert "nothing to restore" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.zeros((5, 4)))
    assert (
        main(["denoise", str(trained), str(tmp_path / "wide.npy"), "-o", o, "--noise-std", "1"])
        == 2
    )
    assert "expected rows of shape (N, 3)" in capsys.readouterr().err
    assert not (tmp_path / "o.npy").exists()


@pytest.mark.parametrize("method", ["tweedie", "exemplar"])
def test_tweedie_and_exemplar_need_a_noise_conditional_run(trained, tmp_path, capsys, method):
    np.save(tmp_path / "x.npy", line(5, 3))
    args = ["denoise", str(trained), str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npy")]
    assert main([*args, "--noise-std", "0.1", "--method", method]) == 2
    err = capsys.readouterr().err
    assert "ncsm" in err and method in err
    assert not (tmp_path / "o.npy").exists()
