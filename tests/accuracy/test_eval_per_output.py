"""``eval --reference`` per output: SQNR, mean |err| and agreement of each output, in the JSON too."""

from __future__ import annotations

import json
import math

import numpy as np

import edgeq
from edgeq.cli import main

SCORES = np.random.default_rng(7).normal(size=(10, 5)).astype(np.float32)


def softmax(x: np.ndarray, beta: float) -> np.ndarray:
    e = np.exp(beta * (x - x.max(axis=1, keepdims=True)))
    return e / e.sum(axis=1, keepdims=True)


def with_beta(path, beta: float, out):  # type: ignore[no-untyped-def]
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    model.subgraphs[0].operators[0].builtinOptions.beta = beta
    out.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    return out


def test_reference_comparison_per_output(softmax_model, tmp_path, capsys):
    model = softmax_model(5)
    reference = with_beta(model, 2.0, tmp_path / "sharper.tflite")  # same argmax, other scores
    data = tmp_path / "scores.npz"
    np.savez(data, x=SCORES, y=np.argmax(SCORES, axis=1))
    ref = edgeq.evaluate(model, data, reference=reference).reference
    (out,) = ref.outputs
    want, got = softmax(SCORES, 2.0).astype(np.float64), softmax(SCORES, 1.0).astype(np.float64)
    expected_sqnr = 10 * math.log10(np.sum(want**2) / np.sum((want - got) ** 2))
    assert out.name == "probs" and out.agreement == 1.0
    assert out.sqnr_db == ref.sqnr_db and abs(out.sqnr_db - expected_sqnr) < 1e-3
    assert abs(out.mean_abs_error - np.abs(want - got).mean()) < 1e-6
    assert main(["eval", str(model), "--data", str(data), "--reference", str(reference), "--json"]) == 0
    outputs = json.loads(capsys.readouterr().out)["reference"]["outputs"]
    assert [o["name"] for o in outputs] == ["probs"] and abs(outputs[0]["sqnr_db"] - expected_sqnr) < 1e-3
