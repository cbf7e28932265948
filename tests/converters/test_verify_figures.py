"""The verification figures of a conversion, checked against answers known before the conversion runs.

The models (``tests/known_models.py``) are single ``Dense`` layers whose converted form is known exactly:
identical outputs (float32), a weight float16 rounds to 1.0 (closed-form errors and SQNR), and a tie on a
known share of samples (known agreement). Besides the closed forms, every figure is recomputed with numpy
from the Keras model's outputs and the outputs of TensorFlow's own ``tf.lite.Interpreter`` (not edgeq's
runtime), on the samples verification used.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.cli import main
from known_models import EPS, SCALED_SQNR_DB
from support import tflite_reference

pytestmark = pytest.mark.tf


def _figures(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    """The four figures written out with numpy: (samples, classes) float arrays in, float64 math."""
    ref, out = reference.astype(np.float64), test.astype(np.float64)
    err = np.abs(ref - out)
    noise = np.sum(err**2)
    return {
        "agreement": float(np.mean(ref.argmax(axis=1) == out.argmax(axis=1))),
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "sqnr_db": math.inf if noise == 0 else 10 * math.log10(np.sum(ref**2) / noise),
    }


def _keras_outputs(path: Path, xs: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.models.load_model(path, compile=False)(xs, training=False))


def _tflite_outputs(path: Path, xs: np.ndarray) -> np.ndarray:
    """Run the written model with ``tf.lite.Interpreter``, quantizing the input and dequantizing the output by hand."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        details = tf.lite.Interpreter(model_path=str(path)).get_signature_runner()
    (name, inp), = details.get_input_details().items()
    (_, outp), = details.get_output_details().items()
    rows = []
    for x in xs:
        feed = x[None].astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            feed = np.clip(np.round(feed / scale) + zero, info.min, info.max).astype(inp["dtype"])
        (raw,) = tflite_reference(path, {name: feed}).values()
        if outp["dtype"] != np.float32:
            scale, zero = outp["quantization"]
            raw = (raw.astype(np.float64) - zero) * scale
        rows.append(np.asarray(raw, dtype=np.float64).reshape(-1))
    return np.stack(rows)


def _check(verification: dict, expected: dict[str, float]) -> None:
    assert verification["agreement"] == pytest.approx(expected["agreement"], abs=1e-12)
    assert verification["max_abs_error"] == pytest.approx(expected["max_abs_error"], rel=1e-6, abs=1e-12)
    assert verification["mean_abs_error"] == pytest.approx(expected["mean_abs_error"], rel=1e-6, abs=1e-12)
    if math.isinf(expected["sqnr_db"]):
        assert verification["sqnr_db"] in (math.inf, None)  # None in JSON
    else:
        assert verification["sqnr_db"] == pytest.approx(expected["sqnr_db"], rel=1e-6)


def test_identical_model_agrees_fully_with_infinite_sqnr(known, tmp_path, capsys):
    out = tmp_path / "identity.tflite"
    assert main(["convert", str(known["identity"]), "--mode", "float32", "--data", str(known["x4"]), "--samples", "20",
                 "--out", str(out), "--json"]) == 0
    v = json.loads(capsys.readouterr().out)["verification"]
    assert v["samples"] == 20 and v["held_out"] is False  # all 20 samples calibrate and verify
    assert v["agreement"] == 1.0 and v["max_abs_error"] == 0.0 and v["mean_abs_error"] == 0.0
    assert v["sqnr_db"] is None  # infinite: JSON has no inf
    xs = np.load(known["x4"])
    _check(v, _figures(_keras_outputs(known["identity"], xs), _tflite_outputs(out, xs)))


def test_known_weight_perturbation_gives_the_closed_form_figures(known, tmp_path, capsys):
    out = tmp_path / "scaled.tflite"
    assert main(["convert", str(known["scaled"]), "--mode", "float16", "--data", str(known["x4"]), "--samples", "20",
                 "--out", str(out), "--json"]) == 0
    v = json.loads(capsys.readouterr().out)["verification"]
    xs = np.load(known["x4"]).astype(np.float64)
    np.testing.assert_array_equal(_tflite_outputs(out, xs), xs)  # the float16 weight is exactly 1.0
    closed_form = {"agreement": 1.0, "max_abs_error": float(np.abs(xs).max()) * EPS,
                   "mean_abs_error": float(np.abs(xs).mean()) * EPS, "sqnr_db": SCALED_SQNR_DB}
    _check(v, closed_form)
    _check(v, _figures(_keras_outputs(known["scaled"], xs), xs))
    assert 72.2 < v["sqnr_db"] < 72.3


def test_disagreement_on_a_known_share_of_samples(known, tmp_path):
    out = tmp_path / "tie.tflite"
    result = edgeq.convert(known["tie"], known["x2"], out, mode="float16", samples=20)
    v = result.verification
    assert v.samples == 20 and v.agreement == pytest.approx(15 / 20, abs=1e-12)  # the 5 tied samples flip
    xs = np.load(known["x2"]).astype(np.float64)
    expected = _figures(_keras_outputs(known["tie"], xs), _tflite_outputs(out, xs))
    assert expected["agreement"] == 0.75
    _check(v.to_dict(), expected)
    assert v.max_abs_error == pytest.approx(float(xs[:, 1].max()) * EPS, rel=1e-6)  # only class 1 moves
    assert v.mean_abs_error == pytest.approx(float(xs[:, 1].sum()) * EPS / xs.size, rel=1e-6)


def test_int8_figures_match_an_independent_computation(keras_files, npy_data, tmp_path):
    """A real int8 conversion: every figure equals numpy on Keras vs ``tf.lite.Interpreter`` outputs."""
    out = tmp_path / "int8.tflite"
    xs = np.load(npy_data)[:40]
    data = tmp_path / "x.npy"
    np.save(data, xs)
    result = edgeq.convert(keras_files["keras"], data, out, samples=40)  # all 40 calibrate and verify, in order
    v = result.verification
    assert v.samples == 40 and not v.held_out
    expected = _figures(_keras_outputs(keras_files["keras"], xs), _tflite_outputs(out, xs))
    assert 0 < expected["max_abs_error"] and math.isfinite(expected["sqnr_db"])  # a real, non-trivial difference
    _check(v.to_dict(), expected)
    assert v.mean_abs_error < v.max_abs_error
