"""The command-line options every example shares, defined once.

Each example calls :func:`example_parser` with its own defaults and adds only
the options that are specific to it. Every option checks its value when the
command line is read (:mod:`fblitz._argtypes`): an invalid one is a usage
error naming the option (exit status 2), before any data is loaded.
"""

from __future__ import annotations

import argparse
import sys

from fblitz._argtypes import integer, output_file, real, seed


def example_parser(
    doc: str,
    *,
    epochs: int,
    samples: int,
    eval_samples: int,
    batch_size: int,
    lr: float,
    compile_default: bool = False,
    threads_help: str = "torch intra-op threads",
    eval_samples_help: str = "weight draws for the predictive",
    plot: str | None = None,
) -> argparse.ArgumentParser:
    """A parser with the shared options: training length, sampling, optimiser, seed, threads, output.

    Args:
        doc: the example module's docstring; its first paragraph becomes the description.
        epochs, samples, eval_samples, batch_size, lr: the example's defaults.
        compile_default: default of ``--compile/--no-compile``.
        threads_help, eval_samples_help: help texts where an example says more.
        plot: if given, add ``--plot PATH`` with this help text (what the PNG shows).

    Returns:
        An ``argparse.ArgumentParser``; add example-specific options to it.

    Example:
        >>> parser = example_parser("A demo.", epochs=3, samples=1, eval_samples=10, batch_size=8, lr=0.01)
        >>> args = parser.parse_args(["--epochs", "5", "--json"])
        >>> (args.epochs, args.samples, args.json, args.compile, args.quiet)
        (5, 1, True, False, False)
    """
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--epochs", type=integer(1), default=epochs, help="passes over the training set")
    parser.add_argument(
        "--samples", type=integer(1), default=samples, help="weight samples per training step (sample_nbr)"
    )
    parser.add_argument(
        "--eval-samples",
        type=integer(2, why="a spread over weight draws needs two"),
        default=eval_samples,
        help=eval_samples_help,
    )
    parser.add_argument("--batch-size", type=integer(1), default=batch_size, help="rows per training step")
    parser.add_argument("--lr", type=real(0.0, open_minimum=True), default=lr, help="Adam learning rate")
    parser.add_argument("--seed", type=seed, default=0, help="seed of the key for data, init, shuffling and noise")
    parser.add_argument("--threads", type=integer(1), default=1, help=threads_help)
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=compile_default,
        help="compile the training step with torch.compile",
    )
    parser.add_argument("--json", action="store_true", help="print the final metrics as one JSON object")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress display (the training bar or its periodic lines on stderr)"
    )
    if plot is not None:
        parser.add_argument("--plot", metavar="PATH", type=output_file, help=f"save a PNG of {plot} (needs matplotlib)")
    return parser


def announce(args: argparse.Namespace, line: str) -> None:
    """Print ``line`` on stderr at once, unless ``--quiet``: what the program starts doing (progress, not results).

    Example:
        >>> import argparse, contextlib, io
        >>> err = io.StringIO()
        >>> with contextlib.redirect_stderr(err):
        ...     announce(argparse.Namespace(quiet=False), "training")
        ...     announce(argparse.Namespace(quiet=True), "not shown")
        >>> err.getvalue().splitlines()
        ['training']
    """
    if not args.quiet:
        print(line, file=sys.stderr, flush=True)
