"""Progress displays: a tqdm bar, or plain lines where output is not a terminal.

:class:`TrainingProgress` is what :func:`fblitz.train.fit` and
:func:`fblitz.distributed.fit_distributed` show on stderr;
:class:`fblitz._task_progress.TaskProgress` counts the items of a longer
job (the benchmarks' cases). Their form follows where the output goes (:func:`output_kind`):

* a terminal: a tqdm bar redrawn in place (epoch, loss, rate, elapsed time and ETA);
* a Jupyter notebook: tqdm's notebook widget when ``ipywidgets`` is installed,
  else the same text bar, which Jupyter redraws in place;
* anything else (a pipe, a file, a CI log): one plain line after the first
  epoch, then one every :data:`PLAIN_INTERVAL` seconds and one at the end, so
  a log is never silent for long and never fills with redraws.

The bar counts epochs and advances after every step, so a long epoch moves it
too. Lines printed by a callback go through :meth:`TrainingProgress.writing`,
which clears the bar first and redraws it after.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TextIO

PLAIN_INTERVAL = 10.0  # seconds between two plain lines
COMPILE_NOTE = "compiling the training step with torch.compile (about 30 s the first time; cached after)"
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def output_kind(stream: TextIO | None = None) -> str:
    """``"notebook"``, ``"terminal"`` or ``"plain"``: where ``stream`` (default stderr) shows its text.

    Example:
        >>> import io
        >>> output_kind(io.StringIO())
        'plain'
    """
    stream = sys.stderr if stream is None else stream
    if _in_notebook():
        return "notebook"
    isatty = getattr(stream, "isatty", None)
    return "terminal" if callable(isatty) and isatty() else "plain"


def _in_notebook() -> bool:
    if "ipykernel" not in sys.modules or "IPython" not in sys.modules:
        return False
    shell = sys.modules["IPython"].get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def tqdm_class(kind: str):
    """tqdm's notebook widget in a notebook with ipywidgets; its text bar otherwise."""
    if kind == "notebook":
        try:
            import ipywidgets  # noqa: F401
            from tqdm.notebook import tqdm

            return tqdm
        except ImportError:
            pass
    from tqdm import tqdm

    return tqdm


def format_duration(seconds: float) -> str:
    """``seconds`` as tqdm writes durations (``MM:SS`` or ``H:MM:SS``).

    Example:
        >>> format_duration(75.4), format_duration(3725)
        ('01:15', '1:02:05')
    """
    from tqdm import tqdm

    return tqdm.format_interval(seconds)


class TrainingProgress:
    """Progress of ``epochs`` epochs of ``steps_per_epoch`` steps each, shown on ``stream`` (default stderr).

    Call :meth:`step` after every step, :meth:`epoch_done` after every epoch
    and :meth:`close` at the end (or use it as a context manager). With
    ``enabled=False`` every method does nothing.

    Args:
        enabled: show anything at all.
        epochs: the epoch the loop ends at (counting from 0).
        steps_per_epoch: minibatch steps per epoch.
        start_epoch: epochs already done (a resumed run starts the bar there).
        stream: where to write; default ``sys.stderr`` at construction.
        kind: force ``"terminal"``, ``"notebook"`` or ``"plain"`` (default: :func:`output_kind`).
        interval: seconds between plain lines.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with TrainingProgress(True, epochs=2, steps_per_epoch=3, stream=out) as progress:
        ...     for epoch in range(2):
        ...         for index in range(3):
        ...             progress.step(epoch, index)
        ...         progress.epoch_done(epoch, loss=1.0 / (epoch + 1))
        >>> [line.split("  ")[:2] for line in out.getvalue().splitlines()]
        [['epoch 1/2', 'loss 1.0000'], ['epoch 2/2', 'loss 0.5000']]
    """

    def __init__(
        self,
        enabled: bool,
        *,
        epochs: int,
        steps_per_epoch: int,
        start_epoch: int = 0,
        stream: TextIO | None = None,
        kind: str | None = None,
        interval: float = PLAIN_INTERVAL,
    ):
        self.enabled = bool(enabled) and epochs > start_epoch
        self.epochs, self.steps, self.start_epoch = epochs, max(1, steps_per_epoch), start_epoch
        self.stream = sys.stderr if stream is None else stream
        self.kind = output_kind(self.stream) if kind is None else kind
        self.interval = interval
        self.loss: float | None = None
        self.done = float(start_epoch)  # epochs done, fractional within an epoch
        self.started = time.perf_counter()
        self.last_line = None  # time of the last plain line
        self.first_step_at: tuple[float, float] | None = None  # (time, epochs done) after the first step
        self.bar = None
        if self.enabled and self.kind != "plain":
            self.bar = tqdm_class(self.kind)(
                total=epochs, initial=start_epoch, desc=self._desc(), unit="epoch", file=self.stream,
                bar_format=BAR_FORMAT, dynamic_ncols=True, leave=True, smoothing=0.1,
            )  # fmt: skip

    def __enter__(self) -> TrainingProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _desc(self) -> str:
        return f"epoch {int(self.done + 1e-9)}/{self.epochs}"

    def note(self, line: str) -> None:
        """Print one line (above the bar on a terminal)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def step(self, epoch: int, index: int) -> None:
        """Step ``index`` (from 0) of ``epoch`` is done."""
        if not self.enabled:
            return
        done = epoch + (index + 1) / self.steps
        now = time.perf_counter()
        if self.first_step_at is None:
            self.first_step_at = (now, done)
        if self.bar is not None:
            self.bar.update(done - self.done)
            self.done = done
        else:
            self.done = done
            if self.last_line is not None and now - self.last_line >= self.interval and index + 1 < self.steps:
                self._line(now, step=index + 1)

    def epoch_done(self, epoch: int, loss: float) -> None:
        """``epoch`` (from 0) is over with mean loss ``loss``."""
        if not self.enabled:
            return
        self.loss = loss
        if self.bar is not None:
            self.bar.update(epoch + 1 - self.done)
            self.done = epoch + 1
            self.bar.set_description_str(self._desc(), refresh=False)
            self.bar.set_postfix_str(f"loss {loss:.4f}", refresh=False)
            return
        self.done = epoch + 1
        now = time.perf_counter()
        if self.last_line is None or now - self.last_line >= self.interval or self.done >= self.epochs:
            self._line(now)

    def _rate(self, now: float) -> float | None:
        """Epochs per second since the first step (which may include compiling), else over the whole run."""
        if self.first_step_at is not None and now - self.first_step_at[0] > 0 and self.done > self.first_step_at[1]:
            return (self.done - self.first_step_at[1]) / (now - self.first_step_at[0])
        elapsed = now - self.started
        return (self.done - self.start_epoch) / elapsed if elapsed > 0 and self.done > self.start_epoch else None

    def _line(self, now: float, step: int | None = None) -> None:
        self.last_line = now
        rate = self._rate(now)
        where = f"epoch {int(self.done + 1e-9)}/{self.epochs}"
        if step is not None:
            where += f" +{step}/{self.steps} steps"
        parts = [where, "loss -" if self.loss is None else f"loss {self.loss:.4f}"]
        if rate:
            parts.append(f"{rate:.2f} epoch/s" if rate >= 1 else f"{1 / rate:.2f} s/epoch")
        parts.append(f"elapsed {format_duration(now - self.started)}")
        if rate and self.done < self.epochs:
            parts.append(f"ETA {format_duration((self.epochs - self.done) / rate)}")
        print("  ".join(parts), file=self.stream, flush=True)

    @contextlib.contextmanager
    def writing(self):
        """A block that prints (a callback's report): the bar is cleared before it and redrawn after."""
        if self.bar is None:
            yield
            return
        self.bar.clear()
        try:
            yield
        finally:
            self.bar.refresh()

    def close(self) -> None:
        """Finish the display (the bar stays, showing the last epoch)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
