"""Writing the ``edgeq`` metadata entry into a ``.tflite`` flatbuffer (no TensorFlow needed)."""

from __future__ import annotations

from edgeq._lazy import import_optional
from edgeq.metadata import METADATA_NAME, ModelMetadata

_HINT = "pip install ai-edge-litert"


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """Return ``model`` with its ``edgeq`` metadata entry set to ``metadata`` (replacing an old one)."""
    fb = import_optional("ai_edge_litert.tools.flatbuffer_utils", _HINT)
    schema = import_optional("ai_edge_litert.schema_py_generated", _HINT)
    obj = fb.convert_bytearray_to_object(bytearray(model))
    payload = list(metadata.to_json())
    existing = [m for m in (obj.metadata or []) if _name(m) == METADATA_NAME]
    if existing:
        obj.buffers[existing[0].buffer].data = payload
    else:
        buffer = schema.BufferT()
        buffer.data = payload
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(obj.buffers) - 1
        obj.metadata = [*(obj.metadata or []), entry]
    return bytes(fb.convert_object_to_bytearray(obj))


def _name(entry: object) -> str:
    name = getattr(entry, "name", b"")
    return name.decode() if isinstance(name, bytes) else str(name)
