"""Layer-wise quantization error: TFLite's quantization debugger on edgeq's int8 conversion.

:func:`debug` calibrates the model exactly as ``edgeq convert`` would (same data, preprocessing and
calibration statistic), builds the debug model (``mlir_quantize(..., enable_numeric_verify=True)``) and
runs ``tf.lite.experimental.QuantizationDebugger`` on held-back samples. Each quantized op's output is
compared with the float op computed from the same (dequantized) inputs, so an error is the op's own,
not one inherited from earlier layers.

Layers are ranked by SQNR, lowest first: an activation whose int8 range is set by rare outliers loses
its typical values to rounding, which SQNR shows and ``RMSE/scale`` does not (a wide range makes the
scale large, so ``RMSE/scale`` stays near the ideal 0.29). The suggestion criterion is in
:data:`SUGGEST_BELOW_MEDIAN_DB`.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeq import _lazy
from edgeq._lazy import import_optional
from edgeq._native import quiet_native_output
from edgeq._progress import step, track
from edgeq._tflite_names import BUILTIN_OPS
from edgeq.errors import UsageError

from edgeq.converters.calibration import Calibration, apply_statistic, quantize_calibrated
from edgeq.converters.convert import _preprocessing, _run_converter
from edgeq.converters.datasets import Sample, load_samples
from edgeq.converters.modes import get_mode
from edgeq.converters.source import load_source

log = logging.getLogger(__name__)

#: a layer is suggested for float when its SQNR is this many dB below the model's median layer SQNR
#: (its relative noise power is 10x a typical layer's) …
SUGGEST_BELOW_MEDIAN_DB = 10.0
#: … and below this absolute SQNR
SUGGEST_BELOW_DB = 30.0
#: at most this many suggestions
MAX_SUGGESTIONS = 3
#: ops that only cross the float/int boundary; not ranked
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
#: modes whose conversion the debugger and the float fallback can reproduce (the MLIR int8 quantizer)
SELECTIVE_MODES = ("int8", "uint8")
_HINT = "pip install ai-edge-litert"
_BUILTIN_NAMES = set(BUILTIN_OPS.values())


# ----------------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class OpNode:
    """One operator of a TFLite graph."""

    index: int
    type: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class Graph:
    """The main subgraph of a TFLite model: tensor names and quantization, operators, producers and readers."""

    names: tuple[str, ...]
    quantization: tuple[tuple[tuple[float, ...], tuple[int, ...]], ...]
    dtypes: tuple[int, ...]
    ops: tuple[OpNode, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    @classmethod
    def read(cls, model: bytes) -> Graph:
        """Read ``model`` (any valid TFLite flatbuffer, custom ops included) with LiteRT's flatbuffer tools."""
        fb = import_optional("ai_edge_litert.tools.flatbuffer_utils", _HINT)
        obj = fb.convert_bytearray_to_object(bytearray(model))
        g = obj.subgraphs[0]
        codes = []
        for code in obj.operatorCodes:
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode
            codes.append(custom or BUILTIN_OPS.get(builtin, f"BUILTIN_{builtin}"))
        names, quant, dtypes = [], [], []
        for t in g.tensors:
            names.append(t.name.decode() if isinstance(t.name, bytes) else str(t.name))
            q = t.quantization
            scales = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None else ()))
            zps = tuple(int(z) for z in (q.zeroPoint if q is not None and q.zeroPoint is not None else ()))
            quant.append((scales, zps))
            dtypes.append(int(t.type))
        ops = tuple(OpNode(i, codes[op.opcodeIndex], tuple(int(x) for x in (op.inputs if op.inputs is not None else ())),
                           tuple(int(x) for x in (op.outputs if op.outputs is not None else ())))
                    for i, op in enumerate(g.operators or ()))
        return cls(tuple(names), tuple(quant), tuple(dtypes), ops, tuple(int(i) for i in g.inputs),
                   tuple(int(i) for i in g.outputs))

    def producer(self, tensor: int) -> OpNode | None:
        return next((op for op in self.ops if tensor in op.outputs), None)

    def readers(self, tensor: int) -> list[OpNode]:
        return [op for op in self.ops if tensor in op.inputs]

    def op_producing(self, name: str) -> OpNode | None:
        """The op whose output tensor is called ``name``."""
        return next((op for op in self.ops if any(self.names[t] == name for t in op.outputs)), None)


# ---------------------------------------------------------------------------- Keras tracing
def keras_layer_names(keras_model: Any) -> list[str]:
    """Names of every layer of ``keras_model``, nested models' layers included."""
    names: list[str] = []

    def walk(model: Any) -> None:
        for layer in getattr(model, "layers", ()):
            names.append(layer.name)
            walk(layer)

    walk(keras_model)
    return names


def trace_layers(graph: Graph, keras_model: Any) -> dict[int, tuple[str, ...]]:
    """Map op index → the Keras layers it comes from (several when the converter fused them), in model order.

    Keras exports name tensors ``<model>/<layer>_<n>/<op>``, ``;``-joined when ops are fused; each part
    names the innermost layer it mentions. The op writing the model's single output also belongs to the
    Keras output layer (the converter renames that tensor).
    """
    if keras_model is None:
        return {}
    order = {name: i for i, name in enumerate(keras_layer_names(keras_model))}
    traced: dict[int, tuple[str, ...]] = {}
    for op in graph.ops:
        if op.type in _BOUNDARY_OPS or op.type not in _BUILTIN_NAMES or not op.outputs:
            continue
        found = {layer for part in graph.names[op.outputs[0]].split(";") if (layer := _layer_of(part, order))}
        if found:
            traced[op.index] = tuple(sorted(found, key=order.__getitem__))
    outputs = list(getattr(keras_model, "outputs", None) or [])
    if len(outputs) == 1 and len(graph.outputs) == 1:
        history = getattr(outputs[0], "_keras_history", None)
        op = graph.producer(graph.outputs[0])
        while op is not None and op.type in _BOUNDARY_OPS:
            op = graph.producer(op.inputs[0])
        if history is not None and op is not None and op.index not in traced:
            traced[op.index] = (history.operation.name,)
    return traced


def _layer_of(part: str, layers: dict[str, int]) -> str | None:
    """The innermost layer a ``/``-path names; Keras appends ``_<n>`` to a layer's scope, which is tried first."""
    found = None
    for component in part.split("/"):
        base = re.sub(r"_\d+$", "", component)
        if base in layers:
            found = base
        elif component in layers:
            found = component
    return found


def selector(op_index: int, traced: dict[int, tuple[str, ...]], tensor: str) -> str:
    """The shortest ``--keep-float`` name selecting exactly this op: a Keras layer traced to it alone, else ``tensor``."""
    for layer in traced.get(op_index, ()):
        if all(layer not in layers for i, layers in traced.items() if i != op_index):
            return layer
    return tensor


# ----------------------------------------------------------------------------------- debugging
@dataclass(frozen=True)
class LayerError:
    """The quantization error of one op's output, from the debugger (averaged over samples).

    Attributes:
        tensor: the op's output tensor name (what ``--keep-float`` accepts).
        op: the op type (``CONV_2D``).
        layer: the Keras layer(s) it comes from (``conv1+bn1+relu1`` when fused), or ``None`` when untraced.
        sqnr_db: ``10 log10(Σ float² / Σ (float - dequantized)²)``; lower is worse.
        rmse_scale: root mean squared error divided by the int8 scale (0.29 = ideal rounding).
        max_abs_error: largest absolute error in a sample, averaged over samples.
        scale, zero_point: the tensor's int8 quantization; ``range`` = ``255 * scale``.
        elements: values per sample.
        name: what ``--keep-float`` takes to keep exactly this op in float (a layer name, else the tensor).
    """

    tensor: str
    op: str
    layer: str | None
    sqnr_db: float
    rmse_scale: float
    max_abs_error: float
    scale: float
    zero_point: int
    elements: int
    name: str = ""

    @property
    def range(self) -> float:
        return 255 * self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "name": self.name, "op": self.op, "layer": self.layer,
                "sqnr_db": self.sqnr_db if math.isfinite(self.sqnr_db) else None, "rmse_scale": self.rmse_scale,
                "max_abs_error": self.max_abs_error, "scale": self.scale, "zero_point": self.zero_point,
                "range": self.range, "elements": self.elements}


def _signal(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
    return float(np.sum(np.square(f.astype(np.float64))))


def _noise(f: np.ndarray, q: np.ndarray, scale: float, zero_point: int) -> float:
    return float(np.sum(np.square(f.astype(np.float64) - (q.astype(np.float64) - zero_point) * scale)))


def layer_errors(
    tf: Any,
    calibrated: bytes,
    samples: Sequence[Sample],
    input_names: Sequence[str],
    keras_model: Any = None,
    denylisted_nodes: Sequence[str] = (),
    denylisted_ops: Sequence[str] = (),
) -> list[LayerError]:
    """Run the quantization debugger on ``calibrated`` and rank the quantized ops' outputs by SQNR (worst first).

    Args:
        tf: the TensorFlow module.
        calibrated: the calibrate-only model (see :mod:`edgeq.converters.calibration`).
        samples: debug samples, one array per model input (in ``input_names`` order).
        input_names: the serving signature's input names, in the order of the arrays in a sample.
        keras_model: the Keras model, to name the layer each op comes from.
        denylisted_nodes, denylisted_ops: what is already kept in float (not ranked).
    """
    debug_model = quantize_calibrated(tf, calibrated, "float32", denylisted_nodes, denylisted_ops, numeric_verify=True)
    graph = Graph.read(debug_model)
    verified = {graph.names[op.outputs[0]]: op.inputs for op in graph.ops if op.type == "NumericVerify"}
    options = tf.lite.experimental.QuantizationDebugOptions(layer_direct_compare_metrics={"signal": _signal, "noise": _noise})
    with warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")  # tf.lite.Interpreter deprecation
        debugger = tf.lite.experimental.QuantizationDebugger(
            quant_debug_model_content=debug_model, debug_options=options,
            debug_dataset=lambda: _ordered(track(samples, "Running the quantization debugger"), graph, input_names),
        )
        debugger.run()
    # name rows as the int8 model does: the debug model holds a float copy of every op, and its quantized
    # tensors' names get a digit appended
    real = Graph.read(quantize_calibrated(tf, calibrated, "int8", denylisted_nodes, denylisted_ops))
    traced = trace_layers(real, keras_model)
    op_of = {real.names[t]: op for op in real.ops for t in op.outputs}
    rows = []
    for verify_name, stats in debugger.layer_statistics.items():
        inputs = verified.get(verify_name)
        if inputs is None:
            continue
        tensor = inputs[0]
        op = graph.producer(tensor)
        if op is None or op.type in _BOUNDARY_OPS:
            continue
        scales, zps = graph.quantization[tensor]
        scale = scales[0] if scales else float("nan")
        noise, signal = float(stats["noise"]), float(stats["signal"])
        sqnr = float("inf") if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else float("-inf"))
        candidates = [graph.names[tensor], graph.names[tensor][:-1], *(graph.names[t] for t in inputs[1:2])]
        name = next((n for n in candidates if n in op_of and op_of[n].type == op.type), candidates[0])
        index = op_of[name].index if name in op_of else -1
        rows.append(LayerError(
            tensor=name, op=op.type, layer="+".join(traced.get(index, ())) or None, sqnr_db=sqnr,
            rmse_scale=math.sqrt(float(stats["mean_squared_error"])) / scale if scale else float("nan"),
            max_abs_error=float(stats["max_abs_error"]), scale=scale, zero_point=zps[0] if zps else 0,
            elements=int(stats["num_elements"]), name=selector(index, traced, name),
        ))
    rows.sort(key=lambda r: (r.sqnr_db, -r.rmse_scale))
    return rows


def _ordered(samples: Any, graph: Graph, input_names: Sequence[str]) -> Any:
    """Yield each sample's arrays in the debug model's input order (its inputs are named after the signature's)."""
    position = []
    for n, tensor in enumerate(graph.inputs):
        name = graph.names[tensor]
        match = next((i for i, s in enumerate(input_names) if name in (s, f"serving_default_{s}:0")), n)
        position.append(match)
    for sample in samples:
        yield [np.asarray(sample[p], dtype=np.float32) for p in position]


def suggest(layers: Sequence[LayerError]) -> tuple[list[LayerError], str]:
    """The layers worth keeping in float, and the criterion, in words."""
    finite = [r.sqnr_db for r in layers if math.isfinite(r.sqnr_db)]
    if not finite:
        return [], "no layer has a finite SQNR"
    median = statistics.median(finite)
    limit = min(median - SUGGEST_BELOW_MEDIAN_DB, SUGGEST_BELOW_DB)
    criterion = (f"SQNR under {limit:.1f} dB, the lower of {SUGGEST_BELOW_DB:g} dB and {SUGGEST_BELOW_MEDIAN_DB:g} dB "
                 f"under the median layer's {median:.1f} dB")
    chosen: list[LayerError] = []
    for row in layers:
        if row.sqnr_db < limit and all(row.name != c.name for c in chosen):
            chosen.append(row)
        if len(chosen) == MAX_SUGGESTIONS:
            break
    return chosen, criterion


@dataclass
class DebugReport:
    """What :func:`debug` found.

    Attributes:
        model: the Keras/SavedModel file.
        data: the debug data's source.
        samples: how many samples the debugger ran (held back from calibration when possible).
        calibration: the calibration statistic used.
        layers: every quantized op's output, worst first (by SQNR).
        suggestions: the layers to keep in float by :attr:`criterion` (may be empty).
        criterion: the suggestion rule, in words.
        command: an ``edgeq convert`` command keeping the suggestions in float (empty without suggestions).
        preprocessing: for image data, the ``--normalize`` fed and why (``normalize``, ``bgr``, ``decided_by``,
            ``reason``), decided as ``edgeq convert`` decides it; ``None`` for arrays.
    """

    model: str
    data: str
    samples: int
    calibration: str
    layers: list[LayerError]
    suggestions: list[LayerError]
    criterion: str
    command: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    preprocessing: dict[str, Any] | None = None

    def to_csv(self) -> str:
        """The ranked table as CSV (one row per layer)."""
        out = io.StringIO()
        fields = ["rank", "tensor", "op", "layer", "sqnr_db", "rmse_scale", "max_abs_error", "scale", "zero_point",
                  "range", "elements"]
        writer = csv.DictWriter(out, fields, lineterminator="\n")
        writer.writeheader()
        for rank, row in enumerate(self.layers, 1):
            d = row.to_dict()
            writer.writerow({"rank": rank, **{k: d[k] for k in fields if k != "rank"}})
        return out.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "samples": self.samples, "calibration": self.calibration,
                "layers": [r.to_dict() for r in self.layers],
                "suggestions": [r.name for r in self.suggestions], "criterion": self.criterion,
                "command": self.command, "seconds": self.seconds, "notes": list(self.notes),
                "preprocessing": self.preprocessing}


def debug(
    model: str | os.PathLike,
    data: Any,
    samples: int = 200,
    seed: int = 0,
    resize: str = "stretch",
    normalize: str | None = None,
    bgr: bool = False,
    calibration: str = "minmax",
    mode: str = "int8",
    keep_float: str | Sequence[str] | None = None,
    force_normalize: bool = False,
) -> DebugReport:
    """Rank a model's layers by int8 quantization error, as ``edgeq convert`` would quantize it.

    Args:
        model: a Keras ``.keras``/``.h5`` file or a SavedModel folder.
        data: the representative data, as for :func:`~edgeq.converters.convert`.
        samples, seed, resize, normalize, bgr: as for ``convert``; the same samples calibrate. ``normalize``
            ``None`` (default) uses what the model's own input layers expect, as ``convert`` does.
        calibration: ``minmax``, ``percentile:P`` or ``mse`` (see :class:`~edgeq.converters.calibration.Calibration`).
        mode: ``int8`` or ``uint8``.
        keep_float: layers already kept in float (as ``--keep-float`` takes them); they are not ranked.
        force_normalize: accept a ``normalize`` that contradicts the model's own preprocessing layers.

    Returns:
        A :class:`DebugReport`.

    Raises:
        UsageError, ModelError, DataError, ConversionError, DependencyMissing: bad input.
    """
    from edgeq.converters.fallback import resolve_keep_float, split_names

    if mode not in SELECTIVE_MODES:
        raise UsageError(f"edgeq debug analyses the int8 conversion: --mode must be int8 or uint8. Received: {mode!r}")
    spec = get_mode(mode)
    method = Calibration.parse(calibration)
    tf = _lazy.tensorflow()
    started = time.perf_counter()
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgeq-debug-") as workdir:
        with step("Loading the model"):
            source = load_source(model, workdir)
        normalize, bgr, decision = _preprocessing(source, normalize, bgr, force_normalize)
        sample_set = load_samples(data, source.inputs, samples, seed, resize, normalize, bgr)
        calibrated = _run_converter(tf, source, spec, spec.io_type, sample_set, calibrate_only=True)
        calibrated, _ = apply_statistic(calibrated, sample_set.calibration, method, [s.name for s in source.inputs])
        names = split_names(keep_float)
        plan = resolve_keep_float(Graph.read(quantize_calibrated(tf, calibrated, "int8")), names, source.keras_model)
        layers = layer_errors(tf, calibrated, sample_set.verification, [s.name for s in source.inputs],
                              source.keras_model, plan.nodes, plan.op_types)
    if not sample_set.held_out:
        notes.append("too little data to hold samples back: the debugger ran on calibration samples")
    chosen, criterion = suggest(layers)
    command = ""
    if chosen:
        keep = ",".join(dict.fromkeys([*names, *(r.name for r in chosen)]))
        extra = "" if str(method) == "minmax" else f" --calibration {method}"
        if decision["decided_by"] == "option":  # convert decides the rest as debug did
            extra += f" --normalize {_quote(normalize)}" + (" --force-normalize" if force_normalize else "")
        command = (f"edgeq convert {_quote(model)} --data {_quote(data)} --keep-float {_quote(keep)}{extra} "
                   f"--out {_quote(Path(model).stem + '_int8.tflite')}")
    return DebugReport(str(model), sample_set.source, len(sample_set.verification), str(method), layers, chosen,
                       criterion, command, time.perf_counter() - started, notes,
                       decision if sample_set.preprocess is not None else None)


def _quote(value: Any) -> str:
    import shlex

    return shlex.quote(os.fspath(value) if isinstance(value, (str, os.PathLike)) else str(value))
