"""Lazy imports of heavy optional dependencies, with an error that says what to install."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

from edgeq.errors import DependencyMissing

_CONVERT_HINT = 'pip install "edgeq[convert]" (TensorFlow + Keras; conversion runs on a workstation, not on the Pi)'


def exports(package: str, names: Mapping[str, str], public: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package whose names (``name -> defining module``) load on first use.

    The first lookup imports the defining module and stores the value in the package, so later ones are plain.
    """
    namespace = sys.modules[package].__dict__

    def getattr_(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = namespace[name] = getattr(importlib.import_module(module), name)
        return value

    def dir_() -> list[str]:
        return sorted(public)

    return getattr_, dir_


def import_optional(module: str, hint: str) -> ModuleType:
    """Import ``module`` or raise :class:`DependencyMissing` naming ``hint``.

    A module that is installed but fails to import (a broken install, a numpy it was not built for) is
    reported with its own error, on one line, rather than as "not installed".
    """
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - an extension module may raise anything while it loads
        _reraise_interruption(exc)
        if isinstance(exc, ImportError) and not _installed(module):
            raise DependencyMissing(f"{module} is not installed, and this needs it; install it with: {hint}") from exc
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        if len(reason) > 300:
            reason = reason[:297] + "..."
        raise DependencyMissing(f"{module} is installed but fails to import ({reason}); reinstall it with: {hint}") from exc


def _reraise_interruption(exc: BaseException) -> None:
    """Re-raise a Ctrl-C or SIGTERM that arrived while an extension module initialised.

    pybind11 turns any error of a module's init, a ``KeyboardInterrupt`` included, into ``ImportError:
    initialization failed`` (TensorFlow has such modules); the command must stop as interrupted, not report a
    broken install.
    """
    seen: set[int] = set()
    cause = exc.__cause__ or exc.__context__
    while cause is not None and id(cause) not in seen:
        if not isinstance(cause, Exception):
            raise cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__


def _installed(module: str) -> bool:
    """Whether the top-level package of ``module`` is on the path, without importing it."""
    top = module.partition(".")[0]
    if sys.modules.get(top, False) is None:  # blocked on purpose (tests set sys.modules[name] = None)
        return False
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def tensorflow() -> ModuleType:
    """TensorFlow, quietened; raises :class:`DependencyMissing` when the [convert] extra is absent."""
    import os
    import sys

    if sys.modules.get("tensorflow") is not None:
        return sys.modules["tensorflow"]
    from edgeq._native import quiet_native_output

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with quiet_native_output():
        return import_optional("tensorflow", _CONVERT_HINT)


def keras() -> ModuleType:
    """Keras 3; raises :class:`DependencyMissing` when the [convert] extra is absent."""
    tensorflow()
    return import_optional("keras", _CONVERT_HINT)
