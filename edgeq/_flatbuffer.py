"""A bounds-checked, read-only reader of TFLite flatbuffers in pure Python.

The interpreter trusts the file it is given; a corrupt offset can crash the process.
This reader walks the parts edgeq needs (tensors, operators, buffers, signatures,
metadata) and checks every offset, index and size on the way, so a bad file raises
:class:`~edgeq.errors.ModelError` before it reaches native code. It needs neither
TensorFlow nor LiteRT, so the runtime can read the ``edgeq`` metadata on any backend.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from edgeq._tflite_names import BUILTIN_OPS, TENSOR_TYPES
from edgeq.errors import ModelError

T = TypeVar("T")

FILE_IDENTIFIER = b"TFL3"
MAX_TENSORS = 1_000_000
MAX_RANK = 16
#: bytes per element of each tensor type that can hold constant data (0 = not checked)
_ELEMENT_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "BOOL": 8, "INT16": 16,
    "COMPLEX64": 64, "INT8": 8, "FLOAT64": 64, "COMPLEX128": 128, "UINT64": 64, "UINT32": 32,
    "UINT16": 16, "INT4": 4, "BFLOAT16": 16, "INT2": 2, "UINT4": 4,
}


class _Corrupt(Exception):
    """Raised inside the reader; turned into a ModelError naming the file by :func:`parse`."""


class _Table:
    """One flatbuffer table at an absolute position, with checked field access."""

    __slots__ = ("buf", "pos", "vt", "vt_len")

    def __init__(self, buf: memoryview, pos: int, what: str) -> None:
        self.buf = buf
        self.pos = pos
        _check(buf, pos, 4, what)
        vt = pos - struct.unpack_from("<i", buf, pos)[0]
        _check(buf, vt, 4, f"{what} vtable")
        self.vt = vt
        self.vt_len = struct.unpack_from("<H", buf, vt)[0]
        if self.vt_len < 4 or self.vt_len % 2:
            raise _Corrupt(f"{what} has a vtable of impossible size {self.vt_len}")
        _check(buf, vt, self.vt_len, f"{what} vtable")

    def _field(self, slot: int) -> int:
        entry = 4 + 2 * slot
        if entry >= self.vt_len:
            return 0
        rel = struct.unpack_from("<H", self.buf, self.vt + entry)[0]
        return self.pos + rel if rel else 0

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        at = self._field(slot)
        if not at:
            return default
        _check(self.buf, at, struct.calcsize(fmt), "scalar field")
        return struct.unpack_from("<" + fmt, self.buf, at)[0]

    def _target(self, slot: int, what: str) -> int:
        at = self._field(slot)
        if not at:
            return 0
        _check(self.buf, at, 4, what)
        return at + struct.unpack_from("<I", self.buf, at)[0]

    def table(self, slot: int, what: str) -> _Table | None:
        target = self._target(slot, what)
        return _Table(self.buf, target, what) if target else None

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int]:
        """Return (start, length) of a vector field, or (0, 0) when absent."""
        target = self._target(slot, what)
        if not target:
            return 0, 0
        _check(self.buf, target, 4, what)
        length = struct.unpack_from("<I", self.buf, target)[0]
        _check(self.buf, target + 4, length * elem_size, what)
        return target + 4, length

    def scalars(self, slot: int, fmt: str, what: str) -> list:
        start, n = self.vector(slot, struct.calcsize(fmt), what)
        return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start)) if n else []

    def string(self, slot: int, what: str) -> str:
        start, n = self.vector(slot, 1, what)
        return bytes(self.buf[start : start + n]).decode("utf-8", "replace") if n else ""

    def tables(self, slot: int, what: str, build: Callable[[_Table], T]) -> list[T]:
        start, n = self.vector(slot, 4, what)
        out = []
        for i in range(n):
            at = start + 4 * i
            out.append(build(_Table(self.buf, at + struct.unpack_from("<I", self.buf, at)[0], f"{what}[{i}]")))
        return out


def _check(buf: memoryview, pos: int, size: int, what: str) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise _Corrupt(f"{what} points outside the file (offset {pos}, {size} bytes, file is {len(buf)} bytes)")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as stored in the file."""

    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    buffer: int
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    is_variable: bool = False


@dataclass(frozen=True)
class OperatorInfo:
    """One operator: its op name (``CONV_2D``, or the custom code) and tensor indices."""

    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class SubgraphInfo:
    name: str
    tensors: tuple[TensorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[OperatorInfo, ...]


@dataclass(frozen=True)
class SignatureInfo:
    key: str
    subgraph: int
    inputs: dict[str, int]
    outputs: dict[str, int]


@dataclass(frozen=True)
class TFLiteFile:
    """What :func:`parse` read from a ``.tflite`` file."""

    version: int
    subgraphs: tuple[SubgraphInfo, ...]
    signatures: tuple[SignatureInfo, ...]
    buffer_sizes: tuple[int, ...]
    metadata: dict[str, bytes] = field(default_factory=dict)

    def op_counts(self) -> dict[str, int]:
        """Count the operators of every subgraph by op name."""
        counts: dict[str, int] = {}
        for sg in self.subgraphs:
            for op in sg.operators:
                counts[op.op] = counts.get(op.op, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _opcode_name(t: _Table) -> str:
    code = max(int(t.scalar(0, "b")), int(t.scalar(3, "i")))
    custom = t.string(1, "custom_code")
    if custom:
        return custom
    return BUILTIN_OPS.get(code, f"BUILTIN_{code}")


def _quant(t: _Table | None) -> tuple[tuple[float, ...], tuple[int, ...], int]:
    if t is None:
        return (), (), 0
    scales = tuple(t.scalars(2, "f", "quantization scale"))
    zps = tuple(t.scalars(3, "q", "quantization zero_point"))
    return scales, zps, int(t.scalar(6, "i"))


def _buffer(t: _Table, file_size: int) -> int:
    _, n = t.vector(0, 1, "buffer data")
    if n:
        return n
    offset, size = int(t.scalar(1, "Q")), int(t.scalar(2, "Q"))
    if offset > 1 and (offset + size > file_size):
        raise _Corrupt(f"external buffer (offset {offset}, {size} bytes) lies outside the file of {file_size} bytes")
    return size if offset > 1 else 0


def parse(data: bytes | bytearray | memoryview, name: str = "model") -> TFLiteFile:
    """Parse and structurally check a TFLite flatbuffer.

    Args:
        data: the whole file's bytes.
        name: what to call the file in error messages.

    Returns:
        The :class:`TFLiteFile` view of the model.

    Raises:
        ModelError: the bytes are not a TFLite model, or an offset, index or size is inconsistent.
    """
    buf = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    if len(buf) < 8 or bytes(buf[4:8]) != FILE_IDENTIFIER:
        got = bytes(buf[4:8]) if len(buf) >= 8 else b"(file too short)"
        raise ModelError(
            f"{name} is not a TFLite model: expected the identifier {FILE_IDENTIFIER!r} at byte 4, got {got!r}; "
            "give a .tflite file made by a TFLite/LiteRT converter"
        )
    try:
        return _parse(buf)
    except _Corrupt as exc:
        raise ModelError(f"{name} is a corrupt TFLite model: {exc}; re-export or re-download it") from None
    except (struct.error, UnicodeDecodeError, OverflowError, ValueError, MemoryError) as exc:
        raise ModelError(f"{name} is a corrupt TFLite model ({type(exc).__name__}: {exc}); re-export it") from None


def _parse(buf: memoryview) -> TFLiteFile:
    root = _Table(buf, struct.unpack_from("<I", buf, 0)[0], "model")
    opnames = root.tables(1, "operator_codes", _opcode_name)
    buffer_sizes = tuple(root.tables(4, "buffers", lambda t: _buffer(t, len(buf))))
    meta_entries = root.tables(6, "metadata", lambda t: (t.string(0, "metadata name"), int(t.scalar(1, "I"))))

    def tensor(i: int, t: _Table) -> TensorInfo:
        shape = tuple(t.scalars(0, "i", "tensor shape"))
        dtype_code = int(t.scalar(1, "b"))
        scales, zps, qdim = _quant(t.table(4, "quantization"))
        return TensorInfo(
            index=i, name=t.string(3, "tensor name"), shape=shape,
            shape_signature=tuple(t.scalars(7, "i", "tensor shape_signature")) or shape,
            dtype=TENSOR_TYPES.get(dtype_code, f"TYPE_{dtype_code}"), buffer=int(t.scalar(2, "I")),
            scales=scales, zero_points=zps, quantized_dimension=qdim, is_variable=bool(t.scalar(5, "B")),
        )

    def operator(i: int, t: _Table) -> OperatorInfo:
        code = int(t.scalar(0, "I"))
        if code >= len(opnames):
            raise _Corrupt(f"operator {i} uses opcode {code}, but the model has {len(opnames)} opcodes")
        return OperatorInfo(i, opnames[code], tuple(t.scalars(1, "i", "op inputs")), tuple(t.scalars(2, "i", "op outputs")))

    def subgraph(t: _Table) -> SubgraphInfo:
        raw_tensors = t.tables(0, "tensors", lambda x: x)
        if len(raw_tensors) > MAX_TENSORS:
            raise _Corrupt(f"subgraph declares {len(raw_tensors)} tensors (limit {MAX_TENSORS})")
        tensors = tuple(tensor(i, x) for i, x in enumerate(raw_tensors))
        ops = tuple(operator(i, x) for i, x in enumerate(t.tables(3, "operators", lambda x: x)))
        return SubgraphInfo(t.string(4, "subgraph name"), tensors, tuple(t.scalars(1, "i", "subgraph inputs")),
                            tuple(t.scalars(2, "i", "subgraph outputs")), ops)

    def signature(t: _Table) -> SignatureInfo:
        def tmap(slot: int) -> dict[str, int]:
            return dict(t.tables(slot, "signature tensor map", lambda m: (m.string(0, "name"), int(m.scalar(1, "I")))))
        return SignatureInfo(t.string(2, "signature key"), int(t.scalar(4, "I")), tmap(0), tmap(1))

    subgraphs = tuple(subgraph(t) for t in root.tables(2, "subgraphs", lambda x: x))
    if not subgraphs:
        raise _Corrupt("the model has no subgraph")
    signatures = tuple(root.tables(7, "signature_defs", signature))
    model = TFLiteFile(int(root.scalar(0, "I")), subgraphs, signatures, buffer_sizes, {})
    _validate(model)
    metadata = {}
    for key, index in meta_entries:
        if index >= len(buffer_sizes):
            raise _Corrupt(f"metadata {key!r} names buffer {index}, but the model has {len(buffer_sizes)} buffers")
        metadata[key] = _buffer_bytes(root, index)
    return TFLiteFile(model.version, subgraphs, signatures, buffer_sizes, metadata)


def _buffer_bytes(root: _Table, index: int) -> bytes:
    start, n = root.vector(4, 4, "buffers")
    at = start + 4 * index
    t = _Table(root.buf, at + struct.unpack_from("<I", root.buf, at)[0], f"buffer {index}")
    dstart, dn = t.vector(0, 1, "buffer data")
    if dn:
        return bytes(root.buf[dstart : dstart + dn])
    offset, size = int(t.scalar(1, "Q")), int(t.scalar(2, "Q"))
    return bytes(root.buf[offset : offset + size]) if offset > 1 else b""


def _validate(model: TFLiteFile) -> None:
    """Check indices and constant-data sizes that the interpreter would otherwise trust."""
    nbuf = len(model.buffer_sizes)
    for s, sg in enumerate(model.subgraphs):
        n = len(sg.tensors)
        for t in sg.tensors:
            if t.buffer >= nbuf:
                raise _Corrupt(f"tensor {t.index} ({t.name!r}) of subgraph {s} names buffer {t.buffer} of {nbuf}")
            if len(t.shape) > MAX_RANK or any(d < 0 for d in t.shape):
                raise _Corrupt(f"tensor {t.index} ({t.name!r}) has an invalid shape {list(t.shape)}")
            bits = _ELEMENT_BITS.get(t.dtype)
            if t.dtype.startswith("TYPE_"):
                raise _Corrupt(f"tensor {t.index} ({t.name!r}) has an unknown type code {t.dtype[5:]}")
            size = model.buffer_sizes[t.buffer] if t.buffer else 0
            if size and bits:
                elements = 1
                for d in t.shape:
                    elements *= d
                if (elements * bits + 7) // 8 > size:
                    raise _Corrupt(
                        f"tensor {t.index} ({t.name!r}) of shape {list(t.shape)} {t.dtype} needs "
                        f"{(elements * bits + 7) // 8} bytes but its buffer has {size}"
                    )
            if t.scales and t.zero_points and len(t.zero_points) not in (1, len(t.scales)):
                raise _Corrupt(f"tensor {t.index} ({t.name!r}) has {len(t.scales)} scales but {len(t.zero_points)} zero points")
        for what, idx in (("input", sg.inputs), ("output", sg.outputs)):
            for i in idx:
                if not 0 <= i < n:
                    raise _Corrupt(f"subgraph {s} {what} {i} is not one of its {n} tensors")
        for op in sg.operators:
            for i in op.inputs + op.outputs:
                if not -1 <= i < n:
                    raise _Corrupt(f"operator {op.index} ({op.op}) of subgraph {s} uses tensor {i} of {n}")
    for sig in model.signatures:
        if sig.subgraph >= len(model.subgraphs):
            raise _Corrupt(f"signature {sig.key!r} names subgraph {sig.subgraph} of {len(model.subgraphs)}")
        n = len(model.subgraphs[sig.subgraph].tensors)
        for i in list(sig.inputs.values()) + list(sig.outputs.values()):
            if not 0 <= i < n:
                raise _Corrupt(f"signature {sig.key!r} names tensor {i} of {n}")
