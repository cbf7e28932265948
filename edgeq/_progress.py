"""Progress reporting that library code can use without printing.

Library functions wrap long loops in :func:`track`; by default it does nothing. The CLI
installs a reporter (a ``rich`` progress bar on stderr) with :func:`reporting`, so the
same code is silent under the API and shows a bar under the command line.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable, Iterable, Iterator, Protocol, TypeVar

T = TypeVar("T")


class Reporter(Protocol):
    def start(self, description: str, total: int | None) -> Callable[[int], None]:
        """Begin a task; return a function that advances it by N steps."""

    def stop(self, description: str) -> None:
        """End the task started under ``description``."""


_reporter: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar("edgeq_reporter", default=None)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Send the progress of everything run inside the block to ``reporter``."""
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


@contextlib.contextmanager
def step(description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
    """A task of ``total`` steps (``None``: unknown); yields ``advance(n=1)``."""
    reporter = _reporter.get()
    if reporter is None:
        yield lambda n=1: None
        return
    advance = reporter.start(description, total)
    try:
        yield advance
    finally:
        reporter.stop(description)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items``, advancing a progress task once per item."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with step(description, total) as advance:
        for item in items:
            yield item
            advance(1)
