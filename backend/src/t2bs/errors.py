"""Exceptions that cross module boundaries.

`InputError` is the user's problem (a file, an option, a capture): its message is one sentence that
says what is wrong and how to fix it, and the CLI turns it into exit code 2 without a traceback.
"""

from __future__ import annotations


class T2bsError(Exception):
    """Base class for errors the product reports as one clear sentence."""

    exit_code = 1


class InputError(T2bsError):
    """Bad input: a missing or malformed file, an inconsistent capture, an unknown option value."""

    exit_code = 2


class BundleError(InputError):
    """A bundle directory that cannot be used as asked (not a bundle, unfinished, other schema)."""


class StageError(T2bsError):
    """A stage failed for a reason that is not the user's input (divergence, out of memory, ...)."""


class Cancelled(Exception):
    """Raised at a cancellation point once the run's `CancelToken` has been set."""

    def __init__(self, message: str = "the run was cancelled") -> None:
        super().__init__(message)
