"""Progress over a list of named tasks (benchmark cases): a tqdm bar, or one plain line per task.

The form follows where the output goes, as for training
(:func:`fblitz._progress.output_kind`).
"""

from __future__ import annotations

import sys
from typing import TextIO

from fblitz._progress import output_kind, tqdm_class


class TaskProgress:
    """Progress over ``total`` named tasks (benchmark cases, splits): a tqdm bar, or one plain line per task.

    :meth:`start` names the task now running (a plain line ``[3/12] name`` on
    ``stream``, default stderr, or the bar's label), :meth:`write` prints a
    result line on ``out`` (default stdout; above the bar), :meth:`done` counts
    a task as finished.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with TaskProgress(2, "cases", stream=out, out=out) as tasks:
        ...     for name in ("small", "large"):
        ...         tasks.start(name)
        ...         tasks.write(f"{name}: 1.0 ms")
        ...         tasks.done()
        >>> print(out.getvalue().strip())
        [1/2] small
        small: 1.0 ms
        [2/2] large
        large: 1.0 ms
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        out: TextIO | None = None,
        kind: str | None = None,
    ):
        self.total, self.desc, self.enabled, self.count = total, desc, bool(enabled), 0
        self.stream = sys.stderr if stream is None else stream
        self.out = sys.stdout if out is None else out
        self.kind = output_kind(self.stream) if kind is None else kind
        self.bar = None
        if self.enabled and self.kind != "plain":
            self.bar = tqdm_class(self.kind)(total=total, desc=desc, unit=" task", file=self.stream, leave=True)

    def __enter__(self) -> TaskProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, name: str) -> None:
        """Task ``name`` starts now."""
        if self.bar is not None:
            self.bar.set_postfix_str(name)
        elif self.enabled:
            print(f"[{self.count + 1}/{self.total}] {name}", file=self.stream, flush=True)

    def write(self, line: str) -> None:
        """A result line on ``out``, above the bar (printed even when the display is off)."""
        if self.bar is not None:
            self.bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def done(self) -> None:
        """The current task is finished."""
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
