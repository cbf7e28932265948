"""QAT on a small CNN trained on real Fashion-MNIST images: an all-int8 model whose ranges come from
training, at least as accurate after conversion as post-training int8, with the edgeq metadata.

QAT fine-tunes (2 epochs on the 500 training images) and post-training quantization does not, so part of
QAT's accuracy comes from that training; ``benchmarks/qat_vs_ptq.py`` separates the two effects.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeq._flatbuffer import parse
from edgeq.cli import main
from edgeq.converters.verify import float_ops
from edgeq.metadata import read_metadata
from edgeq.runtime import Model
from edgeq.runtime.evaluate import evaluate

pytestmark = pytest.mark.tf

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist"


def test_qat_model_is_all_int8_with_no_float_op_in_the_body(fashion_qat):
    model = Model(fashion_qat.out)
    assert model.inputs[0].dtype == np.int8 and model.outputs[0].dtype == np.int8
    body = parse(fashion_qat.out.read_bytes())
    assert float_ops(body) == {} and fashion_qat.conversion.verification.float_ops == {}
    ops = {op.op for op in body.subgraphs[0].operators}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert "MUL" not in ops and "ADD" not in ops  # BatchNorm folded, not left as arithmetic


def test_qat_accuracy_after_conversion_is_at_least_post_training_int8(fashion_qat, fashion_ptq, fashion_split):
    qat_top1 = evaluate(fashion_qat.out, fashion_split["test"]).top1
    ptq_top1 = evaluate(fashion_ptq, fashion_split["test"]).top1
    assert ptq_top1 > 0.5, "the post-training baseline should be a working classifier"
    assert qat_top1 >= ptq_top1, f"QAT int8 {qat_top1:.3f} < post-training int8 {ptq_top1:.3f} on 500 test images"


def test_int8_scales_are_the_ranges_learnt_in_training(fashion_qat, check_trained_scales):
    ranges = fashion_qat.ranges
    # input, conv1 output, the separable conv's depthwise and pointwise outputs, the logits
    assert set(ranges) == {"image_range", "conv1_range", "sep2_depthwise_range", "sep2_range", "probs_range"}
    assert ranges["image_range"][0] == 0.0 and 0.9 < ranges["image_range"][1] <= 1.0
    assert ranges["conv1_range"][0] == 0.0  # ReLU fused: the range starts at zero
    check_trained_scales(fashion_qat.out.read_bytes(), ranges)
    model = Model(fashion_qat.out)
    lo, hi = ranges["image_range"]
    assert model.inputs[0].scale == pytest.approx((hi - lo) / 255, rel=1e-6)
    calibration = read_metadata(fashion_qat.out).quant.calibration
    assert calibration["representative_samples"] == 0  # no representative dataset: the ranges are the trained ones


def test_weights_are_per_channel_for_convolutions_and_per_tensor_for_dense(fashion_qat):
    tensors = parse(fashion_qat.out.read_bytes()).subgraphs[0].tensors
    weights = {t.shape: len(t.scales) for t in tensors if t.dtype == "INT8"}  # no activation has these shapes
    assert weights[(8, 3, 3, 1)] == 8  # conv1: one scale per output channel
    assert weights[(1, 3, 3, 8)] == 8  # the separable conv's depthwise kernel
    assert weights[(16, 1, 1, 8)] == 16  # its pointwise kernel, BatchNorm folded in
    assert weights[(10, 784)] == 1  # Dense: one scale


def test_metadata_records_the_qat_recipe_and_the_runtime_uses_it(fashion_qat):
    meta = read_metadata(fashion_qat.out)
    assert meta.quant.mode == "int8" and meta.quant.input_type == "int8"
    cal = meta.quant.calibration
    assert cal["method"] == "qat" and cal["epochs"] == 2 and cal["samples"] == 450 and cal["source"] == "images"
    assert cal["inputs"][0]["name"] == "image" and cal["inputs"][0]["min"] == 0.0
    assert meta.preprocess.color == "grayscale" and meta.preprocess.size == (28, 28)
    assert meta.labels[0] == "T-shirt/top" and meta.verification["held_out"] is True
    v = fashion_qat.conversion.verification  # int8 file vs the model as trained: the conversion reproduces it
    assert v.samples == 50 and v.held_out and v.agreement >= 0.96 and v.sqnr_db > 20
    original = fashion_qat.original  # vs the float model QAT started from: moved by training
    assert original.samples == 50 and original.agreement is not None and original.sqnr_db < v.sqnr_db
    acc = fashion_qat.accuracy
    assert acc["samples"] == 50 and abs(acc["qat_int8"] - acc["float"]) <= 0.1
    assert [e.epoch for e in fashion_qat.epochs] == [1, 2] and all(np.isfinite(e.loss) for e in fashion_qat.epochs)
    image = sorted((SAMPLE / "eval" / "7_sneaker").glob("*.png"))[-1]
    (label, score), *_ = Model(fashion_qat.out).classify(image, k=3)
    assert label in meta.labels and 0 < score <= 1


def test_result_is_json_ready(fashion_qat):
    report = json.loads(json.dumps(fashion_qat.to_dict()))
    assert report["mode"] == "int8" and report["verification"]["float_ops"] == {}
    assert report["metadata"]["quant"]["calibration"]["method"] == "qat"
    assert report["training"]["samples"] == 450 and len(report["epochs"]) == 2
    assert report["layers"]["bn1"] == {"role": "fold", "activation": "linear", "into": "conv1", "output_range": True}
    assert report["original"]["samples"] == 50


def test_cli_qat_prints_training_and_verification_tables(fashion_model, fashion_split, tmp_path, capsys):
    out = tmp_path / "cli_qat.tflite"
    code = main(["qat", str(fashion_model), "--train", str(fashion_split["train"]), "--out", str(out), "--epochs", "1",
                 "--samples", "120", "--batch-size", "16"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Quantization-aware training" in captured.out and "Conversion verified against the float model" in captured.out
    assert "108 samples, batch 16" in captured.out and "ops left in float" in captured.out
    assert read_metadata(out).quant.calibration["samples"] == 108
