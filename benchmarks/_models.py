"""The benchmark's models and their representative data.

* ``sample``: the bundled Fashion-MNIST CNN (``samples/fashion_mnist/model.keras``), calibrated on its
  200 calibration PNGs read exactly as ``edgeq convert --data calib/`` reads them.
* ``mnv2_224``: Keras MobileNetV2, 224x224, alpha 1.0; ``mnv2_035_96``: MobileNetV2 alpha 0.35 at 96x96.
  Random weights (no download). Their batch-norm statistics are then set from one batch of inputs,
  as training would: with the initial statistics the activations fade to almost zero after a few
  blocks, and int16x8 models then fail to load ("no_integer_overflow_from_quantization"), because the
  calibrated ranges are ~1e-8. Calibrated on 20 seeded uniform [-1, 1] inputs (MobileNetV2's range).

Building needs TensorFlow; it runs in the conversion child (:mod:`_convert`). The results are kept in
the cache folder, keyed by the TensorFlow and Keras versions, and rebuilt when missing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import SAMPLE_DIR


@dataclass(frozen=True)
class BenchModel:
    """One benchmark model: its input and how its representative data is made."""

    name: str
    title: str
    shape: tuple[int, int, int]
    alpha: float | None = None  # MobileNetV2 width; None = the bundled sample
    calibration_samples: int = 20
    normalize: str = "-1,1"

    @property
    def is_sample(self) -> bool:
        return self.alpha is None


MODELS: dict[str, BenchModel] = {
    m.name: m
    for m in (
        BenchModel("sample", "Fashion-MNIST sample CNN (28x28x1)", (28, 28, 1), None, 200, "0,1"),
        BenchModel("mnv2_224", "MobileNetV2 1.0, 224x224", (224, 224, 3), 1.0),
        BenchModel("mnv2_035_96", "MobileNetV2 0.35, 96x96", (96, 96, 3), 0.35),
    )
}


@dataclass(frozen=True)
class SourceFiles:
    """The files a benchmark model is converted from."""

    keras: Path
    saved_model: Path
    data: Path  # .npy of representative samples, float32, NHWC
    built: bool  # made in this run (False: taken from the cache)


def preprocess_for(model: BenchModel):  # type: ignore[no-untyped-def]
    """The image preprocessing the model expects (what ``edgeq convert --data images/`` would embed)."""
    from edgeq.metadata import Preprocess

    color = "grayscale" if model.shape[2] == 1 else "rgb"
    return Preprocess.from_normalize(model.normalize, size=model.shape[:2], color=color)


def sources(model: BenchModel, folder: Path) -> SourceFiles:
    """The model's ``.keras``, its SavedModel and its representative data, built into ``folder`` if missing."""
    folder.mkdir(parents=True, exist_ok=True)
    keras_path = folder / "model.keras"
    saved = folder / "saved_model"
    data = folder / "representative.npy"
    done = folder / "complete"
    if done.exists():
        return SourceFiles(keras_path, saved, data, built=False)
    shutil.rmtree(saved, ignore_errors=True)
    from edgeq import _lazy
    from edgeq._native import quiet_native_output

    keras = _lazy.keras()
    if model.is_sample:
        shutil.copyfile(SAMPLE_DIR / "model.keras", keras_path)
        np.save(data, _sample_calibration(model))
        net = keras.models.load_model(keras_path, compile=False)
    else:
        rng = np.random.default_rng(0)
        keras.utils.set_random_seed(0)
        net = keras.applications.MobileNetV2(weights=None, input_shape=model.shape, alpha=model.alpha)
        _set_batchnorm_statistics(keras, net, rng.uniform(-1, 1, (16, *model.shape)).astype(np.float32))
        net.save(keras_path)
        np.save(data, rng.uniform(-1, 1, (model.calibration_samples, *model.shape)).astype(np.float32))
    with quiet_native_output():
        net.export(str(saved), format="tf_saved_model", verbose=False)
    done.write_text("ok\n")
    return SourceFiles(keras_path, saved, data, built=True)


def _sample_calibration(model: BenchModel) -> np.ndarray:
    from edgeq.runtime.preprocess import IMAGE_EXTENSIONS, image_to_array

    files = sorted(p for p in (SAMPLE_DIR / "calib").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    pp = preprocess_for(model)
    return np.stack([image_to_array(f, pp) for f in files[: model.calibration_samples]])


def _set_batchnorm_statistics(keras, net, batch: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Make every BatchNormalization layer's moving statistics those of ``batch`` (one training-mode pass)."""
    layers = [layer for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momentum = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    net(batch, training=True)
    for layer, value in zip(layers, momentum):
        layer.momentum = value
