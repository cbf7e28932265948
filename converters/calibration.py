"""Calibration statistics beyond min/max, and the calibrate-then-quantize route that applies them.

TFLite's calibrator records only the min and max of each activation tensor, so one outlier in the
representative data sets the whole int8 range. ``percentile:P`` and ``mse`` need the values
themselves; this module:

1. takes the converter's calibrate-only output (``converter._experimental_calibrate_only``): a float
   model whose activation tensors carry the calibrated min/max;
2. runs that model again on the calibration samples, reads every calibrated tensor, and replaces each
   min/max by the chosen statistic (:func:`apply_statistic`; the model inputs keep min/max, which
   the runtime quantizes images with);
3. hands the result to the MLIR quantizer (:func:`quantize_calibrated`), the step the converter runs
   after calibrating, here with the layers to keep in float.

With ``minmax`` and nothing kept in float, step 3 yields the model ``TFLiteConverter.convert()`` does.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgeq._lazy import import_optional
from edgeq._native import quiet_native_output
from edgeq._progress import track
from edgeq.errors import ConversionError, UsageError

log = logging.getLogger(__name__)

METHODS = ("minmax", "percentile", "mse")
DEFAULT_PERCENTILE = 99.99
#: histogram bins per tensor for ``mse``
MSE_BINS = 2048
#: candidate clipping points per side tried by ``mse``
MSE_CANDIDATES = 128
_HINT = "pip install ai-edge-litert"


@dataclass(frozen=True)
class Calibration:
    """How activation ranges are chosen from the calibration data.

    Attributes:
        method: ``minmax`` (TFLite's own), ``percentile`` (clip to the P-th / (100-P)-th percentile) or
            ``mse`` (the range that minimises the tensor's quantization mean squared error, clipping included).
        percentile: ``P`` for ``percentile``.
    """

    method: str = "minmax"
    percentile: float | None = None

    @classmethod
    def parse(cls, spec: str | Calibration | None) -> Calibration:
        """``minmax``, ``percentile`` (99.99), ``percentile:P`` with 50 < P < 100, or ``mse``.

        Raises:
            UsageError: anything else.
        """
        if isinstance(spec, Calibration):
            return spec
        text = (spec or "minmax").strip().lower()
        name, _, value = text.partition(":")
        if name not in METHODS or (value and name != "percentile"):
            raise UsageError(f"--calibration takes minmax, percentile:P (e.g. percentile:99.99) or mse. Received: {spec!r}")
        if name != "percentile":
            return cls(name)
        try:
            p = float(value) if value else DEFAULT_PERCENTILE
        except ValueError:
            p = float("nan")
        if not 50 < p < 100:
            raise UsageError(f"--calibration percentile:P needs 50 < P < 100 (e.g. 99.99). Received: {spec!r}")
        return cls(name, p)

    def __str__(self) -> str:
        return f"percentile:{self.percentile:g}" if self.method == "percentile" else self.method


@dataclass(frozen=True)
class RangeChange:
    """One activation tensor whose calibrated range the statistic changed."""

    tensor: str
    before: tuple[float, float]
    after: tuple[float, float]

    @property
    def shrink(self) -> float:
        """How many times narrower the range became."""
        width = self.after[1] - self.after[0]
        return (self.before[1] - self.before[0]) / width if width > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "before": list(self.before), "after": list(self.after), "shrink": self.shrink}


# --------------------------------------------------------------------------------- statistics
class _Collector:
    """Streaming per-tensor statistics: exact tails for percentiles, a histogram for MSE."""

    def __init__(self, lo: float, hi: float, total: int, calibration: Calibration) -> None:
        self.lo, self.hi = lo, hi
        self.calibration = calibration
        if calibration.method == "percentile":
            # the (100 - P) % largest and smallest values give the percentiles exactly
            self.keep = math.ceil(total * (100 - calibration.percentile) / 100) + 2  # type: ignore[operator]
            self.top = np.empty(0, np.float32)
            self.bottom = np.empty(0, np.float32)
        else:
            self.hist = np.zeros(MSE_BINS, np.int64)

    def add(self, values: np.ndarray) -> None:
        v = values.reshape(-1).astype(np.float32, copy=False)
        if self.calibration.method == "percentile":
            self.top = _largest(np.concatenate([self.top, v]), self.keep)
            self.bottom = -_largest(np.concatenate([-self.bottom, -v]), self.keep)
        else:
            counts, _ = np.histogram(np.clip(v, self.lo, self.hi), MSE_BINS, (self.lo, self.hi))
            self.hist += counts

    def range(self, total: int) -> tuple[float, float]:
        if self.calibration.method == "percentile":
            return _percentile_range(self.top, self.bottom, total, self.calibration.percentile)  # type: ignore[arg-type]
        return _mse_range(self.hist, self.lo, self.hi)


def _largest(v: np.ndarray, k: int) -> np.ndarray:
    return v if v.size <= k else np.partition(v, v.size - k)[v.size - k:]


def _percentile_range(top: np.ndarray, bottom: np.ndarray, total: int, p: float) -> tuple[float, float]:
    """The ``(100-p)``-th and ``p``-th percentiles of ``total`` values, as ``np.percentile`` computes them, from the tails."""
    desc, asc = np.sort(top)[::-1], np.sort(bottom)

    def value(position: float, lookup: Any) -> float:
        low = int(math.floor(position))
        high = min(low + 1, total - 1)
        frac = position - low
        return float(lookup(low) * (1 - frac) + lookup(high) * frac)

    hi = value((total - 1) * p / 100, lambda rank: desc[total - 1 - rank])  # rank counted from the smallest
    lo = value((total - 1) * (100 - p) / 100, lambda rank: asc[rank])
    return lo, hi


def _mse_range(hist: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    """The ``[a, b]`` (containing 0) minimising clipping error plus rounding noise ``(b - a)² / 255² / 12`` per value."""
    edges = np.linspace(lo, hi, MSE_BINS + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    n = hist.sum()
    if n == 0:
        return lo, hi
    candidates_hi = np.unique(np.concatenate([np.linspace(max(0.0, lo), hi, MSE_CANDIDATES), [hi]])) if hi > 0 else np.array([hi])
    candidates_lo = np.unique(np.concatenate([np.linspace(lo, min(0.0, hi), MSE_CANDIDATES), [lo]])) if lo < 0 else np.array([lo])
    h = hist.astype(np.float64)
    # clipping error of each candidate: sum over values beyond it of (value - candidate)²
    clip_hi = np.array([np.sum(h * np.square(np.maximum(centres - b, 0))) for b in candidates_hi])
    clip_lo = np.array([np.sum(h * np.square(np.maximum(a - centres, 0))) for a in candidates_lo])
    width = candidates_hi[None, :] - candidates_lo[:, None]
    rounding = n * np.square(width / 255) / 12
    total = clip_lo[:, None] + clip_hi[None, :] + rounding
    total[width <= 0] = np.inf
    i, j = np.unravel_index(int(np.argmin(total)), total.shape)
    return float(candidates_lo[i]), float(candidates_hi[j])


def apply_statistic(calibrated: bytes, samples: Sequence[Sequence[np.ndarray]], calibration: Calibration,
                    input_names: Sequence[str] = ()) -> tuple[bytes, list[RangeChange]]:
    """Replace the calibrated min/max of every activation tensor (not the model inputs) by ``calibration``'s statistic.

    Args:
        calibrated: the calibrate-only model (float, with per-tensor min/max).
        samples: the calibration samples, one array per model input each (batch of 1).
        calibration: the statistic; ``minmax`` returns ``calibrated`` unchanged.
        input_names: the signature name of each sample array, to feed inputs by name (else graph input order).

    Returns:
        The model with the new ranges, and the tensors whose range changed.
    """
    if calibration.method == "minmax":
        return calibrated, []
    fb = import_optional("ai_edge_litert.tools.flatbuffer_utils", _HINT)
    interpreter_module = import_optional("ai_edge_litert.interpreter", _HINT)
    model = fb.convert_bytearray_to_object(bytearray(calibrated))
    graph = model.subgraphs[0]
    inputs = {int(i) for i in graph.inputs}
    targets = {}
    for index, tensor in enumerate(graph.tensors):
        q = tensor.quantization
        if index in inputs or q is None or q.min is None or q.max is None or len(q.min) != 1:
            continue
        targets[index] = (float(q.min[0]), float(q.max[0]))
    if not targets:
        return calibrated, []
    with quiet_native_output(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
        interpreter = interpreter_module.Interpreter(model_content=calibrated, experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    order = _input_order(interpreter, graph, input_names)
    sizes = {i: int(np.prod(details[i]["shape"])) * len(samples) for i in targets}
    collectors = {i: _Collector(lo, hi, sizes[i], calibration) for i, (lo, hi) in targets.items()}
    input_details = interpreter.get_input_details()
    for sample in track(samples, f"Calibration statistics ({calibration})"):
        for detail, position in zip(input_details, order):
            interpreter.set_tensor(detail["index"], np.asarray(sample[position], dtype=detail["dtype"]))
        interpreter.invoke()
        for index, collector in collectors.items():
            collector.add(interpreter.get_tensor(index))
    changes = []
    for index, (lo, hi) in targets.items():
        new_lo, new_hi = collectors[index].range(sizes[index])
        new_lo, new_hi = min(new_lo, 0.0), max(new_hi, 0.0)  # int8 must represent 0 exactly
        if not new_hi - new_lo > 0 or not math.isfinite(new_hi - new_lo):
            continue  # a (nearly) constant tensor: keep min/max
        if (new_lo, new_hi) == (lo, hi):
            continue
        q = graph.tensors[index].quantization
        q.min = np.asarray([new_lo], dtype=np.float32)
        q.max = np.asarray([new_hi], dtype=np.float32)
        changes.append(RangeChange(_name(graph.tensors[index]), (lo, hi), (new_lo, new_hi)))
    log.info("%s changed the range of %d of %d activation tensors", calibration, len(changes), len(targets))
    return bytes(fb.convert_object_to_bytearray(model)), changes


def _name(tensor: Any) -> str:
    name = tensor.name
    return name.decode() if isinstance(name, bytes) else str(name)


def _input_order(interpreter: Any, graph: Any, names: Sequence[str] = ()) -> list[int]:
    """For each interpreter input, the position of the matching array in a sample.

    By signature name when ``names`` are given (the converter names input tensors ``serving_default_<name>:0``),
    else by graph input order.
    """
    details = interpreter.get_input_details()
    if names:
        found = [next((i for i, n in enumerate(names) if d["name"] in (n, f"serving_default_{n}:0")), None)
                 for d in details]
        if all(i is not None for i in found) and len(set(found)) == len(found):
            return found  # type: ignore[return-value]
    graph_inputs = [int(i) for i in graph.inputs]
    return [graph_inputs.index(d["index"]) if d["index"] in graph_inputs else n for n, d in enumerate(details)]


# ---------------------------------------------------------------------------------- quantizing
def quantize_calibrated(
    tf: Any,
    calibrated: bytes,
    io_type: str,
    denylisted_nodes: Sequence[str] = (),
    denylisted_ops: Sequence[str] = (),
    numeric_verify: bool = False,
) -> bytes:
    """Quantize a calibrated model with the MLIR quantizer, keeping the denylisted nodes/op types in float.

    Args:
        tf: the TensorFlow module.
        calibrated: the calibrate-only model, possibly with ranges from :func:`apply_statistic`.
        io_type: ``int8``, ``uint8`` or ``float32`` inputs/outputs.
        denylisted_nodes: output tensor names of ops to keep in float.
        denylisted_ops: op types to keep in float (``SOFTMAX``).
        numeric_verify: add the ``NumericVerify`` ops the quantization debugger reads (float IO).

    Raises:
        ConversionError: the quantizer failed.
    """
    from tensorflow.lite.python import convert as tfl_convert

    dtype = getattr(tf, io_type)
    with warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")
        try:
            model = tfl_convert.mlir_quantize(
                calibrated, input_data_type=tf.float32 if numeric_verify else dtype,
                output_data_type=tf.float32 if numeric_verify else dtype, enable_numeric_verify=numeric_verify,
                denylisted_ops=list(denylisted_ops) or None, denylisted_nodes=list(denylisted_nodes) or None,
            )
            return bytes(tfl_convert.deduplicate_readonly_buffers(model))
        except Exception as exc:  # noqa: BLE001 - the quantizer raises ConverterError, RuntimeError…
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ConversionError(f"the int8 quantizer failed on the calibrated model: {first}") from exc
