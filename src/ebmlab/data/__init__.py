"""Data: 2-D toy distributions and loaders for user files.

* :mod:`~ebmlab.data.base`: the :class:`Toy` contract (sample, bounds, exact log
  density, entropy).
* :mod:`~ebmlab.data.toys`: the toys and the :data:`TOYS` registry,
  :func:`make_toy`; :mod:`~ebmlab.data.pinwheel`: the pinwheel toy.
* :mod:`~ebmlab.data.loaders`: :func:`load_array`, :func:`load_tensor`,
  :func:`validate_array` for ``.npy``/``.npz``/``.csv`` files.

Toys are generated on demand from an explicit ``torch.Generator``; nothing is
downloaded at import time. Loaders refuse bad data with one-line
:class:`ebmlab.errors.DataError` messages naming the file, line or row, and column.
"""

from __future__ import annotations

from .base import Toy
from .loaders import load_array, load_tensor, validate_array
from .pinwheel import Pinwheel
from .toys import TOYS, Checkerboard, EightGaussians, Rings, Spirals, TwoMoons, make_toy

__all__ = [
    "TOYS",
    "Checkerboard",
    "EightGaussians",
    "Pinwheel",
    "Rings",
    "Spirals",
    "Toy",
    "TwoMoons",
    "load_array",
    "load_tensor",
    "make_toy",
    "validate_array",
]
