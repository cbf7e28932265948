"""The TensorFlow-free runtime: load a ``.tflite`` model and run it on any backend.

Never imports TensorFlow unless the ``tensorflow`` backend is chosen, nor rich; Pillow
is imported only when an image is handled.
"""

from edgeq.runtime.backend import Backend, available_backends, get_backend
from edgeq.runtime.inspect import inspect_model
from edgeq.runtime.model import Model, TensorSpec, top
from edgeq.runtime.preprocess import image_to_array, load_image
from edgeq.runtime.profile import profile
from edgeq.runtime.report import CompareResult, ProfileReport, compare, load_report

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
