"""Bad input to QAT and to the weight-only modes: one clear error, named layers, nothing written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq.cli import main
from edgeq.errors import ConversionError, DataError, DependencyMissing, ModelError, UsageError

pytestmark = pytest.mark.tf

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist"


def _save(model, path: Path) -> Path:  # type: ignore[no-untyped-def]
    model.save(path)
    return path


def _classifier(tmp_path: Path, classes: int = 4) -> Path:
    import keras

    inp = keras.Input((8, 8, 1), name="x")
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten(name="flat")(x)
    return _save(keras.Model(inp, keras.layers.Dense(classes, activation="softmax", name="out")(x)), tmp_path / "c.keras")


def test_unsupported_layers_are_named_before_any_data_is_read(tmp_path):
    import keras

    inp = keras.Input((10, 6), name="seq")
    x = keras.layers.LayerNormalization(name="my_norm")(inp)
    x = keras.layers.Conv1D(4, 3, padding="causal", name="my_conv1d")(x)
    x = keras.layers.Flatten()(x)
    path = _save(keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x)), tmp_path / "m.keras")
    with pytest.raises(ConversionError) as info:  # the data does not exist: the layers are checked first
        edgeq.qat(path, tmp_path / "missing_data", tmp_path / "out.tflite")
    message = str(info.value)
    assert "'my_norm' (LayerNormalization)" in message and "'my_conv1d' (Conv1D): causal padding" in message
    assert "edgeq convert" in message and not (tmp_path / "out.tflite").exists()


def test_activation_qat_cannot_quantize_is_named(tmp_path):
    import keras

    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="gelu", name="swishy")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = _save(keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x)), tmp_path / "m.keras")
    with pytest.raises(ConversionError, match=r"'swishy' \(Conv2D\): activation 'gelu' \(supported: relu, relu6, sigmoid"):
        edgeq.qat(path, tmp_path / "x.npz", tmp_path / "out.tflite")


def test_model_without_trainable_layers(tmp_path):
    import keras

    inp = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.MaxPooling2D()(inp))
    path = _save(keras.Model(inp, keras.layers.Softmax()(x)), tmp_path / "pool.keras")
    with pytest.raises(ModelError, match="no trainable Conv2D/DepthwiseConv2D/SeparableConv2D/Dense"):
        edgeq.qat(path, tmp_path / "x.npz", tmp_path / "out.tflite")
    frozen = keras.models.load_model(_classifier(tmp_path))
    for layer in frozen.layers:
        layer.trainable = False
    with pytest.raises(ModelError, match="nothing to train"):
        edgeq.qat(_save(frozen, tmp_path / "frozen.keras"), tmp_path / "x.npz", tmp_path / "out.tflite")


def test_labels_that_do_not_fit_the_output(tmp_path):
    import tensorflow as tf

    path = _classifier(tmp_path, classes=4)
    x = np.random.default_rng(0).random((20, 8, 8, 1), dtype=np.float32)
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(20) % 12)
    with pytest.raises(DataError, match="class indices 0..11 but the model has 4 classes"):
        edgeq.qat(path, tmp_path / "bad.npz", tmp_path / "out.tflite")
    dataset = tf.data.Dataset.from_tensor_slices((x, np.full(20, 7))).batch(4)
    with pytest.raises(DataError, match="labels go from 7 to 7 but the model outputs 4 classes"):
        edgeq.qat(path, dataset, tmp_path / "out.tflite")
    onehot = tf.data.Dataset.from_tensor_slices((x, np.eye(5, dtype=np.float32)[np.arange(20) % 5])).batch(4)
    with pytest.raises(DataError, match=r"targets have shape \[5\] per sample but the model outputs \[4\]"):
        edgeq.qat(path, onehot, tmp_path / "out.tflite")
    assert not (tmp_path / "out.tflite").exists()


def test_cli_epochs_zero_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["qat", str(SAMPLE / "model.keras"), "--train", str(SAMPLE / "eval"), "--epochs", "0",
                 "--out", str(tmp_path / "o.tflite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("UsageError: --epochs must be a whole number of at least 1") and "Received: 0" in err
    assert not (tmp_path / "o.tflite").exists()


def test_a_savedmodel_is_refused(keras_files, tmp_path):
    with pytest.raises(ModelError, match="SavedModel"):
        edgeq.qat(keras_files["saved_model"], SAMPLE / "eval", tmp_path / "o.tflite")


def test_missing_int4_extra_names_the_install_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ai_edge_quantizer", None)  # makes the import fail
    with pytest.raises(DependencyMissing, match=r'pip install "edgeq\[int4\]"'):
        edgeq.convert(SAMPLE / "model.keras", None, tmp_path / "w4.tflite", mode="int4-weights")
    code = main(["convert", str(SAMPLE / "model.keras"), "--mode", "int8-weights", "--out", str(tmp_path / "w8.tflite")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("DependencyMissing:") and 'pip install "edgeq[int4]"' in err
    assert not list(tmp_path.iterdir())


def test_block_size_is_checked_against_the_mode(tmp_path):
    with pytest.raises(UsageError, match="mode int8-weights takes no --block-size"):
        edgeq.convert(SAMPLE / "model.keras", None, tmp_path / "m.tflite", mode="int8-weights", block_size=32)
    with pytest.raises(UsageError, match="mode int4-weights takes one of 32, 64, 128, 256. Received: --block-size 48"):
        edgeq.convert(SAMPLE / "model.keras", None, tmp_path / "m.tflite", mode="int4-weights", block_size=48)
    with pytest.raises(UsageError, match="mode int8 takes no --block-size"):
        edgeq.convert(SAMPLE / "model.keras", SAMPLE / "calib", tmp_path / "m.tflite", block_size=32)
