"""Shared fixtures: tiny real Keras models and data made on the fly (no downloads)."""

from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "samples" / "fashion_mnist"
HAS_TF = importlib.util.find_spec("tensorflow") is not None

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# proofs that a model passed its checks (edgeq/_checked.py) go to a throwaway folder, not the user's cache
os.environ["EDGEQ_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgeq-cache-")

# the session fixtures of real models shared by the runtime and CLI tests (tests/support.py)
from support import (  # noqa: E402,F401
    models_dir,
    keras_classifier,
    edgeq_int8,
    edgeq_float_io,
    edgeq_gray,
    tfl_float32,
    tfl_float16,
    tfl_uint8,
    multi_io_keras,
    tfl_multi_io,
    tfl_two_signatures,
    tfl_custom_op,
    photo,
    raw_pixel_classifier,
)
from known_models import known  # noqa: E402,F401 - the known-answer models (tests/known_models.py)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_TF:
        return
    skip = pytest.mark.skip(reason='TensorFlow is not installed (pip install "edgeq[convert]"); CI installs it')
    for item in items:
        if "tf" in item.keywords:
            item.add_marker(skip)


def build_classifier(shape=(16, 16, 3), classes: int = 4, seed: int = 0):  # type: ignore[no-untyped-def]
    """A tiny CNN with the layers real models have: Conv/BatchNorm/ReLU, SeparableConv, pooling, Dense, softmax."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape, name="image")
    x = keras.layers.Conv2D(8, 3, padding="same")(inp)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inp, out)
    # a few steps of training so BatchNorm statistics and outputs are not trivial
    rng = np.random.default_rng(seed)
    xs = rng.random((64, *shape), dtype=np.float32)
    ys = (xs.mean(axis=(1, 2, 3)) * classes * 7).astype(int) % classes
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(xs, ys, epochs=2, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="session")
def keras_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same tiny classifier as .keras, legacy .h5 and SavedModel folder."""
    root = tmp_path_factory.mktemp("keras")
    model = build_classifier()
    model.save(root / "model.keras")
    model.save(root / "model.h5")
    model.export(str(root / "saved_model"), verbose=False)
    return {"keras": root / "model.keras", "h5": root / "model.h5", "saved_model": root / "saved_model"}


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 random RGB images of mixed sizes and formats, in nested folders."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for i in range(40):
        sub = root / f"part{i % 2}"
        sub.mkdir(exist_ok=True)
        size = (20 + i % 7, 16 + i % 5)
        img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        img.save(sub / f"img{i:03d}.{('png', 'jpg', 'bmp', 'webp')[i % 4]}")
    return root


@pytest.fixture(scope="session")
def npy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("npy") / "data.npy"
    np.save(path, np.random.default_rng(2).random((60, 16, 16, 3), dtype=np.float32))
    return path
