"""Step-size adaptation towards a target acceptance rate (private).

Stochastic approximation in log space: after each batch of transitions,
``log eps += gain * (mean acceptance - target)``, the gain shrinking slowly
(``gain / t^0.2``) so the step size settles yet still follows a changing
target (the annealing path).
"""

from __future__ import annotations

__all__ = ["StepSizeAdapter"]

import math


class StepSizeAdapter:
    """Adapt a step size from observed mean acceptance rates.

    Arguments:
        step_size: Initial step size ``> 0``.
        target: Acceptance rate to aim for, in ``(0, 1)``.
        gain: Initial gain of the log-space update.
        min_step: Smallest allowed step size; ``max_step`` the largest.
    """

    def __init__(
        self,
        step_size: float,
        target: float,
        *,
        gain: float = 1.0,
        min_step: float = 1e-8,
        max_step: float = 1e4,
    ) -> None:
        if not step_size > 0:
            raise ValueError(f"step_size must be > 0, got {step_size}")
        if not 0 < target < 1:
            raise ValueError(f"target acceptance must be in (0, 1), got {target}")
        self.log_step = math.log(step_size)
        self.target = float(target)
        self.gain = float(gain)
        self.min_log, self.max_log = math.log(min_step), math.log(max_step)
        self.n_updates = 0

    @property
    def step_size(self) -> float:
        """The current step size."""
        return math.exp(self.log_step)

    def update(self, acceptance: float) -> float:
        """Move the step size after a mean acceptance ``acceptance``; returns it."""
        if math.isnan(acceptance):
            acceptance = 0.0
        self.n_updates += 1
        rate = self.gain / self.n_updates**0.2
        self.log_step = min(
            self.max_log, max(self.min_log, self.log_step + rate * (acceptance - self.target))
        )
        return self.step_size
