r"""
# Using a trained energy: anomalies, denoising, inpainting, classification

An energy that fits the data is useful beyond sampling. Low energy means "looks
like the training data", so

* the energy itself is an **anomaly score**;
* its gradient $-\nabla_x E$ (the score) points from a corrupted input back
  towards the data: **denoising** and **inpainting**;
* a classifier's logits $f(x)$ define an energy $E(x) = -\log\sum_y e^{f(x)[y]}$
  for the inputs too: a **joint energy model** (JEM, Grathwohl et al. 2020)
  that classifies and models $p(x)$ at once.

`ebmlab.estimators` wraps each of these in a scikit-learn estimator: `fit`,
`predict`, `score_samples`, `transform`, NumPy in and out, usable in
`Pipeline`, `GridSearchCV` and the rest. All three examples here use the 8x8
digits bundled with scikit-learn (64 features, 1,797 images), with small
training budgets so the page builds in seconds; each section names the settings
that give better numbers.
"""

# %%
# ## The data
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ebmlab.estimators import EnergyClassifier, EnergyDenoiser, EnergyOutlierDetector

torch.set_num_threads(1)
digits = load_digits()
X = digits.data / 16.0  # pixels in [0, 1]
y = digits.target
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0)
print(f"train {X_train.shape}, test {X_test.shape}")

# %%
# ## Anomaly detection
#
# Fit the energy on "normal" data only: here the digits 0 to 7. At test time,
# digits 8 and 9 (never seen) are the anomalies. `EnergyOutlierDetector` gives
# `score_samples` $= -E(x)$ (higher = more normal, scikit-learn's convention)
# and `predict` (+1 inlier, -1 outlier) at the `contamination` quantile. The
# ranking quality is measured by the ROC AUC of the score, against scikit-learn's
# `IsolationForest` on the same rows.
normal = y_train < 8
t0 = time.perf_counter()
detector = EnergyOutlierDetector(hidden=(64,), n_steps=600, random_state=0)
detector.fit(X_train[normal])
is_anomaly = y_test >= 8
auc_ebm = roc_auc_score(is_anomaly, -detector.score_samples(X_test))
forest = IsolationForest(random_state=0).fit(X_train[normal])
auc_forest = roc_auc_score(is_anomaly, -forest.score_samples(X_test))
print(f"ROC AUC, digits 8-9 as anomalies: energy {auc_ebm:.3f}, isolation forest {auc_forest:.3f}")
print(f"fitted in {time.perf_counter() - t0:.1f} s")
flagged = detector.predict(X_test) == -1
print(
    f"flagged as outliers: {flagged[is_anomaly].mean():.0%} of the 8s and 9s, "
    f"{flagged[~is_anomaly].mean():.0%} of the normal digits (contamination 0.1)"
)

# %%
# More held-out normal digits are flagged than the 10% `contamination` asks
# for: the threshold is the 10% quantile of the *training* rows, which the model
# has seen and scores a little better than new digits of the same classes.
#
# The energy of the test digits, per class: the unseen classes sit higher.
energy = -detector.score_samples(X_test)
fig, ax = plt.subplots(figsize=(7, 3))
ax.boxplot([energy[y_test == k] for k in range(10)], tick_labels=[str(k) for k in range(10)])
ax.axhline(-detector.offset_, color="C3", ls="--", label="outlier threshold")
ax.set_xlabel("test digit class (8 and 9 never seen in training)")
ax.set_ylabel("energy")
ax.legend()
fig.tight_layout()

# %%
# ## Denoising and inpainting
#
# `EnergyDenoiser` trains a *noise-conditional* energy $E_\sigma(x)$ by denoising
# score matching over a range of noise levels. For Gaussian noise of known
# $\sigma$ the restoration is Tweedie's formula, one gradient step:
#
# $$\hat x = \tilde x - \sigma^2 \nabla_x E_\sigma(\tilde x)
#   \approx \mathbb{E}[x \mid \tilde x].$$
#
# For a mask (inpainting), the known pixels stay fixed and the unknown ones
# follow the gradient while $\sigma$ is annealed down.
rng = np.random.RandomState(0)
t0 = time.perf_counter()
denoiser = EnergyDenoiser(hidden=(256, 256), noise_std=0.2, n_steps=1500, random_state=0)
denoiser.fit(X_train)
print(f"fitted in {time.perf_counter() - t0:.1f} s")
noisy = X_test + 0.2 * rng.randn(*X_test.shape)
restored = denoiser.transform(noisy)
mse_noisy = np.mean((noisy - X_test) ** 2)
mse_restored = np.mean((restored - X_test) ** 2)
print(f"mean squared error: noisy {mse_noisy:.4f}, restored {mse_restored:.4f}")

mask = np.ones_like(X_test, dtype=bool)
mask[:, 32:] = False  # the bottom half of every image is unknown
inpainted = denoiser.set_params(noise="mask").transform(np.where(mask, X_test, 0.0), mask=mask)
mse_mean = np.mean((X_train.mean(0)[32:] - X_test[:, 32:]) ** 2)
mse_inpaint = np.mean((inpainted[:, 32:] - X_test[:, 32:]) ** 2)
print(
    f"bottom half: error of the training mean {mse_mean:.4f}, of the inpainting {mse_inpaint:.4f}"
)

rows = [
    ("clean", X_test),
    ("noisy", noisy),
    ("denoised", restored),
    ("top half", np.where(mask, X_test, np.nan)),
    ("inpainted", inpainted),
]
fig, axes = plt.subplots(len(rows), 8, figsize=(8, 5.2))
for r, (name, imgs) in enumerate(rows):
    for c in range(8):
        axes[r, c].imshow(imgs[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        axes[r, c].axis("off")
    axes[r, 0].set_title(name, loc="left", fontsize=9)
fig.tight_layout()

# %%
# This is 1,500 updates; the estimator's default is 2,000, and the benchmark in
# `docs/benchmarks.md` ("Applications: denoising") has the published numbers
# with their settings.
#
# ## Classification with a joint energy model
#
# `EnergyClassifier` is a softmax MLP whose logits also define the input energy
# $E(x) = -\log\sum_y e^{f(x)[y]}$. Training adds to the cross-entropy the
# contrastive term of tutorial 1 for $p(x)$, with SGLD negatives from a replay
# buffer. With `generative_weight=0` it is a plain MLP classifier. It is a
# scikit-learn classifier, so it goes into a pipeline like any other.
results = {}
for name, weight in (("plain MLP", 0.0), ("JEM", 0.3)):
    t0 = time.perf_counter()
    clf = make_pipeline(
        StandardScaler(),
        EnergyClassifier(
            hidden=(128, 128), n_epochs=15, generative_weight=weight, sgld_steps=10,
            random_state=0,
        ),
    )  # fmt: skip
    clf.fit(X_train, y_train)
    proba = clf.predict_proba(X_test)
    accuracy = clf.score(X_test, y_test)
    results[name] = (clf, proba)
    print(f"{name:<10} test accuracy {accuracy:.3f} ({time.perf_counter() - t0:.1f} s)")

# %%
# A JEM's energy is also an anomaly score, with no extra model: the energy of
# the classifier trained on all ten digits, on real test digits and on images of
# uniform noise:
jem = results["JEM"][0]
noise_images = rng.rand(200, 64)
e_digits = -jem.score_samples(X_test)
e_noise = -jem.score_samples(noise_images)
auc = roc_auc_score(
    np.r_[np.zeros(len(e_digits)), np.ones(len(e_noise))], np.r_[e_digits, e_noise]
)
print(f"JEM energy: digits {np.median(e_digits):.2f} (median), noise {np.median(e_noise):.2f}")
print(f"ROC AUC digits vs noise: {auc:.3f}")

# %%
# The published comparison of JEM with a plain classifier (accuracy and
# calibration at 60 epochs, and on MNIST) is in `docs/benchmarks.md`,
# "Applications: classification (JEM)". The estimators' defaults
# (`n_epochs=60`) are the settings used there.
