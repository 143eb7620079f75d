"""Deep belief network: greedy training, features for a classifier, top-down generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ebmlab.boltzmann import DBN, BernoulliRBM, enumerate_binary
from helpers import assert_tv_below

F64 = torch.float64


def test_generation_matches_the_exact_generative_distribution():
    """p(v) = sum_h1 p(v | h1) p_top(h1): the top RBM's marginal, then one directed layer."""
    g = torch.Generator().manual_seed(0)
    dbn = DBN([4, 3, 2], weight_scale=1.5, generator=g, dtype=F64)
    bottom, top = dbn.rbms
    with torch.no_grad():
        for rbm in dbn.rbms:
            rbm.visible_bias.normal_(0, 0.7, generator=g)
            rbm.hidden_bias.normal_(0, 0.7, generator=g)
    h1 = enumerate_binary(3, dtype=F64)
    v = enumerate_binary(4, dtype=F64)
    with torch.no_grad():
        p_top = top.log_prob(h1).exp()  # (8,)
        pv_given_h = bottom.visible_mean(h1)  # (8, 4)
        like = (v[None] * pv_given_h[:, None] + (1 - v[None]) * (1 - pv_given_h[:, None])).prod(-1)
        exact = (p_top[:, None] * like).sum(0)  # (16,)
    x = dbn.sample(20_000, n_gibbs=30, generator=g)
    idx = (x * torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=F64)).sum(1).long()
    assert_tv_below(torch.bincount(idx, minlength=16), exact)
    means = dbn.sample(5, n_gibbs=2, mean=True, generator=g)
    assert means.shape == (5, 4) and bool(((means > 0) & (means < 1)).all())


@pytest.mark.slow
def test_greedy_features_feed_a_classifier():
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data > 8).astype(np.float64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, digits.target, test_size=0.3, random_state=0)
    g = torch.Generator().manual_seed(0)
    dbn = DBN([64, 100, 60], generator=g, dtype=F64)
    results = dbn.fit(
        torch.as_tensor(x_tr), n_epochs=[10, 10], batch_size=20, learning_rate=0.1,
        training="cd-1", momentum=0.8, lr_schedule="linear", generator=g,
    )  # fmt: skip
    assert len(results) == 2
    assert dbn.transform(torch.as_tensor(x_tr)).shape == (len(x_tr), 60)
    # Unsupervised features keep the class information (chance: 0.1; raw pixels: 0.93).
    acc = {}
    for layer in (1, 2):
        f_tr = dbn.transform(torch.as_tensor(x_tr), layer).numpy()
        f_te = dbn.transform(torch.as_tensor(x_te), layer).numpy()
        acc[layer] = LogisticRegression(max_iter=3000).fit(f_tr, y_tr).score(f_te, y_te)
    assert acc[1] > 0.88 and acc[2] > 0.8, acc
    # Generation from the trained stack looks like the data on average.
    samples = dbn.sample(500, n_gibbs=100, init=torch.as_tensor(x_tr[:500]), generator=g)
    corr = np.corrcoef(samples.mean(0).numpy(), x_tr.mean(0))[0, 1]
    assert corr > 0.8, corr


def test_layers_shapes_and_errors():
    dbn = DBN([6, 4, 3, 2])
    assert dbn.layer_sizes == [6, 4, 3, 2]
    assert all(isinstance(r, BernoulliRBM) for r in dbn.rbms)
    v = torch.ones(5, 6)
    assert dbn.transform(v, 1).shape == (5, 4)
    assert dbn.transform(v, -2).shape == (5, 3)
    assert dbn.sample(3, n_gibbs=2).shape == (3, 6)
    assert "layer_sizes=[6, 4, 3, 2]" in repr(dbn)
    with pytest.raises(ValueError, match="layer must be"):
        dbn.transform(v, 0)
    with pytest.raises(ValueError, match="layer_sizes"):
        DBN([5])
    with pytest.raises(ValueError, match="n_epochs must be one number or 3"):
        dbn.fit(v, n_epochs=[1, 2])
    with pytest.raises(ValueError, match=r"data must have shape \(N, 6\)"):
        dbn.fit(torch.ones(5, 7))
