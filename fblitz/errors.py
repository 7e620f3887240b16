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


class CheckpointError(FblitzValueError):
    """A file is not a loadable fblitz checkpoint (wrong format, version, or unsafe content)."""


class NonFiniteStepError(NonFiniteError):
    """A training step produced a NaN/infinite loss or gradient.

    Attributes:
        epoch, step: where it happened (step counts minibatches within the epoch).
        params, opt_state, state: the values *before* that step, untouched, so
            training can be inspected or resumed from there.
    """

    def __init__(self, message: str, *, epoch: int, step: int, params=None, opt_state=None, state=None):
        super().__init__(message)
        self.epoch, self.step = epoch, step
        self.params, self.opt_state, self.state = params, opt_state, state
