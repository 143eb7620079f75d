"""The dequantized image log-likelihood against an energy whose answer is known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from ebmlab.config import RunConfig
from ebmlab.data.images import ImageScaling
from ebmlab.energies import Energy
from ebmlab.runs.images import dequantized_log_likelihood


class _ImageGaussian(Energy):
    """``E(x) = |x - mean|^2 / (2 std^2)`` on images; ``log Z`` in closed form."""

    def __init__(self, mean: Tensor, std: float) -> None:
        super().__init__(tuple(mean.shape))
        self.register_buffer("mean", mean)
        self.std = std

    def forward(self, x: Tensor) -> Tensor:
        return 0.5 * ((x - self.mean) / self.std).pow(2).flatten(1).sum(1)


@pytest.mark.slow
@pytest.mark.parametrize("box", [True, False])
def test_dequantized_log_likelihood_matches_a_gaussian_in_grey_levels(box):
    # Images of 17 grey levels (0..16, as scikit-learn's digits) mapped to [-1, 1].
    # The same Gaussian written in grey-level units gives the exact answer of every
    # term: the energy, log Z, the uniform dequantization, the Jacobian 2 / 16 and
    # the normalization over the pixel box [-0.5, 16.5] (a product of normal CDFs).
    g = torch.Generator().manual_seed(3)
    shape, high = (1, 4, 4), 16.0
    d = math.prod(shape)
    mean = 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)
    std = 0.8  # wide: the box holds only part of the Gaussian's mass
    z = torch.randn((200, *shape), generator=g, dtype=torch.float64)
    levels = ((mean + std * z + 1.0) * high / 2.0).round().clamp(0, high)
    x = 2.0 * levels / high - 1.0
    cfg = RunConfig()
    cfg.evaluate.ais_chains, cfg.evaluate.ais_temperatures = 64, 100
    scaling = ImageScaling(0.0, high, "uint8", "NHW")
    seed = 11
    r = dequantized_log_likelihood(_ImageGaussian(mean, std), x, scaling, cfg, seed=seed, box=box)

    # The same draw of the dequantization noise: uniform over one level, centred.
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v = levels + u - 0.5
    m_v, s_v = (mean + 1.0) * high / 2.0, std * high / 2.0
    normal = torch.distributions.Normal(m_v, s_v)
    log_box_mass = float(
        (normal.cdf(torch.tensor(16.5)) - normal.cdf(torch.tensor(-0.5))).log().sum()
    )
    exact = normal.log_prob(v).flatten(1).sum(1) - (log_box_mass if box else 0.0)
    ll = float(exact.mean())
    assert log_box_mass < -3.0  # so that forgetting the box would fail below
    lo, hi = r["ll_nats_per_image_lower"], r["ll_nats_per_image_upper"]
    print(f"exact {ll:.4f}, estimate {r['ll_nats_per_image']:.4f}, bracket [{lo:.4f}, {hi:.4f}]")
    assert lo <= ll <= hi
    assert math.isclose(hi - lo, r["ll_bracket_width"]) and hi - lo < 1.0
    assert abs(r["ll_nats_per_image"] - ll) <= 0.5 * (hi - lo) + 1e-9
    assert math.isclose(r["bits_per_dim"], -r["ll_nats_per_image"] / (d * math.log(2.0)))
    assert r["bits_per_dim_lower"] <= -ll / (d * math.log(2.0)) <= r["bits_per_dim_upper"]
