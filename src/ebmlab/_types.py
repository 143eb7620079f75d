"""Shared type aliases. Shapes live in docstrings."""

from __future__ import annotations

import os
from collections.abc import Callable

from torch import Tensor

__all__ = ["EnergyFn", "PathLike"]

#: A callable energy: configurations ``(N, *event_shape)`` -> energies ``(N,)``.
#: Low energy = high probability.
EnergyFn = Callable[[Tensor], Tensor]

#: Anything accepted as a file path.
PathLike = str | os.PathLike[str]
