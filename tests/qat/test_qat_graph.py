"""The QAT plan and rebuild on Functional models with branches and on Sequential models, trained from
``tf.data`` and ``.npz``: BatchNorm folded, ReLU fused, every tensor int8 with its trained range."""

from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.converters.qat_graph import plan_model
from edgeq.converters.verify import float_ops
from edgeq.runtime import Model

pytestmark = pytest.mark.tf


def branchy_model():  # type: ignore[no-untyped-def]
    """Conv/BN/ReLU6, a depthwise and a separable branch joined by Add then ReLU, a Concatenate, pooling, Dense."""
    import keras

    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((16, 16, 3), name="pixels")
    x = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.ReLU(6.0, name="stem_relu")(x)
    a = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(x)
    a = L.BatchNormalization(name="dw_bn")(a)
    a = L.ReLU(name="dw_relu")(a)
    b = L.SeparableConv2D(8, 3, padding="same", activation="relu", name="sep")(x)
    s = L.Add(name="add")([a, b])
    s = L.ReLU(name="add_relu")(s)
    c = L.Concatenate(name="cat")([s, x])
    c = L.AveragePooling2D(2, name="avg")(c)
    c = L.Conv2D(12, 1, activation="relu6", name="mix")(c)
    g = L.GlobalAveragePooling2D(name="gap")(c)
    g = L.Dropout(0.1, name="drop")(g)
    out = L.Dense(4, activation="softmax", name="probs")(g)
    return keras.Model(inp, out)


def random_task(n: int, shape: tuple[int, ...], classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, *shape), dtype=np.float32)
    y = (x.mean(axis=tuple(range(1, x.ndim))) * classes * 9).astype(np.int64) % classes
    return x, y


def test_plan_folds_batch_norm_fuses_relu_and_tracks_new_values():
    plan = plan_model(branchy_model())
    roles = {name: step.role for name, step in plan.steps.items()}
    assert plan.unsupported == []
    assert plan.steps["stem"].batch_norm == "stem_bn" and plan.steps["stem"].activation == "relu6"
    assert roles["stem_bn"] == roles["dw_bn"] == "fold" and roles["stem_relu"] == roles["dw_relu"] == "fuse"
    assert plan.steps["sep"].kind == "separable" and plan.steps["probs"].activation == "softmax"
    assert roles["add"] == roles["add_relu"] == roles["cat"] == roles["avg"] == roles["gap"] == "range"
    assert roles["drop"] == "keep" and roles["pixels"] == "keep"
    # the Add output is written at the fused ReLU's scale; inputs of a Concatenate at the Concatenate's scale
    assert not plan.steps["add"].output_range and not plan.steps["add_relu"].output_range
    assert plan.steps["stem"].output_range  # it also feeds the two branches


def test_functional_model_with_branches_trains_from_tf_data_and_converts_to_int8(tmp_path, check_trained_scales):
    import tensorflow as tf

    model = branchy_model()
    path = tmp_path / "branchy.keras"
    model.save(path)
    x, y = random_task(96, (16, 16, 3), 4, seed=1)
    dataset = tf.data.Dataset.from_tensor_slices((x, y))  # unbatched: edgeq batches it
    result = edgeq.qat(path, dataset, tmp_path / "branchy_qat.tflite", epochs=1, batch_size=16)
    tflite = result.out.read_bytes()
    assert float_ops(parse(tflite)) == {}
    ops = {op.op for op in parse(tflite).subgraphs[0].operators}
    assert {"ADD", "CONCATENATION", "AVERAGE_POOL_2D", "MEAN", "DEPTHWISE_CONV_2D"} <= ops
    check_trained_scales(tflite, result.ranges)
    assert result.training["samples"] is None and result.accuracy is None  # a dataset: nothing held back
    assert result.conversion.verification.sqnr_db > 15
    assert "verified on training samples" in result.warnings[0]
    out = Model(result.out).predict(x[:1])
    assert next(iter(out.values())).shape == (1, 4)


def test_sequential_model_trains_from_npz(tmp_path, check_trained_scales):
    import keras

    keras.utils.set_random_seed(5)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((12, 12, 1)),
        L.Conv2D(6, 3, name="c1"), L.BatchNormalization(name="bn"), L.ReLU(name="r"),
        L.MaxPooling2D(name="mp"), L.Flatten(name="flat"), L.Dense(16, activation="relu", name="hidden"),
        L.Dense(3, name="logits"),  # logits: the default loss is from_logits
    ])
    path = tmp_path / "seq.keras"
    model.save(path)
    x, y = random_task(80, (12, 12, 1), 3, seed=2)
    np.savez(tmp_path / "train.npz", x=x, y=y)
    result = edgeq.qat(path, tmp_path / "train.npz", tmp_path / "seq_qat.tflite", epochs=2, io="float")
    tflite = result.out.read_bytes()
    assert float_ops(parse(tflite)) == {}
    assert Model(result.out).inputs[0].dtype == np.float32  # --io float around the int8 body
    check_trained_scales(tflite, result.ranges)
    assert "from_logits" not in result.training["setup"] and "default settings" in result.training["setup"]
    assert result.training["held_out"] == 8 and result.accuracy["samples"] == 8
