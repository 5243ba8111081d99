"""The `clspec` command line.

Each job lives in its own module, which exposes ``add_parser(subparsers)``; the
parser it adds sets ``func`` to a callable taking the parsed arguments and
returning an exit status. Bad input anywhere in a job raises ``ValueError`` (or
``OSError``, e.g. a missing or unwritable path) with a message that names it; ``main`` prints it
as one line, prefixed with the full command (``clspec cifar pretrain: error: ...``), and exits
with status 2. A run that fails on the way is one line too, exit status 1: the inputs were fine,
the outputs written before are kept as they were. That is a full disk or an I/O error anywhere,
and any ``ValueError`` / ``OSError`` raised after the job marked its run started
(:func:`experiments.common.runs.mark_started`: the training loops, once their inputs are checked).
Numeric options use the typed parsers of :mod:`experiments.common.argtypes`.
Set ``CLSPEC_DEBUG=1`` to see the traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from experiments.common import runs

# Modules that contribute a sub-command, in the order `clspec --help` lists them.
SUBCOMMANDS = (
    "experiments.ledger.verify",
    "experiments.cifar.cli",
    "experiments.bench.simclr",
    "experiments.analysis.spectrum",
    "experiments.cifar.data.cache_command",
    "experiments.analysis.jacobian",
    "experiments.analysis.jacobian_fig2a",
    "experiments.analysis.trend",
)

# OSErrors of a run that failed on the way (exit 1); every other OSError is a bad path (exit 2).
RUN_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line and exits 2 (its default), without the usage dump."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_known_args(self, args=None, namespace=None):
        ns, rest = super().parse_known_args(args, namespace)
        if not getattr(ns, "prog", None):  # the innermost sub-command sets it first
            ns.prog = self.prog
        return ns, rest


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="clspec",
        description=(
            "Check, by computation, why contrastive learning makes networks robust to "
            "noisy labels (Xue, Whitecross and Mirzasoleiman, ICML 2022). "
            "`clspec verify` runs every theory check and regenerates paper_checks.md."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a bad option (argparse printed its one line)
        return int(stop.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    prog = getattr(args, "prog", None) or f"clspec {args.command}"
    started = runs.runs_started()
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:  # bad input (a value, a missing or unwritable path), or a failed run
        if os.environ.get("CLSPEC_DEBUG"):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"{prog}: error: {message}", file=sys.stderr)
        mid_run = runs.runs_started() > started or (isinstance(err, OSError) and err.errno in RUN_FAILURES)
        return 1 if mid_run else 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def console() -> None:
    """The ``clspec`` command: :func:`main`, then out without tearing the interpreter down.

    Every output of a command is written and closed before :func:`main` returns (atomic moves, no
    background writer), so what the teardown would do is free JAX's compiled programs and thread
    pools one by one: about a second after a ``clspec verify`` with hundreds of compilations.
    Only standard output and error are flushed first. An exception out of :func:`main` is raised
    as usual (``CLSPEC_DEBUG``).
    """
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`clspec ... | head`), or a closed stream
            pass
    os._exit(status)


if __name__ == "__main__":
    console()
