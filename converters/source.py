"""Loading the model to convert: Keras 3 ``.keras``, legacy Keras 2 ``.h5``, or a SavedModel folder.

Every source is turned into a SavedModel folder for the converter (``model.export()`` for
Keras models), because ``TFLiteConverter.from_concrete_functions`` yields broken models
with Keras 3 (READ_VARIABLE ops that output NaN).
"""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgeq import _lazy
from edgeq._io import sha256_file
from edgeq._native import quiet_native_output
from edgeq.errors import ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """One model input: its name in the serving signature, shape (batch first, ``None`` = any) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"

    @property
    def sample_shape(self) -> tuple[int | None, ...]:
        return self.shape[1:]

    @property
    def is_image(self) -> bool:
        s = self.sample_shape
        return len(s) == 3 and s[2] in (1, 3) and s[0] is not None and s[1] is not None


@dataclass
class SourceModel:
    """A model ready to convert and to serve as the reference in verification.

    Attributes:
        path: where it was loaded from.
        format: ``keras``, ``h5`` or ``saved_model``.
        inputs: the serving signature's inputs, in the order the converter and the runtime use.
        saved_model_dir: the SavedModel the converter reads.
        keras_model: the Keras model, when the source is one.
    """

    path: Path
    format: str
    inputs: tuple[InputSpec, ...]
    saved_model_dir: Path
    predict_fn: Callable[[list[np.ndarray]], list[np.ndarray]]
    keras_model: Any = None
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def size_bytes(self) -> int:
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return self.path.stat().st_size

    def predict(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run the float model on one batch (one array per input); one float32 array per output."""
        return [np.asarray(o, dtype=np.float32) for o in self.predict_fn(arrays)]

    def source_info(self) -> dict[str, Any]:
        return {"name": self.name, "format": self.format, "sha256": self.sha256}


def _kind(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "saved_model"
        raise ModelError(f"{path} is a folder without saved_model.pb; expected a SavedModel folder, a .keras or a .h5 file")
    head = path.read_bytes()[:8]
    if head.startswith(b"\x89HDF\r\n"):
        return "h5"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if "config.json" in z.namelist():
                return "keras"
    if head[4:8] == b"TFL3":
        raise ModelError(f"{path} is already a TFLite model; convert takes the Keras/SavedModel it was made from (use 'edgeq run' to run it)")
    raise ModelError(f"{path} is not a Keras model: expected a Keras 3 .keras file, a Keras 2 .h5 file or a SavedModel folder")


def load_source(path: str | os.PathLike, workdir: str | os.PathLike) -> SourceModel:
    """Load a model file or folder and make the SavedModel the converter needs inside ``workdir``.

    Raises:
        ModelError: the path is missing or is not a loadable Keras/SavedModel model.
        DependencyMissing: TensorFlow/Keras (the ``[convert]`` extra) is not installed.
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}; check the path")
    kind = _kind(path)
    tf = _lazy.tensorflow()
    digest = sha256_file(path)
    if kind == "saved_model":
        return _from_saved_model(tf, path, digest)
    keras = _lazy.keras()
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file; all mean "cannot load"
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load {path} as a Keras model: {reason}") from exc
    export_dir = Path(workdir) / "saved_model"
    try:
        with quiet_native_output():
            model.export(str(export_dir), format="tf_saved_model", verbose=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot export {path} to a SavedModel for conversion: {exc}") from exc
    inputs = _signature_inputs(tf, export_dir)

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = model(arrays[0] if len(arrays) == 1 else arrays, training=False)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    return SourceModel(path, kind, inputs, export_dir, predict, keras_model=model, sha256=digest)


def _signature_inputs(tf: Any, saved_model_dir: Path) -> tuple[InputSpec, ...]:
    with quiet_native_output():
        loaded = tf.saved_model.load(str(saved_model_dir))
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise ModelError(f"{saved_model_dir} has no 'serving_default' signature; re-export the model with one")
    _, kwargs = sig.structured_input_signature
    return tuple(
        InputSpec(name, tuple(spec.shape.as_list()), spec.dtype.name) for name, spec in sorted(kwargs.items())
    )


def _from_saved_model(tf: Any, path: Path, digest: str) -> SourceModel:
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot load SavedModel {path}: {str(exc).splitlines()[0][:300]}") from exc
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise ModelError(f"SavedModel {path} has no 'serving_default' signature; export it with one")
    inputs = _signature_inputs(tf, path)
    output_keys = sorted(sig.structured_outputs)

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = sig(**{spec.name: tf.constant(a) for spec, a in zip(inputs, arrays)})
        return [out[k].numpy() for k in output_keys]

    return SourceModel(path, "saved_model", inputs, path, predict, sha256=digest, extra={"loaded": loaded})
