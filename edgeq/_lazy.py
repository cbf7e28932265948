"""Lazy imports of heavy optional dependencies, with an error that says what to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgeq.errors import DependencyMissing

_CONVERT_HINT = 'pip install "edgeq[convert]" (TensorFlow + Keras; conversion runs on a workstation, not on the Pi)'


def import_optional(module: str, hint: str) -> ModuleType:
    """Import ``module`` or raise :class:`DependencyMissing` naming ``hint``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyMissing(f"{module} is not installed, and this needs it; install it with: {hint}") from exc


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
