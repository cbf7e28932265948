"""The ``edgeq`` command line: parses arguments, calls the public API, renders results.

Each subcommand lives in ``edgeq/_commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args, ui) -> int``. This module only dispatches and
maps errors to exit statuses:

* an :class:`~edgeq.errors.EdgeqError` prints ``Name: message`` on one line and exits with its
  ``exit_code`` (2 for bad input, 1 for a failed check);
* Ctrl-C exits 130 and SIGTERM 143, after the command's own clean-up has run;
* anything else is a bug: one line, exit 1, and the traceback with ``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from typing import Sequence

from edgeq._version import __version__
from edgeq.errors import EdgeqError

#: subcommand modules under edgeq._commands, in the order ``--help`` lists them
COMMANDS = ("demo", "convert", "qat", "debug", "inspect", "run", "camera", "eval", "profile", "compare", "tune", "devices", "doctor")


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that ``finally`` blocks clean up as for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeq",
        description="Convert Keras models to int8 TFLite, run and profile them on edge devices.",
        epilog="Run 'edgeq COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"edgeq {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"edgeq._commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgeq`` console script and ``python -m edgeq``."""
    from edgeq._ui import UI

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    ui = UI(json_mode=bool(getattr(args, "json", False)))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args, ui) or 0)
    except EdgeqError as exc:
        ui.error(f"{type(exc).__name__}: {exc}")
        if args.debug:
            ui.traceback()
        return exc.exit_code
    except KeyboardInterrupt:
        ui.error("Interrupted: stopped by Ctrl-C; no partial output was left behind")
        return 130
    except Terminated:
        ui.error("Terminated: stopped by SIGTERM; no partial output was left behind")
        return 143
    except Exception as exc:  # noqa: BLE001 - the last line of defence of the CLI
        ui.error(f"Unexpected error: {type(exc).__name__}: {exc} (this is a bug; rerun with --debug for the traceback)")
        if args.debug:
            ui.traceback()
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
