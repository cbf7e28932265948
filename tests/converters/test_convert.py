"""edgeq convert: every mode, every data source, the embedded metadata, verification, atomic writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.cli import main
from edgeq.metadata import read_metadata
from edgeq.runtime import Model

pytestmark = pytest.mark.tf

IO_DTYPES = {"int8": "int8", "uint8": "uint8", "int16x8": "int16", "dynamic": "float32", "float16": "float32",
             "float32": "float32"}


@pytest.mark.parametrize("mode", list(IO_DTYPES))
def test_every_mode_converts_runs_and_verifies(mode, keras_files, npy_data, tmp_path):
    out = tmp_path / f"m_{mode}.tflite"
    result = edgeq.convert(keras_files["keras"], npy_data, out, mode=mode, samples=30)
    model = Model(out)
    assert model.inputs[0].dtype == np.dtype(IO_DTYPES[mode])
    assert model.outputs[0].dtype == np.dtype(IO_DTYPES[mode])
    assert result.metadata.quant.mode == mode
    v = result.verification
    assert v.samples == 30 and v.held_out  # 60 samples: 30 calibrate, 30 verify
    assert v.agreement is not None and v.agreement >= 0.8
    assert v.sqnr_db > (15 if mode in ("int8", "uint8") else 25)
    assert v.size_after == out.stat().st_size
    assert read_metadata(out).verification["size_after"] == out.stat().st_size - _overhead(out)
    if mode in ("int8", "uint8", "int16x8"):
        assert v.float_ops == {}, f"{mode} left ops in float: {v.float_ops}"
        assert result.metadata.quant.calibration["samples"] == 30
    else:
        assert v.float_ops  # float compute remains
    x = np.load(npy_data)[:1]
    ref = edgeq_source_predict(keras_files["keras"], x)
    got = model.predict(x)["output_0"]
    assert np.abs(got - ref).max() < (0.1 if mode in ("int8", "uint8") else 0.02)


def _overhead(path: Path) -> int:
    """Bytes the embedded metadata adds (its JSON plus flatbuffer bookkeeping), bounded."""
    extra = path.stat().st_size - read_metadata(path).verification["size_after"]
    assert 0 < extra < len(parse(path.read_bytes()).metadata["edgeq"]) + 512
    return extra


def edgeq_source_predict(path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    return np.asarray(keras.models.load_model(path, compile=False)(x, training=False))


def test_int8_is_full_integer(keras_files, npy_data, tmp_path):
    out = tmp_path / "m.tflite"
    edgeq.convert(keras_files["keras"], npy_data, out, samples=20)
    f = parse(out.read_bytes())
    sg = f.subgraphs[0]
    assert {sg.tensors[i].dtype for i in sg.inputs + sg.outputs} == {"INT8"}
    float_tensors = [t.name for t in sg.tensors if t.dtype == "FLOAT32"]
    assert float_tensors == []
    assert "QUANTIZE" not in f.op_counts() and "DEQUANTIZE" not in f.op_counts()


def test_io_float_keeps_float_io_on_int8_body(keras_files, npy_data, tmp_path):
    out = tmp_path / "m.tflite"
    result = edgeq.convert(keras_files["keras"], npy_data, out, io="float", samples=20)
    model = Model(out)
    assert model.inputs[0].dtype == np.float32 and model.outputs[0].dtype == np.float32
    assert result.verification.float_ops == {}  # only the boundary QUANTIZE/DEQUANTIZE are float
    assert {"QUANTIZE", "DEQUANTIZE"} <= set(model.file.op_counts())


@pytest.mark.parametrize("fmt", ["h5", "saved_model"])
def test_h5_and_saved_model_sources(fmt, keras_files, npy_data, tmp_path):
    out = tmp_path / "m.tflite"
    result = edgeq.convert(keras_files[fmt], npy_data, out, samples=20)
    assert result.metadata.source["format"] == fmt
    assert result.verification.agreement >= 0.8


def test_image_folder_embeds_preprocessing_and_labels(keras_files, image_folder, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nbird\nfish\n")
    out = tmp_path / "m.tflite"
    result = edgeq.convert(keras_files["keras"], image_folder, out, samples=25, normalize="-1,1", resize="crop",
                           labels=labels)
    meta = read_metadata(out)
    assert meta == result.metadata
    assert meta.labels == ("cat", "dog", "bird", "fish")
    assert meta.preprocess.size == (16, 16) and meta.preprocess.resize == "crop" and meta.preprocess.color == "rgb"
    assert meta.preprocess.mean == (0.5,) and meta.preprocess.std == (0.5,)
    assert meta.quant.calibration["inputs"][0]["min"] >= -1.0 and meta.quant.calibration["inputs"][0]["max"] <= 1.0
    assert result.verification.samples == 15 and result.verification.held_out
    label, score = Model(out).classify(next(image_folder.rglob("*.png")), k=1)[0]
    assert label in meta.labels and 0 <= score <= 1


def test_sampling_is_reproducible_and_seeded(keras_files, image_folder, tmp_path):
    a = edgeq.convert(keras_files["keras"], image_folder, tmp_path / "a.tflite", samples=10, seed=3)
    b = edgeq.convert(keras_files["keras"], image_folder, tmp_path / "b.tflite", samples=10, seed=3)
    c = edgeq.convert(keras_files["keras"], image_folder, tmp_path / "c.tflite", samples=10, seed=4)
    assert a.metadata.quant.calibration == b.metadata.quant.calibration
    assert a.metadata.quant.calibration != c.metadata.quant.calibration


def test_video_data(keras_files, tmp_path):
    cv2 = pytest.importorskip("cv2", reason="OpenCV comes with the [convert] extra")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    rng = np.random.default_rng(0)
    for _ in range(30):
        writer.write(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    writer.release()
    result = edgeq.convert(keras_files["keras"], path, tmp_path / "m.tflite", samples=12)
    assert result.metadata.quant.calibration["samples"] == 12
    assert result.metadata.quant.calibration["source"] == "video"
    assert result.verification.held_out


def test_npz_and_callable_and_tf_data(keras_files, tmp_path, monkeypatch):
    import tensorflow as tf

    xs = np.random.default_rng(5).random((24, 16, 16, 3), dtype=np.float32)
    np.savez(tmp_path / "d.npz", x=xs)
    r1 = edgeq.convert(keras_files["keras"], tmp_path / "d.npz", tmp_path / "a.tflite", samples=12)
    assert r1.metadata.quant.calibration["samples"] == 12

    (tmp_path / "mydata.py").write_text(
        "import numpy as np\n"
        "def samples():\n"
        "    rng = np.random.default_rng(0)\n"
        "    for _ in range(20):\n"
        "        yield rng.random((16, 16, 3), dtype=np.float32)\n"
    )
    monkeypatch.chdir(tmp_path)
    r2 = edgeq.convert(keras_files["keras"], "py:mydata:samples", tmp_path / "b.tflite", samples=10)
    assert r2.metadata.quant.calibration["source"] == "callable"

    ds = tf.data.Dataset.from_tensor_slices((xs, np.zeros(24))).batch(4)  # (x, y) batches
    r3 = edgeq.convert(keras_files["keras"], ds, tmp_path / "c.tflite", samples=16)
    assert r3.metadata.quant.calibration["samples"] == 16 and r3.verification.samples == 8


def test_data_free_modes_without_data(keras_files, tmp_path):
    result = edgeq.convert(keras_files["keras"], None, tmp_path / "m.tflite", mode="float16")
    assert any("no --data" in w for w in result.warnings)
    assert result.metadata.preprocess is None


def test_metadata_roundtrip_without_tensorflow(keras_files, image_folder, tmp_path):
    out = tmp_path / "m.tflite"
    edgeq.convert(keras_files["keras"], image_folder, out, samples=10, labels=["a", "b", "c", "d"])
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from edgeq.metadata import read_metadata\n"
        "from edgeq.runtime import Model\n"
        f"m = read_metadata({str(out)!r}); assert m.labels == ('a', 'b', 'c', 'd'), m.labels\n"
        f"model = Model({str(out)!r}); print(model.classify({str(next(image_folder.rglob('*.png')))!r}, 2))\n"
        "assert 'tensorflow' not in sys.modules or sys.modules['tensorflow'] is None\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "('" in proc.stdout


def test_min_agreement_out_of_range_is_a_usage_error(keras_files, npy_data, tmp_path, capsys):
    """The failing check itself (exit 1, file kept) is in test_check_failed.py, on a model built to fail it."""
    out = tmp_path / "m.tflite"
    code = main(["convert", str(keras_files["keras"]), "--data", str(npy_data), "--out", str(out),
                 "--samples", "20", "--min-agreement", "1.01"])
    err = capsys.readouterr().err
    assert code == 2 and "UsageError: --min-agreement is a fraction between 0 and 1. Received: 1.01" in err
    assert not out.exists()


def test_cli_json_and_table(keras_files, npy_data, tmp_path, capsys):
    out = tmp_path / "m.tflite"
    assert main(["convert", str(keras_files["keras"]), "--data", str(npy_data), "--out", str(out),
                 "--samples", "20"]) == 0
    text = capsys.readouterr().out
    assert "top-1 agreement" in text and "SQNR" in text and "ops left in float" in text


def test_int16x8_warns(keras_files, npy_data, tmp_path, capsys):
    assert main(["convert", str(keras_files["keras"]), "--data", str(npy_data), "--out", str(tmp_path / "m.tflite"),
                 "--mode", "int16x8", "--samples", "10"]) == 0
    assert "slower" in capsys.readouterr().err
