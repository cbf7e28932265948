"""Choosing the TFLite interpreter: LiteRT, then tflite-runtime, then TensorFlow Lite.

TensorFlow is imported only when its backend is asked for by name or is the only one left.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from types import ModuleType
from typing import Any

from edgeq._frozen import Frozen
from edgeq.errors import DependencyMissing, UsageError

#: backend name -> (module holding ``Interpreter`` and ``load_delegate``, distribution for its version)
BACKENDS: dict[str, tuple[str, str]] = {
    "litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite-runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow.lite.python.interpreter", "tensorflow"),
}


class Backend(Frozen):
    """An importable interpreter backend."""

    _fields = ("name", "version", "module")
    name: str
    version: str
    module: ModuleType

    def __init__(self, name: str, version: str, module: ModuleType) -> None:
        self.__dict__.update(name=name, version=version, module=module)

    @property
    def Interpreter(self) -> Any:  # noqa: N802 - mirrors the backends' class name
        return self.module.Interpreter

    def load_delegate(self, library: str, options: dict[str, Any] | None = None) -> Any:
        _check_delegate_library(library)
        loader = getattr(self.module, "load_delegate", None) or getattr(self.module.experimental, "load_delegate")
        return loader(library, options or {})

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version}


def _check_delegate_library(library: str) -> None:
    """Open ``library`` and look for the external-delegate entry points before the backend does.

    The backends' ``Delegate.__init__`` fails half-way on a missing library or one that is not a
    delegate, and its ``__del__`` then fails again, printing "Exception ignored in … Delegate.__del__"
    with a traceback on stderr; checking first keeps the error to one line.

    Raises:
        OSError: the library cannot be loaded.
        ValueError: it lacks ``tflite_plugin_create_delegate``/``tflite_plugin_destroy_delegate``.
    """
    import ctypes

    lib = ctypes.CDLL(library)
    missing = [s for s in ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate") if not hasattr(lib, s)]
    if missing:
        raise ValueError(f"{library} is not a TFLite external delegate (it has no {', '.join(missing)})")


def _version(dist: str, module_name: str) -> str:
    """The backend's version: its package's ``__version__`` (cheap), else the distribution's metadata.

    ``importlib.metadata`` imports email, zipfile, csv and socket: tens of milliseconds of a cold start.
    """
    import sys

    version = getattr(sys.modules.get(module_name.split(".")[0]), "__version__", None)
    if isinstance(version, str) and version:
        return version
    from importlib import metadata

    for name in (dist, "tensorflow-cpu") if dist == "tensorflow" else (dist,):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


@lru_cache(maxsize=None)
def _load(name: str) -> Backend:
    module_name, dist = BACKENDS[name]
    if name == "tensorflow":
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    module = importlib.import_module(module_name)
    return Backend(name, _version(dist, module_name), module)


def get_backend(name: str | None = None) -> Backend:
    """Return the named backend, or the first importable one in the order of :data:`BACKENDS`.

    Raises:
        UsageError: ``name`` is not a known backend.
        DependencyMissing: the named backend, or every backend, fails to import.
    """
    if name is not None:
        if name not in BACKENDS:
            raise UsageError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
        try:
            return _load(name)
        except ImportError as exc:
            raise DependencyMissing(
                f"backend {name!r} cannot be imported ({exc}); install {BACKENDS[name][1]} or choose another --backend"
            ) from exc
    errors = []
    for candidate in BACKENDS:
        try:
            return _load(candidate)
        except ImportError as exc:
            errors.append(f"{candidate}: {exc}")
    raise DependencyMissing(
        "no TFLite interpreter is installed (" + "; ".join(errors) + "); install one with: pip install ai-edge-litert "
        "(64-bit OS) or pip install tflite-runtime 'numpy<2' (32-bit Raspberry Pi OS)"
    )


def available_backends() -> dict[str, str | None]:
    """Each known backend and its version, or ``None`` when it does not import (imports them all)."""
    out: dict[str, str | None] = {}
    for name in BACKENDS:
        try:
            out[name] = _load(name).version
        except ImportError:
            out[name] = None
    return out
