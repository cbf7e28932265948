"""``edgeq eval`` / ``edgeq.evaluate``: figures checked against hand-computed ones; data forms; class mapping; bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.cli import main
from edgeq.errors import DataError
from edgeq.runtime import Model
from edgeq.runtime.evaluate import map_classes, read_labelled
from support import SAMPLE_EVAL, SAMPLE_MODEL, error_line, run_cli

LABELS = ("cat", "dog", "bird", "fish", "frog", "newt")
# Scores fed to a softmax model (its prediction is the arg-max by construction) and true classes.
# Hand-computed: predictions 0 1 1 1 2 5 3 0 → top-1 5/8 (wrong: #1, #5, #7). Top-5 of 6 classes misses a
# sample only when its class has the lowest score: #1 (class 0 scores 0) and #7 (class 3 scores 1) → 6/8.
SCORES = np.array([
    [9, 1, 2, 3, 4, 5],
    [0, 9, 1, 2, 3, 4],
    [1, 9, 2, 3, 4, 5],
    [1, 9, 0, 2, 3, 4],
    [1, 2, 9, 3, 4, 5],
    [1, 2, 3, 4, 5, 9],
    [1, 2, 3, 9, 4, 5],
    [9, 2, 3, 1, 4, 5],
], dtype=np.float32)
TRUE = np.array([0, 0, 1, 1, 2, 2, 3, 3])


@pytest.fixture(scope="module")
def scores_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("npz") / "scores.npz"
    np.savez(path, x=SCORES, y=TRUE)
    return path


def test_figures_match_hand_computed(softmax_model, scores_npz):
    result = edgeq.evaluate(softmax_model(6, LABELS), scores_npz)
    assert result.samples == 8 and result.k == 5 and result.mapping == "indices"
    assert result.top1 == pytest.approx(5 / 8)
    assert result.top5 == pytest.approx(6 / 8)
    assert [(c.name, c.samples, c.correct) for c in result.per_class] == [
        ("cat", 2, 1), ("dog", 2, 2), ("bird", 2, 1), ("fish", 2, 1)]
    expected = np.zeros((6, 6), int)
    for t, p in [(0, 0), (0, 1), (1, 1), (1, 1), (2, 2), (2, 5), (3, 3), (3, 0)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(result.confusion, expected)
    assert set(result.most_confused()) == {("cat", "dog", 1), ("bird", "newt", 1), ("fish", "cat", 1)}


def test_string_labels_map_through_the_model_labels(softmax_model, tmp_path):
    path = tmp_path / "named.npz"
    np.savez(path, x=SCORES, y=np.array([LABELS[i].upper() for i in TRUE]))  # case and punctuation do not matter
    result = edgeq.evaluate(softmax_model(6, LABELS), path)
    assert result.mapping == "labels" and result.top1 == pytest.approx(5 / 8)


def test_identical_reference(softmax_model, scores_npz):
    model = softmax_model(6, LABELS)
    ref = edgeq.evaluate(model, scores_npz, reference=model).reference
    assert ref.top1 == pytest.approx(5 / 8) and ref.drop_points == 0 and ref.agreement == 1
    assert math.isinf(ref.sqnr_db)


def test_reference_with_another_input_shape_is_refused(softmax_model, scores_npz):
    with pytest.raises(DataError, match=r"reference softmax_5_0.tflite takes input \[\[1, 5\]\] but softmax_6_6.tflite takes \[1, 6\]"):
        edgeq.evaluate(softmax_model(6, LABELS), scores_npz, reference=softmax_model(5))


def test_class_indices_beyond_the_model_are_refused(softmax_model, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x=SCORES[:, :4], y=TRUE + 1)  # 4-class model, labels up to 4
    with pytest.raises(DataError, match=r"class indices 1\.\.4 but the model has 4 classes"):
        edgeq.evaluate(softmax_model(4), path)


def test_class_mapping_rules():
    labels = ("T-shirt/top", "Trouser", "Ankle boot")
    assert map_classes(["2_ankle_boot", "0_tshirt_top", "1_trouser"], labels, 3) == ([2, 0, 1], "labels")
    assert map_classes(["2_botas", "0_camiseta"], labels, 3) == ([2, 0], "index")
    assert map_classes(["b", "a", "c"], labels, 3) == ([1, 0, 2], "order")
    with pytest.raises(DataError, match=r"the data has 2 classes \(a, b\) but the model outputs 3 classes"):
        map_classes(["a", "b"], labels, 3)


# ------------------------------------------------------------------- the bundled sample: folders and CSV
@pytest.fixture(scope="module")
def sample_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 images of each of 4 classes of the bundled eval set, in folders named like the labels but reordered."""
    root = tmp_path_factory.mktemp("subset")
    for folder, name in (("9_ankle_boot", "Ankle boot"), ("1_trouser", "trouser"), ("6_shirt", "SHIRT"),
                         ("0_tshirt_top", "t-shirt top")):
        (root / name).mkdir()
        for image in sorted((SAMPLE_EVAL / folder).iterdir())[:3]:
            shutil.copy(image, root / name / image.name)
    return root


def _by_hand(folder: Path) -> tuple[float, dict[str, int]]:
    model = Model(SAMPLE_MODEL)
    correct, per_class = 0, {}
    for class_dir in sorted(folder.iterdir()):
        if not class_dir.is_dir():
            continue
        true = [i for i, label in enumerate(model.labels) if label.lower().replace("-", " ").replace("/", " ") ==
                class_dir.name.lower().replace("-", " ")][0]
        hits = sum(int(np.argmax(model.predict(p)["output_0"]) == true) for p in sorted(class_dir.iterdir()))
        correct += hits
        per_class[model.labels[true]] = hits
    return correct / 12, per_class


def test_class_folders_named_like_the_labels(sample_subset):
    result = edgeq.evaluate(SAMPLE_MODEL, sample_subset)
    top1, per_class = _by_hand(sample_subset)
    assert result.mapping == "labels" and result.samples == 12
    assert result.top1 == pytest.approx(top1)
    assert {c.name: c.correct for c in result.per_class} == per_class


def test_images_with_a_labels_csv_give_the_same_figures(sample_subset, tmp_path):
    folder = edgeq.evaluate(SAMPLE_MODEL, sample_subset)
    rows = ["image,label"] + [f"{p.relative_to(sample_subset)},{p.parent.name}" for p in sorted(sample_subset.rglob("*.png"))]
    csv_path = sample_subset / "list.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    try:
        from_csv = edgeq.evaluate(SAMPLE_MODEL, csv_path)
    finally:
        csv_path.unlink()
    assert from_csv.top1 == folder.top1 and from_csv.samples == 12
    np.testing.assert_array_equal(from_csv.confusion, folder.confusion)


def test_unknown_class_folders_with_another_count_are_refused(tmp_path):
    for name in ("apples", "pears", "plums"):
        (tmp_path / name).mkdir()
        shutil.copy(next((SAMPLE_EVAL / "0_tshirt_top").iterdir()), tmp_path / name / "a.png")
    with pytest.raises(DataError, match=r"3 classes \(apples, pears, plums\) but the model outputs 10 classes.*T-shirt/top"):
        read_labelled(tmp_path, Model(SAMPLE_MODEL).labels, 10)


# -------------------------------------------------------------------------------------------- CLI
def test_cli_json_and_table(softmax_model, scores_npz, capsys):
    model = softmax_model(6, LABELS)
    assert main(["eval", str(model), "--data", str(scores_npz), "--reference", str(model), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["top1"] == pytest.approx(5 / 8) and out["top5"] == pytest.approx(6 / 8)
    assert out["reference"]["agreement"] == 1 and out["reference"]["sqnr_db"] is None  # identical: infinite SQNR
    assert main(["eval", str(model), "--data", str(scores_npz)]) == 0
    text = capsys.readouterr().out
    assert "62.50 %" in text and "75.00 %" in text and "Per class" in text and "most confused" in text


def test_cli_bad_input_is_one_line_exit_2(softmax_model, scores_npz, tmp_path):
    proc = run_cli("eval", str(softmax_model(6, LABELS)), "--data", str(scores_npz), "--reference",
                   str(softmax_model(5)), block_tf=True)
    assert proc.returncode == 2
    assert error_line(proc).startswith("DataError: the reference softmax_5_0.tflite takes input")
    proc = run_cli("eval", str(softmax_model(6)), "--data", str(tmp_path / "missing"), block_tf=True)
    assert proc.returncode == 2 and error_line(proc) == f"DataError: labelled data not found: {tmp_path / 'missing'}"
