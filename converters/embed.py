"""Writing the ``edgeq`` metadata entry into a ``.tflite`` flatbuffer (no TensorFlow needed).

A model without an ``edgeq`` entry (what the converter writes) gets it in front of its bytes, which stay as they
are: flatbuffer offsets only point forward, so a new root ``Model`` table, new ``buffers`` and ``metadata``
vectors (one entry longer) and the new buffer go first and point into the untouched old bytes. That costs a few
milliseconds where unpacking and repacking the whole model (the object API) takes ~0.5 s on MobileNetV2's 14 MB.
Replacing an existing entry, or a model this cannot shift safely (external buffers, a newer ``Model`` table),
goes through LiteRT's object API.
"""

from __future__ import annotations

import struct

from edgeq._lazy import import_optional
from edgeq.metadata import METADATA_NAME, ModelMetadata

_HINT = "pip install ai-edge-litert"
_U32, _I32, _U16 = struct.Struct("<I"), struct.Struct("<i"), struct.Struct("<H")
#: fields of the schema's ``Model`` table: version, operator_codes, subgraphs, description, buffers,
#: metadata_buffer, metadata, signature_defs; all but ``version`` are offsets
_MODEL_FIELDS = 8
_VERSION, _BUFFERS, _METADATA = 0, 4, 6
#: the bytes put in front are a multiple of this, so every alignment inside the old bytes holds (buffers: 16)
_SHIFT_ALIGN = 64
#: the ``edgeq`` buffer's data starts on this boundary, like the converter's buffers
_DATA_ALIGN = 16


def embed_metadata(model: bytes, metadata: ModelMetadata) -> bytes:
    """Return ``model`` with its ``edgeq`` metadata entry set to ``metadata`` (replacing an old one)."""
    payload = metadata.to_json()
    fast = _prepend_entry(model, METADATA_NAME.encode(), payload)
    return fast if fast is not None else _rebuild(model, payload)


def _rebuild(model: bytes, payload: bytes) -> bytes:
    """Set the entry through LiteRT's object API (the whole model unpacked and packed again)."""
    fb = import_optional("ai_edge_litert.tools.flatbuffer_utils", _HINT)
    schema = import_optional("ai_edge_litert.schema_py_generated", _HINT)
    obj = fb.convert_bytearray_to_object(bytearray(model))
    existing = [m for m in (obj.metadata or []) if _name(m) == METADATA_NAME]
    if existing:
        obj.buffers[existing[0].buffer].data = list(payload)
    else:
        buffer = schema.BufferT()
        buffer.data = list(payload)
        obj.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(obj.buffers) - 1
        obj.metadata = [*(obj.metadata or []), entry]
    return bytes(fb.convert_object_to_bytearray(obj))


def _name(entry: object) -> str:
    name = getattr(entry, "name", b"")
    return name.decode() if isinstance(name, bytes) else str(name)


class _View:
    """Field access on the flatbuffer tables of ``data`` (absolute positions)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def fields(self, table: int) -> tuple[int, ...]:
        """The vtable's field offsets of the table at ``table`` (0 = absent)."""
        vt = table - _I32.unpack_from(self.data, table)[0]
        size = _U16.unpack_from(self.data, vt)[0]
        return struct.unpack_from(f"<{(size - 4) // 2}H", self.data, vt + 4)

    def target(self, table: int, rel: int) -> int:
        """Where the offset field at ``table + rel`` points (0 when the field is absent)."""
        return table + rel + _U32.unpack_from(self.data, table + rel)[0] if rel else 0

    def tables(self, vector: int) -> list[int]:
        """The tables a vector of offsets at ``vector`` points to."""
        if not vector:
            return []
        n = _U32.unpack_from(self.data, vector)[0]
        return [vector + 4 + 4 * i + _U32.unpack_from(self.data, vector + 4 + 4 * i)[0] for i in range(n)]

    def string(self, at: int) -> bytes:
        n = _U32.unpack_from(self.data, at)[0]
        return self.data[at + 4:at + 4 + n]


def _prepend_entry(model: bytes, name: bytes, payload: bytes) -> bytes | None:
    """``model`` with a new metadata entry ``name`` in front of its unchanged bytes, or ``None`` when unsafe."""
    view = _View(model)
    try:
        root = _U32.unpack_from(model, 0)[0]
        rels = view.fields(root)
        if len(rels) > _MODEL_FIELDS or model[4:8] != b"TFL3":
            return None
        rels = rels + (0,) * (_MODEL_FIELDS - len(rels))
        buffers = view.tables(view.target(root, rels[_BUFFERS]))
        entries = view.tables(view.target(root, rels[_METADATA]))
        for buffer in buffers:  # Buffer.offset > 1: data outside the flatbuffer, at a position moving would break
            offset_rel = (view.fields(buffer) + (0, 0))[1]
            if offset_rel and struct.unpack_from("<Q", model, buffer + offset_rel)[0] > 1:
                return None
        names = [view.string(view.target(e, fields[0])) for e in entries if (fields := view.fields(e)) and fields[0]]
        if name in names:
            return None
    except (struct.error, IndexError):
        return None  # not a well-formed model: the object API says what is wrong
    slots = [s for s in range(_MODEL_FIELDS) if rels[s] or s in (_BUFFERS, _METADATA)]

    # layout of the new front part; every offset points forward, into it or into the old bytes after it
    model_vt = 8
    model_table = model_vt + 4 + 2 * _MODEL_FIELDS
    buffers_vec = model_table + 4 + 4 * len(slots)
    entries_vec = buffers_vec + 4 + 4 * (len(buffers) + 1)
    entry_vt = entries_vec + 4 + 4 * (len(entries) + 1)
    entry_table = entry_vt + 8
    buffer_vt = entry_table + 12
    buffer_table = buffer_vt + 8
    name_at = buffer_table + 8
    data_len_at = _align(name_at + 4 + len(name) + 1, _DATA_ALIGN) + _DATA_ALIGN - 4
    shift = _align(data_len_at + 4 + len(payload), _SHIFT_ALIGN)

    out = bytearray(shift)
    _U32.pack_into(out, 0, model_table)
    out[4:8] = b"TFL3"
    _U16.pack_into(out, model_vt, 4 + 2 * _MODEL_FIELDS)
    _U16.pack_into(out, model_vt + 2, 4 + 4 * len(slots))
    _I32.pack_into(out, model_table, model_table - model_vt)
    for k, slot in enumerate(slots):
        field = model_table + 4 + 4 * k
        _U16.pack_into(out, model_vt + 4 + 2 * slot, 4 + 4 * k)
        if slot == _VERSION:
            out[field:field + 4] = model[root + rels[slot]:root + rels[slot] + 4]
        elif slot == _BUFFERS:
            _U32.pack_into(out, field, buffers_vec - field)
        elif slot == _METADATA:
            _U32.pack_into(out, field, entries_vec - field)
        else:
            _U32.pack_into(out, field, view.target(root, rels[slot]) + shift - field)
    _offsets(out, buffers_vec, [b + shift for b in buffers] + [buffer_table])
    _offsets(out, entries_vec, [e + shift for e in entries] + [entry_table])
    # Metadata {name: string, buffer: uint}
    struct.pack_into("<HHHH", out, entry_vt, 8, 12, 4, 8)
    _I32.pack_into(out, entry_table, entry_table - entry_vt)
    _U32.pack_into(out, entry_table + 4, name_at - (entry_table + 4))
    _U32.pack_into(out, entry_table + 8, len(buffers))
    # Buffer {data: [ubyte]}
    struct.pack_into("<HHH", out, buffer_vt, 6, 8, 4)
    _I32.pack_into(out, buffer_table, buffer_table - buffer_vt)
    _U32.pack_into(out, buffer_table + 4, data_len_at - (buffer_table + 4))
    _U32.pack_into(out, name_at, len(name))
    out[name_at + 4:name_at + 4 + len(name)] = name
    _U32.pack_into(out, data_len_at, len(payload))
    out[data_len_at + 4:data_len_at + 4 + len(payload)] = payload
    return bytes(out) + model


def _offsets(out: bytearray, vector: int, targets: list[int]) -> None:
    """Write a vector of offsets at ``vector`` pointing to ``targets`` (absolute positions)."""
    _U32.pack_into(out, vector, len(targets))
    for i, target in enumerate(targets):
        at = vector + 4 + 4 * i
        _U32.pack_into(out, at, target - at)


def _align(n: int, to: int) -> int:
    return -(-n // to) * to
