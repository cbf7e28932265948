"""Conversions you can trust: sanity checks that can fail, held-back verification, every input and output by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.cli import main
from edgeq.converters.sanity import degenerate_outputs
from edgeq.errors import CheckFailed, DataError
from edgeq.runtime import Model

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist"


# ------------------------------------------------------------------------------ degenerate outputs (numpy only)
def _scores(classes: list[int], n_classes: int = 10) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for c in classes:
        s = rng.random((1, n_classes)) * 0.1
        s[0, c] = 1.0
        out.append({"output_0": s})
    return out


def test_one_class_for_nearly_everything_is_degenerate():
    assert degenerate_outputs(_scores([3] * 45 + [1] * 5))  # 90 %
    assert not degenerate_outputs(_scores([3] * 44 + [1] * 6))  # 88 %
    assert not degenerate_outputs(_scores(list(range(10)) * 5))


def test_constant_outputs_are_degenerate_and_varying_ones_are_not():
    rng = np.random.default_rng(1)
    constant = [{"y": np.full((1, 4), 2.0) + rng.normal(0, 1e-5, (1, 4))} for _ in range(20)]
    varying = [{"y": rng.normal(0, 1, (1, 4))} for _ in range(20)]
    assert "nearly constant" in degenerate_outputs(constant)[0]
    assert degenerate_outputs(varying) == []
    assert degenerate_outputs(constant[:5]) == []  # too few samples to say


# ------------------------------------------------------------------------------------- with TensorFlow
@pytest.mark.tf
def test_images_that_do_not_fit_the_input_are_flagged(keras_files, tmp_path):
    """28x28 grayscale Fashion-MNIST into a 16x16 RGB model: the table says so; --strict refuses."""
    result = edgeq.convert(keras_files["keras"], SAMPLE / "calib", tmp_path / "m.tflite", samples=20, holdout=10)
    assert any("resized 28x28 grayscale → 16x16 RGB (30 of 30 images)" in c for c in result.checks), result.checks
    assert result.checks[0] in result.warnings
    with pytest.raises(CheckFailed, match="--strict: data: resized 28x28 grayscale"):
        edgeq.convert(keras_files["keras"], SAMPLE / "calib", tmp_path / "s.tflite", samples=20, holdout=10, strict=True)
    assert not (tmp_path / "s.tflite").exists()


@pytest.mark.tf
@pytest.mark.slow
def test_holdout_and_labelled_verify_data(tmp_path, capsys):
    out = tmp_path / "m.tflite"
    result = edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", out, holdout=50)
    assert result.metadata.quant.calibration["samples"] == 150 and result.verification.samples == 50
    assert result.verification.held_out and result.verification.accuracy is None
    with pytest.raises(DataError, match="--holdout 200"):
        edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", tmp_path / "x.tflite", holdout=200)
    # labelled verification data: float and int8 accuracy, measured on images calibration never saw
    assert main(["convert", str(SAMPLE / "model.keras"), "--data", str(SAMPLE / "calib"), "--samples", "100",
                 "--verify-data", str(SAMPLE / "eval"), "--out", str(tmp_path / "v.tflite"), "--json"]) == 0
    v = json.loads(capsys.readouterr().out)["verification"]
    assert v["samples"] == 1000 and v["held_out"] and v["data"].endswith("eval")
    assert v["float_accuracy"] == pytest.approx(0.915, abs=0.002)  # samples/fashion_mnist/README.md: 91.5 %
    assert abs(v["accuracy"] - v["float_accuracy"]) <= 0.01
    assert [o["name"] for o in v["outputs"]] == ["output_0"] and v["outputs"][0]["agreement"] == v["agreement"]
    same = edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", tmp_path / "s.tflite", samples=20,
                         verify_data=SAMPLE / "calib")  # the calibration images themselves: not held out
    assert same.verification.samples == 200 and not same.verification.held_out


def _two_input_model(path: Path):  # type: ignore[no-untyped-def]
    """Image + feature vector → class scores + a regression value. Input names sort opposite to Keras order."""
    import keras

    keras.utils.set_random_seed(0)
    image = keras.Input((8, 8, 3), name="zimage")
    features = keras.Input((5,), name="afeat")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(4, activation="relu")(features)])
    scores = keras.layers.Dense(4, activation="softmax", name="scores")(x)
    value = keras.layers.Dense(1, name="value")(features)
    model = keras.Model([image, features], [scores, value])
    rng = np.random.default_rng(0)
    xi, xf = rng.random((64, 8, 8, 3), dtype=np.float32), rng.random((64, 5), dtype=np.float32) * 4
    y = (xf[:, 0] > 2).astype(int) + 2 * (xi.mean(axis=(1, 2, 3)) > 0.5)
    model.compile("adam", ["sparse_categorical_crossentropy", "mse"])
    model.fit([xi, xf], [y, xf.sum(axis=1, keepdims=True)], epochs=3, verbose=0)
    model.save(path)
    return model, xi, xf


@pytest.mark.tf
def test_two_input_model_by_npz_names_and_by_keras_order_tuples(tmp_path, monkeypatch):
    model, xi, xf = _two_input_model(tmp_path / "two.keras")
    np.savez(tmp_path / "data.npz", zimage=xi, afeat=xf)
    (tmp_path / "twodata.py").write_text(
        "import numpy as np\n"
        "def samples():\n"
        "    d = np.load('data.npz')\n"
        "    for i in range(len(d['afeat'])):\n"
        "        yield d['zimage'][i], d['afeat'][i]   # Keras order: image first\n")
    monkeypatch.chdir(tmp_path)
    keras_out = model([xi[:8], xf[:8]])
    for data in (tmp_path / "data.npz", "py:twodata:samples"):
        out = tmp_path / f"m{len(str(data))}.tflite"
        result = edgeq.convert(tmp_path / "two.keras", data, out, samples=40)
        v = result.verification
        assert [o.name for o in v.outputs] == ["output_0", "output_1"]
        scores, value = v.outputs
        assert scores.agreement is not None and scores.agreement >= 0.9 and scores.sqnr_db > 15
        assert value.agreement is None and value.sqnr_db > 15
        assert [i["name"] for i in result.metadata.quant.calibration["inputs"]] == ["zimage", "afeat"]
        assert result.metadata.quant.calibration["inputs"][1]["max"] > 3  # the features' range, not the image's
        converted = Model(out)
        got = converted.predict({"afeat": xf[:8], "zimage": xi[:8]})
        np.testing.assert_allclose(got["output_1"], np.asarray(keras_out[1]), atol=0.25)
        assert np.mean(np.argmax(got["output_0"], 1) == np.argmax(np.asarray(keras_out[0]), 1)) >= 0.85


@pytest.mark.tf
def test_subclassed_keras_file_says_how_to_convert_it(tmp_path, capsys):
    import keras

    class Tiny(keras.Model):
        def __init__(self, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(2)

        def call(self, x):  # type: ignore[no-untyped-def]
            return self.dense(x)

    Tiny.__module__ = "edgeq_tests_gone"  # the defining code is not importable where the file is converted
    model = Tiny()
    model(np.zeros((1, 3), np.float32))
    model.save(tmp_path / "sub.keras")
    assert main(["convert", str(tmp_path / "sub.keras"), "--mode", "float16", "--out", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "custom (subclassed) class" in err and "model.export('saved_model_dir')" in err
    assert "Traceback" not in err and not (tmp_path / "m.tflite").exists()


@pytest.mark.tf
def test_keep_float_goes_on_when_the_full_int8_row_crashes(tmp_path):
    """``(x - min) / (max - min + 1e-3)``: in full int8 the denominator of a constant input rounds to 0 (DIV crashes)."""
    import keras

    class MinMaxScale(keras.layers.Layer):
        def call(self, x):  # type: ignore[no-untyped-def]
            low = keras.ops.min(x, axis=-1, keepdims=True)
            return (x - low) / (keras.ops.max(x, axis=-1, keepdims=True) - low + 1e-3)

    keras.utils.set_random_seed(0)
    inp = keras.Input((16,), name="x")
    out = keras.layers.Dense(4, activation="softmax")(MinMaxScale()(keras.layers.Dense(16)(inp)))
    model = keras.Model(inp, out)
    model.export(str(tmp_path / "sm"), verbose=False)
    rng = np.random.default_rng(0)
    xs = rng.normal(0, 2, (60, 16)).astype(np.float32)
    xs[::2] = 0.0  # half the samples are silence: a constant vector
    np.save(tmp_path / "x.npy", xs)
    result = edgeq.convert(tmp_path / "sm", tmp_path / "x.npy", tmp_path / "m.tflite", samples=40, holdout=20,
                           keep_float="DIV")
    rows = {row.label: row for row in result.fallback.steps}
    full, kept = rows["full int8"], rows["keep DIV"]
    assert full.scored == 20 and 0 < full.failed < 20, full
    assert full.failure_text == f"fails on {full.failed} of 20 inputs"
    assert kept.failed == 0 and result.verification.failed == 0 and result.verification.samples == 20
    assert result.fallback.steps[result.fallback.chosen] is kept  # the requested model was written
    assert np.isfinite(Model(tmp_path / "m.tflite").predict(np.zeros((1, 16), np.float32))["output_0"]).all()
