"""ClassifierEnergy and JointEnergyObjective: the JEM energies, the loss and training by fit."""

from __future__ import annotations

import pytest
import torch

from ebmlab.energies import ClassifierEnergy, ConvEnergy, MLPEnergy, ResNetEnergy, make_mlp
from ebmlab.objectives import JointEnergyObjective, chimera_negatives
from ebmlab.train import TrainSettings, fit


def _energy(seed: int = 0) -> ClassifierEnergy:
    g = torch.Generator().manual_seed(seed)
    return ClassifierEnergy(make_mlp([2, 32, 3], "silu", g), 3, event_shape=(2,))


def test_energies_are_minus_logsumexp_and_minus_the_logit():
    energy = _energy()
    x = torch.randn(7, 2)
    logits = energy.logits(x)
    torch.testing.assert_close(energy(x), -torch.logsumexp(logits, 1))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    torch.testing.assert_close(energy.joint(x, y), -logits[torch.arange(7), y])
    # p(y | x) = exp(-E(x, y)) / exp(-E(x))
    torch.testing.assert_close(
        torch.exp(energy(x) - energy.joint(x, y)), torch.softmax(logits, 1)[torch.arange(7), y]
    )


@pytest.mark.parametrize(
    "trunk",
    [
        MLPEnergy(12, hidden=(8,)),
        ConvEnergy((1, 4, 3), channels=(2,), hidden=4),
        ResNetEnergy((1, 4, 3), channels=(2,)),
    ],
)
def test_energy_trunks_get_a_classification_head(trunk):
    energy = ClassifierEnergy(trunk, 5)
    x = torch.randn(3, *trunk.event_shape)
    assert energy.logits(x).shape == (3, 5) and energy(x).shape == (3,)
    with pytest.raises(ValueError, match="event_shape is required"):
        ClassifierEnergy(torch.nn.Linear(2, 3), 3)


def test_training_through_fit_classifies_and_lowers_data_energy():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(3, (300,), generator=g)
    x = 3.0 * torch.eye(3, 2)[y] + 0.4 * torch.randn(300, 2, generator=g)
    energy = _energy()
    jem = JointEnergyObjective(
        lambda n, gen: 8 * torch.rand(n, 2, generator=gen) - 4,
        n_steps=5,
        step_size=0.1,
        noise=0.05,
        energy_reg=0.1,
        conditional=True,
    )
    buf = jem.init_state(200, generator=g)
    settings = TrainSettings(steps=300, batch_size=64, lr=1e-2, warmup_steps=0, seed=0)
    result = fit(energy, x, jem, settings, state=buf, labels=y, progress=False)
    with torch.no_grad():
        acc = (energy.logits(x).argmax(1) == y).float().mean()
        far = 8 * torch.rand(300, 2, generator=g) - 4
        far = far[(far[:, None, :] - 3.0 * torch.eye(3, 2)).norm(dim=2).min(1).values > 3]
        auroc = (-energy(x)[:, None] > -energy(far)[None, :]).float().mean()
    # 300 points from 3 well separated blobs: near-perfect accuracy, far points flagged.
    assert acc >= 0.95 and auroc >= 0.9, (acc, auroc)
    assert result.state is buf and len(result.metrics) >= 1


def test_plain_cross_entropy_needs_no_buffer():
    jem = JointEnergyObjective(lambda n, g: torch.rand(n, 2, generator=g), generative_weight=0)
    assert jem.init_state(10) is None
    x, y = torch.randn(8, 2), torch.randint(3, (8,))
    loss, diag, state = jem(_energy(), (x, y), None)
    assert state is None and diag.energy_neg is None
    torch.testing.assert_close(loss, diag.cross_entropy + 0.0 * loss)
    with pytest.raises(ValueError, match="needs a replay buffer"):
        JointEnergyObjective(lambda n, g: torch.rand(n, 2))(_energy(), (x, y), None)


def test_chimeras_join_two_inputs_of_different_classes():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(4, (40,), generator=g)
    x = torch.rand(40, 1, 6, 5, generator=g, dtype=torch.float64)
    c = chimera_negatives(x, y, generator=g)
    assert c.shape == x.shape and c.dtype == x.dtype
    assert c.min() >= x.min() and c.max() <= x.max()
    flat, cf = x.reshape(40, -1), c.reshape(40, -1)
    for i in range(40):
        # Row i's head, then a whole tail of one row of another class, cut in [8, 22].
        cut = int((cf[i] != flat[i]).nonzero()[0])
        assert 8 <= cut <= 22
        assert torch.equal(cf[i, :cut], flat[i, :cut])
        tails = (flat[:, cut:] == cf[i, cut:]).all(1).nonzero()[:, 0]
        assert len(tails) == 1 and y[tails[0]] != y[i], (i, tails)
    # One class in the batch: no chimera can be made.
    assert chimera_negatives(x, torch.zeros(40, dtype=torch.long)).shape == (0, 1, 6, 5)
    with pytest.raises(ValueError, match="low <= high"):
        chimera_negatives(x, y, low=0.8, high=0.2)


def _chimera_gap(nda_weight: float) -> float:
    """Mean E(chimera) - E(data) after a JEM fit on two classes of 4-D blobs."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    y = torch.randint(2, (256,), generator=g)
    x = torch.tensor([[2.0] * 4, [-2.0] * 4])[y] + 0.3 * torch.randn(256, 4, generator=g)
    energy = ClassifierEnergy(make_mlp([4, 32, 2], "silu", g), 2, event_shape=(4,))
    jem = JointEnergyObjective(
        lambda n, gen: 6 * torch.rand(n, 4, generator=gen) - 3,
        generative_weight=0.3,
        n_steps=5,
        step_size=0.1,
        noise=0.05,
        energy_reg=0.1,
        nda_weight=nda_weight,
    )
    buf = jem.init_state(128, generator=g)
    settings = TrainSettings(steps=150, batch_size=64, lr=1e-2, warmup_steps=0, seed=0)
    fit(energy, x, jem, settings, state=buf, labels=y, progress=False)
    with torch.no_grad():
        chim = chimera_negatives(x, y, generator=g)
        return float(energy(chim).mean() - energy(x).mean())


def test_negative_data_augmentation_raises_the_energy_of_chimeras():
    # Chimeras (2, 2, -2, -2) sit between the blobs' corners: without NDA nothing pushes
    # their energy up much; with it they are explicit negatives.
    plain, nda = _chimera_gap(0.0), _chimera_gap(1.0)
    assert nda > 1.0 and nda > plain + 1.0, (plain, nda)
