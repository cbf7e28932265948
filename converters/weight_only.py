"""Weight-only modes (``int4-weights``, ``int8-weights``): a float32 TFLite model whose weights are stored in 4 or 8 bits.

The float32 model the converter made is post-processed with ``ai-edge-quantizer`` (the ``[int4]``
extra; it needs no TensorFlow). What each mode covers is that library's policy:

* ``int8-weights``: channelwise int8 weights of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
  EMBEDDING_LOOKUP, BATCH_MATMUL and CONV_2D_TRANSPOSE;
* ``int4-weights``: channelwise int4 weights of FULLY_CONNECTED, EMBEDDING_LOOKUP, BATCH_MATMUL and
  CONV_2D (DEPTHWISE_CONV_2D and the rest keep float32 weights);
* ``int4-weights`` with ``block_size`` (32, 64, 128 or 256): FULLY_CONNECTED and EMBEDDING_LOOKUP
  weights are int4 with one scale per block of that many input values, and their kernels quantize
  activations on the fly (dynamic range); CONV_2D stays channelwise.

Weights are dequantized before the (float) op runs, so the saving is file size and weight memory, not
compute; int4 pays off on models whose weights sit in fully connected / embedding layers.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeq._flatbuffer import TFLiteFile, parse
from edgeq._lazy import import_optional
from edgeq._native import quiet_native_output
from edgeq.errors import ConversionError

from edgeq.converters.modes import INT4_BLOCK_SIZES, WEIGHT_ONLY_EXTRA, PostProcessed

log = logging.getLogger(__name__)

#: ops with a weight tensor, and the input index that holds it
_WEIGHT_INPUT = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "EMBEDDING_LOOKUP": 1,
                 "BATCH_MATMUL": 1, "TRANSPOSE_CONV": 1}


def quantizer_module() -> Any:
    """``ai_edge_quantizer``; raises :class:`~edgeq.errors.DependencyMissing` naming the ``[int4]`` extra."""
    return import_optional(*WEIGHT_ONLY_EXTRA)


@dataclass(frozen=True)
class WeightReport:
    """Which weights a weight-only mode stored in fewer bits, and the bytes they take.

    Attributes:
        bits: 4 or 8.
        block_size: the int4 block size, or ``None`` for one scale per output channel.
        quantized: op type -> how many of its weight tensors were quantized.
        kept_float: op type -> how many of its weight tensors stayed float32.
        weight_bytes_before, weight_bytes_after: bytes of the weights that were quantized, before and after.
    """

    bits: int
    block_size: int | None
    quantized: dict[str, int] = field(default_factory=dict)
    kept_float: dict[str, int] = field(default_factory=dict)
    weight_bytes_before: int = 0
    weight_bytes_after: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "block_size": self.block_size, "quantized": dict(self.quantized),
                "kept_float": dict(self.kept_float), "weight_bytes_before": self.weight_bytes_before,
                "weight_bytes_after": self.weight_bytes_after}

    def note(self) -> str:
        """One line for the user: what was quantized, what it saved, what stayed float."""
        done = ", ".join(f"{op}×{n}" for op, n in self.quantized.items()) or "no weights"
        granularity = (f"blocks of {self.block_size} for FULLY_CONNECTED/EMBEDDING_LOOKUP, per channel for the rest"
                       if self.block_size else "per channel")
        text = (f"int{self.bits} weights ({granularity}): {done}; those weights went from "
                f"{self.weight_bytes_before / 1024:.1f} KB to {self.weight_bytes_after / 1024:.1f} KB")
        if self.kept_float:
            text += "; kept float32: " + ", ".join(f"{op}×{n}" for op, n in self.kept_float.items())
            if self.bits == 4:
                text += " (int4 covers fully connected, embedding, batch-matmul and conv weights)"
        text += ". Weights are dequantized to float for compute: smaller file and weight memory, not faster"
        if self.block_size:
            text += " (blockwise FULLY_CONNECTED/EMBEDDING_LOOKUP run int4 kernels on activations quantized on the fly)"
        return text


def _recipe(bits: int, block_size: int | None) -> Any:
    quantizer_module()
    from ai_edge_quantizer import qtyping, recipe_manager

    ops = qtyping.TFLOperationName
    manager = recipe_manager.RecipeManager()
    manager.add_weight_only_config(regex=".*", operation_name=ops.ALL_SUPPORTED, num_bits=bits)
    if block_size:
        granularity = qtyping.QuantGranularity(f"BLOCKWISE_{block_size}")
        for op in (ops.FULLY_CONNECTED, ops.EMBEDDING_LOOKUP):
            manager.add_dynamic_config(regex=".*", operation_name=op, num_bits=4, granularity=granularity)
    return manager.get_quantization_recipe()


def quantize_weights(tflite: bytes, bits: int, block_size: int | None = None) -> PostProcessed:
    """Store the weights of a float32 TFLite model in ``bits`` bits with ai-edge-quantizer.

    Args:
        tflite: a float32 ``.tflite`` model (bytes).
        bits: 4 or 8.
        block_size: int4 only: one scale per this many input values of FULLY_CONNECTED/EMBEDDING_LOOKUP weights.

    Returns:
        The new model, a note for the user and the recipe for the metadata (:class:`WeightReport`).

    Raises:
        DependencyMissing: ai-edge-quantizer (the ``[int4]`` extra) is not installed.
        ConversionError: the quantizer failed (e.g. a weight dimension not divisible by ``block_size``).
    """
    quantizer_module()
    from ai_edge_quantizer import quantizer

    recipe = _recipe(bits, block_size)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as chatter, quiet_native_output():
            q = quantizer.Quantizer(bytearray(tflite))
            q.load_quantization_recipe(recipe)
            quantized = bytes(q.quantize().quantized_model)
    except (ValueError, RuntimeError, KeyError) as exc:
        reason = str(exc).strip().splitlines()[0][:300].rstrip(".") if str(exc).strip() else type(exc).__name__
        hint = f"; try another --block-size ({', '.join(map(str, INT4_BLOCK_SIZES))}) or none" if block_size else ""
        raise ConversionError(f"ai-edge-quantizer could not store the weights in int{bits}: {reason}{hint}") from exc
    log.debug("ai-edge-quantizer: %s", chatter.getvalue().strip())
    quantized = canonical_opcodes(quantized)
    report = weight_report(parse(quantized), bits, block_size)
    return PostProcessed(quantized, [report.note()], report.to_dict())


def canonical_opcodes(tflite: bytes) -> bytes:
    """Write each operator code's ``deprecated_builtin_code`` as the TFLite converter does: ``min(code, 127)``.

    ai-edge-quantizer leaves it 0 on the DEQUANTIZE codes it adds; current runtimes take the larger of the
    two fields, but readers that check them against each other (or only read the old field) see ADD. Buffers
    it stored after the flatbuffer (large weights) are moved inside, so that later rewrites keep them.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite))
    changed = False
    for buffer in model.buffers:  # ai-edge-quantizer appends large buffers after the flatbuffer (offset > 1):
        if buffer.offset > 1:  # the object API would drop them on writing, so they go inside
            buffer.data = np.frombuffer(tflite, np.uint8, buffer.size, buffer.offset).copy()
            buffer.offset, buffer.size, changed = 0, 0, True
    for code in model.operatorCodes:
        canonical = min(max(code.builtinCode, code.deprecatedBuiltinCode), 127)
        if code.deprecatedBuiltinCode != canonical:
            code.deprecatedBuiltinCode, changed = canonical, True
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model)) if changed else tflite


def weight_report(model: TFLiteFile, bits: int, block_size: int | None) -> WeightReport:
    """Which weight tensors of a weight-only model are stored in integers, op by op (their float32 size follows from the shape)."""
    sg = model.subgraphs[0]
    dequantized_from = {op.outputs[0]: op.inputs[0] for op in sg.operators if op.op == "DEQUANTIZE"}
    quantized: dict[str, int] = {}
    kept: dict[str, int] = {}
    bytes_before = bytes_after = 0
    for op in sg.operators:
        index = _WEIGHT_INPUT.get(op.op)
        if index is None or len(op.inputs) <= index or op.inputs[index] < 0:
            continue
        tensor = sg.tensors[dequantized_from.get(op.inputs[index], op.inputs[index])]
        if tensor.dtype in ("INT4", "INT8"):
            quantized[op.op] = quantized.get(op.op, 0) + 1
            bytes_before += _nbytes(tensor, 4)
            bytes_after += _nbytes(tensor)
        else:
            kept[op.op] = kept.get(op.op, 0) + 1
    return WeightReport(bits, block_size, quantized, kept, bytes_before, bytes_after)


def _nbytes(tensor: Any, element_bytes: float | None = None) -> int:
    count = 1
    for d in tensor.shape:
        count *= max(int(d), 1)
    size = element_bytes or {"INT4": 0.5, "INT8": 1, "FLOAT16": 2}.get(tensor.dtype, 4)
    return int(round(count * size))
