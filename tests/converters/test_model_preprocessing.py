"""Preprocessing from the model: models that normalise their own input convert right with default options.

Two small classifiers are trained here, on real images (the bundled Fashion-MNIST sample), with the
normalisation inside the model: ``Rescaling(1/255)`` and an adapted ``Normalization``. Converted with
default options, their int8 models must score like the Keras models on held-back images; the old default
(pixels / 255 on top of the model's own scaling) made both models agree on garbage.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.cli import main
from edgeq.errors import CheckFailed, UsageError
from edgeq.metadata import read_metadata
from edgeq.runtime.evaluate import evaluate

pytestmark = pytest.mark.tf

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist"
#: per class: the first TRAIN_PER_CLASS eval images train (with calib/), the next HELD_PER_CLASS are held back
TRAIN_PER_CLASS, HELD_PER_CLASS = 40, 30


def _pixels(paths: list[Path]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(p), dtype=np.float32)[:, :, None] for p in paths])


@pytest.fixture(scope="module")
def fashion(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Training pixels/labels (raw 0–255) and a held-back class-folder tree of images never trained on."""
    root = tmp_path_factory.mktemp("fashion")
    held = root / "held"
    train_paths, train_labels, held_paths, held_labels = [], [], [], []
    for label, folder in enumerate(sorted(p for p in (SAMPLE / "eval").iterdir() if p.is_dir())):
        files = sorted(folder.glob("*.png"))
        train_paths += files[:TRAIN_PER_CLASS]
        train_labels += [label] * TRAIN_PER_CLASS
        (held / folder.name).mkdir(parents=True)
        for f in files[TRAIN_PER_CLASS:TRAIN_PER_CLASS + HELD_PER_CLASS]:
            shutil.copy(f, held / folder.name / f.name)
            held_paths.append(f)
            held_labels.append(label)
    return {"x": _pixels(train_paths), "y": np.asarray(train_labels), "held": held,
            "held_x": _pixels(held_paths), "held_y": np.asarray(held_labels)}


def _train(first_layers: list, x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), *first_layers,
                              keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.MaxPooling2D(),
                              keras.layers.Conv2D(16, 3, activation="relu"), keras.layers.MaxPooling2D(),
                              keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=12, batch_size=32, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="module")
def rescaling_model(fashion, tmp_path_factory) -> Path:
    import keras

    return _train([keras.layers.Rescaling(1 / 255)], fashion["x"], fashion["y"],
                  tmp_path_factory.mktemp("rescaling") / "model.keras")


@pytest.fixture(scope="module")
def normalization_model(fashion, tmp_path_factory) -> Path:
    import keras

    norm = keras.layers.Normalization(axis=None)
    norm.adapt(fashion["x"])  # adapted on raw pixels: mean ~73, std ~90
    return _train([norm], fashion["x"], fashion["y"], tmp_path_factory.mktemp("normalization") / "model.keras")


def _keras_correct(path: Path, fashion) -> int:
    import keras

    scores = keras.models.load_model(path, compile=False).predict(fashion["held_x"], verbose=0)
    return int(np.sum(np.argmax(scores, axis=1) == fashion["held_y"]))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["rescaling_model", "normalization_model"])
def test_default_options_feed_what_the_model_expects(which, fashion, request, tmp_path):
    model = request.getfixturevalue(which)
    out = tmp_path / "m.tflite"
    result = edgeq.convert(model, SAMPLE / "calib", out)
    decision = read_metadata(out).source["preprocessing"]
    assert decision["decided_by"] == "model" and decision["normalize"] == "raw"
    assert ("Rescaling" if which == "rescaling_model" else "Normalization") in decision["reason"]
    pp = read_metadata(out).preprocess
    assert pp.scale == 1.0 and pp.mean == (0.0,) and pp.std == (1.0,)  # the runtime feeds 0–255 too
    assert result.checks == []
    assert result.verification.held_out and result.verification.samples == 40  # 200 images: 160 calibrate
    keras_correct = _keras_correct(model, fashion)
    held = len(fashion["held_y"])
    assert keras_correct / held > 0.6  # the model learned something: the comparison below means something
    int8 = evaluate(out, fashion["held"])
    assert abs(round(int8.top1 * held) - keras_correct) <= 1, (int8.top1 * held, keras_correct)


def test_contradicting_normalize_is_refused_then_flagged(rescaling_model, tmp_path, capsys):
    with pytest.raises(UsageError, match="contradicts the model.*Rescaling.*--force-normalize"):
        edgeq.convert(rescaling_model, SAMPLE / "calib", tmp_path / "a.tflite", normalize="0,1")
    assert not (tmp_path / "a.tflite").exists()
    assert main(["convert", str(rescaling_model), "--data", str(SAMPLE / "calib"), "--normalize", "0,1",
                 "--out", str(tmp_path / "b.tflite")]) == 2
    assert "--force-normalize" in capsys.readouterr().err
    # forced: pixels / 255 / 255 → the float model is degenerate, and the check says so (table and --json)
    assert main(["convert", str(rescaling_model), "--data", str(SAMPLE / "calib"), "--normalize", "0,1",
                 "--force-normalize", "--out", str(tmp_path / "c.tflite"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert any("check --normalize" in c for c in report["checks"]), report["checks"]
    assert report["metadata"]["source"]["preprocessing"]["decided_by"] == "option"
    with pytest.raises(CheckFailed, match="--strict"):
        edgeq.convert(rescaling_model, SAMPLE / "calib", tmp_path / "d.tflite", normalize="0,1",
                      force_normalize=True, strict=True)
    assert not (tmp_path / "d.tflite").exists()


def test_explicit_normalize_agreeing_with_the_model_is_accepted(rescaling_model, tmp_path):
    result = edgeq.convert(rescaling_model, SAMPLE / "calib", tmp_path / "m.tflite", normalize="raw", samples=50)
    assert result.metadata.source["preprocessing"]["decided_by"] == "option" and result.checks == []


def test_model_without_preprocessing_keeps_the_0_1_default(tmp_path):
    result = edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", tmp_path / "m.tflite", samples=50)
    assert result.metadata.source["preprocessing"]["decided_by"] == "default"
    assert result.metadata.preprocess.scale == pytest.approx(1 / 255)
    assert result.checks == [] and result.verification.agreement >= 0.95
