"""ClassifierEnergy and JointEnergyObjective: the JEM energies, the loss and training by fit."""

from __future__ import annotations

import pytest
import torch

from ebmlab.energies import ClassifierEnergy, ConvEnergy, MLPEnergy, ResNetEnergy, make_mlp
from ebmlab.objectives import JointEnergyObjective
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
