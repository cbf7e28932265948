"""How far one model's outputs are from another's: per output and over all outputs (numpy only).

Shared by verification after a conversion (``edgeq.converters.verify``), ``eval --reference`` and any
other place that compares two models on the same samples, so every command computes the figures the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """``10 log10(sum(ref²) / sum((ref - test)²))``; ``inf`` when identical, ``-inf`` for an all-zero reference."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((ref - np.asarray(test, dtype=np.float64)) ** 2))
    signal = float(np.sum(ref**2))
    if noise == 0:
        return float("inf")
    return 10 * math.log10(signal / noise) if signal > 0 else float("-inf")


def looks_like_scores(output: np.ndarray) -> bool:
    """A per-sample score vector: shape ``(batch, classes)`` with several classes (or ``(classes,)``)."""
    return (output.ndim == 2 and output.shape[1] > 1) or (output.ndim == 1 and output.shape[0] > 1)


@dataclass(frozen=True)
class OutputStats:
    """One output of two models compared over the same samples.

    Attributes:
        name: the output's name.
        sqnr_db: signal-to-quantization-noise ratio (``inf`` = identical).
        mean_abs_error, max_abs_error: over every value of this output.
        agreement: share of samples whose argmax matches, for outputs that look like score vectors, else ``None``.
    """

    name: str
    sqnr_db: float
    mean_abs_error: float
    max_abs_error: float
    agreement: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sqnr_db": self.sqnr_db if math.isfinite(self.sqnr_db) else None,
                "mean_abs_error": self.mean_abs_error, "max_abs_error": self.max_abs_error,
                "agreement": self.agreement}


def per_output(reference: Sequence[Mapping[str, np.ndarray]], test: Sequence[Mapping[str, np.ndarray]]) -> list[OutputStats]:
    """Compare two equally long lists of per-sample outputs (``name -> array``), output by output.

    Outputs are matched by name (the reference's order). Raises ``ValueError`` when the lists differ in
    length or a name is missing from ``test``.
    """
    if len(reference) != len(test) or not reference:
        raise ValueError(f"expected two equally long, non-empty lists of outputs; received {len(reference)} and {len(test)}")
    stats = []
    for name in reference[0]:
        if any(name not in t for t in test):
            raise ValueError(f"output {name!r} is missing from the compared outputs")
        ref = [np.asarray(r[name], dtype=np.float64) for r in reference]
        out = [np.asarray(t[name], dtype=np.float64) for t in test]
        flat_ref = np.concatenate([r.reshape(-1) for r in ref])
        flat_out = np.concatenate([o.reshape(-1) for o in out])
        err = np.abs(flat_ref - flat_out)
        agreement = None
        if looks_like_scores(ref[0]):
            hits = [np.array_equal(np.argmax(r.reshape(-1, r.shape[-1]), -1), np.argmax(o.reshape(-1, o.shape[-1]), -1))
                    for r, o in zip(ref, out)]
            agreement = float(np.mean(hits))
        stats.append(OutputStats(name, sqnr_db(flat_ref, flat_out), float(err.mean()) if err.size else 0.0,
                                 float(err.max()) if err.size else 0.0, agreement))
    return stats
