"""The progress display of ``fit``: plain lines off a terminal, a tqdm bar on one, nothing when turned off."""

import io
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fblitz import _progress, layers, likelihoods, optim
from fblitz._progress import COMPILE_NOTE, TrainingProgress, output_kind
from fblitz._task_progress import TaskProgress
from fblitz.train import fit

MODEL = layers.serial(layers.linear(1, 8), layers.relu, layers.linear(8, 1))
X = torch.linspace(-1, 1, 24).unsqueeze(1)
COMMON = dict(likelihood=likelihoods.gaussian(0.1), optimizer=optim.adam(1e-2), key=1, batch_size=8)
PLAIN = re.compile(
    r"^epoch (\d+)/(\d+)( \+\d+/\d+ steps)?  loss (-|-?\d+\.\d{4})"
    r"(  (\d+\.\d\d epoch/s|\d+\.\d\d s/epoch))?  elapsed \d\d:\d\d(  ETA \d\d:\d\d)?$"
)


class FakeClock:
    """``time.perf_counter`` stand-in: advances ``tick`` seconds at every reading."""

    def __init__(self, tick: float):
        self.now, self.tick = 0.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def render(text: str) -> list[str]:
    """The screen lines a terminal shows for ``text`` (carriage returns overwrite, newlines advance)."""
    lines, column = [[]], 0
    for char in text:
        if char == "\r":
            column = 0
        elif char == "\n":
            lines.append([])
            column = 0
        else:
            line = lines[-1]
            line[column : column + 1] = [char]
            column += 1
    return ["".join(line).rstrip() for line in lines if "".join(line).strip()]


def test_off_a_terminal_fit_prints_plain_lines_after_the_first_epoch_and_at_the_end(capsys):
    result = fit(MODEL, MODEL.init(0), X, 2 * X, epochs=5, **COMMON)  # progress is on by default
    lines = capsys.readouterr().err.splitlines()
    assert all(PLAIN.match(line) for line in lines), lines
    assert lines[0].startswith("epoch 1/5  loss ") and lines[-1].startswith("epoch 5/5  loss ")
    assert f"loss {result.history['loss'][-1]:.4f}" in lines[-1]
    assert f"loss {result.history['loss'][0]:.4f}" in lines[0]
    assert "ETA" in lines[0] and "ETA" not in lines[-1]  # nothing left to wait for at the end


def test_progress_false_prints_nothing(capsys):
    fit(MODEL, MODEL.init(0), X, 2 * X, epochs=3, progress=False, **COMMON)
    assert capsys.readouterr() == ("", "")


@settings(max_examples=25, deadline=None)
@given(
    epochs=st.integers(1, 12),
    steps=st.integers(1, 9),
    tick=st.floats(0.05, 8.0),
    interval=st.floats(1.0, 20.0),
)
def test_plain_lines_are_never_further_apart_than_the_interval_plus_one_step(epochs, steps, tick, interval):
    # one clock reading per step: a step "lasts" tick seconds
    clock, out, stamps = FakeClock(tick), io.StringIO(), []
    original = _progress.time.perf_counter
    _progress.time.perf_counter = clock
    try:
        display = TrainingProgress(True, epochs=epochs, steps_per_epoch=steps, stream=out, interval=interval)
        for epoch in range(epochs):
            for index in range(steps):
                display.step(epoch, index)
                stamps += [clock.now] * (len(out.getvalue().splitlines()) - len(stamps))
            display.epoch_done(epoch, loss=float(epoch))
            stamps += [clock.now] * (len(out.getvalue().splitlines()) - len(stamps))
    finally:
        _progress.time.perf_counter = original
    lines = out.getvalue().splitlines()
    assert all(PLAIN.match(line) for line in lines), lines
    assert lines[0].startswith("epoch 1/") and lines[-1].startswith(f"epoch {epochs}/{epochs}  ")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert all(gap <= interval + 2 * tick + 1e-9 for gap in gaps), (gaps, interval, tick)
    done = [int(PLAIN.match(line).group(1)) for line in lines]
    assert done == sorted(done)  # the count of finished epochs never goes back


def test_on_a_terminal_the_bar_shows_epoch_loss_rate_and_eta_and_ends_at_100_percent():
    out = io.StringIO()
    with TrainingProgress(True, epochs=4, steps_per_epoch=3, stream=out, kind="terminal") as display:
        for epoch in range(4):
            for index in range(3):
                display.step(epoch, index)
            display.epoch_done(epoch, loss=0.5 - epoch / 10)
    screen = render(out.getvalue())
    assert len(screen) == 1, screen  # redrawn in place: one line on the screen
    assert re.match(
        r"^epoch 4/4: 100%\|[█#]+\| \[\d\d:\d\d<\d\d:\d\d, +[\d.?]+(epoch/s|s/epoch), loss 0\.2000\]$", screen[0]
    )


def test_a_callback_that_prints_keeps_its_own_line_above_the_bar():
    out = io.StringIO()
    with TrainingProgress(True, epochs=3, steps_per_epoch=2, stream=out, kind="terminal") as display:
        for epoch in range(3):
            for index in range(2):
                display.step(epoch, index)
            display.epoch_done(epoch, loss=1.0)
            with display.writing():
                out.write(f"report {epoch}\n")
    screen = render(out.getvalue())
    assert screen[:3] == ["report 0", "report 1", "report 2"]
    assert screen[3].startswith("epoch 3/3: 100%") and len(screen) == 4


def test_a_resumed_run_starts_the_count_at_start_epoch(capsys):
    fit(MODEL, MODEL.init(0), X, 2 * X, epochs=4, start_epoch=2, **COMMON)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("epoch 3/4  ") and lines[-1].startswith("epoch 4/4  ")


def test_compiling_is_announced_before_the_first_step_and_timed_after_it(capsys, monkeypatch):
    calls = []

    def fake_compile(fn):  # the announcement is the subject here, not torch.compile
        def first_call_is_slow(*args):
            if not calls:  # what was printed before the first step
                calls.append(len(capsys.readouterr().err.splitlines()))
            return fn(*args)

        return first_call_is_slow

    monkeypatch.setattr(torch, "compile", fake_compile)
    fit(MODEL, MODEL.init(0), X, 2 * X, epochs=2, compile=True, **COMMON)
    assert calls[0] == 1  # before the first step: the note alone
    rest = capsys.readouterr().err.splitlines()
    assert rest[0].startswith("compiled and ran the first step in ") and rest[0].endswith(" s")
    assert PLAIN.match(rest[1]) and rest[-1].startswith("epoch 2/2  ")


def test_the_compile_note_says_what_happens_and_how_long_it_takes():
    assert "compiling" in COMPILE_NOTE and "30 s" in COMPILE_NOTE and "cached" in COMPILE_NOTE


def test_output_kind_follows_the_stream():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert output_kind(io.StringIO()) == "plain"
    assert output_kind(Tty()) == "terminal"


def test_in_a_notebook_without_ipywidgets_the_text_bar_is_used():
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        from tqdm import tqdm

        assert _progress.tqdm_class("notebook") is tqdm
    else:
        pytest.skip("ipywidgets is installed: the notebook widget is used")


def test_task_progress_off_a_terminal_names_each_task_and_keeps_results_on_out():
    err, out = io.StringIO(), io.StringIO()
    with TaskProgress(3, "cases", stream=err, out=out) as tasks:
        for name in ("a", "b", "c"):
            tasks.start(name)
            tasks.write(f"{name} done")
            tasks.done()
    assert err.getvalue().splitlines() == ["[1/3] a", "[2/3] b", "[3/3] c"]
    assert out.getvalue().splitlines() == ["a done", "b done", "c done"]


def test_task_progress_disabled_still_prints_results():
    err, out = io.StringIO(), io.StringIO()
    with TaskProgress(1, "cases", enabled=False, stream=err, out=out) as tasks:
        tasks.start("a")
        tasks.write("a done")
        tasks.done()
    assert err.getvalue() == "" and out.getvalue() == "a done\n"
