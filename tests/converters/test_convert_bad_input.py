"""edgeq convert on bad input: one clear line, exit 2, no traceback, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeq.cli import main

pytestmark = pytest.mark.tf


def run_convert(capsys, *args: str) -> tuple[int, str]:
    code = main(["convert", *args])
    err = capsys.readouterr().err
    return code, err


def assert_clean_failure(code: int, err: str, folder: Path, *needles: str) -> None:
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip() and "XNNPACK" not in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert not [p for p in folder.iterdir() if p.suffix in (".tflite", ".tmp") or p.name.startswith(".")], list(folder.iterdir())


@pytest.fixture()
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def test_missing_model(capsys, out_dir, npy_data):
    code, err = run_convert(capsys, str(out_dir / "nope.keras"), "--data", str(npy_data), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "ModelError", "not found")


def test_not_a_keras_model(capsys, out_dir, npy_data, tmp_path):
    bogus = tmp_path / "bogus.keras"
    bogus.write_text("hello")
    code, err = run_convert(capsys, str(bogus), "--data", str(npy_data), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "not a Keras model")


def test_empty_data_folder(capsys, out_dir, keras_files, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(empty), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "DataError", str(empty), ".jpg")


def test_undecodable_images(capsys, out_dir, keras_files, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"not a jpeg")
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(bad), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "cannot decode image")


def test_shape_mismatch_names_both_shapes(capsys, out_dir, keras_files, tmp_path):
    data = tmp_path / "d.npy"
    np.save(data, np.zeros((10, 8, 8, 3), np.float32))
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(data), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "[8, 8, 3]", "[16, 16, 3]")


def test_nan_data(capsys, out_dir, keras_files, tmp_path):
    data = tmp_path / "d.npy"
    arr = np.zeros((10, 16, 16, 3), np.float32)
    arr[3, 0, 0, 0] = np.nan
    np.save(data, arr)
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(data), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "NaN")


def test_several_inputs_with_one_image_folder(capsys, out_dir, image_folder, tmp_path):
    import keras

    a, b = keras.Input((16, 16, 3), name="a"), keras.Input((4,), name="b")
    x = keras.layers.Concatenate()([keras.layers.GlobalAveragePooling2D()(a), b])
    path = tmp_path / "two.keras"
    keras.Model([a, b], keras.layers.Dense(2)(x)).save(path)
    code, err = run_convert(capsys, str(path), "--data", str(image_folder), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "2 inputs")


@pytest.mark.parametrize("op, fn", [
    ("Atan", lambda k, t: k.ops.arctan(t)),  # the converter itself refuses
    ("CUMSUM", lambda k, t: k.ops.cumsum(t, axis=-1)),  # the converter would silently leave it in float
])
def test_op_without_int8_kernel_is_named(capsys, out_dir, tmp_path, op, fn):
    import keras

    inp = keras.Input((8,))
    out = keras.layers.Lambda(lambda t: fn(keras, t))(keras.layers.Dense(8)(inp))
    path = tmp_path / "ops_saved_model"  # a SavedModel: Lambda layers do not reload from .keras safely
    keras.Model(inp, out).export(str(path), verbose=False)
    data = tmp_path / "d.npy"
    np.save(data, np.random.default_rng(0).random((10, 8), dtype=np.float32))
    code, err = run_convert(capsys, str(path), "--data", str(data), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "ConversionError", op, "--mode int16x8")


@pytest.mark.parametrize("args, needle", [
    (["--mode", "int3"], "unknown mode"),
    (["--mode", "dynamic", "--io", "int8"], "full-integer"),
    (["--samples", "0"], "--samples"),
])
def test_bad_flags(capsys, out_dir, keras_files, npy_data, args, needle):
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(npy_data), "--out",
                            str(out_dir / "m.tflite"), *args)
    assert_clean_failure(code, err, out_dir, needle)


def test_int8_without_data(capsys, out_dir, keras_files):
    code, err = run_convert(capsys, str(keras_files["keras"]), "--out", str(out_dir / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "needs representative data")


def test_out_folder_missing(capsys, out_dir, keras_files, npy_data):
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(npy_data), "--out",
                            str(out_dir / "nope" / "m.tflite"))
    assert_clean_failure(code, err, out_dir, "does not exist")


def test_existing_out_is_refused_then_forced(capsys, out_dir, keras_files, npy_data):
    out = out_dir / "m.tflite"
    out.write_bytes(b"keep me")
    code, err = run_convert(capsys, str(keras_files["keras"]), "--data", str(npy_data), "--out", str(out))
    assert code == 2 and "--force" in err and out.read_bytes() == b"keep me"
    code, _ = run_convert(capsys, str(keras_files["keras"]), "--data", str(npy_data), "--out", str(out), "--force",
                          "--samples", "10")
    assert code == 0 and out.read_bytes()[4:8] == b"TFL3"
    assert sorted(p.name for p in out_dir.iterdir()) == ["m.tflite"]


def test_without_tensorflow_says_what_to_install(tmp_path, npy_data):
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from edgeq.cli import main\n"
        f"sys.exit(main(['convert', 'model.keras', '--data', {str(npy_data)!r}, '--out', 'm.tflite']))\n"
    )
    (tmp_path / "model.keras").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip: decided after the TF check
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install "edgeq[convert]"' in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "m.tflite").exists()


def test_interrupted_conversion_leaves_nothing(tmp_path, keras_files):
    """SIGINT in the middle of a real conversion (slow data source): exit 130, no output, no temp file."""
    import signal
    import time

    # the data function runs once the model is loaded (it needs the model's inputs); it counts what it yields
    (tmp_path / "slowdata.py").write_text(
        "import time\nimport numpy as np\n"
        "def samples():\n"
        "    for _ in range(400):\n"
        "        time.sleep(0.05)\n"
        "        with open('streamed', 'a') as f:\n"
        "            f.write('.')\n"
        "        yield np.random.default_rng(0).random((16, 16, 3), dtype=np.float32)\n"
    )
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeq", "convert", str(keras_files["keras"]), "--data", "py:slowdata:samples",
         "--out", str(out_dir / "m.tflite"), "--samples", "300"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    streamed = tmp_path / "streamed"
    deadline = time.monotonic() + 120  # TensorFlow's import and the model load come first: seconds on a busy machine
    while not (streamed.exists() and len(streamed.read_text()) >= 5):  # model loaded, data streaming (~15 s of it)
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=120)
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []
    assert len(streamed.read_text()) < 300  # stopped while the data was still coming in


def test_ctrl_c_while_tensorflow_initialises_is_an_interruption(tmp_path):
    """pybind11 turns a KeyboardInterrupt in a module's init into ``ImportError: initialization failed``; TensorFlow's
    import meets that when Ctrl-C lands in it. The CLI must say interrupted (exit 130), not "reinstall tensorflow"."""
    site = tmp_path / "site" / "tensorflow"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(  # what pybind11's module init does with the error
        "try:\n    raise KeyboardInterrupt\nexcept KeyboardInterrupt as e:\n"
        "    raise ImportError('initialization failed') from e\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "NO_COLOR": "1"}
    (tmp_path / "model.keras").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    np.save(tmp_path / "x.npy", np.zeros((4, 16, 16, 3), np.float32))
    proc = subprocess.run([sys.executable, "-m", "edgeq", "convert", "model.keras", "--data", "x.npy", "--out", "m.tflite"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "Interrupted: stopped by Ctrl-C; no partial output was left behind"
    assert not (tmp_path / "m.tflite").exists()
