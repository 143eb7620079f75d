"""Errors raised for user mistakes and training failures.

Every user-facing problem (bad config key, NaN in data, wrong shape, missing
file, unknown name) raises a subclass of :class:`EbmlabError` whose message is
one line naming the thing and what was expected. The command line prints that
line and exits with status 2, without a traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DataError",
    "EbmlabError",
    "RunDirError",
    "TrainingDivergedError",
    "TrainingInterruptedError",
]


class EbmlabError(Exception):
    """Base class of every error ebmlab raises for a user mistake."""


class ConfigError(EbmlabError, ValueError):
    """A configuration value or key is invalid."""


class DataError(EbmlabError, ValueError):
    """A data file or array is malformed (NaN, ragged, wrong shape, empty...)."""


class RunDirError(EbmlabError, FileNotFoundError):
    """A run directory is missing or incomplete."""


class TrainingDivergedError(EbmlabError, RuntimeError):
    """Training produced a non-finite loss, energy or gradient.

    The last good checkpoint is kept; the message says what to change.
    """


class TrainingInterruptedError(EbmlabError, RuntimeError):
    """Training stopped on SIGTERM or SIGINT after writing a checkpoint.

    Attributes:
        signum: The signal's number (the command line exits with ``128 + signum``).
    """

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
