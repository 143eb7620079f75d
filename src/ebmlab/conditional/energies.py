"""Conditional energy-based models F(x, y): energies over pairs, and inference.

Energy-based learning (LeCun et al. 2006) scores pairs: ``F(x, y)`` is low
when the answer ``y`` is compatible with the input ``x``. Inference is a search
for low-energy answers, so one ``x`` may have several good ones; probabilities,
when wanted, come from the Gibbs distribution

.. math:: P(y \\mid x) = \\exp(-\\beta F(x, y)) / \\int \\exp(-\\beta F(x, y'))\\,dy'.

Shapes: ``x`` is ``(N, x_dim)``; a continuous ``y`` is ``(N, y_dim)``; a
discrete ``y`` is ``(N,)`` class indices in ``[0, n_classes)``. Every energy maps
a batch of pairs to ``(N,)``; low energy = good answer.

Energies here: :class:`MLPConditionalEnergy` (a network over the pair),
:class:`QuadraticConditionalEnergy` (quadratic in ``y``: exact inference and
exact Gibbs distribution), :class:`JointEmbeddingEnergy` (``|G(x) - H(y)|^2``,
the architecture that collapses under the plain energy loss),
:class:`DiscreteConditionalEnergy` (one energy per class: negated logits) and
:class:`LatentConditionalEnergy` (``F = min_z E(x, y, z)`` or the free energy
``-1/beta log integral exp(-beta E(x, y, z)) dz``), and :func:`make_mlp`, the
network builder they share. Inference (:mod:`ebmlab.conditional.inference`), the
loss functionals (:mod:`ebmlab.conditional.losses`) and the training loop
(:mod:`ebmlab.conditional.fit`) work on all of them.

References:
    LeCun, Y., Chopra, S., Hadsell, R., Ranzato, M. and Huang, F. J. (2006).
    A tutorial on energy-based learning. In Predicting Structured Data, MIT
    Press. http://yann.lecun.com/exdb/publis/pdf/lecun-06.pdf
"""

from __future__ import annotations

__all__ = [
    "REDUCTIONS",
    "ConditionalEnergy",
    "DiscreteConditionalEnergy",
    "JointEmbeddingEnergy",
    "LatentConditionalEnergy",
    "MLPConditionalEnergy",
    "QuadraticConditionalEnergy",
    "latent_grid",
    "make_mlp",
]

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..energies.mlp import ACTIVATIONS
from ..partition.quadrature import grid_points
from .inference import descend

# The smooth activations of MLPEnergy, plus ReLU: inference over y tolerates kinks.
_ACTIVATIONS: dict[str, type[nn.Module]] = {**ACTIVATIONS, "relu": nn.ReLU}


def _linear(n_in: int, n_out: int, generator: torch.Generator | None) -> nn.Linear:
    """``nn.Linear`` with PyTorch's default initialization, drawn from ``generator``."""
    with warnings.catch_warnings():  # nn.Linear(0, k) warns about its no-op init
        warnings.filterwarnings("ignore", message="Initializing zero-element tensors")
        layer = nn.utils.skip_init(nn.Linear, n_in, n_out)
    bound = 1.0 / math.sqrt(n_in) if n_in > 0 else 0.0
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)
    return layer


def make_mlp(
    n_in: int,
    n_out: int,
    hidden: Sequence[int] = (64, 64),
    *,
    activation: str = "silu",
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A multilayer perceptron ``(N, n_in) -> (N, n_out)``.

    Arguments:
        n_in: Input width (0 gives a learned constant).
        n_out: Output width.
        hidden: Hidden widths (empty: a linear map).
        activation: One of ``silu``, ``elu``, ``softplus``, ``tanh``, ``gelu``,
            ``relu``.
        generator: Draw the initial weights from this generator (PyTorch's
            default initialization), so that a seed fixes the network.

    Example:
        >>> tuple(make_mlp(3, 2, (8,))(torch.randn(5, 3)).shape)
        (5, 2)
    """
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    if any(int(h) <= 0 for h in hidden):
        raise ValueError(f"hidden widths must be positive, got {list(hidden)}")
    layers: list[nn.Module] = []
    width = int(n_in)
    for h in (*hidden, n_out):
        layers.append(_linear(width, int(h), generator))
        layers.append(_ACTIVATIONS[activation]())
        width = int(h)
    layers.pop()
    return nn.Sequential(*layers)


class ConditionalEnergy(nn.Module):
    """Base class of conditional energies ``F(x, y) -> (N,)``.

    Subclasses implement :meth:`forward`. Exactly one of ``y_dim``
    (continuous answers ``(N, y_dim)``) and ``n_classes`` (discrete answers
    ``(N,)``) is set. Low energy = good answer; the Gibbs distribution is
    ``P(y | x) proportional to exp(-beta F(x, y))``.

    Attributes:
        x_dim: Width of the input ``x`` (0: no input, an unconditional energy).
        y_dim: Width of a continuous answer, or ``None``.
        n_classes: Number of classes of a discrete answer, or ``None``.
    """

    def __init__(
        self, x_dim: int, *, y_dim: int | None = None, n_classes: int | None = None
    ) -> None:
        super().__init__()
        if int(x_dim) < 0:
            raise ValueError(f"x_dim must be >= 0, got {x_dim}")
        if (y_dim is None) == (n_classes is None):
            raise ValueError(
                f"give exactly one of y_dim and n_classes, got y_dim={y_dim}, "
                f"n_classes={n_classes}"
            )
        if y_dim is not None and int(y_dim) < 1:
            raise ValueError(f"y_dim must be >= 1, got {y_dim}")
        if n_classes is not None and int(n_classes) < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.x_dim = int(x_dim)
        self.y_dim = None if y_dim is None else int(y_dim)
        self.n_classes = None if n_classes is None else int(n_classes)

    @property
    def is_discrete(self) -> bool:
        """Whether answers are class indices."""
        return self.n_classes is not None

    def forward(self, x: Tensor, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Energy of each pair.

        Arguments:
            x: Inputs, shape ``(N, x_dim)``.
            y: Answers, shape ``(N, y_dim)`` or ``(N,)`` class indices.

        Returns:
            Energies, shape ``(N,)``; low energy = compatible pair.
        """
        raise NotImplementedError

    def energies(self, x: Tensor) -> Tensor:
        """Energies of every class, shape ``(N, n_classes)`` (discrete answers only)."""
        if self.n_classes is None:
            raise ValueError(
                "energies(x) needs discrete answers (n_classes), this energy has y_dim"
            )
        k = self.n_classes
        ys = torch.arange(k, device=x.device).repeat(x.shape[0])
        return self(x.repeat_interleave(k, 0), ys).reshape(x.shape[0], k)  # type: ignore[no-any-return]

    def check_input(self, x: Tensor, y: Tensor | None = None) -> None:
        """Raise ``ValueError`` when ``x`` or ``y`` have the wrong shape."""
        if x.dim() != 2 or x.shape[1] != self.x_dim:
            raise ValueError(f"x must have shape (N, {self.x_dim}), got {tuple(x.shape)}")
        if y is None:
            return
        if self.y_dim is not None:
            if y.dim() != 2 or y.shape[1] != self.y_dim or y.shape[0] != x.shape[0]:
                raise ValueError(
                    f"y must have shape ({x.shape[0]}, {self.y_dim}) to match x "
                    f"{tuple(x.shape)}, got {tuple(y.shape)}"
                )
        elif y.dim() != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"y must be class indices of shape ({x.shape[0]},), got {tuple(y.shape)}"
            )

    def extra_repr(self) -> str:
        kind = f"n_classes={self.n_classes}" if self.is_discrete else f"y_dim={self.y_dim}"
        return f"x_dim={self.x_dim}, {kind}"


class MLPConditionalEnergy(ConditionalEnergy):
    """``F(x, y) = f([x, y]) + |y|^2 / (2 s^2)``: a network over the pair.

    The optional quadratic term (``y_scale = s``) makes ``exp(-F(x, .))``
    integrable whatever the network does far from the data.

    Arguments:
        x_dim: Width of ``x``.
        y_dim: Width of ``y``.
        hidden: Hidden widths.
        activation: See :func:`make_mlp`.
        y_scale: ``s`` of the quadratic term, or ``None``.
        generator: Draw the initial weights from it.

    Example:
        >>> F = MLPConditionalEnergy(3, 1, hidden=(16,))
        >>> tuple(F(torch.randn(5, 3), torch.randn(5, 1)).shape)
        (5,)
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int = 1,
        hidden: Sequence[int] = (64, 64),
        *,
        activation: str = "silu",
        y_scale: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, y_dim=y_dim)
        if y_scale is not None and not y_scale > 0:
            raise ValueError(f"y_scale must be > 0 or None, got {y_scale}")
        self.y_scale = y_scale
        self.hidden = tuple(int(h) for h in hidden)
        self.net = make_mlp(
            self.x_dim + y_dim, 1, self.hidden, activation=activation, generator=generator
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of pairs ``x (N, x_dim)``, ``y (N, y_dim)``."""
        e = self.net(torch.cat([x, y], dim=-1)).squeeze(-1)
        if self.y_scale is not None:
            e = e + y.pow(2).sum(-1) / (2.0 * self.y_scale**2)
        return e

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hidden={self.hidden}, y_scale={self.y_scale}"


class QuadraticConditionalEnergy(ConditionalEnergy):
    """``F(x, y) = 1/2 (y - m(x))^T A (y - m(x))``: quadratic in ``y``.

    ``m`` is a network (linear with ``hidden=()``) and ``A = L L^T`` a learned
    positive-definite precision (``L`` lower triangular with a positive
    diagonal). Inference is exact: the one answer is ``m(x)``, and the Gibbs
    distribution is the Gaussian ``N(m(x), (beta A)^{-1})`` with
    ``log Z = D/2 log(2 pi) - 1/2 log det(beta A)``.

    Arguments:
        x_dim: Width of ``x``.
        y_dim: Width of ``y``.
        hidden: Hidden widths of ``m``.
        precision: Initial ``A``, shape ``(y_dim, y_dim)``, positive definite
            (default: the identity).
        generator: Draw the initial weights from it.

    Example:
        >>> F = QuadraticConditionalEnergy(3, 2)
        >>> x = torch.randn(4, 3)
        >>> F(x, F.mean(x)).abs().max().item()
        0.0
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int = 1,
        hidden: Sequence[int] = (),
        *,
        precision: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, y_dim=y_dim)
        self.mean_net = make_mlp(self.x_dim, y_dim, tuple(hidden), generator=generator)
        a = torch.eye(y_dim) if precision is None else precision.detach().to(torch.float32)
        if tuple(a.shape) != (y_dim, y_dim):
            raise ValueError(f"precision must have shape ({y_dim}, {y_dim}), got {tuple(a.shape)}")
        try:
            chol = torch.linalg.cholesky(a.double())
        except RuntimeError:
            raise ValueError("precision must be symmetric positive definite") from None
        self.chol_offdiag = nn.Parameter(chol.tril(-1).to(a.dtype))
        self.chol_log_diag = nn.Parameter(chol.diagonal().log().to(a.dtype))

    def cholesky(self) -> Tensor:
        """``L``, shape ``(y_dim, y_dim)``, with ``A = L L^T``."""
        return self.chol_offdiag.tril(-1) + torch.diag(self.chol_log_diag.exp())

    def precision(self) -> Tensor:
        """``A``, shape ``(y_dim, y_dim)``."""
        chol = self.cholesky()
        return chol @ chol.T

    def mean(self, x: Tensor) -> Tensor:
        """The exact minimizer ``m(x)``, shape ``(N, y_dim)``."""
        return self.mean_net(x)  # type: ignore[no-any-return]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of pairs ``x (N, x_dim)``, ``y (N, y_dim)``."""
        r = (y - self.mean(x)) @ self.cholesky()  # (y - m)^T L
        return 0.5 * r.pow(2).sum(-1)

    def log_z(self, x: Tensor, beta: float = 1.0) -> Tensor:
        """``log`` of the integral of ``exp(-beta F(x, y))`` over ``y``, shape ``(N,)``."""
        d = int(self.y_dim or 1)
        log_det = 2.0 * self.chol_log_diag.sum() + d * math.log(beta)
        value = 0.5 * d * math.log(2 * math.pi) - 0.5 * log_det
        return value.expand(x.shape[0])


class JointEmbeddingEnergy(ConditionalEnergy):
    """``F(x, y) = |G(x) - H(y)|^2``: two networks embed input and answer.

    The siamese architecture of the tutorial's collapse warning: trained with
    the plain energy loss, ``G`` and ``H`` can both become constant, giving
    ``F = 0`` for every pair; a contrastive loss prevents that.

    Arguments:
        x_dim: Width of ``x``.
        y_dim: Width of ``y``.
        embed_dim: Width of the embeddings.
        hidden: Hidden widths of ``G`` and ``H``.
        generator: Draw the initial weights from it.

    Example:
        >>> F = JointEmbeddingEnergy(3, 2, embed_dim=4, hidden=(8,))
        >>> tuple(F(torch.randn(5, 3), torch.randn(5, 2)).shape)
        (5,)
    """

    def __init__(
        self,
        x_dim: int,
        y_dim: int = 1,
        *,
        embed_dim: int = 8,
        hidden: Sequence[int] = (32,),
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, y_dim=y_dim)
        self.embed_x = make_mlp(
            self.x_dim, embed_dim, hidden, activation=activation, generator=generator
        )
        self.embed_y = make_mlp(
            y_dim, embed_dim, hidden, activation=activation, generator=generator
        )

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of pairs ``x (N, x_dim)``, ``y (N, y_dim)``."""
        return (self.embed_x(x) - self.embed_y(y)).pow(2).sum(-1)


class DiscreteConditionalEnergy(ConditionalEnergy):
    """One energy per class: ``F(x, k) = -s_k(x)``, a network's negated logits.

    With ``beta = 1`` the Gibbs distribution is the softmax of the logits, and
    the negative log-likelihood loss is the usual cross-entropy.

    Arguments:
        x_dim: Width of ``x``.
        n_classes: Number of classes.
        hidden: Hidden widths (ignored when ``network`` is given).
        network: Optional module ``(N, x_dim) -> (N, n_classes)`` of logits.
        generator: Draw the initial weights from it.

    Example:
        >>> F = DiscreteConditionalEnergy(4, 3, hidden=(8,))
        >>> x = torch.randn(5, 4)
        >>> tuple(F.energies(x).shape), tuple(F(x, torch.tensor([0, 1, 2, 0, 1])).shape)
        ((5, 3), (5,))
    """

    def __init__(
        self,
        x_dim: int,
        n_classes: int,
        hidden: Sequence[int] = (64,),
        *,
        network: nn.Module | None = None,
        activation: str = "silu",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(x_dim, n_classes=n_classes)
        self.network = (
            network
            if network is not None
            else make_mlp(
                self.x_dim, n_classes, hidden, activation=activation, generator=generator
            )
        )

    def energies(self, x: Tensor) -> Tensor:
        """Energies of every class, shape ``(N, n_classes)``: the negated logits."""
        return -self.network(x)  # type: ignore[no-any-return]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` of the classes ``y (N,)`` given ``x (N, x_dim)``."""
        return self.energies(x).gather(1, y.long().reshape(-1, 1)).squeeze(1)


def latent_grid(bounds: Sequence[tuple[float, float]], resolution: int) -> tuple[Tensor, float]:
    """A quadrature grid for a continuous latent variable.

    Arguments:
        bounds: One ``(low, high)`` per latent coordinate.
        resolution: Cells per axis.

    Returns:
        ``(values, log_volume)``: cell centres ``(resolution**D, D)`` and the
        log of one cell's volume, for :class:`LatentConditionalEnergy`.

    Example:
        >>> z, log_v = latent_grid([(-1.0, 1.0)], 4)
        >>> tuple(z.shape), round(log_v, 4)
        ((4, 1), -0.6931)
    """
    values, _ = grid_points(bounds, resolution, dtype=torch.float32)
    log_volume = sum(math.log((hi - lo) / resolution) for lo, hi in bounds)
    return values, float(log_volume)


#: The ``reduction`` of :class:`LatentConditionalEnergy` over its latent ``z``: the
#: minimum over ``z``, or the free energy ``-(1 / beta) log integral exp(-beta E) dz``.
REDUCTIONS = ("min", "free")


class LatentConditionalEnergy(ConditionalEnergy):
    """``F(x, y)`` from a joint energy ``E(x, y, z)`` with a latent variable ``z``.

    Two ways to eliminate ``z``:

    * ``reduction="min"``: :math:`F(x, y) = \\min_z E(x, y, z)`;
    * ``reduction="free"``: the free energy
      :math:`F(x, y) = -\\frac{1}{\\beta} \\log \\int \\exp(-\\beta E(x, y, z))\\,dz`.

    ``z`` ranges over ``latent_values``: a finite set (a discrete latent,
    exact; ``log_volume = 0``) or the cell centres of a grid over a continuous
    latent (:func:`latent_grid`; the integral becomes the midpoint rule and
    ``log_volume`` is the log cell volume). For ``"min"`` over a continuous
    latent without a grid, give ``latent_dim``: ``z`` is found by gradient
    descent (:func:`descend`) from ``latent_init`` (default 0). The minimizer is
    held fixed when differentiating, which is exact at a minimum (envelope
    theorem), so gradients in ``y`` and in the parameters are right.

    Arguments:
        joint: Module ``E(x, y, z) -> (N,)`` with ``x (N, x_dim)``,
            ``y (N, y_dim)`` (or ``(N,)`` classes) and ``z (N, latent_dim)``.
        x_dim: Width of ``x``.
        y_dim: Width of a continuous ``y`` (or give ``n_classes``).
        n_classes: Number of classes of a discrete ``y``.
        latent_values: ``(M, latent_dim)`` values of ``z`` to enumerate.
        log_volume: Log volume of one grid cell (free energy only).
        latent_dim: Width of a continuous ``z`` minimized by descent.
        reduction: ``"min"`` or ``"free"``.
        beta: Inverse temperature of the free energy, ``> 0``.
        n_steps: Descent steps for a continuous ``z``.
        step_size: Initial descent step.
        latent_init: Start of the descent, shape ``(latent_dim,)``.

    Example:
        >>> class Joint(nn.Module):
        ...     def forward(self, x, y, z):
        ...         return ((y - z * x) ** 2).sum(-1)
        >>> F = LatentConditionalEnergy(Joint(), 1, 1, latent_values=torch.tensor([[-1.], [1.]]))
        >>> F(torch.ones(2, 1), torch.tensor([[1.0], [-1.0]])).tolist()
        [0.0, 0.0]
    """

    latent_values: Tensor | None
    latent_init: Tensor

    def __init__(
        self,
        joint: nn.Module,
        x_dim: int,
        y_dim: int | None = None,
        *,
        n_classes: int | None = None,
        latent_values: Tensor | None = None,
        log_volume: float = 0.0,
        latent_dim: int | None = None,
        reduction: str = "min",
        beta: float = 1.0,
        n_steps: int = 50,
        step_size: float = 0.1,
        latent_init: Tensor | None = None,
    ) -> None:
        super().__init__(x_dim, y_dim=y_dim, n_classes=n_classes)
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {list(REDUCTIONS)}, got {reduction!r}")
        if not beta > 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        if (latent_values is None) == (latent_dim is None):
            raise ValueError(
                "give exactly one of latent_values (enumerate z) and latent_dim (descend on z)"
            )
        if latent_values is None and reduction == "free":
            raise ValueError(
                "reduction='free' needs latent_values: a finite set or a grid (latent_grid)"
            )
        if latent_values is not None and latent_values.dim() != 2:
            raise ValueError(
                f"latent_values must have shape (M, latent_dim), got {tuple(latent_values.shape)}"
            )
        self.joint = joint
        self.reduction = reduction
        self.beta = float(beta)
        self.log_volume = float(log_volume)
        self.n_steps = int(n_steps)
        self.step_size = float(step_size)
        self.latent_dim = int(latent_values.shape[1]) if latent_values is not None else latent_dim
        self.register_buffer(
            "latent_values", None if latent_values is None else latent_values.detach().clone()
        )
        init = torch.zeros(int(self.latent_dim or 1)) if latent_init is None else latent_init
        self.register_buffer("latent_init", init.detach().clone().reshape(-1))

    def joint_energies(self, x: Tensor, y: Tensor) -> Tensor:
        """``E(x, y, z_m)`` for every enumerated latent value, shape ``(N, M)``."""
        if self.latent_values is None:
            raise ValueError("joint_energies needs latent_values")
        z = self.latent_values.to(x)
        n, m = x.shape[0], z.shape[0]
        e = self.joint(x.repeat_interleave(m, 0), y.repeat_interleave(m, 0), z.repeat(n, 1))
        return e.reshape(n, m)  # type: ignore[no-any-return]

    def infer_latent(self, x: Tensor, y: Tensor) -> Tensor:
        """The minimizing ``z`` of each pair, shape ``(N, latent_dim)`` (detached)."""
        if self.latent_values is not None:
            with torch.no_grad():
                idx = self.joint_energies(x, y).argmin(1)
            return self.latent_values.to(x)[idx]
        x_, y_ = x.detach(), y.detach()
        z0 = self.latent_init.to(x).expand(x.shape[0], -1).clone()
        z, _ = descend(
            lambda z: self.joint(x_, y_, z), z0, n_steps=self.n_steps, step_size=self.step_size
        )
        return z

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """Energies ``(N,)`` with the latent variable eliminated."""
        if self.latent_values is None:
            return self.joint(x, y, self.infer_latent(x, y))  # type: ignore[no-any-return]
        e = self.joint_energies(x, y)
        if self.reduction == "min":
            return e.min(1).values
        return -(torch.logsumexp(-self.beta * e, 1) + self.log_volume) / self.beta

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, latent_dim={self.latent_dim}, "
            f"reduction={self.reduction!r}, beta={self.beta}"
        )
