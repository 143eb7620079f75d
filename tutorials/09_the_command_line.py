r"""
# The command line: from `ebmlab train` to `ebmlab sample`

Everything in the previous tutorials is also one shell command away. `ebmlab
train` reads a YAML config (or flags), trains, evaluates, and leaves a **run
directory** behind; every other command (`sample`, `score`, `detect`,
`denoise`, `logz`, `evaluate`, `resume`) rebuilds the model from that directory
alone. This page runs the commands for real on a small CSV file, through
`subprocess`, and shows what they write.
"""

# %%
# ## Your data as a CSV file
#
# Any table of numbers works: `.csv` with a header row, `.npy`, or `.npz`. Here
# we write 10,000 points from the two-moons toy, as a user's file would be.
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ebmlab.data import make_toy

work = Path(tempfile.mkdtemp(prefix="ebmlab-cli-"))
points = make_toy("two_moons").sample(10_000, seed=0).numpy()
np.savetxt(work / "moons.csv", points, delimiter=",", header="x1,x2", comments="")
print((work / "moons.csv").read_text().splitlines()[:3])


def ebmlab(*args: str) -> str:
    """Run `python -m ebmlab ARGS` in the work folder; print and return its output."""
    cmd = [sys.executable, "-m", "ebmlab", *args]
    done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=os.environ.copy())
    print(f"$ ebmlab {' '.join(args)}    (exit status {done.returncode})")
    print((done.stdout + done.stderr).strip())
    return done.stdout


# %%
# ## A config
#
# A config names the data, the model, the sampler, the objective, the training
# loop and the evaluation. Every key has a default, so a config only says what
# differs; the run directory gets the resolved config with every default
# written out. The settings here are small (1,000 updates) to keep the page
# fast; the built-in demo (`ebmlab train` with no config) trains 5,000.
config = """\
name: moons
seed: 0
data:
  file: moons.csv
model:
  hidden: [64, 64]
  base_scale: 4.0
objective:
  name: cd
  n_steps: 10
train:
  steps: 1000
  batch_size: 256
  warmup_steps: 50
  log_every: 25
evaluate:
  n_samples: 1000
  sample_steps: 200
  mmd_samples: 500
"""
(work / "config.yaml").write_text(config)

# %%
# ## Train
#
# `--quiet` turns off the progress bar. The last lines summarize the
# evaluation, which is also saved as `report.json`.
ebmlab("train", "config.yaml", "--out", "runs/moons", "--quiet")

# %%
# ## The run directory
run = work / "runs" / "moons"
for path in sorted(run.iterdir()):
    print(f"{path.name:<28} {path.stat().st_size:>9,} bytes")

# %%
# * `config.yaml`: the resolved config, every default written out (so the run
#   can be rebuilt and its settings read later);
# * `model.safetensors`: the weights (never pickle: loading runs no code);
# * `state.json`, `train_state.safetensors`: step, RNG states, optimizer and
#   replay buffer, with checksums, for an exact `ebmlab resume`;
# * `metrics.csv`: one row per logged step (loss, energies, energy gap,
#   acceptance, gradient norm, learning rate);
# * `report.json`: the final figures;
# * `*.png`: the figures below.
print((run / "config.yaml").read_text())

# %%
# (`data.toy` keeps its default but is not used: a `data.file` takes precedence.
# `test_fraction` is the share of the file's rows held out for the evaluation.)

# %%
report = json.loads((run / "report.json").read_text())
for key, value in report.items():
    if not isinstance(value, dict | list):
        print(f"{key:<28} {value}")

# %%
# For a 2-D run the held-out NLL is exact (quadrature $\log Z$). A data file has
# no known density, so there is no entropy floor here; a built-in toy
# (`data.toy`) reports it.
#
# ## The figures it writes
pngs = sorted(run.glob("*.png"))
fig, axes = plt.subplots(1, len(pngs), figsize=(4.5 * len(pngs), 4.2))
for ax, png in zip(np.atleast_1d(axes), pngs, strict=True):
    ax.imshow(plt.imread(png))
    ax.set_title(png.name)
    ax.axis("off")
fig.tight_layout()

# %%
# ## Sample, score, detect, log Z
#
# Each command reads only the run directory (and the file it is given).
ebmlab("sample", "runs/moons", "-n", "1000", "-o", "samples.npy", "--quiet")
samples = np.load(work / "samples.npy")
print(f"samples.npy: shape {samples.shape}")
fig, ax = plt.subplots(1, 2, figsize=(8, 3.2), sharex=True, sharey=True)
ax[0].scatter(*points[:1000].T, s=2)
ax[0].set_title("moons.csv")
ax[1].scatter(*samples.T, s=2, color="C1")
ax[1].set_title("ebmlab sample")
fig.tight_layout()

# %%
np.savetxt(work / "new.csv", [[0.0, 0.5], [1.0, -0.5], [3.0, 3.0]], delimiter=",",
           header="x1,x2", comments="")  # fmt: skip
ebmlab("score", "runs/moons", "new.csv")
ebmlab("detect", "runs/moons", "new.csv", "--contamination", "0.05")
ebmlab("logz", "runs/moons", "--json")

# %%
# `score` prints one energy per row (low = typical); `detect` thresholds them at
# the training energies' 95th percentile, so the point far from both moons,
# $(3, 3)$, is the one labelled $-1$. `logz` gives $\log Z$ with its error
# (quadrature in 1-3 dimensions, AIS or a BDMC bracket above).
#
# ## User errors are one line
#
# A mistake in a config or a file stops with one line naming the problem and
# exit status 2, never a traceback:
(work / "bad.yaml").write_text("data:\n  file: moons.csv\ntrain:\n  stepz: 10\n")
ebmlab("train", "bad.yaml", "--out", "runs/bad")

# %%
# ## More commands
#
# ```bash
# ebmlab train --data builtin:digits                 # images: the image recipe
# ebmlab train config.yaml --nproc 2                 # two processes (torchrun)
# ebmlab resume runs/moons --steps 3000              # continue, exactly
# ebmlab denoise runs/moons noisy.csv -o clean.npy --noise-std 0.1
# ebmlab sample runs/moons -o s.npy --method pt --replicas 8
# ebmlab ising --size 32 --temperature 2.0 --sweeps 500 --method wolff
# ebmlab info                                        # versions, for bug reports
# ```
#
# `ebmlab COMMAND --help` lists every option.

# %%
# This page worked in a temporary folder; remove it.
shutil.rmtree(work)
