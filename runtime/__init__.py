"""The TensorFlow-free runtime: load a ``.tflite`` model and run it on any backend.

Never imports TensorFlow unless the ``tensorflow`` backend is chosen, nor rich; Pillow
is imported only when an image is handled. Only :class:`Model` is imported up front; the other names load on
first use.
"""

from __future__ import annotations

from edgeq._lazy import exports as _exports
from edgeq.runtime.model import Model, TensorSpec, top

#: names resolved on first use (profiling, reports and inspection are not on the path of a run)
_LAZY: dict[str, str] = {
    "inspect_model": "edgeq.runtime.inspect",
    "profile": "edgeq.runtime.profile",
    "ProfileReport": "edgeq.runtime.report",
    "compare": "edgeq.runtime.report",
    "CompareResult": "edgeq.runtime.report",
    "load_report": "edgeq.runtime.report",
    "Backend": "edgeq.runtime.backend",
    "get_backend": "edgeq.runtime.backend",
    "available_backends": "edgeq.runtime.backend",
    "image_to_array": "edgeq.runtime.preprocess",
    "load_image": "edgeq.runtime.preprocess",
}

__all__ = [
    # models
    "Model",
    "TensorSpec",
    "load",
    "top",
    "inspect_model",
    # profiling
    "profile",
    "ProfileReport",
    "compare",
    "CompareResult",
    "load_report",
    # backends
    "Backend",
    "get_backend",
    "available_backends",
    # preprocessing
    "image_to_array",
    "load_image",
]


def load(path, **kwargs) -> Model:  # type: ignore[no-untyped-def]
    """Load a ``.tflite`` model: the same as ``Model(path, **kwargs)``."""
    return Model(path, **kwargs)


__getattr__, __dir__ = _exports(__name__, _LAZY, __all__)
