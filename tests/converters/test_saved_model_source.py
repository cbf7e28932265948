"""A SavedModel source costs edgeq no TensorFlow restore before the converter's: its signature comes from
``saved_model.pb``, the float reference is restored when verification first runs it, and a SavedModel TF cannot
restore is still one clear ``ModelError`` with nothing written."""

from __future__ import annotations

import shutil

import pytest

import edgeq
from edgeq.converters.source import load_source
from edgeq.errors import ModelError

pytestmark = pytest.mark.tf


def test_signature_from_the_protobuf_and_one_restore_for_verification(keras_files, npy_data, tmp_path, monkeypatch):
    import tensorflow as tf

    restored: list[str] = []
    restore = tf.saved_model.load
    monkeypatch.setattr(tf.saved_model, "load", lambda path, *a, **k: restored.append(path) or restore(path, *a, **k))
    source = load_source(keras_files["saved_model"], tmp_path)
    assert restored == []
    signature = restore(str(keras_files["saved_model"])).signatures["serving_default"]
    _, specs = signature.structured_input_signature
    assert [(s.name, s.shape, s.dtype) for s in source.inputs] == [
        (name, tuple(spec.shape.as_list()), spec.dtype.name) for name, spec in sorted(specs.items())]
    assert source.output_names == tuple(sorted(signature.structured_outputs))

    result = edgeq.convert(keras_files["saved_model"], npy_data, tmp_path / "m.tflite", samples=30)
    assert restored == [str(keras_files["saved_model"])]  # once, for the float reference
    assert result.verification.samples == 30 and result.verification.sqnr_db > 15
    assert set(result.cpu_seconds) == set(result.seconds) >= {"load", "convert", "verify"}


def test_a_saved_model_tensorflow_cannot_restore_is_a_model_error(keras_files, npy_data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(keras_files["saved_model"], broken)
    (data_file,) = (broken / "variables").glob("variables.data-*")
    data_file.write_bytes(data_file.read_bytes()[:16])  # the weights cut short
    with pytest.raises(ModelError, match="cannot load SavedModel"):
        edgeq.convert(broken, npy_data, tmp_path / "m.tflite", samples=30)
    assert not (tmp_path / "m.tflite").exists()
