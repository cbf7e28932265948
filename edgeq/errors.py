"""The errors edgeq raises, and the exit status each one maps to in the CLI.

Hierarchy::

    EdgeqError                 base class; never raised itself
    ├── UsageError             a flag or argument that cannot work            (exit 2)
    ├── DependencyMissing      an optional extra is not installed             (exit 2)
    ├── ModelError             missing, unreadable or invalid model file      (exit 2)
    ├── DataError              empty, undecodable or mismatched input data    (exit 2)
    ├── ConversionError        the converter cannot quantize this model       (exit 2)
    ├── InferenceError         the interpreter failed on a valid model        (exit 1)
    ├── DeviceError            a delegate or device facility failed           (exit 2)
    └── CheckFailed            a check the user asked for did not pass        (exit 1)

Every message is one line: what was expected, what was received, what to do.
Errors coming from TensorFlow or the interpreter are wrapped in the most specific
class with the original chained (``raise ModelError(...) from exc``).
"""

from __future__ import annotations

__all__ = [
    "EdgeqError",
    "UsageError",
    "DependencyMissing",
    "ModelError",
    "DataError",
    "ConversionError",
    "InferenceError",
    "DeviceError",
    "CheckFailed",
]


class EdgeqError(Exception):
    """Base class of every error edgeq raises on purpose."""

    exit_code: int = 2


class UsageError(EdgeqError):
    """An option or argument is invalid (unknown mode, ``--threads 0``, existing output without ``--force``)."""


class DependencyMissing(EdgeqError):
    """An optional dependency is not installed; the message names the ``pip install`` to run."""


class ModelError(EdgeqError):
    """The model file is missing, unreadable, not a model, or structurally invalid."""


class DataError(EdgeqError):
    """Input or calibration data is empty, undecodable, non-finite or of the wrong shape."""


class ConversionError(EdgeqError):
    """The converter cannot produce the requested model (e.g. an op with no int8 kernel)."""


class InferenceError(EdgeqError):
    """The interpreter failed while running a model that passed the structural checks."""

    exit_code = 1


class DeviceError(EdgeqError):
    """A delegate could not be loaded or a device facility is unusable."""


class CheckFailed(EdgeqError):
    """A check the user asked for failed (e.g. ``--min-agreement``); the output is kept."""

    exit_code = 1
