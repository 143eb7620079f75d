"""Data: 2-D toy distributions, loaders for user files, and image data.

* :mod:`~ebmlab.data.base`: the :class:`Toy` contract (sample, bounds, exact log
  density, entropy).
* :mod:`~ebmlab.data.toys`: the toys and the :data:`TOYS` registry,
  :func:`make_toy`; :mod:`~ebmlab.data.pinwheel`: the pinwheel toy.
* :mod:`~ebmlab.data.loaders`: :func:`load_array`, :func:`load_tensor`,
  :func:`validate_array` for ``.npy``/``.npz``/``.csv`` files.
* :mod:`~ebmlab.data.images`: :func:`load_images` for image arrays
  (``.npy``/``.npz``), folders of PNG/JPEG files, MNIST IDX files and the
  built-ins ``builtin:digits`` and ``builtin:mnist5k``, with the recorded
  :class:`ImageScaling` to ``[-1, 1]`` and back.

Toys are generated on demand from an explicit ``torch.Generator``; nothing is
downloaded at import time. Loaders refuse bad data with one-line
:class:`ebmlab.errors.DataError` messages naming the file, line or row, and column.
"""

from __future__ import annotations

from .base import Toy
from .images import ImageData, ImageScaling, is_image_source, load_images
from .loaders import load_array, load_tensor, validate_array
from .pinwheel import Pinwheel
from .toys import TOYS, Checkerboard, EightGaussians, Rings, Spirals, TwoMoons, make_toy

__all__ = [
    "TOYS",
    "Checkerboard",
    "EightGaussians",
    "ImageData",
    "ImageScaling",
    "Pinwheel",
    "Rings",
    "Spirals",
    "Toy",
    "TwoMoons",
    "is_image_source",
    "load_array",
    "load_images",
    "load_tensor",
    "make_toy",
    "validate_array",
]
