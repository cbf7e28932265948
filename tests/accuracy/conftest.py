"""Fixtures of the accuracy tools' tests.

* ``softmax_model(classes, labels)``: a one-op TFLite classifier (``SOFTMAX`` of its input scores), written with
  LiteRT's flatbuffer tools, no TensorFlow: its prediction for an input is known by construction, so eval's
  figures can be checked against hand-computed ones.
* ``spike``: a small real CNN trained on a 4-class task, in which one layer is then made hard to quantize:
  ``spiky = conv2 + gate(conv2)``, where ``gate`` is a 1x1 ReLU conv that is 0 except on the rarest 0.005 % of
  ``conv2``'s values, where it adds up to 5000. The float model barely changes (those values are rare), but
  min/max calibration stretches ``spiky``'s int8 range ~560x, so every typical value rounds to 0 and the
  int8 model predicts about one class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest


@pytest.fixture(scope="session")
def softmax_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Build ``softmax_<classes>.tflite``: float input ``x`` of shape (1, classes), output ``probs`` = softmax(x)."""
    root = tmp_path_factory.mktemp("softmax")

    def make(classes: int, labels: Sequence[str] = ()) -> Path:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils

        from edgeq.converters.embed import embed_metadata
        from edgeq.metadata import ModelMetadata, QuantInfo

        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SOFTMAX
        code.version = 1
        tensors = []
        for name in ("x", "probs"):
            t = schema.TensorT()
            t.name, t.shape, t.type, t.buffer = name, [1, classes], schema.TensorType.FLOAT32, 0
            tensors.append(t)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
        op.builtinOptionsType = schema.BuiltinOptions.SoftmaxOptions
        op.builtinOptions = schema.SoftmaxOptionsT()
        op.builtinOptions.beta = 1.0
        graph = schema.SubGraphT()
        graph.tensors, graph.inputs, graph.outputs, graph.operators, graph.name = tensors, [0], [1], [op], "main"
        model = schema.ModelT()
        model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
        data = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
        if labels:
            data = embed_metadata(data, ModelMetadata(QuantInfo("float32"), labels=tuple(labels)))
        path = root / f"softmax_{classes}_{len(labels)}.tflite"
        path.write_bytes(data)
        return path

    return make


@dataclass(frozen=True)
class Spike:
    """The spike model and its data: ``calib.npy`` (200 samples), ``eval.npz`` (300 labelled), float accuracy."""

    keras: Path
    calib: Path
    eval: Path
    float_accuracy: float


def _task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """16x16 RGB noise in [0, 0.5) with one bright quadrant; the label is the quadrant."""
    rng = np.random.default_rng(seed)
    xs = rng.random((n, 16, 16, 3), dtype=np.float32) * 0.5
    ys = rng.integers(0, 4, n)
    for i, y in enumerate(ys):
        r, c = divmod(int(y), 2)
        xs[i, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8] += 0.5
    return xs, ys


@pytest.fixture(scope="session")
def spike(tmp_path_factory: pytest.TempPathFactory) -> Spike:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    root = tmp_path_factory.mktemp("spike")
    keras.utils.set_random_seed(0)
    x_train, y_train = _task(800, 0)
    x_calib, _ = _task(200, 1)
    x_eval, y_eval = _task(300, 2)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    gate = keras.layers.Conv2D(8, 1, activation="relu", name="gate", trainable=False)(x)
    x = keras.layers.Add(name="spiky")([x, gate])
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    # named: an unnamed model takes Keras's next global name (functional, functional_1 …), and the TFLite tensor
    # names the tests check (spike_1/spiky_1/Add) start with it
    model = keras.Model(inp, keras.layers.Dense(4, activation="softmax", name="head")(x), name="spike")
    model.get_layer("gate").set_weights([np.zeros((1, 1, 8, 8), np.float32), np.full(8, -1e6, np.float32)])  # off
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=8, batch_size=32, verbose=0)
    conv2 = keras.Model(inp, model.get_layer("conv2").output).predict(x_calib, verbose=0)
    threshold, top = float(np.percentile(conv2, 99.995)), float(conv2.max())
    gain = 5000.0 / (top - threshold)
    model.get_layer("gate").set_weights([gain * np.eye(8, dtype=np.float32)[None, None],
                                         np.full(8, -gain * threshold, np.float32)])
    model.save(root / "spike.keras")
    np.save(root / "calib.npy", x_calib)
    np.savez(root / "eval.npz", x=x_eval, y=y_eval)
    accuracy = float(np.mean(np.argmax(model.predict(x_eval, verbose=0), axis=1) == y_eval))
    assert accuracy > 0.9, f"the spike model did not learn its task (float accuracy {accuracy})"
    return Spike(root / "spike.keras", root / "calib.npy", root / "eval.npz", accuracy)
