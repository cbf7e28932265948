"""Per-output comparison figures against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeq.runtime.output_stats import per_output, sqnr_db


def test_sqnr_known_values() -> None:
    ref = np.array([3.0, 4.0])  # signal 25
    assert sqnr_db(ref, ref) == math.inf
    assert sqnr_db(ref, ref + np.array([0.5, 0.0])) == pytest.approx(10 * math.log10(25 / 0.25))
    assert sqnr_db(np.zeros(2), np.ones(2)) == -math.inf


def test_per_output_separates_a_bad_output_from_a_good_one() -> None:
    rng = np.random.default_rng(0)
    ref = [{"scores": rng.random((1, 5)), "boxes": rng.random((1, 4))} for _ in range(4)]
    test = [{"boxes": r["boxes"] + 0.1, "scores": r["scores"].copy()} for r in ref]  # other order: matched by name
    test[1]["scores"] = test[1]["scores"][:, ::-1].copy()  # one of four samples changes its argmax (if not symmetric)
    stats = {s.name: s for s in per_output(ref, test)}
    assert [s.name for s in per_output(ref, test)] == ["scores", "boxes"]
    boxes = np.concatenate([r["boxes"].ravel() for r in ref])
    assert stats["boxes"].mean_abs_error == pytest.approx(0.1)
    assert stats["boxes"].sqnr_db == pytest.approx(10 * math.log10(np.sum(boxes**2) / (boxes.size * 0.01)))
    assert stats["boxes"].agreement is not None  # (1, 4) looks like a score vector too
    flipped = np.argmax(ref[1]["scores"]) != np.argmax(ref[1]["scores"][:, ::-1])
    assert stats["scores"].agreement == pytest.approx(0.75 if flipped else 1.0)
    assert stats["scores"].to_dict()["name"] == "scores"


def test_per_output_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="equally long"):
        per_output([{"a": np.zeros(1)}], [])
    with pytest.raises(ValueError, match="missing"):
        per_output([{"a": np.zeros(1)}], [{"b": np.zeros(1)}])
