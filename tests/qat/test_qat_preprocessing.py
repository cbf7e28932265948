"""``edgeq qat`` trains on what the model's own input layers expect, and embeds exactly that for the runtime.

The model starts with ``Rescaling(1/255)``: it was trained on raw 0–255 pixels. Fine-tuned on pixels / 255 (the
old fixed default) it learns near-black images, and the exported model's embedded preprocessing divides a camera
frame by 255 before its own Rescaling does it again: ``edgeq run`` on a raw image gives a near-constant answer.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq.cli import main
from edgeq.metadata import read_metadata
from edgeq.runtime import Model

pytestmark = pytest.mark.tf


def test_qat_trains_on_and_embeds_raw_pixels_for_a_model_that_rescales_them(raw_pixel_classifier, tmp_path):
    import keras

    out = tmp_path / "qat.tflite"
    result = edgeq.qat(raw_pixel_classifier.keras, raw_pixel_classifier.images, out, epochs=1, batch_size=8)
    lite = Model(out)
    raw = raw_pixel_classifier.pixels
    got = np.concatenate([next(iter(lite.predict(image.astype(np.uint8)).values())) for image in raw])
    want = keras.models.load_model(raw_pixel_classifier.keras, compile=False).predict(raw, verbose=0)
    assert np.array_equal(np.argmax(got, axis=1), np.argmax(want, axis=1)), (got, want)
    assert np.array_equal(np.argmax(got, axis=1), raw_pixel_classifier.labels)
    assert np.abs(got - want).max() < 0.05  # a few int8 output steps, not another model's scores
    meta = read_metadata(out)
    assert meta.preprocess.scale == 1.0 and meta.preprocess.mean == (0.0,) and meta.preprocess.std == (1.0,)
    decision = meta.source["preprocessing"]
    assert decision["decided_by"] == "model" and decision["normalize"] == "raw"
    assert "Rescaling(scale=0.003922" in decision["reason"]
    assert result.to_dict()["metadata"]["source"]["preprocessing"] == decision


def test_contradicting_normalize_is_refused_unless_forced(raw_pixel_classifier, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the table's preprocessing row unwrapped
    args = ["qat", str(raw_pixel_classifier.keras), "--train", str(raw_pixel_classifier.images), "--epochs", "1",
            "--normalize", "0,1"]
    assert main([*args, "--out", str(tmp_path / "refused.tflite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("UsageError: --normalize 0,1 contradicts the model: the model normalises its input itself")
    assert "--force-normalize" in err and not (tmp_path / "refused.tflite").exists()

    assert main([*args, "--force-normalize", "--out", str(tmp_path / "forced.tflite")]) == 0
    out = capsys.readouterr().out
    assert "--normalize 0,1 (option): given with --normalize (--force-normalize over the model's own: " in out
    meta = read_metadata(tmp_path / "forced.tflite")
    assert meta.preprocess.scale == pytest.approx(1 / 255) and meta.source["preprocessing"]["decided_by"] == "option"
