"""Pictures of predictive uncertainty (needs the optional ``plots`` extra: matplotlib).

Every function draws on a fresh ``matplotlib.figure.Figure`` with the Agg
canvas, never through ``pyplot``: no global backend is selected and no window
opens, so the functions work headless, in tests and in notebooks (where the
returned figure displays itself). Pass ``path`` to also save a PNG.

* :func:`regression_band` -- training data, predictive mean and +/- k std bands;
* :func:`forecast_band` -- the same over time for a forecast, with the observed values;
* :func:`reliability_diagram` -- accuracy against confidence per bin, with
  the rows per bin (from :func:`fblitz.metrics.expected_calibration_error`);
* :func:`coverage_plot` -- observed against nominal interval coverage
  (from :func:`fblitz.metrics.calibration_curve`).
"""

from __future__ import annotations

import os

import torch

from fblitz import _checks
from fblitz.errors import FblitzTypeError, FblitzValueError
from fblitz.metrics import CalibrationCurve, ReliabilityBins


def _figure(size=(6.0, 4.0), height_ratios: tuple[float, ...] | None = None):
    """A fresh Agg figure and its axes: one, or a column of ``len(height_ratios)`` sharing the x axis."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("fblitz.plots needs matplotlib: pip install 'fblitz[plots]'") from error
    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    if height_ratios is None:
        return figure, figure.add_subplot()
    return figure, figure.subplots(len(height_ratios), 1, sharex=True, gridspec_kw={"height_ratios": height_ratios})


def _finish(figure, axes, title: str | None, path: str | os.PathLike | None, outside: bool = False):
    if outside:  # right of the axes, for plots whose data fill the whole frame
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    else:
        axes.legend(loc="upper left", fontsize="small")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    if path is not None:
        figure.savefig(os.fspath(path), format="png")
    return figure


def _unit_square(axes, xlabel: str, ylabel: str) -> None:
    """Both axes on [0, 1] with the diagonal (perfect calibration) dashed."""
    axes.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)


def _vector(name: str, value: torch.Tensor, length: int | None = None) -> torch.Tensor:
    _checks.tensor(name, value, floating=True, finite=True)
    flat = value.detach().reshape(-1).double().cpu()
    if value.dim() > 2 or (value.dim() == 2 and value.shape[1] != 1):
        raise FblitzValueError(f"{name} must have shape (N,) or (N, 1), got {tuple(value.shape)}")
    if length is not None and flat.numel() != length:
        raise FblitzValueError(f"{name} must hold {length} values like the grid, got {flat.numel()}")
    return flat.numpy()


def _bands(axes, x_grid, mean, std, multipliers) -> object:
    """Draw ``mean +/- k * std`` for each k (widest lightest) and the mean; returns the checked grid."""
    grid = _vector("x_grid", x_grid)
    mean, std = _vector("mean", mean, len(grid)), _vector("std", std, len(grid))
    if (std < 0).any():
        raise FblitzValueError(f"std must be >= 0 everywhere, got a minimum of {std.min()}")
    if not isinstance(multipliers, (tuple, list)):
        raise FblitzTypeError(f"multipliers must be a tuple of positive numbers, got {multipliers!r}")
    multipliers = [_checks.positive(f"multipliers[{i}]", k) for i, k in enumerate(multipliers)]
    for k in sorted(multipliers, reverse=True):
        alpha = 0.15 + 0.25 / k
        axes.fill_between(grid, mean - k * std, mean + k * std, color="C0", alpha=alpha, lw=0, label=f"±{k:g} std")
    axes.plot(grid, mean, color="C0", lw=1.5, label="predictive mean")
    return grid


def regression_band(
    x_grid: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    x_train: torch.Tensor | None = None,
    y_train: torch.Tensor | None = None,
    truth: torch.Tensor | None = None,
    multipliers: tuple[float, ...] = (1.0, 2.0),
    title: str | None = None,
    path: str | os.PathLike | None = None,
):
    """Predictive mean with shaded ``mean +/- k * std`` bands over a 1-D grid.

    Args:
        x_grid: (G,) or (G, 1) grid of inputs, increasing.
        mean, std: (G,) or (G, 1) predictive mean and standard deviation (>= 0) on the grid.
        x_train, y_train: optional training points, shown as dots.
        truth: optional (G,) noise-free function on the grid, dashed.
        multipliers: the ``k`` of each band (each > 0), widest drawn lightest.
        title: optional axes title.
        path: if given, save the figure there as a PNG.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:
        >>> import torch
        >>> x = torch.linspace(-1, 1, 50)
        >>> figure = regression_band(x, x.sin(), 0.1 + x.abs(), title="demo")
        >>> len(figure.axes[0].collections)  # two bands
        2
    """
    figure, axes = _figure()
    grid = _bands(axes, x_grid, mean, std, multipliers)
    if truth is not None:
        axes.plot(grid, _vector("truth", truth, len(grid)), "k--", lw=1, label="noise-free function")
    if x_train is not None or y_train is not None:
        if x_train is None or y_train is None:
            raise FblitzValueError("x_train and y_train must be given together")
        xs = _vector("x_train", x_train)
        axes.plot(xs, _vector("y_train", y_train, len(xs)), ".", color="C3", ms=3, label="training data")
    axes.set_xlabel("x")
    axes.set_ylabel("y")
    return _finish(figure, axes, title, path)


def forecast_band(
    time: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    actual: torch.Tensor | None = None,
    history_time: torch.Tensor | None = None,
    history: torch.Tensor | None = None,
    multipliers: tuple[float, ...] = (1.0, 2.0),
    title: str | None = None,
    path: str | os.PathLike | None = None,
):
    """A forecast over time: the predictive mean with ``mean +/- k * std`` bands, the values that came, the past.

    Args:
        time: (T,) or (T, 1) increasing times of the forecasts.
        mean, std: (T,) or (T, 1) predictive mean and standard deviation (>= 0).
        actual: optional (T,) values observed at those times, drawn as dots.
        history_time, history: optional past of the series (e.g. the end of the
            training part), drawn as a grey line; given together.
        multipliers: the ``k`` of each band (each > 0), widest drawn lightest.
        title: optional axes title.
        path: if given, save the figure there as a PNG.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:
        >>> import torch
        >>> t = torch.arange(20.0)
        >>> figure = forecast_band(t, t.sin(), torch.full((20,), 0.2), actual=t.sin() + 0.1)
        >>> len(figure.axes[0].collections), len(figure.axes[0].lines)  # two bands; mean and actual values
        (2, 2)
    """
    figure, axes = _figure((9.0, 4.0))
    grid = _bands(axes, time, mean, std, multipliers)
    if actual is not None:
        axes.plot(grid, _vector("actual", actual, len(grid)), ".", color="k", ms=3, label="observed")
    if history_time is not None or history is not None:
        if history_time is None or history is None:
            raise FblitzValueError("history_time and history must be given together")
        past = _vector("history_time", history_time)
        axes.plot(past, _vector("history", history, len(past)), color="0.5", lw=1, label="past (training part)")
    axes.set_xlabel("time step")
    axes.set_ylabel("value")
    return _finish(figure, axes, title, path, outside=True)


def reliability_diagram(bins: ReliabilityBins, *, title: str | None = None, path: str | os.PathLike | None = None):
    """Accuracy against confidence per bin, with how many rows each bin holds.

    The upper panel has a bar over each non-empty bin (its accuracy), a dot at
    its mean confidence and the bin's row count above the bar; the lower panel
    shows the counts as a histogram, so a bin of a handful of rows is seen as
    such and not read as strongly as a full one.

    Args:
        bins: the ``bins`` of :func:`fblitz.metrics.expected_calibration_error`.
        title: optional axes title (e.g. the ECE).
        path: if given, save the figure there as a PNG.

    Returns:
        The ``matplotlib.figure.Figure``: ``axes[0]`` the diagram, ``axes[1]`` the counts.

    Example:
        >>> import torch
        >>> from fblitz.metrics import expected_calibration_error
        >>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
        >>> result = expected_calibration_error(probs, torch.tensor([0, 1, 1, 1]), n_bins=5)
        >>> figure = reliability_diagram(result.bins, title=f"ECE {result.ece:.3f}")
        >>> [float(v) for v in figure.axes[0].get_xlim()], [t.get_text() for t in figure.axes[0].texts]
        ([0.0, 1.0], ['2', '2'])
    """
    if not isinstance(bins, ReliabilityBins):
        raise FblitzTypeError(f"bins must be the ReliabilityBins of expected_calibration_error, got {bins!r}")
    filled = bins.count > 0
    lower, upper, confidence, accuracy = (
        t[filled].double().cpu().numpy() for t in (bins.lower, bins.upper, bins.confidence, bins.accuracy)
    )
    counts = bins.count[filled].cpu().tolist()
    figure, (axes, below) = _figure((5.0, 6.0), height_ratios=(3, 1))
    axes.bar(lower, accuracy, width=upper - lower, align="edge", color="C0", edgecolor="k", lw=0.5, alpha=0.6,
             label="accuracy of the bin")  # fmt: skip
    axes.plot(confidence, accuracy, "o", color="C1", ms=4, label="(mean confidence, accuracy)")
    for left, right, height, count in zip(lower, upper, accuracy, counts):
        axes.text((left + right) / 2, height + 0.015, str(count), ha="center", va="bottom", fontsize=7)
    _unit_square(axes, "", "accuracy")
    axes.set_ylim(0.0, 1.1)  # room for the counts above bars of accuracy 1
    below.bar(lower, counts, width=upper - lower, align="edge", color="0.6", edgecolor="k", lw=0.5)
    below.set_ylabel("rows")
    below.set_xlabel("confidence (mean of the top probability)")
    return _finish(figure, axes, title, path)


def coverage_plot(
    curves: CalibrationCurve | dict[str, CalibrationCurve],
    *,
    title: str | None = None,
    path: str | os.PathLike | None = None,
):
    """Observed coverage of central predictive intervals against their nominal level.

    Args:
        curves: a :class:`~fblitz.metrics.CalibrationCurve`, or a dict of labelled curves.
        title: optional axes title.
        path: if given, save the figure there as a PNG.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:
        >>> import torch
        >>> from fblitz.metrics import calibration_curve
        >>> y = torch.linspace(-2, 2, 40)
        >>> curve = calibration_curve(y, mean=torch.zeros(40), std=torch.ones(40))
        >>> len(coverage_plot({"N(0, 1)": curve}).axes[0].lines)  # the curve and the diagonal
        2
    """
    if isinstance(curves, CalibrationCurve):
        curves = {"observed": curves}
    if not isinstance(curves, dict) or not all(isinstance(c, CalibrationCurve) for c in curves.values()):
        raise FblitzTypeError(f"curves must be a CalibrationCurve or a non-empty dict of them, got {curves!r}")
    if not curves:
        raise FblitzValueError("curves must be a CalibrationCurve or a non-empty dict of them, got an empty dict")
    figure, axes = _figure((5.0, 5.0))
    for label, curve in curves.items():
        nominal, observed = (t.detach().double().cpu().numpy() for t in (curve.nominal, curve.observed))
        axes.plot(nominal, observed, "o-", ms=3, label=label)
    _unit_square(axes, "nominal coverage of the central interval", "observed coverage")
    return _finish(figure, axes, title, path)
