"""The CLI's only Console: results to stdout, status and errors to stderr."""

from __future__ import annotations

import contextlib
import json
import math
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterator

from edgeq._progress import reporting
from edgeq._render.text import safe_str, safe_text

if TYPE_CHECKING:  # rich loads on first output (~30 ms of a start): a --json run that draws nothing never needs it
    from rich.console import Console
    from rich.progress import Progress


class _RichReporter:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def start(self, description: str, total: int | None) -> Callable[[int], None]:
        task = self.progress.add_task(description, total=total)
        self.tasks[description] = task
        return lambda n=1: self.progress.advance(task, n)

    def stop(self, description: str) -> None:
        task = self.tasks.pop(description, None)
        if task is not None:
            self.progress.update(task, completed=self.progress.tasks[task].total or 1, total=self.progress.tasks[task].total or 1)


class UI:
    """Rendering for one CLI invocation; ``json_mode`` keeps stdout machine-readable."""

    def __init__(self, json_mode: bool = False, json_out: str | None = None, force: bool = False) -> None:
        self.json_mode = json_mode
        self.json_out, self.force = json_out, force

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(soft_wrap=False)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True)

    def print(self, *renderables: Any, soft_wrap: bool = False) -> None:
        """Print results on stdout (not in ``--json`` mode); ``soft_wrap`` leaves long lines whole (commands to paste)."""
        if not self.json_mode:
            self.out.print(*renderables, soft_wrap=soft_wrap)

    @property
    def wants_json(self) -> bool:
        """Whether ``--json`` or ``--json-out`` asked for the result as JSON."""
        return self.json_mode or bool(self.json_out)

    def json(self, obj: Any) -> None:
        """Print ``obj`` as JSON with ``--json``; write it (atomically) to the ``--json-out`` file if given."""
        if self.wants_json:
            self.json_text(strict_json(obj, indent=2) + "\n")

    def json_text(self, text: str | bytes, what: str = "JSON", detail: str = "") -> None:
        """Print ready JSON text (e.g. JSON lines) on stdout with ``--json``, and/or write it to ``--json-out``."""
        if isinstance(text, bytes):
            text = text.decode()
        if self.json_out:
            from edgeq._io import atomic_write

            atomic_write(self.json_out, text.encode(), force=self.force)
            self.status(f"{what} written to {self.json_out}{detail}")
        if self.json_mode:
            sys.stdout.write(text)
            sys.stdout.flush()

    def status(self, message: str) -> None:
        if self.json_mode:  # for machines: plain (safe) text, without loading rich
            sys.stderr.write(safe_str(message, lines=True) + "\n")
            return
        self.err.print(safe_text(message, style="dim"), highlight=False, soft_wrap=True)

    def warn(self, message: str) -> None:
        from rich.text import Text

        self.err.print(Text.assemble(("warning:", "yellow"), " ", safe_str(message)), highlight=False, soft_wrap=True)

    def error(self, message: str) -> None:
        self.err.print(safe_str(message), style="red", markup=False, highlight=False, soft_wrap=True)

    def traceback(self) -> None:
        self.err.print_exception()

    @contextlib.contextmanager
    def progress(self) -> Iterator[None]:
        """Show a progress bar on stderr for the library steps run inside the block (on a terminal)."""
        if not sys.stderr.isatty():  # rich would draw nothing there: keep it unloaded
            yield
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.err, transient=True, disable=not self.err.is_terminal,  # bars vanish when done: no stray lines
        )
        with progress, reporting(_RichReporter(progress)):
            yield


def strict_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON of ``obj`` (dataclasses via ``to_dict``, numpy values): NaN and infinities become ``null``."""
    return json.dumps(_finite(json.loads(json.dumps(obj, default=_jsonable))), indent=indent, allow_nan=False)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
