"""Verification after every conversion: the float model vs the converted model on the same samples."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from edgeq._flatbuffer import TFLiteFile
from edgeq._progress import track
from edgeq.errors import InferenceError
from edgeq.runtime.model import Model
from edgeq.runtime.output_stats import OutputStats, per_output, sqnr_db

from edgeq.converters.datasets import Sample
from edgeq.converters.sanity import float_outputs
from edgeq.converters.source import SourceModel

#: ops that only move data across the float/int boundary; not "left in float"
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}


@dataclass(frozen=True)
class Verification:
    """How far the converted model's outputs are from the float model's.

    Attributes:
        samples: how many samples were compared.
        held_out: whether they were kept apart from calibration.
        agreement: share of samples whose top-1 class matches (classifier outputs only, else ``None``).
        max_abs_error, mean_abs_error: over all outputs, after dequantization.
        sqnr_db: signal-to-quantization-noise ratio of the outputs (higher is better; ``inf`` = identical).
        size_before, size_after: bytes of the source model and of the ``.tflite``.
        float_ops: op types whose outputs stay float in the converted body, with counts.
        outputs: the same figures per output, matched by output name.
        data: where the compared samples came from (``--verify-data``, or the held-back part of ``--data``).
        float_accuracy, accuracy: top-1 of the float and the converted model, when the samples have labels.
        failed: samples on which the converted model failed to run (not compared).
    """

    samples: int
    held_out: bool
    agreement: float | None
    max_abs_error: float
    mean_abs_error: float
    sqnr_db: float
    size_before: int
    size_after: int
    float_ops: dict[str, int] = field(default_factory=dict)
    outputs: tuple[OutputStats, ...] = ()
    data: str = ""
    float_accuracy: float | None = None
    accuracy: float | None = None
    failed: int = 0

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before if self.size_before else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outputs"] = [o.to_dict() for o in self.outputs]
        d["size_ratio"] = self.size_ratio
        d["sqnr_db"] = self.sqnr_db if math.isfinite(self.sqnr_db) else None
        return d


def float_ops(file: TFLiteFile) -> dict[str, int]:
    """Op types of the main subgraph whose outputs are float, boundary QUANTIZE/DEQUANTIZE excluded."""
    sg = file.subgraphs[0]
    counts: dict[str, int] = {}
    for op in sg.operators:
        if op.op in _BOUNDARY_OPS:
            continue
        if any(i >= 0 and sg.tensors[i].dtype in ("FLOAT32", "FLOAT16") for i in op.outputs):
            counts[op.op] = counts.get(op.op, 0) + 1
    return dict(sorted(counts.items()))


#: ops with integer kernels that only move or select data; when one stays float it is not for want of a kernel
MOVEMENT_OPS = {"RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "GATHER", "SLICE", "STRIDED_SLICE",
                "PAD", "PADV2", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "TILE", "BROADCAST_TO", "SPACE_TO_DEPTH",
                "DEPTH_TO_SPACE", "MAX_POOL_2D"}


def float_causes(file: TFLiteFile, types: Sequence[str] | None = None) -> dict[str, dict[str, int]]:
    """Why each float op of the main subgraph is float, counted per op type.

    ``no kernel``: the int8 quantizer has no integer version (its float input comes from a DEQUANTIZE or the
    graph input); ``input``: it only stays float because another float op feeds it (a RESHAPE after a float NEG);
    ``run-time shape``/``other``: an op that has an integer kernel but was left float anyway (its shape operand
    is computed at run time, or for the quantizer's own reasons).
    """
    sg = file.subgraphs[0]
    producer = {t: op for op in sg.operators for t in op.outputs}
    floating = ("FLOAT32", "FLOAT16")
    causes: dict[str, dict[str, int]] = {}
    for op in sg.operators:
        if op.op in _BOUNDARY_OPS or (types is not None and op.op not in types):
            continue
        if not any(t >= 0 and sg.tensors[t].dtype in floating for t in op.outputs):
            continue
        fed = [producer.get(t) for t in op.inputs if t >= 0 and sg.tensors[t].dtype in floating and t in producer]
        if fed and all(f.op not in _BOUNDARY_OPS for f in fed):  # type: ignore[union-attr]
            cause = "input"
        elif op.op in MOVEMENT_OPS:
            dynamic = any(t in producer for t in op.inputs[1:] if t >= 0 and sg.tensors[t].dtype not in floating)
            cause = "run-time shape" if dynamic else "other"
        else:
            cause = "no kernel"
        per_type = causes.setdefault(cause, {})
        per_type[op.op] = per_type.get(op.op, 0) + 1
    return causes


def describe_float_ops(file: TFLiteFile, mode: str, types: Sequence[str]) -> str:
    """One line on the ops an integer mode would leave float, each with its true reason, and what to do."""
    causes = float_causes(file, types)
    text = lambda counts: ", ".join(f"{op}×{n}" for op, n in sorted(counts.items()))  # noqa: E731
    parts = []
    if "no kernel" in causes:
        parts.append(f"{text(causes['no kernel'])} (no integer kernel in the {mode} quantizer)")
    if "input" in causes:
        parts.append(f"{text(causes['input'])} (float only because their input is)")
    if "run-time shape" in causes:
        parts.append(f"{text(causes['run-time shape'])} (has an integer kernel; its shape is computed at run time)")
    if "other" in causes:
        parts.append(f"{text(causes['other'])} (has an integer kernel; left float by the quantizer)")
    keep = sorted({op for cause, counts in causes.items() if cause != "input" for op in counts})
    hint = (f"try --keep-float {','.join(keep)} (keeps them in float on purpose), --mode int16x8 or --mode dynamic"
            if mode in ("int8", "uint8") else "try --mode dynamic or float16")
    return f"cannot convert to {mode}: these ops would stay float: {'; '.join(parts)}; {hint}"


def is_classifier(outputs: Sequence[np.ndarray]) -> bool:
    """One output of shape (batch, classes) with several classes."""
    return len(outputs) == 1 and outputs[0].ndim == 2 and outputs[0].shape[1] > 1


def compare_outputs(reference: list[list[np.ndarray]], test: list[list[np.ndarray]]) -> dict[str, Any]:
    """Agreement, errors and SQNR between two lists of per-sample outputs."""
    ref = np.concatenate([np.concatenate([o.reshape(-1) for o in r]) for r in reference])
    out = np.concatenate([np.concatenate([o.reshape(-1) for o in t]) for t in test])
    err = np.abs(ref.astype(np.float64) - out)
    agreement = None
    if is_classifier(reference[0]):
        agreement = float(np.mean([np.argmax(r[0]) == np.argmax(t[0]) for r, t in zip(reference, test)]))
    return {"agreement": agreement, "max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
            "sqnr_db": sqnr_db(ref, out)}


def verify(source: SourceModel, model: Model, samples: list[Sample], held_out: bool, labels: np.ndarray | None = None,
           data: str = "", expected: Sequence[dict[str, np.ndarray]] | None = None) -> Verification:
    """Run both models on ``samples`` (fed by input name) and measure how far apart their outputs are.

    Args:
        source: the float model.
        model: the converted model.
        samples: one array per input each, in ``source.inputs`` order.
        held_out: whether the samples were kept apart from calibration.
        labels: the class index of each sample, to report float and converted top-1 accuracy.
        data: where the samples came from.
        expected: the float model's named outputs on ``samples``, when already computed
            (:func:`~edgeq.converters.sanity.float_outputs`); else computed here.

    Samples the converted model fails to run on are counted in ``failed`` and left out of the figures.
    """
    if expected is None:
        expected = float_outputs(source, samples, "Float model on the verification samples")
    reference, test, kept = [], [], []
    for i, sample in enumerate(track(samples, "Verifying against the float model")):
        try:
            outputs = model.predict({spec.name: array for spec, array in zip(source.inputs, sample)})
        except InferenceError:
            continue
        reference.append(expected[i])
        test.append(outputs)
        kept.append(i)
    if not reference:
        raise InferenceError(f"the converted model failed to run on every one of the {len(samples)} verification samples")
    names = list(reference[0])
    stats = compare_outputs([[r[n] for n in names] for r in reference], [[t[n] for n in names] for t in test])
    float_accuracy = accuracy = None
    if labels is not None and len(names) >= 1:
        truth = np.asarray(labels)[kept]
        float_accuracy = float(np.mean([np.argmax(r[names[0]]) == y for r, y in zip(reference, truth)]))
        accuracy = float(np.mean([np.argmax(t[names[0]]) == y for t, y in zip(test, truth)]))
    return Verification(
        samples=len(reference), held_out=held_out, size_before=source.size_bytes(), size_after=model.size_bytes,
        float_ops=float_ops(model.file), outputs=tuple(per_output(reference, test)), data=data,
        float_accuracy=float_accuracy, accuracy=accuracy, failed=len(samples) - len(reference), **stats,
    )
