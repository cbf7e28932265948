#!/usr/bin/env python3
"""Build the bundled Fashion-MNIST sample: a small Keras CNN plus evaluation/calibration images.

This script regenerates everything the ``edgeq`` sample in ``samples/fashion_mnist/`` needs,
fully offline, from the Fashion-MNIST idx files shipped by the Debian package
``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``)::

    python samples/make_fashion_mnist.py \\
        --data-dir /usr/share/datasets/fashion-mnist \\
        --out samples/fashion_mnist --epochs 5 --seed 1234

Outputs (under ``--out``):

* ``model.keras``   - Keras 3 CNN, input ``(28, 28, 1)`` float32 in ``[0, 1]`` (pixel / 255; there
  is deliberately no Rescaling layer: preprocessing happens outside the model), output
  10-way softmax. Saved uncompiled (no optimizer state) to keep the file small.
* ``labels.txt``    - the 10 class names, one per line, in class-index order.
* ``eval/<N>_<slug>/<test-index>.png`` - 1000 test-split images (first 100 of each class in
  test-set order), 8-bit grayscale PNG, ImageNet-style class folders whose sorted order equals
  the class index order.
* ``calib/<train-index>.png`` - 200 train-split images (first 20 of each class in train-set
  order) for int8 calibration (representative dataset).
* ``training.json`` - accuracies, versions, parameter count, timings and file sizes.

Only this script's own outputs are (re)written; other files in ``--out`` (README.md,
LICENSE-data.txt) are left alone. Training is seeded with ``keras.utils.set_random_seed`` so
reruns are reproducible up to floating-point nondeterminism of the CPU kernels.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# The model must be convertible with tf.lite, so pin the Keras backend to TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image

DEFAULT_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = Path(__file__).resolve().parent / "fashion_mnist"

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Folder names: "<index>_<slug>". With 10 classes the index is a single digit, so
# lexicographic folder order == class index order.
CLASS_DIRS: tuple[str, ...] = (
    "0_tshirt_top",
    "1_trouser",
    "2_pullover",
    "3_dress",
    "4_coat",
    "5_sandal",
    "6_shirt",
    "7_sneaker",
    "8_bag",
    "9_ankle_boot",
)
NUM_CLASSES = len(CLASS_NAMES)
EVAL_PER_CLASS = 100
CALIB_PER_CLASS = 20

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def read_idx_gz(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST container format) into a uint8 array.

    Header: two zero bytes, a dtype code (0x08 = uint8), the number of dimensions, then one
    big-endian uint32 per dimension, followed by the raw data.
    """
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    if data[2] != 0x08:
        raise ValueError(f"{path}: unsupported IDX dtype code 0x{data[2]:02x} (expected uint8)")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape))
    if len(data) - offset != expected:
        raise ValueError(f"{path}: expected {expected} data bytes, found {len(data) - offset}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def load_fashion_mnist(data_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(x_train, y_train, x_test, y_test)`` as uint8 arrays (images are N x 28 x 28)."""
    missing = [name for name in IDX_FILES.values() if not (data_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"missing {', '.join(missing)} in {data_dir}; "
            "install them with `apt-get install dataset-fashion-mnist` or pass --data-dir"
        )
    arrays = {key: read_idx_gz(data_dir / name) for key, name in IDX_FILES.items()}
    x_train, y_train = arrays["train_images"], arrays["train_labels"]
    x_test, y_test = arrays["test_images"], arrays["test_labels"]
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,), x_train.shape
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,), x_test.shape
    return x_train, y_train, x_test, y_test


def preprocess(images_u8: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, 28, 28, 1)`` in ``[0, 1]`` (pixel / 255)."""
    return (images_u8.astype(np.float32) / 255.0)[..., np.newaxis]


def first_n_per_class(labels: np.ndarray, n: int) -> list[np.ndarray]:
    """For each class, the indices of its first ``n`` occurrences in dataset order."""
    return [np.flatnonzero(labels == c)[:n] for c in range(NUM_CLASSES)]


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------
def build_model() -> Any:
    """Small quantization-friendly CNN (~17k parameters, ~0.6 M MACs per image).

    Conv/SeparableConv layers have no bias because BatchNormalization follows them (the
    TFLite converter folds BN into the preceding convolution). Plain ReLU after BN keeps
    activation ranges moderate, so full-int8 calibration loses (almost) no accuracy.
    """
    import keras
    from keras import layers

    inputs = keras.Input(shape=(28, 28, 1), dtype="float32", name="image")
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)  # -> 14x14x16

    x = layers.SeparableConv2D(32, 3, padding="same", use_bias=False, name="sepconv2")(x)
    x = layers.BatchNormalization(name="bn2")(x)
    x = layers.ReLU(name="relu2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)  # -> 7x7x32

    x = layers.Flatten(name="flatten")(x)  # -> 1568
    x = layers.Dropout(0.3, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="fashion_mnist_cnn")


def train(
    x_train: np.ndarray,
    y_train: np.ndarray,
    epochs: int,
    batch_size: int,
    seed: int,
) -> tuple[Any, float]:
    """Build, compile and train the model. Returns ``(model, training_seconds)``."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_model()
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    lr = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=3e-3, decay_steps=steps, alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.summary(print_fn=lambda line, **_: print(line))
    t0 = time.perf_counter()
    model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=2,
    )
    return model, time.perf_counter() - t0


def strip_optimizer(model: Any) -> Any:
    """Return an uncompiled copy of ``model`` with the same weights (no optimizer state).

    A freshly built, never-compiled model is used on purpose: ``keras.models.clone_model``
    would carry the compile config over and the saved file would again contain Adam slots.
    """
    clean = build_model()
    clean.set_weights(model.get_weights())
    return clean


def accuracy(model: Any, x: np.ndarray, y: np.ndarray, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` on float inputs ``x`` with integer labels ``y``."""
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(probs, axis=1) == y))


# --------------------------------------------------------------------------------------------
# Image export
# --------------------------------------------------------------------------------------------
def save_png(image_u8: np.ndarray, path: Path) -> None:
    """Save a 28x28 uint8 array as an 8-bit grayscale ("L") PNG."""
    Image.fromarray(image_u8, mode="L").save(path, format="PNG", optimize=True)


def write_eval_images(out: Path, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Write ``eval/<N>_<slug>/<test-index>.png`` for the first 100 test images of each class."""
    eval_dir = out / "eval"
    if eval_dir.exists():
        shutil.rmtree(eval_dir)
    for cls, indices in enumerate(first_n_per_class(y_test, EVAL_PER_CLASS)):
        assert len(indices) == EVAL_PER_CLASS
        cls_dir = eval_dir / CLASS_DIRS[cls]
        cls_dir.mkdir(parents=True)
        for i in indices:
            save_png(x_test[i], cls_dir / f"{int(i):05d}.png")


def write_calib_images(out: Path, x_train: np.ndarray, y_train: np.ndarray) -> None:
    """Write ``calib/<train-index>.png`` for the first 20 train images of each class."""
    calib_dir = out / "calib"
    if calib_dir.exists():
        shutil.rmtree(calib_dir)
    calib_dir.mkdir(parents=True)
    indices = np.sort(np.concatenate(first_n_per_class(y_train, CALIB_PER_CLASS)))
    assert len(indices) == CALIB_PER_CLASS * NUM_CLASSES
    for i in indices:
        save_png(x_train[i], calib_dir / f"{int(i):05d}.png")


def load_eval_pngs(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Re-read ``eval/`` from disk with Pillow: returns float32 ``(N, 28, 28, 1)`` and labels.

    The label of an image is the position of its folder in sorted folder order.
    """
    class_dirs = sorted(p for p in (out / "eval").iterdir() if p.is_dir())
    images: list[np.ndarray] = []
    labels: list[int] = []
    for cls, cls_dir in enumerate(class_dirs):
        for png in sorted(cls_dir.glob("*.png")):
            with Image.open(png) as im:
                images.append(np.asarray(im.convert("L"), dtype=np.uint8))
            labels.append(cls)
    return preprocess(np.stack(images)), np.asarray(labels, dtype=np.int64)


def dir_size(path: Path) -> int:
    """Total size in bytes of all regular files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Train the bundled Fashion-MNIST sample model and write eval/calib PNGs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="directory with the Fashion-MNIST *-idx*-ubyte.gz files "
        "(Debian package dataset-fashion-mnist)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (samples/fashion_mnist)"
    )
    parser.add_argument("--epochs", type=int, default=5, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument("--seed", type=int, default=1234, help="random seed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    import keras
    import tensorflow as tf

    print(f"reading Fashion-MNIST from {args.data_dir}")
    x_train_u8, y_train, x_test_u8, y_test = load_fashion_mnist(args.data_dir)
    x_train, x_test = preprocess(x_train_u8), preprocess(x_test_u8)

    model, train_seconds = train(x_train, y_train, args.epochs, args.batch_size, args.seed)
    model = strip_optimizer(model)
    test_acc = accuracy(model, x_test, y_test)

    model_path = out / "model.keras"
    model.save(model_path)
    (out / "labels.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    write_eval_images(out, x_test_u8, y_test)
    write_calib_images(out, x_train_u8, y_train)

    # Accuracy on the PNGs exactly as a user would see them (re-read from disk, /255),
    # using the model re-loaded from the saved .keras file.
    x_eval, y_eval = load_eval_pngs(out)
    reloaded = keras.models.load_model(model_path, compile=False)
    eval_acc = accuracy(reloaded, x_eval, y_eval)

    report: dict[str, Any] = {
        "dataset": "Fashion-MNIST (Zalando SE, MIT), Debian package dataset-fashion-mnist",
        "data_dir": str(args.data_dir),
        "float_test_accuracy": round(test_acc, 4),
        "float_test_samples": len(y_test),
        "float_eval_png_accuracy": round(eval_acc, 4),
        "eval_png_samples": len(y_eval),
        "calib_png_samples": CALIB_PER_CLASS * NUM_CLASSES,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "train_seconds": round(train_seconds, 1),
        "param_count": int(model.count_params()),
        "input": {"shape": [28, 28, 1], "dtype": "float32", "preprocessing": "pixel / 255"},
        "versions": {
            "python": platform.python_version(),
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
        "file_sizes_bytes": {
            "model.keras": model_path.stat().st_size,
            "labels.txt": (out / "labels.txt").stat().st_size,
            "eval/": dir_size(out / "eval"),
            "calib/": dir_size(out / "calib"),
        },
    }
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
