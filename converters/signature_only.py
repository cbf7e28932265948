"""Reading a SavedModel through its serving signature only, for SavedModels TF 2 cannot restore as objects.

SavedModels written by older Keras versions carry optimizer slots that TF 2.21's object loader cannot
rebuild (``'_UserObject' object has no attribute 'add_slot'``); ``TFLiteConverter.from_saved_model`` fails
the same way. Their graph and serving signature are intact: the TF 1 loader reads them into a session,
the variables are frozen into constants, and the signature is saved again as a plain SavedModel, which the
converter and the verification read like any other. No Keras object is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeq._native import quiet_native_output
from edgeq.errors import ModelError

from edgeq.converters.source import InputSpec, SourceModel


def load_signature_only(tf: Any, path: Path, digest: str, workdir: Path) -> SourceModel:
    """Load ``path``'s ``serving_default`` signature without its Python objects; see the module docstring.

    Raises:
        ModelError: the graph itself cannot be loaded or has no ``serving_default`` signature.
    """
    from tensorflow.python.framework import convert_to_constants

    graph = tf.Graph()
    try:
        with quiet_native_output(), graph.as_default():
            session = tf.compat.v1.Session(graph=graph)
            meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
    except Exception as exc:  # noqa: BLE001 - any failure here means the graph is unreadable too
        raise ModelError(f"cannot load SavedModel {path}, not even its serving graph: {str(exc).splitlines()[0][:300]}") from exc
    sig = meta.signature_def.get("serving_default")
    if sig is None:
        raise ModelError(f"SavedModel {path} has no 'serving_default' signature; export it with one")
    ins = sorted(sig.inputs.items())
    outs = sorted(sig.outputs.items())
    with quiet_native_output():
        frozen = convert_to_constants.convert_variables_to_constants_from_session_graph(
            session, graph.as_graph_def(), sorted({info.name.split(":")[0] for _, info in outs}))
        export_dir = Path(workdir) / "saved_model"
        _save_signature(tf, frozen, ins, outs, export_dir)
    inputs = tuple(InputSpec(name, _shape(info), tf.as_dtype(info.dtype).name) for name, info in ins)
    feeds = [info.name for _, info in ins]
    fetches = [info.name for _, info in outs]

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return list(session.run(fetches, dict(zip(feeds, arrays))))

    note = (f"{path.name}: TensorFlow cannot restore this SavedModel's Python objects (written by an older Keras); "
            "it was loaded through its serving signature only (TF 1 loader, variables frozen)")
    return SourceModel(path, "saved_model", inputs, export_dir, predict, sha256=digest, extra={"session": session},
                       output_names=tuple(name for name, _ in outs), notes=(note,))


def _shape(info: Any) -> tuple[int | None, ...]:
    return tuple(d.size if d.size >= 0 else None for d in info.tensor_shape.dim)


def _save_signature(tf: Any, frozen: Any, ins: list[tuple[str, Any]], outs: list[tuple[str, Any]], out_dir: Path) -> None:
    """Save the frozen graph as a SavedModel whose ``serving_default`` has the original input/output names."""

    def imports() -> None:
        tf.compat.v1.import_graph_def(frozen, name="")

    wrapped = tf.compat.v1.wrap_function(imports, [])
    pruned = wrapped.prune(feeds=[wrapped.graph.get_tensor_by_name(info.name) for _, info in ins],
                           fetches=[wrapped.graph.get_tensor_by_name(info.name) for _, info in outs])
    specs = [tf.TensorSpec(_shape(info), tf.as_dtype(info.dtype), name=name) for name, info in ins]
    names = [name for name, _ in outs]

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> dict[str, Any]:
        return dict(zip(names, pruned(*args)))

    module = tf.Module()
    module.pruned = pruned
    module.serve = serve
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": serve.get_concrete_function()})
