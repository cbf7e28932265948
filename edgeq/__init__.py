"""edgeq: convert Keras models to int8 TFLite, run them on edge devices, profile them.

The public surface is listed in ``__all__``. Names are resolved lazily so that
``import edgeq.runtime`` on a Raspberry Pi stays fast and never touches TensorFlow.
"""

from __future__ import annotations

from edgeq._lazy import exports as _exports
from edgeq._version import __version__

#: public name -> module defining it
_EXPORTS: dict[str, str] = {
    # conversion (needs the [convert] extra at call time)
    "convert": "edgeq.converters",
    "ConversionResult": "edgeq.converters",
    "qat": "edgeq.converters",
    "QatResult": "edgeq.converters",
    # runtime
    "load": "edgeq.runtime",
    "Model": "edgeq.runtime",
    # profiling (the function lives in edgeq.runtime.profile; naming the module keeps it from resolving to the module)
    "profile": "edgeq.runtime.profile",
    "compare": "edgeq.runtime.report",
    # accuracy (a Keras reference or the debugger need the [convert] extra at call time)
    "evaluate": "edgeq.runtime.evaluate",
    "EvalResult": "edgeq.runtime.evaluate",
    "debug": "edgeq.converters.debug",
    # embedded metadata
    "ModelMetadata": "edgeq.metadata",
    "Preprocess": "edgeq.metadata",
    "QuantInfo": "edgeq.metadata",
    "read_metadata": "edgeq.metadata",
    # errors
    "EdgeqError": "edgeq.errors",
    "UsageError": "edgeq.errors",
    "DependencyMissing": "edgeq.errors",
    "ModelError": "edgeq.errors",
    "DataError": "edgeq.errors",
    "ConversionError": "edgeq.errors",
    "InferenceError": "edgeq.errors",
    "DeviceError": "edgeq.errors",
    "CheckFailed": "edgeq.errors",
}

__all__ = ["__version__", *_EXPORTS]


__getattr__, __dir__ = _exports(__name__, _EXPORTS, __all__)
