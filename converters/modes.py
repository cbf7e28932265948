"""Quantization modes, registered by key; each one configures a ``TFLiteConverter``.

A new mode is a new :func:`register` call; the conversion pipeline does not change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

from edgeq.errors import UsageError


class Mode(str, enum.Enum):
    """The conversion modes ``edgeq convert --mode`` accepts."""

    INT8 = "int8"
    UINT8 = "uint8"
    INT16X8 = "int16x8"
    DYNAMIC = "dynamic"
    FLOAT16 = "float16"
    FLOAT32 = "float32"


@dataclass(frozen=True)
class ModeSpec:
    """What a mode needs and does.

    Attributes:
        key: the mode.
        needs_data: whether calibration data is required.
        io_type: the default input/output dtype (``float32`` when the IO stays float).
        summary: one line for ``--help`` and reports.
        warning: printed whenever the mode is chosen (e.g. a known slow path), or empty.
        configure: sets the converter's options; gets ``(converter, tf, io_type, representative_dataset)``.
    """

    key: Mode
    needs_data: bool
    io_type: str
    summary: str
    configure: Callable[[Any, Any, str, Any], None]
    warning: str = ""


MODES: dict[Mode, ModeSpec] = {}


def register(spec: ModeSpec) -> ModeSpec:
    MODES[spec.key] = spec
    return spec


def get_mode(name: str | Mode) -> ModeSpec:
    """Look up a mode by key; raises :class:`UsageError` listing the valid keys."""
    try:
        return MODES[Mode(name)]
    except ValueError:
        raise UsageError(f"unknown mode {name!r}; expected one of {', '.join(m.value for m in MODES)}") from None


def _full_integer(ops_set: str, integer_io: str) -> Callable[[Any, Any, str, Any], None]:
    def configure(conv: Any, tf: Any, io_type: str, dataset: Any) -> None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = dataset
        conv.target_spec.supported_ops = [getattr(tf.lite.OpsSet, ops_set)]
        if io_type != "float32":
            conv.inference_input_type = getattr(tf, io_type)
            conv.inference_output_type = getattr(tf, io_type)

    return configure


def _dynamic(conv: Any, tf: Any, io_type: str, dataset: Any) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]


def _float16(conv: Any, tf: Any, io_type: str, dataset: Any) -> None:
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]


def _float32(conv: Any, tf: Any, io_type: str, dataset: Any) -> None:
    """No optimization: the float model as TFLite (the baseline of every comparison)."""


register(ModeSpec(Mode.INT8, True, "int8", "full integer: int8 weights and activations, int8 input/output",
                  _full_integer("TFLITE_BUILTINS_INT8", "int8")))
register(ModeSpec(Mode.UINT8, True, "uint8", "full integer body with uint8 input/output (e.g. raw camera pixels)",
                  _full_integer("TFLITE_BUILTINS_INT8", "uint8")))
register(ModeSpec(
    Mode.INT16X8, True, "int16", "int16 activations, int8 weights: more accurate than int8, much slower",
    _full_integer("EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8", "int16"),
    warning="int16x8 has no XNNPACK kernels: on CPUs it runs ~50x slower than int8 (and slower than float32)",
))
register(ModeSpec(Mode.DYNAMIC, False, "float32", "int8 weights, float activations computed on the fly", _dynamic))
register(ModeSpec(Mode.FLOAT16, False, "float32", "float16 weights (half the size), float32 compute on CPU", _float16))
register(ModeSpec(Mode.FLOAT32, False, "float32", "no quantization: the float baseline", _float32))
