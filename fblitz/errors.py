"""Exceptions raised by fblitz for bad input.

Every check in fblitz raises one of these, with a message that names the
argument, says what was expected and what was given. They subclass the
built-in ``ValueError``/``TypeError``, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class FblitzError(Exception):
    """Base class of every exception fblitz raises on purpose."""


class FblitzValueError(FblitzError, ValueError):
    """An argument has the right type but an unacceptable value or shape."""


class FblitzTypeError(FblitzError, TypeError):
    """An argument has the wrong type (or dtype)."""


class NonFiniteError(FblitzValueError):
    """A loss, gradient or input contains NaN or infinity."""
