"""Real models for the runtime and CLI tests, built once per session with TensorFlow.

Two families:

* models converted by ``edgeq.convert`` (embedded ``edgeq`` metadata: preprocessing, labels);
* models made directly with ``tf.lite.TFLiteConverter`` (no metadata), one per case the runtime must
  handle: float32 with a dynamic batch, float16, uint8 IO, int8 with two inputs and two outputs,
  two signatures, and a custom op no backend has.

Every file is written into one folder under the session's base temp dir and built only if it is
not there yet. ``tests/`` is on ``sys.path`` (pyproject's ``pythonpath``), so test modules import the
helpers with ``from support import …``; ``tests/conftest.py`` registers the fixtures for every test
folder. Reference outputs come from TensorFlow's own ``tf.lite.Interpreter`` and from Keras.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pytest

LABELS = ("circle", "square", "stripe", "noise")
SIZE = 16
REPO = Path(__file__).resolve().parents[1]
SAMPLE_MODEL = REPO / "samples" / "fashion_mnist" / "model_int8.tflite"
SAMPLE_EVAL = REPO / "samples" / "fashion_mnist" / "eval"
#: how far (in top-1 points) a measured sample accuracy may be from the README's figure: 3 of 1000 images,
#: room for another CPU's kernels rounding a borderline image the other way, not for a regression
README_TOLERANCE_POINTS = 0.3


# --------------------------------------------------------------------------------------- helpers
def _once(path: Path, make: Callable[[], bytes | None]) -> Path:
    """Build ``path`` unless an earlier fixture (here or in tests/cli) already did."""
    if not path.exists():
        data = make()
        if data is not None:  # ``make`` wrote the file itself (edgeq.convert)
            tmp = path.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, path)
    assert path.exists(), f"fixture did not create {path}"
    return path


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def _convert_saved_model(saved_model: Path, configure: Callable[[Any, Any], None] | None = None, **kwargs: Any) -> bytes:
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), **kwargs)
    if configure is not None:
        configure(converter, tf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # calibration runs tf.lite.Interpreter, which warns it is deprecated
        return bytes(converter.convert())


def rng_images(n: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """``n`` random float32 images in [0, 1), shape ``(n, size, size, 3)``."""
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def tflite_reference(path: Path, feeds: Mapping[str, np.ndarray], signature: str | None = None) -> dict[str, np.ndarray]:
    """Outputs of TensorFlow's own ``tf.lite.Interpreter`` through a signature runner (raw dtypes)."""
    tf = _tf()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = tf.lite.Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner(signature)
        return {k: np.asarray(v) for k, v in runner(**feeds).items()}


def run_cli(*args: str, block_tf: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``edgeq.cli.main(args)`` in a fresh interpreter, so a native crash shows as a signal.

    With ``block_tf``, ``tensorflow`` and ``keras`` are set to ``None`` in ``sys.modules`` first (any
    import of them fails), and the child exits 97 if either got imported anyway.
    """
    code = (
        "import sys\n"
        + ("for m in ('tensorflow', 'keras', 'tf_keras'): sys.modules[m] = None\n" if block_tf else "")
        + "from edgeq.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        + ("leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras')"
           " and sys.modules[m] is not None)\n"
           "if leaked: print('LEAKED', leaked, file=sys.stderr); sys.exit(97)\n" if block_tf else "")
        + "sys.exit(rc)\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=env)


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The single error line of a failed CLI run; fails if there is a traceback or more than one line."""
    assert proc.returncode >= 0, f"the CLI crashed with signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{proc.stderr}"
    return lines[0]


def write_images(folder: Path, count: int, size: tuple[int, int] = (23, 17), seed: int = 3) -> list[Path]:
    """``count`` random RGB PNGs of ``size`` (width, height) into ``folder``."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def readme_sample_accuracy() -> dict[str, float]:
    """The top-1 accuracies (fractions) the README's "bundled sample, measured" table claims: ``float``, ``int8``."""
    import re

    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = {}
    for key, row in (("float", "Keras float32"), ("int8", "TFLite int8")):
        match = re.search(rf"^[|│] {row}\s*[|│][^|│]*[|│]\s*([0-9.]+) %", text, re.MULTILINE)
        assert match, f"README.md has no '{row}' row with a top-1 accuracy in its sample table"
        found[key] = float(match.group(1)) / 100
    return found


# -------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "edgeq-runtime-models"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def keras_classifier(keras_files: dict[str, Path]) -> Any:
    """The float Keras model every converted classifier here comes from (the reference)."""
    _tf()
    import keras

    return keras.models.load_model(keras_files["keras"], compile=False)


@pytest.fixture(scope="session")
def edgeq_int8(models_dir: Path, keras_files: dict[str, Path], image_folder: Path) -> Path:
    """``edgeq.convert`` default: full int8, int8 IO, stretch / RGB / 0–1, with labels."""
    import edgeq

    out = models_dir / "edgeq_int8.tflite"

    def make() -> None:
        edgeq.convert(keras_files["keras"], image_folder, out, labels=LABELS, samples=30)

    return _once(out, make)


@pytest.fixture(scope="session")
def edgeq_float_io(models_dir: Path, keras_files: dict[str, Path], image_folder: Path) -> Path:
    """int8 body with float IO, preprocessing pad / BGR / imagenet: the runtime's float path."""
    import edgeq

    out = models_dir / "edgeq_float_io.tflite"

    def make() -> None:
        edgeq.convert(keras_files["keras"], image_folder, out, io="float", resize="pad", normalize="imagenet",
                      bgr=True, samples=30)

    return _once(out, make)


@pytest.fixture(scope="session")
def edgeq_gray(models_dir: Path, image_folder: Path) -> Path:
    """A grayscale 12x10 int8 model calibrated on RGB images, crop / -1..1 (1-channel lookup table)."""
    import edgeq

    out = models_dir / "edgeq_gray.tflite"

    def make() -> None:
        _tf()
        import keras

        keras.utils.set_random_seed(5)
        inp = keras.Input((12, 10, 1), name="gray")
        x = keras.layers.Conv2D(4, 3, activation="relu")(inp)
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
        model.save(models_dir / "gray.keras")
        edgeq.convert(models_dir / "gray.keras", image_folder, out, resize="crop", normalize="-1,1", samples=30)

    return _once(out, make)


@pytest.fixture(scope="session")
def tfl_float32(models_dir: Path, keras_files: dict[str, Path]) -> Path:
    """Plain TFLite float32 conversion of the classifier: batch dimension -1 (dynamic), no metadata."""
    return _once(models_dir / "float32.tflite", lambda: _convert_saved_model(keras_files["saved_model"]))


@pytest.fixture(scope="session")
def tfl_float16(models_dir: Path, keras_files: dict[str, Path]) -> Path:
    def configure(c: Any, tf: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]

    return _once(models_dir / "float16.tflite", lambda: _convert_saved_model(keras_files["saved_model"], configure))


@pytest.fixture(scope="session")
def tfl_uint8(models_dir: Path, keras_files: dict[str, Path]) -> Path:
    """Full integer with uint8 input and output (TFLite converter, no metadata)."""

    def configure(c: Any, tf: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: ({"image": x[None]} for x in rng_images(24, seed=7))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.uint8
        c.inference_output_type = tf.uint8

    return _once(models_dir / "uint8.tflite", lambda: _convert_saved_model(keras_files["saved_model"], configure))


@pytest.fixture(scope="session")
def multi_io_keras(models_dir: Path) -> Any:
    """Two inputs (``image`` 16x16x3, ``extra`` 5) and two outputs (3-way softmax, 2 linear)."""
    _tf()
    import keras

    path = models_dir / "multi_io.keras"
    if path.exists():
        return keras.models.load_model(path, compile=False)
    keras.utils.set_random_seed(3)
    image = keras.Input((SIZE, SIZE, 3), name="image")
    extra = keras.Input((5,), name="extra")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    y = keras.layers.Concatenate()([x, keras.layers.Dense(4, activation="relu")(extra)])
    model = keras.Model([image, extra], [keras.layers.Dense(3, activation="softmax")(y), keras.layers.Dense(2)(y)])
    model.save(path)
    model.export(str(models_dir / "multi_io_saved_model"), verbose=False)
    return model


#: the seed of the multi-IO model's calibration samples; tests draw from them so no output saturates
MULTI_IO_SEED = 8


def multi_io_samples(n: int, seed: int = MULTI_IO_SEED) -> list[dict[str, np.ndarray]]:
    """``n`` feeds ``{"image": 1x16x16x3 in [0, 1), "extra": 1x5 in [-1, 1)}``."""
    rng = np.random.default_rng(seed)
    return [{"image": rng.random((1, SIZE, SIZE, 3), dtype=np.float32),
             "extra": (rng.random((1, 5), dtype=np.float32) * 2 - 1)} for _ in range(n)]


@pytest.fixture(scope="session")
def tfl_multi_io(models_dir: Path, multi_io_keras: Any) -> Path:
    """The two-input, two-output model as full int8 with int8 IO."""

    def configure(c: Any, tf: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.representative_dataset = lambda: iter(multi_io_samples(48, seed=MULTI_IO_SEED))
        c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.inference_input_type = tf.int8
        c.inference_output_type = tf.int8

    return _once(models_dir / "multi_io.tflite", lambda: _convert_saved_model(models_dir / "multi_io_saved_model", configure))


@pytest.fixture(scope="session")
def tfl_two_signatures(models_dir: Path) -> Path:
    """Signature ``a``: ``y = x @ w`` (x: 1x4); signature ``b``: ``s = u + v``, ``p = u * v`` (u, v: 1x2)."""

    def make() -> bytes:
        tf = _tf()

        class TwoSignatures(tf.Module):
            def __init__(self) -> None:
                super().__init__()
                self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3))

            @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
            def a(self, x):  # type: ignore[no-untyped-def]
                return {"y": tf.matmul(x, self.w)}

            @tf.function(input_signature=[tf.TensorSpec([1, 2], tf.float32, name="u"),
                                          tf.TensorSpec([1, 2], tf.float32, name="v")])
            def b(self, u, v):  # type: ignore[no-untyped-def]
                return {"s": u + v, "p": u * v}

        module = TwoSignatures()
        saved = models_dir / "two_signatures_saved_model"
        tf.saved_model.save(module, str(saved), signatures={"a": module.a, "b": module.b})
        return _convert_saved_model(saved, signature_keys=["a", "b"])

    return _once(models_dir / "two_signatures.tflite", make)


@pytest.fixture(scope="session")
def tfl_custom_op(models_dir: Path, tfl_float32: Path) -> Path:
    """The float32 model with its first opcode renamed to a custom op that no backend registers."""

    def make() -> bytes:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(tfl_float32))
        code = model.operatorCodes[0]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
        code.customCode = b"EdgeqTestMissingOp"
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))

    return _once(models_dir / "custom_op.tflite", make)


@pytest.fixture(scope="session")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RGB JPEG whose size (23x17) differs from every model input, so resizing is exercised."""
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    rng = np.random.default_rng(11)
    yy, xx = np.mgrid[0:17, 0:23]
    base = np.stack([xx * 11, yy * 15, (xx + yy) * 6], axis=-1) % 256
    noise = rng.integers(0, 40, base.shape)
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path, quality=95)
    return path


@dataclass(frozen=True)
class RawPixelClassifier:
    """A classifier that scales its own input (``Rescaling(1/255)`` first), and labelled images it was trained on.

    Attributes:
        keras: the ``.keras`` file: ``rescale`` (Rescaling 1/255), ``conv`` (3x3, ReLU, no bias), global average
            pooling, ``probs`` (softmax over the three colour classes).
        images: ``<class>/*.png``, 16x16 RGB, 16 per class (blue, green, red with noise): training, --data, --train.
        pixels, labels: the same images as raw 0–255 float32 ``(48, 16, 16, 3)`` and their class indices.
    """

    keras: Path
    images: Path
    pixels: np.ndarray
    labels: np.ndarray


#: the classes of ``raw_pixel_classifier``'s images, in label order, and the colour each is noise around
RAW_PIXEL_COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


@pytest.fixture(scope="session")
def raw_pixel_classifier(tmp_path_factory: pytest.TempPathFactory) -> RawPixelClassifier:
    """Trained on raw pixels, as models with their scaling inside are: fed pixels / 255 it sees near-black images."""
    from PIL import Image

    _tf()
    import keras

    root = tmp_path_factory.mktemp("raw_pixel_classifier")
    rng = np.random.default_rng(0)
    pixels, labels = [], []
    for label, (name, colour) in enumerate(RAW_PIXEL_COLOURS.items()):
        (root / "images" / name).mkdir(parents=True)
        for i in range(16):
            image = np.clip(np.array(colour) + rng.integers(-50, 50, (16, 16, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / "images" / name / f"{i:02d}.png")
            pixels.append(image.astype(np.float32))
            labels.append(label)
    keras.utils.set_random_seed(0)
    inp = keras.Input((16, 16, 3), name="image")
    x = keras.layers.Rescaling(1 / 255, name="rescale")(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu", use_bias=False, name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(x))
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy")
    xs, ys = np.stack(pixels), np.asarray(labels)
    model.fit(xs, ys, epochs=30, batch_size=16, verbose=0)
    accuracy = float(np.mean(np.argmax(model.predict(xs, verbose=0), axis=1) == ys))
    assert accuracy == 1.0, f"the raw-pixel classifier did not learn its colours (accuracy {accuracy})"
    model.save(root / "model.keras")
    return RawPixelClassifier(root / "model.keras", root / "images", xs, ys)
