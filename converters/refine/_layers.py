"""The weighted layers of a ``.tflite`` model: find them, match quantized to float, read and write their parameters.

Works on LiteRT's flatbuffer object API (``ai_edge_litert.tools.flatbuffer_utils``), as
:mod:`edgeq.converters.calibration` does; no TensorFlow. A quantized layer is either

* full integer (``int8``/``uint8`` modes): int8 input, int8 per-channel weights, int32 bias of scale
  ``input_scale * weight_scale``; or
* weight-only (``int8-weights``/``int4-weights``): float input, weights stored as INT8/INT4 constants
  feeding a ``DEQUANTIZE``, float32 bias.

Each is matched to the layer of the float model whose weights round to the stored integers (content, not
names or order, so a matcher cannot pair the wrong layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: weighted ops refined, with their builtin names
KINDS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
#: share of weights that must round to the stored integers for a float layer to match a quantized one
MATCH_SHARE = 0.97
_INT8, _INT4, _INT32, _FLOAT32 = 9, 17, 2, 0


@dataclass
class Layer:
    """One weighted op: where its tensors are and how it slides over its input.

    Attributes:
        op: operator index in the main subgraph.
        kind: ``CONV_2D``, ``DEPTHWISE_CONV_2D`` or ``FULLY_CONNECTED``.
        input, weight, bias: tensor indices (``weight`` is the stored constant; ``bias`` -1 when absent).
        shape: the weight tensor's shape.
        window: ``(stride_h, stride_w, dilation_h, dilation_w, same_padding)`` for convolutions.
        bits: 8 or 4 for stored integers, 0 for float weights.
        scales: per output channel weight scale (quantized layers).
        integer_bias: whether the bias is int32 (full integer) rather than float32.
    """

    op: int
    kind: str
    input: int
    weight: int
    bias: int
    shape: tuple[int, ...]
    window: tuple[int, int, int, int, bool] = (1, 1, 1, 1, False)
    bits: int = 0
    scales: np.ndarray = field(default_factory=lambda: np.ones(0))
    integer_bias: bool = False

    @property
    def channels(self) -> int:
        return self.shape[-1] if self.kind == "DEPTHWISE_CONV_2D" else self.shape[0]

    @property
    def qmax(self) -> int:
        return 127 if self.bits == 8 else 7

    @property
    def qmin(self) -> int:
        return -127 if self.bits == 8 else -8


def op_name(model: Any, op: Any) -> str:
    from ai_edge_litert import schema_py_generated as schema

    code = model.operatorCodes[op.opcodeIndex]
    number = max(code.builtinCode, code.deprecatedBuiltinCode)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    return names.get(number, str(number))


def _window(kind: str, options: Any) -> tuple[int, int, int, int, bool]:
    if kind == "FULLY_CONNECTED" or options is None:
        return (1, 1, 1, 1, False)
    return (options.strideH, options.strideW, options.dilationHFactor, options.dilationWFactor, options.padding == 0)


def _constant(model: Any, graph: Any, index: int) -> bool:
    if index < 0:
        return False
    data = model.buffers[graph.tensors[index].buffer].data
    return data is not None and len(data) > 0


def _single_use_buffers(model: Any, graph: Any = None) -> set[int]:
    """Buffers read by exactly one tensor: only those can be rewritten without changing another tensor."""
    counts: dict[int, int] = {}
    for sg in model.subgraphs:
        for t in sg.tensors:
            counts[t.buffer] = counts.get(t.buffer, 0) + 1
    return {b for b, n in counts.items() if n == 1 and b > 0}


def find_layers(model: Any, quantized: bool) -> list[Layer]:
    """The weighted layers of the main subgraph that can be refined (quantized) or used as reference (float)."""
    graph = model.subgraphs[0]
    producer = {o: op for op in graph.operators for o in op.outputs}
    single = _single_use_buffers(model, graph)
    layers = []
    for i, op in enumerate(graph.operators):
        kind = op_name(model, op)
        if kind not in KINDS or len(op.inputs) < 2:
            continue
        x, w = int(op.inputs[0]), int(op.inputs[1])
        b = int(op.inputs[2]) if len(op.inputs) > 2 else -1
        if x < 0 or w < 0:
            continue
        stored = w
        source = producer.get(w)
        if source is not None and op_name(model, source) == "DEQUANTIZE":
            stored = int(source.inputs[0])
        t = graph.tensors[stored]
        if not _constant(model, graph, stored) or (b >= 0 and not _constant(model, graph, b)):
            continue
        layer = Layer(i, kind, x, stored, b, tuple(int(d) for d in t.shape), _window(kind, op.builtinOptions))
        if not quantized:
            if t.type == _FLOAT32 and graph.tensors[x].type == _FLOAT32:
                layers.append(layer)
            continue
        q = t.quantization
        if t.type not in (_INT8, _INT4) or q is None or q.scale is None:
            continue
        scales = np.asarray(q.scale, np.float64)
        if len(scales) not in (1, layer.channels) or np.any(np.asarray(q.zeroPoint if q.zeroPoint is not None else 0) != 0):
            continue  # blockwise or asymmetric weights: left as they are
        if t.buffer not in single:
            continue  # a weight read by several ops (rare): leave it
        layer.bits = 8 if t.type == _INT8 else 4
        layer.scales = np.broadcast_to(scales, (layer.channels,)).copy()
        if stored == w:  # full integer: int8 input, int32 bias
            if graph.tensors[x].type != _INT8 or (b >= 0 and graph.tensors[b].type != _INT32):
                continue
            layer.integer_bias = True
        elif graph.tensors[x].type != _FLOAT32 or (b >= 0 and graph.tensors[b].type != _FLOAT32):
            continue
        layers.append(layer)
    return layers


# ------------------------------------------------------------------------------ parameters
def _unpack_int4(data: np.ndarray, count: int) -> np.ndarray:
    low = (data & 0x0F).astype(np.int8)
    high = (data >> 4).astype(np.int8)
    values = np.stack([low, high], axis=1).reshape(-1)[:count]
    return np.where(values > 7, values - 16, values).astype(np.int8)


def _pack_int4(values: np.ndarray) -> np.ndarray:
    v = (values.reshape(-1).astype(np.int16) & 0x0F).astype(np.uint8)
    if v.size % 2:
        v = np.concatenate([v, np.zeros(1, np.uint8)])
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8)


def read_weight(model: Any, layer: Layer) -> np.ndarray:
    """The stored weights: integers for quantized layers, float32 otherwise (weight tensor shape)."""
    graph = model.subgraphs[0]
    data = np.asarray(model.buffers[graph.tensors[layer.weight].buffer].data, np.uint8)
    count = int(np.prod(layer.shape))
    if layer.bits == 4:
        return _unpack_int4(data, count).reshape(layer.shape)
    dtype = np.int8 if layer.bits == 8 else np.float32
    return np.frombuffer(data.tobytes(), dtype, count).reshape(layer.shape).copy()


def read_bias(model: Any, layer: Layer) -> np.ndarray | None:
    if layer.bias < 0:
        return None
    graph = model.subgraphs[0]
    data = np.asarray(model.buffers[graph.tensors[layer.bias].buffer].data, np.uint8)
    return np.frombuffer(data.tobytes(), np.int32 if layer.integer_bias else np.float32).copy()


def write_weight(model: Any, layer: Layer, values: np.ndarray) -> None:
    graph = model.subgraphs[0]
    values = values.reshape(layer.shape)
    data = _pack_int4(values) if layer.bits == 4 else values.astype(np.int8).view(np.uint8).reshape(-1)
    model.buffers[graph.tensors[layer.weight].buffer].data = data


def write_bias(model: Any, layer: Layer, values: np.ndarray) -> None:
    """Write the bias; a buffer the converter shares between equal biases (e.g. all zeros) is copied first."""
    from ai_edge_litert import schema_py_generated as schema

    graph = model.subgraphs[0]
    tensor = graph.tensors[layer.bias]
    if tensor.buffer not in _single_use_buffers(model, graph):
        model.buffers.append(schema.BufferT())
        tensor.buffer = len(model.buffers) - 1
    dtype = np.int32 if layer.integer_bias else np.float32
    model.buffers[tensor.buffer].data = np.asarray(values, dtype).view(np.uint8).reshape(-1)


def to_matrix(layer: Layer, weights: np.ndarray) -> np.ndarray:
    """Weights as ``[batch, out, inputs]``: conv ``[1, O, kh*kw*I]``, FC ``[1, O, I]``, depthwise ``[C, 1, kh*kw]``."""
    if layer.kind == "DEPTHWISE_CONV_2D":
        return weights.reshape(-1, weights.shape[-1]).T[:, None, :]
    return weights.reshape(weights.shape[0], -1)[None]


def from_matrix(layer: Layer, matrix: np.ndarray) -> np.ndarray:
    if layer.kind == "DEPTHWISE_CONV_2D":
        return matrix[:, 0, :].T.reshape(layer.shape)
    return matrix[0].reshape(layer.shape)


def match(quantized: Any, q_layers: list[Layer], reference: Any, f_layers: list[Layer]) -> dict[int, Layer]:
    """For each quantized layer (by op index), the float layer whose weights round to its integers."""
    pairs: dict[int, Layer] = {}
    for layer in q_layers:
        stored = read_weight(quantized, layer).astype(np.float64)
        scale = layer.scales[:, None] if layer.kind != "DEPTHWISE_CONV_2D" else layer.scales[None, :]
        best, best_share = None, MATCH_SHARE
        for candidate in f_layers:
            if candidate.kind != layer.kind or candidate.shape != layer.shape:
                continue
            w = read_weight(reference, candidate).astype(np.float64)
            flat = w.reshape(w.shape[0], -1) if layer.kind != "DEPTHWISE_CONV_2D" else w.reshape(-1, w.shape[-1])
            rounded = np.clip(np.round(flat / scale), layer.qmin - 1, layer.qmax)
            share = float(np.mean(np.abs(rounded - stored.reshape(flat.shape)) <= 1))
            exact = float(np.mean(rounded == stored.reshape(flat.shape)))
            if share >= best_share and exact >= MATCH_SHARE - 0.1:
                best, best_share = candidate, share
        if best is not None:
            pairs[layer.op] = best
    return pairs
