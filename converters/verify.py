"""Verification after every conversion: the float model vs the converted model on the same samples."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from edgeq._flatbuffer import TFLiteFile
from edgeq._progress import track
from edgeq.runtime.model import Model
from edgeq.runtime.output_stats import sqnr_db

from edgeq.converters.datasets import Sample
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

    @property
    def size_ratio(self) -> float:
        return self.size_after / self.size_before if self.size_before else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
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


def verify(source: SourceModel, model: Model, samples: list[Sample], held_out: bool) -> Verification:
    """Run both models on ``samples`` and measure how far apart their outputs are."""
    reference, test = [], []
    for sample in track(samples, "Verifying against the float model"):
        reference.append(source.predict(sample))
        test.append(list(model.predict(sample if len(sample) > 1 else sample[0]).values()))
    stats = compare_outputs(reference, test)
    return Verification(
        samples=len(samples), held_out=held_out, size_before=source.size_bytes(), size_after=model.size_bytes,
        float_ops=float_ops(model.file), **stats,
    )
