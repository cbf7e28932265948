"""``--mode int4-weights`` / ``int8-weights`` through ai-edge-quantizer (the ``[int4]`` extra, in ``[dev]``):
smaller than int8, runs in the runtime, verified, with the recipe in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.cli import main
from edgeq.errors import ConversionError
from edgeq.metadata import read_metadata
from edgeq.runtime import Model

pytest.importorskip("ai_edge_quantizer", reason='the [int4] extra (pip install "edgeq[int4]"); [dev] installs it')
pytestmark = pytest.mark.tf

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist"


@pytest.fixture(scope="module")
def sample_int8(tmp_path_factory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("w") / "int8.tflite"
    edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", out, samples=100)
    return out


def _weights(path: Path) -> set[tuple[tuple[int, ...], str]]:
    """(shape, dtype) of the constant tensors (weights; a DEQUANTIZE output has the same shape but no data)."""
    file = parse(path.read_bytes())
    return {(t.shape, t.dtype) for t in file.subgraphs[0].tensors if len(t.shape) in (2, 4) and file.buffer_sizes[t.buffer]}


def test_int4_weights_is_smaller_than_int8_and_runs(sample_int8, tmp_path):
    out = tmp_path / "int4.tflite"
    result = edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", out, mode="int4-weights", samples=100)
    int8_weights = edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", tmp_path / "w8.tflite", mode="int8-weights",
                                 samples=100)
    assert out.stat().st_size < sample_int8.stat().st_size  # than full int8
    assert out.stat().st_size < int8_weights.out.stat().st_size < (SAMPLE / "model.keras").stat().st_size
    weights = _weights(out)
    assert ((10, 1568), "INT4") in weights and ((16, 3, 3, 1), "INT4") in weights  # fully connected and conv weights
    assert ((1, 3, 3, 16), "FLOAT32") in weights  # no int4 depthwise kernel
    weights = read_metadata(out).quant.weights
    assert weights["bits"] == 4 and weights["quantized"] == {"CONV_2D": 2, "FULLY_CONNECTED": 1}
    assert weights["kept_float"] == {"DEPTHWISE_CONV_2D": 1}
    assert weights["weight_bytes_after"] * 8 == weights["weight_bytes_before"]
    assert any("int4 weights (per channel)" in n and "kept float32: DEPTHWISE_CONV_2D×1" in n for n in result.warnings)
    v = result.verification
    assert v.samples == 100 and v.agreement >= 0.85 and v.sqnr_db > 10  # int4 costs precision; verified like any mode
    model = Model(out)
    trousers = sorted((SAMPLE / "eval" / "1_trouser").glob("*.png"))[:5]
    assert sum(int(np.argmax(next(iter(model.predict(p).values())))) == 1 for p in trousers) >= 4
    scores = next(iter(model.predict(np.zeros((1, 28, 28, 1), np.float32)).values()))
    assert scores.shape == (1, 10) and np.isclose(scores.sum(), 1, atol=1e-3)
    assert int8_weights.metadata.quant.weights["quantized"] == {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1}


def test_blockwise_int4_and_a_block_size_that_does_not_divide(tmp_path):
    out = tmp_path / "b32.tflite"
    result = edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", out, mode="int4-weights", block_size=32, samples=100)
    assert read_metadata(out).quant.weights["block_size"] == 32
    assert ((10, 1568), "INT4") in _weights(out) and result.verification.agreement >= 0.85
    assert next(iter(Model(out).predict(np.zeros((1, 28, 28, 1), np.float32)).values())).shape == (1, 10)
    with pytest.raises(ConversionError, match="not divisible by block size 64.*try another --block-size"):
        edgeq.convert(SAMPLE / "model.keras", None, tmp_path / "b64.tflite", mode="int4-weights", block_size=64)
    assert not (tmp_path / "b64.tflite").exists()


def test_cli_int4_weights_json(tmp_path, capsys):
    out = tmp_path / "cli4.tflite"
    code = main(["convert", str(SAMPLE / "model.keras"), "--data", str(SAMPLE / "calib"), "--samples", "50",
                 "--mode", "int4-weights", "--block-size", "32", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["mode"] == "int4-weights" and report["metadata"]["quant"]["weights"]["bits"] == 4
    assert "blocks of 32 for FULLY_CONNECTED/EMBEDDING_LOOKUP" in captured.err
