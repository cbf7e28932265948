"""Fixtures of the QAT tests: a Fashion-MNIST split of the bundled labelled images, a small CNN trained on it,
and its post-training int8 and QAT int8 versions (each built once per session)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "fashion_mnist"
#: labelled images per class used for training; the rest of the sample's 100 per class are the test set
TRAIN_PER_CLASS = 50


@pytest.fixture(scope="session")
def fashion_split(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample's 1000 labelled test images split per class: 50 to train on, 50 to measure accuracy on."""
    root = tmp_path_factory.mktemp("fashion_split")
    for cls in sorted(p for p in (SAMPLE / "eval").iterdir() if p.is_dir()):
        files = sorted(cls.glob("*.png"))
        for part, chosen in (("train", files[:TRAIN_PER_CLASS]), ("test", files[TRAIN_PER_CLASS:])):
            target = root / part / cls.name
            target.mkdir(parents=True)
            for f in chosen:
                shutil.copyfile(f, target / f.name)
    return {"train": root / "train", "test": root / "test"}


def read_folder(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labelled grayscale images as float32 ``(N, 28, 28, 1)`` in [0, 1] and class indices."""
    from edgeq.metadata import Preprocess
    from edgeq.runtime.evaluate import labelled_folder
    from edgeq.runtime.preprocess import image_to_array

    found = labelled_folder(folder)
    pp = Preprocess(size=(28, 28), color="grayscale")
    return np.stack([image_to_array(p, pp) for p in found.paths]).astype(np.float32), found.labels.astype(np.int64)


@pytest.fixture(scope="session")
def fashion_model(tmp_path_factory: pytest.TempPathFactory, fashion_split: dict[str, Path]) -> Path:
    """A small CNN (Conv/BN/ReLU, SeparableConv/BN/ReLU, pooling, Dense softmax) trained on the 500 training images."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    keras.utils.set_random_seed(7)
    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.SeparableConv2D(16, 3, padding="same", use_bias=False, name="sep2")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    out = keras.layers.Dense(10, activation="softmax", name="probs")(x)
    model = keras.Model(inp, out)
    xs, ys = read_folder(fashion_split["train"])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=4, batch_size=32, verbose=0)
    path = tmp_path_factory.mktemp("fashion_model") / "small_cnn.keras"
    model.save(path)
    return path


@pytest.fixture(scope="session")
def fashion_ptq(tmp_path_factory: pytest.TempPathFactory, fashion_model: Path, fashion_split: dict[str, Path]) -> Path:
    """The small CNN converted post-training (``edgeq.convert``, int8), calibrated on its training images."""
    import edgeq

    out = tmp_path_factory.mktemp("fashion_ptq") / "ptq_int8.tflite"
    edgeq.convert(fashion_model, fashion_split["train"], out, samples=150, labels=SAMPLE / "labels.txt")
    return out


@pytest.fixture(scope="session")
def fashion_qat(tmp_path_factory: pytest.TempPathFactory, fashion_model: Path, fashion_split: dict[str, Path]) -> Any:
    """The small CNN after 2 epochs of QAT on the same images (no representative dataset)."""
    import edgeq

    out = tmp_path_factory.mktemp("fashion_qat") / "qat_int8.tflite"
    return edgeq.qat(fashion_model, fashion_split["train"], out, epochs=2, labels=SAMPLE / "labels.txt")


@pytest.fixture(scope="session")
def check_trained_scales() -> Any:
    """``check(tflite_bytes, ranges)``: every trained range appears as an int8 scale ``(max - min) / 255``."""
    return assert_scales_are_trained_ranges


def int8_scales(tflite: bytes) -> list[float]:
    """The scales of the per-tensor int8 activation tensors of a model's main subgraph."""
    from edgeq._flatbuffer import parse

    return [t.scales[0] for t in parse(tflite).subgraphs[0].tensors if t.dtype == "INT8" and len(t.scales) == 1]


def assert_scales_are_trained_ranges(tflite: bytes, ranges: dict[str, tuple[float, float]]) -> None:
    """Every trained range appears in the model as an int8 scale ``(max - min) / 255``."""
    scales = np.asarray(int8_scales(tflite))
    for name, (lo, hi) in ranges.items():
        want = (hi - lo) / 255
        assert np.isclose(scales, want, rtol=1e-5, atol=0).any(), f"{name}: no int8 tensor has scale {want} ({scales})"
