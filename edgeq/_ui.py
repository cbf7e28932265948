"""The CLI's only Console: results to stdout, status and errors to stderr."""

from __future__ import annotations

import contextlib
import json
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Iterator

from edgeq._progress import reporting

if TYPE_CHECKING:  # rich loads on first output (~30 ms of a start): a --json run that prints no table never needs it
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

    def __init__(self, json_mode: bool = False) -> None:
        self.json_mode = json_mode

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        return Console(soft_wrap=False)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True)

    def print(self, *renderables: Any) -> None:
        if not self.json_mode:
            self.out.print(*renderables)

    def json(self, obj: Any) -> None:
        sys.stdout.write(json.dumps(obj, indent=2, default=_jsonable) + "\n")
        sys.stdout.flush()

    def status(self, message: str) -> None:
        if self.json_mode:  # for machines: plain text, without loading rich
            sys.stderr.write(message + "\n")
            return
        from rich.markup import escape

        self.err.print(escape(message), style="dim", highlight=False)

    def warn(self, message: str) -> None:
        from rich.markup import escape

        self.err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)

    def error(self, message: str) -> None:
        self.err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)

    def traceback(self) -> None:
        self.err.print_exception()

    @contextlib.contextmanager
    def progress(self) -> Iterator[None]:
        """Show a progress bar on stderr for the library steps run inside the block."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.err, transient=False, disable=not self.err.is_terminal,
        )
        with progress, reporting(_RichReporter(progress)):
            yield


def _jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
