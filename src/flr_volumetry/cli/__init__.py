"""The ``flr-volumetry`` command: argument parsing and messages only.

Each subcommand lives in its own module with ``add_parser(subparsers)``;
the work is done by the same functions the Python API exposes. Any
:class:`~flr_volumetry.errors.InputError` becomes one line on stderr and
exit code 2 (usage) or 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import warnings

from ..errors import InputError

# One module per subcommand, in the order `--help` lists them.
SUBCOMMANDS = ("_measure", "_hypertrophy", "_batch", "_segment", "_phantom")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line plus the usage, exit 2, as argparse does, but never a traceback.
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class _StoreOnce(argparse._StoreAction):
    """An option of one value given twice is a usage error: argparse keeps the last one
    silently (a second --keep-point had chosen the remnant's side, a second --resection
    the resection, exit 0). A parser is built for each run, so the flag is per run."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(self, "_given", False):
            parser.error(f"argument {option_string}: given twice; give it once.")
        self._given = True
        super().__call__(parser, namespace, values, option_string)


def build_parser():
    parser = _Parser(
        prog="flr-volumetry",
        description="Future liver remnant volumetry from CT and MRI.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    for command in sub.choices.values():
        # Also accepted after the subcommand, where the error messages' advice puts it.
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks on errors")
        command.set_defaults(_parser=command)
        for action in command._actions:
            if type(action) is argparse._StoreAction and action.option_strings:
                action.__class__ = _StoreOnce
    return parser


def _terminate_as_interrupt(signum, frame):
    # SIGTERM (a scheduler or `kill`) stops a run as Ctrl-C does: workers stopped, one line.
    raise KeyboardInterrupt


def main(argv=None):
    # Only where SIGTERM has its default action: a program embedding main() that handles
    # SIGTERM itself (in Python or in C) keeps its handler.
    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
    if ours:
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return _main(argv)
    finally:
        if ours:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _main(argv):
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # Said by the subcommand, with its usage: the top-level usage lists no option of it.
        args._parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s")
    with warnings.catch_warnings(), _pydicom_quiet(not args.debug):
        return _run(args)


@contextlib.contextmanager
def _pydicom_quiet(quiet):
    """pydicom says each header value of old syntax (a UID with a leading zero, as old
    exports write) as a log line and a warning, per file read: tens of lines around a
    successful run, about values that are read as they are. Kept for --debug."""
    if not quiet:
        yield
        return
    log = logging.getLogger("pydicom")
    level = log.level
    log.setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"pydicom(\.|$)")
    try:
        yield
    finally:
        log.setLevel(level)


def _run(args):
    try:
        return int(args.func(args) or EXIT_OK)
    except InputError as exc:
        if args.debug:
            raise
        print(f"flr-volumetry {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE if getattr(exc, "usage", False) else EXIT_FAILED
    except BrokenPipeError:
        # Output piped into `head` and closed early: nothing went wrong on our side.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("flr-volumetry: interrupted.", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"flr-volumetry {args.command}: error: out of memory.", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if args.debug:
            raise
        print(
            f"flr-volumetry {args.command}: error: unexpected failure "
            f"({type(exc).__name__}: {exc}); run again with --debug and report it.",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
