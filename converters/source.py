"""Loading the model to convert: Keras 3 ``.keras``, legacy Keras 2 ``.h5``, or a SavedModel folder.

Every source is turned into a SavedModel folder for the converter (``model.export()`` for
Keras models), because ``TFLiteConverter.from_concrete_functions`` yields broken models
with Keras 3 (READ_VARIABLE ops that output NaN).

Inputs keep the model's own order (Keras's ``model.inputs``) and every input and output is known by its
serving-signature name, which the converted model keeps: samples are fed by name everywhere.
A SavedModel that TF 2 cannot restore as Python objects (written by an older Keras: ``add_slot``) is read
through its serving signature only (the TF 1 loader), frozen, and re-saved as a plain SavedModel.

Signatures are read from ``saved_model.pb`` alone, and a SavedModel folder is restored by TensorFlow (the float
reference) only when something first runs it, usually verification: the converter restores it on its own, and
each restore costs about as much as converting a small model.
"""

from __future__ import annotations

import logging
import os
import warnings
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
        output_names: the serving signature's output names, in the order ``predict`` returns them.
        notes: what loading decided on the user's behalf (a batch axis, a signature-only load).
    """

    path: Path
    format: str
    inputs: tuple[InputSpec, ...]
    saved_model_dir: Path
    predict_fn: Callable[[list[np.ndarray]], list[np.ndarray]]
    keras_model: Any = None
    sha256: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    output_names: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

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

    def predict_named(self, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
        """``predict`` with each output under its signature name (the converted model's output names)."""
        outputs = self.predict(arrays)
        names = self.output_names if len(self.output_names) == len(outputs) else [f"output_{i}" for i in range(len(outputs))]
        return dict(zip(names, outputs))

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
        return _from_saved_model(tf, path, digest, Path(workdir))
    keras = _lazy.keras()
    try:
        with warnings.catch_warnings():  # Keras 3 warns about Keras 2 configs (input_shape on a layer)
            warnings.simplefilter("ignore", UserWarning)
            model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for a bad file; all mean "cannot load"
        raise ModelError(_keras_load_error(path, exc)) from exc
    notes: tuple[str, ...] = ()
    if kind == "h5":
        model, notes = _legacy_batch_axis(path, model, keras)
    export_dir = Path(workdir) / "saved_model"
    try:
        with quiet_native_output():
            model.export(str(export_dir), format="tf_saved_model", verbose=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot export {path} to a SavedModel for conversion: {exc}") from exc
    inputs, outputs = read_signature(export_dir)
    inputs = _keras_order(inputs, [getattr(t, "name", "") for t in model.inputs])
    outputs = tuple(sorted(outputs, key=_output_index))  # output_0, output_1, …: Keras's output order

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = model(arrays[0] if len(arrays) == 1 else list(arrays), training=False)
        if isinstance(out, dict):
            return [np.asarray(out[k]) for k in outputs]
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    return SourceModel(path, kind, inputs, export_dir, predict, keras_model=model, sha256=digest,
                       output_names=outputs, notes=notes)


def _keras_load_error(path: Path, exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    if "Could not locate class" in str(exc) or "Could not locate function" in str(exc):
        return (f"cannot load {path}: it uses a custom (subclassed) class Keras cannot find ({reason[:160]}); "
                "in the code that defines it, run model.export('saved_model_dir') and convert that folder")
    return f"cannot load {path} as a Keras model: {reason}"


def _output_index(name: str) -> tuple[int, str]:
    head, _, tail = name.rpartition("_")
    return (int(tail), head) if head == "output" and tail.isdigit() else (1 << 30, name)


def _keras_order(inputs: tuple[InputSpec, ...], keras_names: list[str]) -> tuple[InputSpec, ...]:
    """The signature's inputs in the Keras model's order (when every name matches; else unchanged)."""
    by_name = {spec.name: spec for spec in inputs}
    if sorted(keras_names) != sorted(by_name):
        return inputs
    return tuple(by_name[n] for n in keras_names)


def _legacy_batch_axis(path: Path, model: Any, keras: Any) -> tuple[Any, tuple[str, ...]]:
    """Undo Keras 3's extra ``None`` axis on Keras 2 ``.h5`` models built with ``batch_input_shape`` on a layer.

    Keras 3 reads ``batch_input_shape: [null, 68, 21]`` as a sample shape, giving the input
    ``(None, None, 68, 21)``; the saved shape is the truth (axis 0 is the batch), so the model is rebuilt on it.
    """
    declared = _declared_batch_shapes(path)
    if len(declared) != 1 or len(model.inputs) != 1:
        return model, ()
    want = tuple(declared[0])
    got = tuple(model.inputs[0].shape)
    if len(got) != len(want) + 1 or got[0] is not None or got[1] is not None or got[2:] != want[1:]:
        return model, ()
    if type(model).__name__ != "Sequential":
        return model, ()
    inp = keras.Input(want[1:], name="input")
    try:
        x = inp
        for layer in model.layers:  # the same layers (and weights) on the declared input
            x = layer(x)
        fixed = keras.Model(inp, x, name=model.name)
    except Exception as exc:  # noqa: BLE001 - keep the model as loaded; say why
        log.info("cannot rebuild %s on its saved input shape: %s", path, exc)
        return model, ()
    sample = _shape_text(want[1:])
    return fixed, (f"input: Keras 3 reads this Keras 2 model's input as {_shape_text(got)}, but the file declares "
                   f"batch_input_shape {_shape_text(want)}: edgeq uses axis 0 as the batch, one sample is {sample} "
                   f"(an .npy of N samples has shape (N, {sample[1:-1]}))",)


def _shape_text(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _declared_batch_shapes(path: Path) -> list[list[Any]]:
    """The ``batch_input_shape`` entries of a Keras 2 ``.h5`` model config (empty when unreadable)."""
    import json

    try:
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except Exception:  # noqa: BLE001 - no config, no correction
        return []
    found: list[list[Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("batch_input_shape"), list):
                found.append(node["batch_input_shape"])
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config.get("config", {}))
    return found[:1] if config.get("class_name") == "Sequential" else found


def read_signature(saved_model_dir: Path) -> tuple[tuple[InputSpec, ...], tuple[str, ...]]:
    """The serving signature's inputs (sorted by name) and output names, read from ``saved_model.pb`` alone.

    Only the protobuf is parsed: no variables are restored and no function is traced (TensorFlow's loader
    costs as much as a small model's whole conversion).

    Raises:
        ModelError: ``saved_model.pb`` is unreadable or has no ``serving_default`` signature.
    """
    meta = _serving_meta_graph(saved_model_dir)
    sig = meta.signature_def.get("serving_default") if meta is not None else None
    if sig is None:
        raise ModelError(f"SavedModel {saved_model_dir} has no 'serving_default' signature; export it with one")
    from tensorflow.python.framework import dtypes

    inputs = tuple(InputSpec(name, _proto_shape(info), dtypes.as_dtype(info.dtype).name)
                   for name, info in sorted(sig.inputs.items()))
    return inputs, tuple(sorted(sig.outputs))


def _serving_meta_graph(saved_model_dir: Path) -> Any:
    """The ``serve``-tagged meta graph of ``saved_model.pb`` (the only one, if untagged), or ``None``."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    except (OSError, DecodeError) as exc:
        raise ModelError(f"cannot read SavedModel {saved_model_dir}: saved_model.pb is not a SavedModel ({exc}); "
                         "export the model again") from None
    graphs = list(proto.meta_graphs)
    tagged = [g for g in graphs if set(g.meta_info_def.tags) == {"serve"}]
    return tagged[0] if tagged else (graphs[0] if len(graphs) == 1 else None)


def _proto_shape(info: Any) -> tuple[int | None, ...]:
    """A signature tensor's shape from its ``TensorInfo`` (``None`` for an unknown size)."""
    return tuple(d.size if d.size >= 0 else None for d in info.tensor_shape.dim)


def _from_saved_model(tf: Any, path: Path, digest: str, workdir: Path) -> SourceModel:
    """A SavedModel folder as it is: the converter reads it, and the float reference loads on first use.

    A SavedModel with optimizer slot variables (written by an older Keras) is loaded at once instead, because
    TF 2 may not restore it as objects (``add_slot``): then it is read through its signature only.
    """
    meta = _serving_meta_graph(path)
    if meta is not None and any(node.slot_variables for node in meta.object_graph_def.nodes):
        return _from_saved_model_objects(tf, path, digest, workdir)
    inputs, output_keys = read_signature(path)
    reference = _LazySignature(tf, path)

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = reference.function()(**{spec.name: tf.constant(a) for spec, a in zip(inputs, arrays)})
        return [out[k].numpy() for k in output_keys]

    return SourceModel(path, "saved_model", inputs, path, predict, sha256=digest, extra={"reference": reference},
                       output_names=output_keys)


class _LazySignature:
    """A SavedModel's ``serving_default`` function, loaded by TensorFlow the first time it is asked for."""

    def __init__(self, tf: Any, path: Path) -> None:
        self._tf, self._path = tf, path
        self._loaded: Any = None  # kept alive: the signature function needs its variables

    def function(self) -> Any:
        if self._loaded is None:
            try:
                with quiet_native_output():
                    self._loaded = self._tf.saved_model.load(str(self._path))
            except Exception as exc:  # noqa: BLE001 - TF raises many types for a model it cannot restore
                raise ModelError(f"cannot load SavedModel {self._path}: {str(exc).splitlines()[0][:300]}") from exc
        return self._loaded.signatures["serving_default"]


def _from_saved_model_objects(tf: Any, path: Path, digest: str, workdir: Path) -> SourceModel:
    """Load the SavedModel's Python objects now, or read its signature only when TF 2 cannot restore them."""
    try:
        with quiet_native_output():
            loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # noqa: BLE001
        if _needs_signature_only(exc):
            from edgeq.converters.signature_only import load_signature_only

            return load_signature_only(tf, path, digest, workdir)
        raise ModelError(f"cannot load SavedModel {path}: {str(exc).splitlines()[0][:300]}") from exc
    sig = loaded.signatures.get("serving_default")
    if sig is None:
        raise ModelError(f"SavedModel {path} has no 'serving_default' signature; export it with one")
    inputs, output_keys = read_signature(path)

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = sig(**{spec.name: tf.constant(a) for spec, a in zip(inputs, arrays)})
        return [out[k].numpy() for k in output_keys]

    return SourceModel(path, "saved_model", inputs, path, predict, sha256=digest, extra={"loaded": loaded},
                       output_names=output_keys)


def _needs_signature_only(exc: Exception) -> bool:
    """TF 2 cannot rebuild the Python objects of this SavedModel (older Keras), but its graph is fine."""
    return isinstance(exc, AttributeError) or "add_slot" in str(exc)
