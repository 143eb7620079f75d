"""Partition functions: log Z by quadrature (and, later, enumeration and AIS)."""

from __future__ import annotations

from .quadrature import QuadratureResult, grid_points, quadrature_log_z

__all__ = ["QuadratureResult", "grid_points", "quadrature_log_z"]
