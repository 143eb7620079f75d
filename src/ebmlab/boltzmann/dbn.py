"""Deep belief network: RBMs stacked greedily, layer by layer.

Layer ``l`` is a :class:`~ebmlab.boltzmann.BernoulliRBM` between representation
``l`` and ``l + 1`` (the data is representation 0). Greedy training (Hinton,
Osindero & Teh 2006) fits the first RBM to the data, then each next RBM to the
hidden activation probabilities of the one below. The result is a generative
model whose top two layers form an undirected RBM and whose lower layers are
directed sigmoid belief nets ``p(h_{l-1} | h_l)`` (the RBMs' visible
conditionals). It gives:

* features: the deterministic up pass :meth:`DBN.transform` (hidden
  probabilities layer after layer) for a downstream classifier;
* generation: :meth:`DBN.sample` runs block Gibbs in the top RBM, then one
  top-down pass through the directed layers.

References:
    Hinton, Osindero & Teh (2006), "A fast learning algorithm for deep belief
    nets", https://doi.org/10.1162/neco.2006.18.7.1527.
"""

from __future__ import annotations

__all__ = ["DBN"]

import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .cd import CDResult, fit_cd
from .rbm import BernoulliRBM


class DBN(nn.Module):
    """A stack of Bernoulli RBMs trained greedily (see the module docstring).

    Arguments:
        layer_sizes: Units per layer, the visible layer first, at least two
            entries (two = a single RBM).
        weight_scale: Standard deviation of the initial weights.
        generator: Random generator for the initial weights.
        dtype: Parameter dtype.
        device: Parameter device.

    Attributes:
        rbms: The RBMs, bottom first; ``rbms[l]`` maps layer ``l`` to ``l + 1``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> data = torch.bernoulli(torch.full((60, 12), 0.3), generator=g)
        >>> dbn = DBN([12, 8, 4], generator=g)
        >>> _ = dbn.fit(data, n_epochs=2, generator=g)
        >>> dbn.transform(data).shape, dbn.sample(5, n_gibbs=10, generator=g).shape
        (torch.Size([60, 4]), torch.Size([5, 12]))
    """

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        weight_scale: float = 0.01,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        sizes = [int(s) for s in layer_sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"layer_sizes must be >= 2 positive sizes, got {list(layer_sizes)}")
        super().__init__()
        self.rbms = nn.ModuleList(
            BernoulliRBM(
                a, b, weight_scale=weight_scale, generator=generator, dtype=dtype, device=device
            )
            for a, b in itertools.pairwise(sizes)
        )

    @property
    def layer_sizes(self) -> list[int]:
        """Units per layer, the visible layer first."""
        rbms: list[Any] = list(self.rbms)
        return [rbms[0].n_visible] + [r.n_hidden for r in rbms]

    def extra_repr(self) -> str:
        return f"layer_sizes={self.layer_sizes}"

    def fit(
        self,
        data: Tensor,
        *,
        n_epochs: int | Sequence[int] = 10,
        generator: torch.Generator | None = None,
        **cd_kwargs: Any,
    ) -> list[CDResult]:
        """Greedy layer-wise training: each RBM on the hidden probabilities below it.

        Arguments:
            data: Binary (or ``[0, 1]``) data, shape ``(N, layer_sizes[0])``.
            n_epochs: Epochs per RBM (one number, or one per layer).
            generator: Random generator.
            **cd_kwargs: Passed to :func:`~ebmlab.boltzmann.fit_cd` (``batch_size``,
                ``learning_rate``, ``training``, ``momentum``, ...).

        Returns:
            The :class:`~ebmlab.boltzmann.CDResult` of every layer, bottom first.
        """
        epochs = [int(n_epochs)] * len(self.rbms) if isinstance(n_epochs, int) else list(n_epochs)
        if len(epochs) != len(self.rbms):
            raise ValueError(
                f"n_epochs must be one number or {len(self.rbms)} (one per RBM), got {n_epochs}"
            )
        if data.dim() != 2 or data.shape[1] != self.layer_sizes[0]:
            raise ValueError(
                f"data must have shape (N, {self.layer_sizes[0]}), got {tuple(data.shape)}"
            )
        results = []
        x = data
        for rbm, n in zip(self.rbms, epochs, strict=True):
            results.append(fit_cd(rbm, x, n_epochs=n, generator=generator, **cd_kwargs))
            with torch.no_grad():
                x = rbm.hidden_probs(x)  # type: ignore[operator]
        return results

    @torch.no_grad()
    def transform(self, v: Tensor, layer: int = -1) -> Tensor:
        """Features: the deterministic up pass of hidden probabilities.

        Arguments:
            v: Visible data, shape ``(N, layer_sizes[0])``.
            layer: Which representation to return (``-1``: the top;
                ``1``: the first hidden layer).

        Returns:
            Hidden probabilities of that layer, shape ``(N, layer_sizes[layer])``.
        """
        n_layers = len(self.rbms) + 1
        if not -n_layers < layer < n_layers or layer % n_layers == 0:
            raise ValueError(
                f"layer must be in 1..{n_layers - 1} or -1..-{n_layers - 1}, got {layer}"
            )
        x = v
        for rbm in list(self.rbms)[: layer % n_layers]:
            x = rbm.hidden_probs(x)  # type: ignore[operator]
        return x

    @torch.no_grad()
    def sample(
        self,
        n: int,
        n_gibbs: int = 1000,
        *,
        init: Tensor | None = None,
        mean: bool = False,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Top-down generation.

        Block Gibbs sampling in the top RBM for ``n_gibbs`` steps, then one pass
        down the directed layers, drawing ``h_{l-1} ~ p(h_{l-1} | h_l)``.

        Arguments:
            n: Number of samples (ignored when ``init`` is given).
            n_gibbs: Gibbs steps in the top RBM.
            init: Visible data ``(N, layer_sizes[0])`` whose up pass starts the
                top-level chains (default: a random start).
            mean: Return the visible probabilities of the last step instead of
                binary samples.
            generator: Random generator.

        Returns:
            Visible samples (or probabilities), shape ``(n, layer_sizes[0])``.
        """
        rbms: list[Any] = list(self.rbms)
        top = rbms[-1]
        if init is not None:
            start = self.transform(init, -2) if len(rbms) > 1 else init
            x = torch.bernoulli(start.to(top.weight.dtype), generator=generator)
        else:
            x = top.sample(int(n), 0, generator=generator)
        x = top.gibbs(x, int(n_gibbs), generator=generator)
        for rbm in reversed(rbms[:-1]):
            if mean and rbm is rbms[0]:
                return rbm.visible_mean(x)  # type: ignore[no-any-return]
            x = rbm.sample_visible(x, generator)
        if mean and len(rbms) == 1:
            return top.visible_mean(top.sample_hidden(x, generator))  # type: ignore[no-any-return]
        return x
