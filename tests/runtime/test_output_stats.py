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
    ref[1]["scores"] = np.array([[0.9, 0.1, 0.2, 0.3, 0.4]])
    test[1]["scores"] = ref[1]["scores"][:, ::-1].copy()  # one of four samples moves its argmax from 0 to 4
    stats = {s.name: s for s in per_output(ref, test)}
    assert [s.name for s in per_output(ref, test)] == ["scores", "boxes"]
    boxes = np.concatenate([r["boxes"].ravel() for r in ref])
    assert stats["boxes"].mean_abs_error == pytest.approx(0.1)
    assert stats["boxes"].sqnr_db == pytest.approx(10 * math.log10(np.sum(boxes**2) / (boxes.size * 0.01)))
    assert stats["boxes"].agreement is not None  # (1, 4) looks like a score vector too
    assert stats["boxes"].max_abs_error == pytest.approx(0.1)
    assert stats["scores"].agreement == 0.75
    assert stats["scores"].max_abs_error == pytest.approx(0.9 - 0.4)  # 0.9 vs 0.4 at both ends
    assert stats["scores"].mean_abs_error == pytest.approx((0.5 + 0.2 + 0 + 0.2 + 0.5) / (4 * 5))
    scores = np.concatenate([r["scores"].ravel() for r in ref])
    assert stats["scores"].sqnr_db == pytest.approx(10 * math.log10(np.sum(scores**2) / (0.25 * 2 + 0.04 * 2)))
    assert stats["scores"].to_dict()["name"] == "scores"


def test_per_output_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError, match="equally long"):
        per_output([{"a": np.zeros(1)}], [])
    with pytest.raises(ValueError, match="missing"):
        per_output([{"a": np.zeros(1)}], [{"b": np.zeros(1)}])


def test_agreement_of_batched_scores_counts_a_sample_only_when_every_row_matches() -> None:
    ref = [{"s": np.array([[1.0, 0.0], [0.0, 1.0]])}, {"s": np.array([[1.0, 0.0], [1.0, 0.0]])}]
    test = [{"s": np.array([[1.0, 0.0], [1.0, 0.0]])}, {"s": np.array([[1.0, 0.0], [1.0, 0.0]])}]  # row 2 of 1 moves
    (stats,) = per_output(ref, test)
    assert stats.agreement == 0.5 and stats.max_abs_error == 1.0 and stats.mean_abs_error == 2 / 8
    assert stats.sqnr_db == pytest.approx(10 * math.log10(4 / 2))
    assert per_output([{"v": np.array([2.0])}], [{"v": np.array([1.0])}])[0].agreement is None  # not scores
    assert stats.to_dict()["sqnr_db"] == pytest.approx(stats.sqnr_db)
    assert per_output(ref, ref)[0].to_dict()["sqnr_db"] is None  # infinite: JSON has no inf
