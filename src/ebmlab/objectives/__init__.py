"""Training objectives for energies. Each returns ``(loss, diagnostics, state)``."""

from __future__ import annotations

from .cd import CD_MODES, CDDiagnostics, ContrastiveDivergence

__all__ = ["CD_MODES", "CDDiagnostics", "ContrastiveDivergence"]
