"""Data: 2-D toy distributions, loaders for user files, and image data.

Toys are generated on demand from an explicit ``torch.Generator``; nothing is
downloaded at import time. Loaders refuse bad data with one-line
:class:`ebmlab.errors.DataError` messages naming the file, line or row, and column.
"""

from __future__ import annotations

from .images import ImageData, ImageScaling, is_image_source, load_images
from .loaders import load_array, load_tensor, validate_array
from .toys import (
    TOYS,
    Checkerboard,
    EightGaussians,
    Pinwheel,
    Rings,
    Spirals,
    Toy,
    TwoMoons,
    make_toy,
)

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
