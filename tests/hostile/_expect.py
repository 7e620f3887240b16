"""Assertions shared by the hostile-input suite.

``refuses(call, error, *names)`` checks the contract of a clear error: the
exact fblitz class (not a subclass, not torch's own error) and a message that
contains every given name (the argument, and what was given or expected).
``usage_error`` is the same for a command line: exit status 2 and one
``error:`` line naming the option, before anything runs.
"""

from __future__ import annotations

import pytest


def refuses(call, error: type, *names: str) -> str:
    """Run ``call()``; it must raise exactly ``error`` with every string of ``names`` in its message."""
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is error, f"expected {error.__name__}, got {type(info.value).__name__}: {info.value}"
    message = str(info.value)
    for name in names:
        assert name in message, f"{name!r} not in the message: {message}"
    return message


def usage_error(main, argv: list[str], capsys, *names: str) -> str:
    """``main(argv)`` must stop with exit status 2 and one ``error:`` line naming ``names``."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    assert info.value.code == 2, f"exit status {info.value.code}, stderr: {captured.err}"
    errors = [line for line in captured.err.splitlines() if "error:" in line]
    assert len(errors) == 1, captured.err
    assert captured.out == "", "nothing may run before the usage error"
    for name in names:
        assert name in errors[0], f"{name!r} not in: {errors[0]}"
    return errors[0]
