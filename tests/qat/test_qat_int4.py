"""``edgeq qat --weights int4``: int4 fake-quantized weights in training, stored as ``convert --mode int4-weights``
stores them; the exported file computes what was trained and holds the trained integers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.cli import main
from edgeq.metadata import read_metadata
from edgeq.runtime import Model

pytest.importorskip("ai_edge_quantizer", reason='the [int4] extra (pip install "edgeq[int4]"); [dev] installs it')
pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Conv/BN/ReLU, Depthwise/BN/ReLU, SeparableConv, Dense softmax on 8x8 inputs, with 120 labelled samples."""
    import keras

    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((8, 8, 1), name="x")
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(5, 3, padding="same", use_bias=False, name="conv")(inp)))
    x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", name="dw")(x)))
    x = L.SeparableConv2D(7, 3, activation="relu", name="sep")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, L.Dense(4, activation="softmax", name="out")(x))
    rng = np.random.default_rng(0)
    xs = rng.random((120, 8, 8, 1), dtype=np.float32)
    ys = (xs[:, :4, :4].mean(axis=(1, 2, 3)) * 8).astype(np.int64) % 4  # learnable, not constant
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=2, batch_size=32, verbose=0)
    root = tmp_path_factory.mktemp("int4")
    model.save(root / "tiny.keras")
    np.savez(root / "train.npz", x=xs, y=ys)
    return {"model": root / "tiny.keras", "train": root / "train.npz", "root": root}


def _int4_tensors(path: Path) -> dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]]:
    """Every INT4 constant by shape: (its integers, its per-channel scales), unpacked from the file's buffers."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(path.read_bytes()))
    found = {}
    for t in model.subgraphs[0].tensors:
        if t.type != schema.TensorType.INT4:
            continue
        data = np.asarray(model.buffers[t.buffer].data, np.uint8)
        nibbles = np.stack([data & 0x0F, data >> 4], axis=1).reshape(-1)[: int(np.prod(t.shape))].astype(np.int8)
        values = np.where(nibbles > 7, nibbles - 16, nibbles).reshape(tuple(t.shape))
        found[tuple(int(d) for d in t.shape)] = (values, np.asarray(t.quantization.scale, np.float32))
    return found


def _exporter_int4(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ai-edge-quantizer's own int4 channelwise quantization of a TFLite-layout kernel (output channels first)."""
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.algorithms.uniform_quantize import uniform_quantize_tensor as uq

    axes = tuple(range(1, kernel.ndim))
    lo, hi = kernel.min(axis=axes, keepdims=True), kernel.max(axis=axes, keepdims=True)
    zp, scale = uq.tensor_zp_scale_from_min_max(lo, hi, 4, True, qtyping.QuantGranularity.CHANNELWISE)
    params = qtyping.UniformQuantParams(num_bits=4, quantized_dimension=0, scale=scale, zero_point=zp, symmetric=True)
    return uq.uniform_quantize(kernel, params), scale.reshape(-1)


def test_fake_quant_int4_rounds_and_scales_as_the_exporter():
    """Ties round half to even and a zero channel keeps a scale, as ai-edge-quantizer does (TF's fake-quant op
    rounds ties up: 0.5 -> 1, 2.5 -> 3)."""
    from edgeq.converters.qat_layers import fake_quant_weights

    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(3, 3, 2, 6)).astype(np.float32)
    kernel[..., 0] = 0.0
    kernel[..., 1] = 0.0
    ties = np.zeros(18, np.float32)
    ties[:7] = [7.0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.5]  # max 7: scale exactly 1, six ties
    kernel[..., 1] = ties.reshape(3, 3, 2)
    tflite_layout = np.transpose(kernel, (3, 0, 1, 2))
    want_q, want_scale = _exporter_int4(tflite_layout)
    got = np.transpose(np.asarray(fake_quant_weights(kernel, 3, bits=4)), (3, 0, 1, 2))
    np.testing.assert_array_equal(got, want_q * want_scale.reshape(-1, 1, 1, 1))
    assert list(got[1].reshape(-1)[:7]) == [7.0, 0.0, 2.0, 2.0, -0.0, -2.0, 4.0]
    assert not got[0].any()  # a zero channel stays zero (bound 1e-9, no division by zero)
    dense = rng.normal(size=(9, 5)).astype(np.float32)
    want_q, want_scale = _exporter_int4(dense.T)
    np.testing.assert_array_equal(np.asarray(fake_quant_weights(dense, 1, bits=4)).T, want_q * want_scale[:, None])


def test_int4_qat_exports_the_trained_integers_and_reproduces_the_trained_model(tiny):
    from edgeq.converters.qat_layers import QuantizedConv, fake_quant_weights

    out = tiny["root"] / "qat_int4.tflite"
    result = edgeq.qat(tiny["model"], tiny["train"], out, epochs=1, weights="int4", force=True)
    assert result.conversion.mode == "int4-weights" and result.ranges == {}
    quant = read_metadata(out).quant
    assert (quant.mode, quant.input_type, quant.output_type) == ("int4-weights", "float32", "float32")
    assert quant.calibration["method"] == "qat" and quant.weights["bits"] == 4
    assert quant.weights["quantized"] == {"CONV_2D": 2, "FULLY_CONNECTED": 1}  # conv, separable pointwise, dense
    assert quant.weights["kept_float"] == {"DEPTHWISE_CONV_2D": 2}  # int4-weights leaves depthwise kernels float
    parse(out.read_bytes())  # the model check
    stored = _int4_tensors(out)
    assert len(stored) == 3

    trained = result.trained_model
    layers = {layer.name: layer for layer in trained.layers if isinstance(layer, QuantizedConv)}
    for name, axis, to_tflite in (("conv", 3, (3, 0, 1, 2)), ("sep", 3, (3, 0, 1, 2)), ("out", 1, (1, 0))):
        folded = np.asarray(layers[name].folded()[0])
        want_q, want_scale = _exporter_int4(np.transpose(folded, to_tflite))
        q, scale = stored[want_q.shape]
        np.testing.assert_array_equal(q, want_q)  # the exporter's rounding of the trained float weights
        np.testing.assert_allclose(scale, want_scale, rtol=1e-6)
        trained_weights = np.transpose(np.asarray(fake_quant_weights(folded, axis, bits=4)), to_tflite)
        np.testing.assert_allclose(trained_weights, q * scale.reshape((-1,) + (1,) * (q.ndim - 1)), rtol=1e-6, atol=0)
        assert len(np.unique(q)) > 5  # a real int4 spread, not a degenerate tensor

    x = np.random.default_rng(5).random((12, 8, 8, 1), dtype=np.float32)
    lite = Model(out)
    got = np.concatenate([next(iter(lite.predict(s[None]).values())) for s in x])
    want = np.asarray(trained(x, training=False))
    assert np.abs(got - want).max() < 2e-6  # float activations: the file computes what was trained
    import keras

    original = np.asarray(keras.models.load_model(tiny["model"])(x, training=False))
    assert np.abs(original - want).max() > 1e-3  # the check tells int4 weights from float ones
    v = result.conversion.verification
    assert v.agreement == 1.0 and v.sqnr_db > 80
    assert "cosine decay to 0" in result.training["setup"]  # int4 weights settle: the rate ends at 0
    assert float(np.asarray(trained.optimizer.learning_rate)) < 1e-9


def test_cli_int4_json_and_a_bad_combination(tiny, tmp_path, capsys):
    out = tmp_path / "cli4.tflite"
    code = main(["qat", str(tiny["model"]), "--train", str(tiny["train"]), "--weights", "int4", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    report = json.loads(captured.out)
    assert report["mode"] == "int4-weights" and report["metadata"]["quant"]["weights"]["bits"] == 4
    assert report["ranges"] == {} and "qat_int4" in report["accuracy"]
    assert "int4 weights (per channel)" in captured.err

    code = main(["qat", str(tiny["model"]), "--train", str(tiny["train"]), "--weights", "int4", "--io", "int8",
                 "--out", str(tmp_path / "bad.tflite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("UsageError: --weights int4 keeps float activations") and "drop --io int8" in err
    assert not (tmp_path / "bad.tflite").exists()
    code = main(["qat", str(tiny["model"]), "--train", str(tiny["train"]), "--weights", "int2", "--out", str(tmp_path / "x.tflite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "UsageError: --weights must be one of int8, int4. Received: 'int2'"
    assert [p.name for p in tmp_path.iterdir()] == ["cli4.tflite"]  # the refused runs wrote nothing


def test_int4_qat_with_new_layouts_keeps_every_activation_float(tmp_path):
    """Rescaling, BatchNorm after ReLU, swish, sigmoid and PReLU train in float under int4 weight-only QAT, so the
    exported file (float activations, float PReLU alpha) still computes what was trained."""
    import keras

    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input((8, 8, 3), name="x")
    x = L.Rescaling(1 / 255.0)(inp)
    x = L.BatchNormalization()(L.Conv2D(6, 3, padding="same", activation="relu", name="conv")(x))
    x = L.Activation("swish")(x)
    x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(6, 3, padding="same", name="conv2")(x))
    x = L.Activation("sigmoid")(L.Conv2D(5, 1, name="conv3")(x))
    x = L.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, L.Dense(3, activation="softmax", name="out")(x))
    rng = np.random.default_rng(1)
    xs = (rng.random((96, 8, 8, 3)) * 255).astype(np.float32)
    ys = (xs[:, :4].mean(axis=(1, 2, 3)) > 127).astype(np.int64) + (xs[:, 4:, :, 0].mean(axis=(1, 2)) > 127)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=1, batch_size=32, verbose=0)
    model.save(tmp_path / "layouts.keras")
    np.savez(tmp_path / "train.npz", x=xs, y=ys)

    out = tmp_path / "layouts_int4.tflite"
    result = edgeq.qat(tmp_path / "layouts.keras", tmp_path / "train.npz", out, epochs=1, weights="int4", force=True)
    parse(out.read_bytes())
    assert read_metadata(out).quant.weights["quantized"].get("CONV_2D") == 3
    lite = Model(out)
    got = np.concatenate([next(iter(lite.predict(s[None]).values())) for s in xs[:12]])
    want = np.asarray(result.trained_model(xs[:12], training=False))
    # an int8-grid sigmoid or PReLU alpha in training would put steps of ~1/256 between the two
    assert np.abs(got - want).max() < 2e-5
