"""Where an energy's configurations live: continuous space or a discrete set.

Partition estimators need to know whether ``Z`` is an integral or a sum, and
over what. An energy declares it with a ``domain`` attribute, or the caller
passes ``domain=``; anything accepted by :func:`parse_domain` works:

- ``"continuous"`` (the default): ``x`` in ``R^{event_shape}``;
- ``"binary"``: every entry of ``x`` in ``{0, 1}``;
- ``"spin"``: every entry in ``{-1, +1}``;
- an integer ``K >= 2``: categorical entries coded ``0 .. K-1``;
- a sequence of numbers: every entry takes one of those values;
- ``"onehot"``: categorical variables one-hot coded along the last axis of
  ``event_shape`` (``K = event_shape[-1]``).

A discrete configuration has ``n_vars`` variables with ``K`` values each, so
``K ** n_vars`` states.
"""

from __future__ import annotations

__all__ = ["Domain", "domain_of", "parse_domain"]

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass(frozen=True)
class Domain:
    """A parsed domain (see the module docstring).

    Attributes:
        kind: ``"continuous"`` or ``"discrete"``.
        values: The values one variable takes (discrete, value-coded), e.g.
            ``(0.0, 1.0)``; empty for continuous and one-hot domains.
        one_hot: Categorical variables one-hot along the last event axis.
        name: A short description for messages.
    """

    kind: str
    values: tuple[float, ...] = ()
    one_hot: bool = False
    name: str = "continuous"

    @property
    def is_discrete(self) -> bool:
        """Whether ``Z`` is a sum over configurations."""
        return self.kind == "discrete"

    def n_values(self, event_shape: tuple[int, ...]) -> int:
        """Number of values ``K`` of one variable."""
        return event_shape[-1] if self.one_hot else len(self.values)

    def n_vars(self, event_shape: tuple[int, ...]) -> int:
        """Number of discrete variables in one configuration."""
        shape = event_shape[:-1] if self.one_hot else event_shape
        return math.prod(shape)

    def log_n_states(self, event_shape: tuple[int, ...]) -> float:
        """``log(K ** n_vars)``: log of the number of configurations."""
        return self.n_vars(event_shape) * math.log(self.n_values(event_shape))

    def alternatives(
        self, event_shape: tuple[int, ...], dtype: torch.dtype, device: Any
    ) -> Tensor:
        """The ``K`` states of one variable, shape ``(K, width)`` (width 1 unless one-hot)."""
        if self.one_hot:
            return torch.eye(event_shape[-1], dtype=dtype, device=device)
        return torch.tensor(self.values, dtype=dtype, device=device)[:, None]


_CONTINUOUS = Domain("continuous")


def parse_domain(spec: Any, event_shape: tuple[int, ...] | None = None) -> Domain:
    """Parse a domain specification (see the module docstring).

    Raises:
        ValueError: For anything else, listing the accepted forms.

    Example:
        >>> parse_domain("spin").values
        (-1.0, 1.0)
        >>> parse_domain(3).values
        (0.0, 1.0, 2.0)
    """
    if isinstance(spec, Domain):
        d = spec
    elif spec is None or spec == "continuous":
        d = _CONTINUOUS
    elif spec == "binary":
        d = Domain("discrete", (0.0, 1.0), name="binary {0, 1}")
    elif spec == "spin":
        d = Domain("discrete", (-1.0, 1.0), name="spin {-1, +1}")
    elif spec == "onehot":
        d = Domain("discrete", (), one_hot=True, name="one-hot categorical")
    elif isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 2:
            raise ValueError(f"a categorical domain needs K >= 2 values, got {spec}")
        d = Domain("discrete", tuple(float(v) for v in range(spec)), name=f"categorical {spec}")
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        vals = tuple(float(v) for v in spec)
        if len(vals) < 2 or len(set(vals)) != len(vals):
            raise ValueError(
                f"domain values must be at least 2 distinct numbers, got {list(spec)}"
            )
        d = Domain("discrete", vals, name=f"values {list(vals)}")
    else:
        raise ValueError(
            "domain must be 'continuous', 'binary', 'spin', 'onehot', an int K >= 2 or a "
            f"sequence of values, got {spec!r}"
        )
    if d.one_hot and event_shape is not None and (len(event_shape) < 2 or event_shape[-1] < 2):
        raise ValueError(
            f"a one-hot domain needs event_shape (..., K) with K >= 2, got {event_shape}"
        )
    return d


def domain_of(energy: Any, domain: Any = None) -> Domain:
    """The domain passed explicitly, else the energy's ``domain`` attribute, else continuous."""
    spec = domain if domain is not None else getattr(energy, "domain", None)
    return parse_domain(spec, getattr(energy, "event_shape", None))
