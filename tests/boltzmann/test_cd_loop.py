"""Contrastive divergence for RBMs through ``ebmlab.train.fit``: the same updates as the
hand-written SGD it replaced, exact gradients, and resume with the persistent chains."""

from __future__ import annotations

import pytest
import torch

from ebmlab.boltzmann import (
    BernoulliRBM,
    BlockGibbsCD,
    CDTrainer,
    GaussianBernoulliRBM,
    PersistentChains,
    fit_cd,
)
from ebmlab.train import TrainSettings, fit

F64 = torch.float64


def small_rbm(seed: int = 0, cls: type = BernoulliRBM, **kw) -> BernoulliRBM:
    g = torch.Generator().manual_seed(seed)
    rbm = cls(6, 4, weight_scale=0.5, generator=g, dtype=F64, **kw)
    with torch.no_grad():
        rbm.visible_bias.normal_(0, 0.5, generator=g)
        rbm.hidden_bias.normal_(0, 0.5, generator=g)
    return rbm


def batch(seed: int, n: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, 6), 0.4, dtype=F64), generator=g)


def test_updates_are_sgd_with_momentum_and_decay_on_matrices_only():
    """Two steps with fixed negatives: buf = m buf + g (+ wd W for W); p -= lr buf."""
    rbm, ref = small_rbm(), small_rbm()
    v_neg = batch(99, 5)
    rbm.gibbs = lambda v, k, generator=None: v_neg  # type: ignore[method-assign]
    lr, m, wd = 0.1, 0.9, 0.01
    trainer = CDTrainer(rbm, learning_rate=lr, training="cd-1", momentum=m, weight_decay=wd)
    bufs = None
    for step in range(2):
        v = batch(step)
        info = trainer.step(v)
        with torch.no_grad():
            grads = ref.cd_grads(v, v_neg)
            grads[0] = grads[0] + wd * ref.weight
            bufs = grads if bufs is None else [m * b + g for b, g in zip(bufs, grads, strict=True)]
            for p, b in zip(ref.parameters(), bufs, strict=True):
                p -= lr * b
        assert info is not None and info.gap.shape == ()
    for a, b in zip(rbm.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_the_fast_gradient_is_the_autograd_gradient_of_the_loss(cls):
    rbm = small_rbm(1, cls)
    v_pos, v_neg = batch(1), batch(2, 5)
    rbm.gibbs = lambda v, k, generator=None: v_neg  # type: ignore[method-assign]
    loss, diag, _ = BlockGibbsCD("cd-1")(rbm, v_pos, None)
    assert "GivenGradients" in loss.grad_fn.name()  # the hand-written path
    fast = torch.autograd.grad(loss, list(rbm.parameters()))
    exact = rbm.free_energy(v_pos).mean() - rbm.free_energy(v_neg).mean()
    auto = torch.autograd.grad(exact, list(rbm.parameters()))
    for a, b in zip(fast, auto, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(loss.detach(), exact.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(diag.energy_gap, -exact.detach(), rtol=1e-12, atol=1e-12)


def test_autograd_path_when_sigma_is_learned():
    rbm = small_rbm(2, GaussianBernoulliRBM, learn_sigma=True)
    loss, _, _ = BlockGibbsCD("cd-1")(rbm, batch(3), None, generator=torch.Generator())
    assert "GivenGradients" not in loss.grad_fn.name()
    loss.backward()
    assert rbm.log_sigma.grad is not None


def test_persistent_chains_advance_and_need_a_state():
    rbm = small_rbm(3)
    cd = BlockGibbsCD("pcd-2")
    g = torch.Generator().manual_seed(0)
    data = batch(4, 20)
    chains = cd.init_state(data, 9, generator=g)
    assert isinstance(chains, PersistentChains) and len(chains) == 9
    before = chains.buffer.clone()
    _, _, chains = cd(rbm, data[:5], chains, generator=g)
    assert chains.n_seen == 1 and not torch.equal(chains.buffer, before)
    assert BlockGibbsCD("cd").init_state(data, 9) is None
    with pytest.raises(ValueError, match="needs a PersistentChains"):
        cd(rbm, data[:5], None)


def test_fit_cd_resumes_with_the_same_chains_and_weights(tmp_path):
    """A fit stopped after 2 epochs and resumed to 4 equals 4 epochs in one go."""
    data = batch(5, 40)
    kw = {"batch_size": 10, "learning_rate": 0.1, "training": "pcd", "momentum": 0.5}
    whole = small_rbm(4)
    a = fit_cd(whole, data, n_epochs=4, generator=torch.Generator().manual_seed(1), **kw)
    part = small_rbm(4)
    fit_cd(part, data, n_epochs=2, generator=torch.Generator().manual_seed(1),
           run_dir=tmp_path, **kw)  # fmt: skip
    b = fit_cd(part, data, n_epochs=4, generator=torch.Generator().manual_seed(1),
               run_dir=tmp_path, resume=True, **kw)  # fmt: skip
    for p, q in zip(whole.parameters(), part.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert a.chains is not None and b.chains is not None
    torch.testing.assert_close(a.chains, b.chains, rtol=0, atol=0)
    assert len(a.gaps) == 4 and len(b.gaps) == 2  # one row per epoch of each call


def test_weight_decay_matrices_only_makes_two_groups():
    rbm = small_rbm(6)
    s = TrainSettings(steps=1, batch_size=4, weight_decay=0.5, weight_decay_matrices_only=True,
                      warmup_steps=0, optimizer="sgd")  # fmt: skip
    w0, b0 = rbm.weight.detach().clone(), rbm.visible_bias.detach().clone()
    rbm.gibbs = lambda v, k, generator=None: v  # type: ignore[method-assign]: zero CD gradient
    res = fit(rbm, batch(7), BlockGibbsCD("cd-1"), s, progress=False)
    torch.testing.assert_close(rbm.weight.detach(), (1 - s.lr * 0.5) * w0)
    torch.testing.assert_close(rbm.visible_bias.detach(), b0)
    groups = res.optimizer_state["param_groups"]
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
