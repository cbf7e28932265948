"""Keras → TFLite conversion. Needs the ``[convert]`` extra (TensorFlow), imported on first use."""

from edgeq.converters.calibration import Calibration
from edgeq.converters.convert import ConversionResult, convert, read_labels
from edgeq.converters.datasets import SampleSet, load_samples
from edgeq.converters.debug import DebugReport, LayerError, debug
from edgeq.converters.fallback import FallbackReport, FallbackStep
from edgeq.converters.modes import MODES, Mode, ModeSpec, get_mode
from edgeq.converters.qat import QatResult, qat
from edgeq.converters.verify import Verification

__all__ = [
    # conversion
    "convert",
    "ConversionResult",
    "Verification",
    "read_labels",
    # accuracy tools: debugger, float fallback, calibration statistics
    "debug",
    "DebugReport",
    "LayerError",
    "FallbackReport",
    "FallbackStep",
    "Calibration",
    # quantization-aware training
    "qat",
    "QatResult",
    # modes
    "Mode",
    "ModeSpec",
    "MODES",
    "get_mode",
    # data
    "load_samples",
    "SampleSet",
]
