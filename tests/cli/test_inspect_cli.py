"""``edgeq inspect``: tensors, op counts, size and the embedded metadata, read without an interpreter."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from edgeq._flatbuffer import parse
from edgeq.cli import main
from support import LABELS, error_line, run_cli


pytestmark = pytest.mark.tf


def inspect_json(capsys: pytest.CaptureFixture, path: Path) -> dict:
    assert main(["inspect", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_inspect_json_edgeq_model(edgeq_int8, capsys):
    info = inspect_json(capsys, edgeq_int8)
    data = edgeq_int8.read_bytes()
    assert info["model"] == str(edgeq_int8)
    assert info["size_bytes"] == len(data) and info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["signatures"] == ["serving_default"]
    (sg,) = info["subgraphs"]
    (inp,) = sg["inputs"]
    assert inp["shape_signature"] == [-1, 16, 16, 3] and inp["dtype"] == "int8"
    assert inp["scale"] > 0 and -128 <= inp["zero_point"] <= 127
    assert sg["outputs"][0]["dtype"] == "int8" and sg["outputs"][0]["shape"] == [1, len(LABELS)]
    counts = info["op_counts"]
    assert counts == parse(data).op_counts()
    assert counts["CONV_2D"] >= 1 and counts["FULLY_CONNECTED"] == 1 and counts["SOFTMAX"] == 1
    assert sum(counts.values()) == sg["operators"]
    assert "edgeq" in info["metadata_entries"]
    meta = info["edgeq"]
    assert meta["labels"] == list(LABELS)
    assert meta["quant"]["mode"] == "int8" and meta["quant"]["input_type"] == "int8"
    assert meta["quant"]["calibration"]["samples"] == 30
    assert meta["preprocess"] == {"size": [16, 16], "resize": "stretch", "color": "rgb", "scale": 1 / 255,
                                  "mean": [0.0], "std": [1.0]}
    assert meta["source"]["format"] == "keras" and meta["verification"]["agreement"] >= 0.8


def test_inspect_json_model_without_metadata(tfl_float32, capsys):
    info = inspect_json(capsys, tfl_float32)
    assert info["edgeq"] is None
    assert info["subgraphs"][0]["inputs"][0]["dtype"] == "float32"
    assert info["subgraphs"][0]["inputs"][0]["scale"] is None


def test_inspect_two_signatures_and_custom_op(tfl_two_signatures, tfl_custom_op, tfl_float32, capsys):
    info = inspect_json(capsys, tfl_two_signatures)
    assert info["signatures"] == ["a", "b"] and len(info["subgraphs"]) == 2
    # inspect reads the file itself, so a model the interpreter cannot load is still described
    original = parse(tfl_float32.read_bytes()).op_counts()
    counts = inspect_json(capsys, tfl_custom_op)["op_counts"]
    assert counts["EdgeqTestMissingOp"] >= 1 and sum(counts.values()) == sum(original.values())


def test_inspect_table(edgeq_int8, capsys):
    assert main(["inspect", str(edgeq_int8)]) == 0
    out = capsys.readouterr().out
    for text in ("Model", "int8 / int8", "16x16 stretch rgb", "Inputs", "Outputs", "Operators", "CONV_2D",
                 "circle, square, stripe, noise", "calibration", "30 samples"):
        assert text in out, text


def test_inspect_table_without_metadata(tfl_float32, capsys):
    assert main(["inspect", str(tfl_float32)]) == 0
    assert "none (not made by edgeq" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["missing", "not_a_model", "truncated"])
def test_inspect_bad_files(case, edgeq_int8, tmp_path):
    path = tmp_path / "m.tflite"
    if case == "not_a_model":
        path.write_text("hello")
    elif case == "truncated":
        path.write_bytes(edgeq_int8.read_bytes()[:1000])
    proc = run_cli("inspect", str(path), "--json")
    line = error_line(proc)
    assert proc.returncode == 2 and proc.stdout == ""
    expected = {"missing": "model file not found", "not_a_model": "not a TFLite model",
                "truncated": "corrupt TFLite model"}[case]
    assert re.match(rf"ModelError: .*{expected}", line), line
