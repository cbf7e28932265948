"""Keras → TFLite conversion. Needs the ``[convert]`` extra (TensorFlow), imported on first use."""

from edgeq.converters.convert import ConversionResult, convert, read_labels
from edgeq.converters.datasets import SampleSet, load_samples
from edgeq.converters.modes import MODES, Mode, ModeSpec, get_mode
from edgeq.converters.verify import Verification

__all__ = [
    # conversion
    "convert",
    "ConversionResult",
    "Verification",
    "read_labels",
    # modes
    "Mode",
    "ModeSpec",
    "MODES",
    "get_mode",
    # data
    "load_samples",
    "SampleSet",
]
