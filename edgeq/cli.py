"""The ``edgeq`` command line: parses arguments, calls the public API, renders results.

Each subcommand lives in ``edgeq/_commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args, ui) -> int``. This module only dispatches and
maps errors to exit statuses:

* an :class:`~edgeq.errors.EdgeqError` prints ``Name: message`` on one line and exits with its
  ``exit_code`` (2 for bad input, 1 for a failed check);
* Ctrl-C exits 130 and SIGTERM 143, after the command's own clean-up has run;
* anything else is a bug: one line, exit 1, and the traceback with ``--debug``.

Parsing is forgiving in the ways users expect: options and positionals may be intermixed
(``edgeq run M --top 3 photo.jpg``), ``--debug`` may stand anywhere, and an option's value may start
with ``-`` (``--normalize -1,1``). A command module may define ``parse(parser, tokens)`` to parse its
own tokens (``camera`` passes most of them on to its app).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import warnings
from typing import Sequence
import threading
from typing import Any

from edgeq._version import __version__
from edgeq.errors import EdgeqError

#: subcommand modules under edgeq._commands, in the order ``--help`` lists them
COMMANDS = ("demo", "convert", "qat", "debug", "inspect", "run", "camera", "eval", "profile", "compare", "tune", "devices", "doctor")


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that ``finally`` blocks clean up as for Ctrl-C."""


def _on_sigterm(signum: int, frame: Any) -> None:
    if _in_finalizer(frame):
        # raised inside __del__ (e.g. LiteRT's Interpreter.__del__ freeing the native interpreter) the exception
        # would be printed as "Exception ignored" and the command would go on: deliver the signal again instead
        threading.Timer(0.05, os.kill, (os.getpid(), signum)).start()
        return
    raise Terminated()


def _in_finalizer(frame: Any) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


#: argument names that hold the command's input files (an output may never replace one of them)
_INPUT_ARGS = ("model", "data", "labels", "input", "inputs", "reports", "eval_data", "verify_data", "source", "merge")


def _input_paths(args: argparse.Namespace) -> list[str]:
    """The command's input files, as given (lists flattened)."""
    paths: list[str] = []
    for name in _INPUT_ARGS:
        value = getattr(args, name, None)
        paths.extend(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]) if v)
    return paths


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` one command (its module alone is imported: a faster start)."""
    parser = argparse.ArgumentParser(
        prog="edgeq",
        description="Convert Keras models to int8 TFLite, run and profile them on edge devices.",
        epilog="Run 'edgeq COMMAND --help' for a command's options and examples.",
    )
    parser.add_argument("--version", action="version", version=f"edgeq {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"edgeq._commands.{name}").register(sub)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse a command line (``sys.argv[1:]`` by default); exits 2 on a usage error, as argparse does."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    end = tokens.index("--") if "--" in tokens else len(tokens)
    debug = "--debug" in tokens[:end]
    tokens = [t for t in tokens[:end] if t != "--debug"] + tokens[end:]
    if not tokens or tokens[0] not in COMMANDS:
        args = build_parser().parse_args(tokens)  # --help, --version, a misspelt command
        args.debug = debug
        return args
    name = tokens[0]
    parser = build_parser(only=name)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    custom = getattr(importlib.import_module(f"edgeq._commands.{name}"), "parse", None)
    rest = join_dash_values(sub, tokens[1:])
    args = custom(sub, rest) if custom else _parse_intermixed(sub, rest)
    args.command, args.debug = name, debug
    return args


def _parse_intermixed(parser: argparse.ArgumentParser, tokens: list[str]) -> argparse.Namespace:
    """``parser.parse_intermixed_args(tokens)``, in one plain pass when the positionals come in one run.

    argparse's intermixed mode formats the whole usage text and parses twice (~1 ms of a start on x86, several
    times that on a Pi); it is needed only when positionals follow options (``run M --top 3 photo.jpg``), which
    leaves tokens over after a plain pass. Without leftovers both give the same namespace.
    """
    args, rest = parser.parse_known_args(tokens)
    return parser.parse_intermixed_args(tokens) if rest else args


def join_dash_values(parser: argparse.ArgumentParser, tokens: list[str]) -> list[str]:
    """Write ``--opt -1,1`` as ``--opt=-1,1`` for options taking one value, so argparse takes it as the value.

    argparse reads any token starting with ``-`` as an option unless it is a plain negative number; a value
    is joined only when it is not itself one of the parser's options (``--out --force`` still fails).
    """
    takes_value = {opt for a in parser._actions if a.option_strings and a.nargs is None
                   and not isinstance(a, (argparse._StoreConstAction, argparse._HelpAction, argparse._VersionAction))
                   for opt in a.option_strings}
    known = {opt for a in parser._actions for opt in a.option_strings}
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "--":
            out += tokens[i:]
            break
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if token in takes_value and nxt and nxt.startswith("-") and nxt != "-" and nxt.split("=")[0] not in known:
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edgeq`` console script and ``python -m edgeq``."""
    from edgeq._render.ui import UI

    args = parse_args(argv)
    # Keras warns when edgeq feeds a one-input model a list; the feeding is deliberate and the output right
    warnings.filterwarnings("ignore", message=r"The structure of `inputs` doesn't match the expected structure")
    if not getattr(args, "func", None):
        build_parser().print_help()
        return 2
    ui = UI(json_mode=bool(getattr(args, "json", False)), json_out=getattr(args, "json_out", None),
            force=bool(getattr(args, "force", False)))
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if ui.json_out:
            from edgeq._io import check_output_path

            # before any work (a typo costs a second, not a conversion), and never onto one of the command's inputs
            check_output_path(ui.json_out, ui.force, _input_paths(args))
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
