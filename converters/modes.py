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
    INT8_WEIGHTS = "int8-weights"
    INT4_WEIGHTS = "int4-weights"


@dataclass(frozen=True)
class PostProcessed:
    """What a mode's ``postprocess`` step made of the converted model.

    Attributes:
        model: the new ``.tflite`` bytes.
        notes: lines for the user (what was changed, what it saves).
        recipe: what was done, for the embedded metadata (``QuantInfo.weights``).
    """

    model: bytes
    notes: list[str]
    recipe: dict[str, Any]


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
        postprocess: rewrites the converted model, or ``None``; gets ``(tflite_bytes, options)`` with
            ``options["block_size"]``, returns a :class:`PostProcessed`.
        block_sizes: the ``--block-size`` values the mode accepts (none: the option is refused).
        requires: ``(module, pip install hint)`` of an optional dependency, checked before converting.
    """

    key: Mode
    needs_data: bool
    io_type: str
    summary: str
    configure: Callable[[Any, Any, str, Any], None]
    warning: str = ""
    postprocess: Callable[[bytes, dict[str, Any]], PostProcessed] | None = None
    block_sizes: tuple[int, ...] = ()
    requires: tuple[str, str] | None = None


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
register(ModeSpec(
    Mode.DYNAMIC, False, "float32", "int8 weights, float activations computed on the fly", _dynamic,
    warning="dynamic range can be slower than float32 on CPUs: XNNPACK does not take its int8-weight (hybrid) ops, "
    "so they run on TFLite's built-in hybrid kernels between XNNPACK partitions (MobileNetV2 224 in LiteRT 2.3: 16 "
    "partitions instead of 1, 2.4x the float32 latency at 1 thread); prefer int8 for speed, float16 for size",
))
register(ModeSpec(Mode.FLOAT16, False, "float32", "float16 weights (half the size), float32 compute on CPU", _float16))
register(ModeSpec(Mode.FLOAT32, False, "float32", "no quantization: the float baseline", _float32))


def _weights(bits: int) -> Callable[[bytes, dict[str, Any]], PostProcessed]:
    def postprocess(tflite: bytes, options: dict[str, Any]) -> PostProcessed:
        from edgeq.converters.weight_only import quantize_weights

        return quantize_weights(tflite, bits, options.get("block_size"))

    return postprocess


#: the optional dependency of the weight-only modes, and how to install it
WEIGHT_ONLY_EXTRA = ("ai_edge_quantizer", 'pip install "edgeq[int4]" (ai-edge-quantizer; it does not need TensorFlow)')
#: the block sizes ai-edge-quantizer supports for blockwise int4
INT4_BLOCK_SIZES = (32, 64, 128, 256)
register(ModeSpec(Mode.INT8_WEIGHTS, False, "float32", "int8 weights stored, float compute (ai-edge-quantizer)",
                  _float32, postprocess=_weights(8), requires=WEIGHT_ONLY_EXTRA))
register(ModeSpec(Mode.INT4_WEIGHTS, False, "float32",
                  "int4 fully connected / embedding / conv weights stored, float compute (ai-edge-quantizer)",
                  _float32, postprocess=_weights(4), block_sizes=INT4_BLOCK_SIZES, requires=WEIGHT_ONLY_EXTRA))
