"""``argparse`` types for fblitz's command-line programs (internal).

Each factory returns a ``type=`` callable that turns the option's text into a
value or raises ``argparse.ArgumentTypeError``; argparse then prints the usage
and one line naming the option, and exits with status 2::

    error: argument --epochs: must be an integer >= 1, got '0'

so an invalid value stops the program before any data is loaded or any
training starts, instead of ending it in a traceback.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
    >>> _ = parser.add_argument("--epochs", type=integer(minimum=1), default=3)
    >>> parser.parse_args(["--epochs", "5"]).epochs
    5
    >>> try:
    ...     parser.parse_args(["--epochs", "0"])
    ... except argparse.ArgumentError as error:
    ...     print(error)
    argument --epochs: must be an integer >= 1, got '0'
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

SEED_MAX = 2**64 - 1  # a fblitz Key holds 64 bits; larger seeds would alias smaller ones


def _bounds(minimum, maximum, open_minimum=False, open_maximum=False) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if open_minimum else '>='} {minimum:g}" if isinstance(minimum, float) else f">= {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if open_maximum else '<='} {maximum:g}" if isinstance(maximum, float) else f"<= {maximum}")
    return (" " + " and ".join(parts)) if parts else ""


def integer(minimum: int | None = None, maximum: int | None = None, *, why: str = "") -> Callable[[str], int]:
    """A whole number in ``[minimum, maximum]`` (either end optional); ``why`` is added to the message."""
    note = f" ({why})" if why else ""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer{_bounds(minimum, maximum)}{note}, got {text!r}"
            ) from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be an integer{_bounds(minimum, maximum)}{note}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def real(
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    open_minimum: bool = False,
    open_maximum: bool = False,
    why: str = "",
) -> Callable[[str], float]:
    """A finite number within the bounds (``open_*``: the bound itself is excluded)."""
    bounds = _bounds(
        None if minimum is None else float(minimum),
        None if maximum is None else float(maximum),
        open_minimum,
        open_maximum,
    )
    note = f" ({why})" if why else ""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a finite number{bounds}{note}, got {text!r}") from None
        low_ok = minimum is None or (value > minimum if open_minimum else value >= minimum)
        high_ok = maximum is None or (value < maximum if open_maximum else value <= maximum)
        if not math.isfinite(value) or not low_ok or not high_ok:
            raise argparse.ArgumentTypeError(f"must be a finite number{bounds}{note}, got {text!r}")
        return value

    parse.__name__ = "real"
    return parse


def seed(text: str) -> int:
    """A seed for :class:`fblitz.random.Key`: an integer in [0, 2**64 - 1]."""
    return integer(0, SEED_MAX)(text)


def output_file(text: str) -> str:
    """A path to write later: its directory must exist now (so a long run does not fail at the end)."""
    directory = os.path.dirname(os.path.abspath(text)) if text else ""
    if not text or os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must be a file path, got {text!r}")
    if not os.path.isdir(directory):
        raise argparse.ArgumentTypeError(f"must be a file in an existing directory, but {directory!r} does not exist")
    if not os.access(directory, os.W_OK):
        raise argparse.ArgumentTypeError(f"must be a file in a writable directory, but {directory!r} is not writable")
    return text


def existing_directory(text: str) -> str:
    """A directory that exists."""
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must be an existing directory, got {text!r}")
    return text
