"""A bounds-checked, read-only reader of TFLite flatbuffers in pure Python, and the gate before the interpreter.

The interpreter trusts the file it is given: a corrupt offset, index, option or quantization
parameter can crash the process (a signal, not an exception). :func:`parse` reads the whole model,
checking on the way that every table, vector, string and external buffer lies inside the file, that
opcodes (codes, versions) and the options edgeq reads (window sizes, the subgraphs control-flow ops
call, the flexbuffer options of the interpreter's own custom ops) are readable, that names are UTF-8
and constant string tensors well formed; then :func:`edgeq._model_checks.validate` checks what the
kernels would trust (indices, data flow, tensor counts, types, sizes, quantization).

A failing check raises :class:`~edgeq.errors.ModelError` naming what is wrong. It needs neither
TensorFlow nor LiteRT, so the runtime can also read the ``edgeq`` metadata on any backend, and
``edgeq inspect`` refuses exactly what ``Model`` would refuse.
"""

from __future__ import annotations

import marshal
import struct
from functools import partial
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

from edgeq import _checked
from edgeq._frozen import Frozen
from edgeq._model_checks import BUILTIN_CUSTOM_OPS, InvalidModel, validate
from edgeq._tflite_names import BUILTIN_OPS, TENSOR_TYPES
from edgeq.errors import ModelError

T = TypeVar("T")

FILE_IDENTIFIER = b"TFL3"
MAX_TENSORS = 1_000_000
#: bumped when the layout of a proof's summary changes (a proof of another layout counts as none)
_SUMMARY_FORMAT = 1
#: builtin options edgeq reads, by op: (options union type, options slot, {field: (slot, struct format, default)})
_B, _I = "b", "i"
_WINDOW = {"padding": (0, _B, 0), "stride_w": (1, _I, 0), "stride_h": (2, _I, 0)}
_OPTIONS: dict[str, tuple[int, int, dict[str, tuple[int, str, int]]]] = {
    "CONV_2D": (1, 4, {**_WINDOW, "fused_activation": (3, _B, 0), "dilation_w": (4, _I, 1), "dilation_h": (5, _I, 1)}),
    "DEPTHWISE_CONV_2D": (2, 4, {**_WINDOW, "fused_activation": (4, _B, 0), "dilation_w": (5, _I, 1),
                                 "dilation_h": (6, _I, 1)}),
    "TRANSPOSE_CONV": (49, 4, {**_WINDOW, "fused_activation": (3, _B, 0)}),
    "CONV_3D": (106, 4, {"padding": (0, _B, 0), "stride_d": (1, _I, 0), "stride_w": (2, _I, 0), "stride_h": (3, _I, 0),
                         "fused_activation": (4, _B, 0), "dilation_d": (5, _I, 1), "dilation_w": (6, _I, 1),
                         "dilation_h": (7, _I, 1)}),
    "WHILE": (93, 4, {"cond_subgraph": (0, _I, 0), "body_subgraph": (1, _I, 0)}),
    "IF": (92, 4, {"then_subgraph": (0, _I, 0), "else_subgraph": (1, _I, 0)}),
    "CALL_ONCE": (103, 4, {"init_subgraph": (0, _I, 0)}),
    "CALL": (16, 4, {"subgraph": (0, "I", 0)}),
    "STABLEHLO_WHILE": (15, 12, {"cond_subgraph": (0, _I, 0), "body_subgraph": (1, _I, 0)}),
    "STABLEHLO_REDUCE": (6, 12, {"body_subgraph": (1, _I, 0)}),
    "STABLEHLO_SORT": (14, 12, {"comparator_subgraph": (2, _I, 0)}),
    "STABLEHLO_SCATTER": (7, 12, {"update_computation_subgraph": (6, _I, 0)}),
    "STABLEHLO_REDUCE_WINDOW": (13, 12, {"body_subgraph": (5, _I, 0)}),
    "STABLEHLO_COMPOSITE": (21, 12, {"decomposition_subgraph": (1, _I, 0)}),
}
_POOL = {**_WINDOW, "filter_w": (3, _I, 0), "filter_h": (4, _I, 0), "fused_activation": (5, _B, 0)}
_OPTIONS.update({op: (5, 4, _POOL) for op in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D")})
_OPTIONS["CONV_3D_TRANSPOSE"] = _OPTIONS["CONV_3D"]


#: vtable slots kept per table (the highest slot edgeq reads is 12, Operator.builtin_options_2)
_SLOTS = 16
_STRUCTS = {fmt: struct.Struct("<" + fmt) for fmt in ("b", "B", "H", "i", "I", "q", "Q", "f")}
_SIZES = {fmt: st.size for fmt, st in _STRUCTS.items()}
_U32, _I32 = _STRUCTS["I"], _STRUCTS["i"]
_VTABLE_HEAD = struct.Struct("<HH")
_NO_SLOTS = (0,) * _SLOTS


class _Numbers(Sequence):
    """A vector of numbers in the file, decoded on first use.

    Per-channel quantization vectors hold thousands of values per tensor (35,000 in MobileNetV2 int8);
    the checks read them as numpy views (:meth:`array`) and only callers that look at the values pay
    for Python floats. Keeps the file's bytes alive, read-only.
    """

    __slots__ = ("_buf", "_fmt", "_start", "_n", "_values")

    def __init__(self, buf: memoryview, fmt: str, start: int, n: int) -> None:
        self._buf, self._fmt, self._start, self._n, self._values = buf, fmt, start, n, None

    def _tuple(self) -> tuple:
        if self._values is None:
            self._values = struct.unpack_from(f"<{self._n}{self._fmt}", self._buf, self._start)
        return self._values

    def array(self, dtype: str | None = None) -> np.ndarray:
        """The values as a read-only numpy view (``dtype`` reinterprets the bytes, e.g. ``<u4`` for floats)."""
        return np.frombuffer(self._buf, dtype=dtype or f"<{self._fmt}", count=self._n, offset=self._start)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        return self._tuple()[index]

    def __iter__(self) -> Iterator:
        return iter(self._tuple())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (tuple, _Numbers)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self._tuple())

    def __repr__(self) -> str:
        return repr(self._tuple())


class _Reader:
    """The file's bytes and the vtables seen so far (tables of one kind usually share a few)."""

    __slots__ = ("buf", "size", "vtables")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.size = len(buf)
        self.vtables: dict[int, tuple[int, ...]] = {}

    def vtable(self, vt: int, what: str) -> tuple[int, ...]:
        """The field offsets of the vtable at ``vt``, padded to ``_SLOTS`` (0 = field absent)."""
        fields = self.vtables.get(vt)
        if fields is None:
            if vt < 0 or vt + 4 > self.size:
                _check(self.buf, vt, 4, f"{what} vtable")
            vt_len, obj_len = _VTABLE_HEAD.unpack_from(self.buf, vt)
            if vt_len < 4 or vt_len % 2:
                raise InvalidModel(f"{what} has a vtable of impossible size {vt_len}")
            _check(self.buf, vt, vt_len, f"{what} vtable")
            rels = struct.unpack_from(f"<{(vt_len - 4) // 2}H", self.buf, vt + 4)
            if rels and max(rels) >= obj_len and any(r >= obj_len for r in rels if r):
                raise InvalidModel(f"{what} vtable has a field outside its table")
            fields = self.vtables[vt] = (rels + _NO_SLOTS)[:_SLOTS]
        return fields


class _Table:
    """One flatbuffer table at an absolute position, with checked field access.

    Reads past the end of the file raise ``struct.error`` (turned into ModelError by :func:`parse`);
    positions that could be negative (Python would index from the end) are checked explicitly.
    """

    __slots__ = ("r", "buf", "pos", "fields")

    def __init__(self, r: _Reader, pos: int, what: str) -> None:
        self.r = r
        self.buf = r.buf
        self.pos = pos
        if pos < 0 or pos + 4 > r.size:
            _check(r.buf, pos, 4, what)
        self.fields = r.vtable(pos - _I32.unpack_from(r.buf, pos)[0], what)

    def _field(self, slot: int) -> int:
        rel = self.fields[slot]
        return self.pos + rel if rel else 0

    def scalar(self, slot: int, fmt: str, default: int | float = 0) -> int | float:
        rel = self.fields[slot]
        return _STRUCTS[fmt].unpack_from(self.buf, self.pos + rel)[0] if rel else default

    def _target(self, slot: int, what: str) -> int:
        rel = self.fields[slot]
        if not rel:
            return 0
        at = self.pos + rel
        return at + _U32.unpack_from(self.buf, at)[0]

    def table(self, slot: int, what: str) -> _Table | None:
        target = self._target(slot, what)
        return _Table(self.r, target, what) if target else None

    def vector(self, slot: int, elem_size: int, what: str) -> tuple[int, int]:
        """Return (start, length) of a vector field, or (0, 0) when absent."""
        rel = self.fields[slot]
        if not rel:
            return 0, 0
        at = self.pos + rel
        target = at + _U32.unpack_from(self.buf, at)[0]
        length = _U32.unpack_from(self.buf, target)[0]
        if target + 4 + length * elem_size > self.r.size:
            _check(self.buf, target + 4, length * elem_size, what)
        return target + 4, length

    def scalars(self, slot: int, fmt: str, what: str) -> tuple:
        start, n = self.vector(slot, _SIZES[fmt], what)
        return struct.unpack_from(f"<{n}{fmt}", self.buf, start) if n else ()

    def numbers(self, slot: int, fmt: str, what: str) -> Sequence:
        """Like :meth:`scalars`, but a long vector is decoded only when used (see :class:`_Numbers`)."""
        start, n = self.vector(slot, _SIZES[fmt], what)
        if n <= 1:
            return struct.unpack_from(f"<{n}{fmt}", self.buf, start) if n else ()
        return _Numbers(self.buf, fmt, start, n)

    def bytes(self, slot: int, what: str) -> bytes:
        start, n = self.vector(slot, 1, what)
        return bytes(self.buf[start : start + n])

    def string(self, slot: int, what: str) -> str:
        start, n = self.vector(slot, 1, what)
        try:
            return str(self.buf[start : start + n], "utf-8")
        except UnicodeDecodeError:  # the interpreter's Python bindings would raise on it later
            raise InvalidModel(f"{what} is not UTF-8 text") from None

    def tables(self, slot: int, what: str, build: Callable[[_Table], T]) -> list[T]:
        start, n = self.vector(slot, 4, what)
        offsets = struct.unpack_from(f"<{n}I", self.buf, start) if n else ()
        return [build(_Table(self.r, start + 4 * i + off, f"{what}[{i}]")) for i, off in enumerate(offsets)]


class _Lazy(Sequence):
    """The tables of a vector as a tuple-like sequence, each read on first use (a proven model: see :func:`parse`)."""

    __slots__ = ("_r", "_start", "_n", "_what", "_build", "_items")

    def __init__(self, r: _Reader, start: int, n: int, what: str, build: Callable[[int, _Table], Any]) -> None:
        """The ``n`` tables of the vector at ``start`` (past its length); entry ``i`` is ``build(i, its table)``."""
        self._r, self._start, self._n, self._what, self._build, self._items = r, start, n, what, build, [None] * n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._n)))
        i = index + self._n if index < 0 else index
        if not 0 <= i < self._n:
            raise IndexError(index)
        item = self._items[i]
        if item is None:
            at = self._start + 4 * i
            table = _Table(self._r, at + _U32.unpack_from(self._r.buf, at)[0], f"{self._what}[{i}]")
            item = self._items[i] = self._build(i, table)
        return item

    def __iter__(self) -> Iterator:
        return (self[i] for i in range(self._n))

    def __eq__(self, other: object) -> bool:
        return tuple(self) == tuple(other) if isinstance(other, (tuple, _Lazy)) else NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return repr(tuple(self))


def _check(buf: memoryview, pos: int, size: int, what: str) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise InvalidModel(f"{what} points outside the file (offset {pos}, {size} bytes, file is {len(buf)} bytes)")


class DimensionInfo(Frozen):
    """How one dimension of a sparse tensor is stored: dense (``dense_size`` entries) or CSR.

    A CSR dimension has ``segments`` (where each parent position's run of ``indices`` starts, plus the end) and
    ``indices`` (the coordinates kept along this dimension).
    """

    _fields = ("sparse", "dense_size", "segments", "indices")
    sparse: bool
    dense_size: int
    segments: Sequence[int]
    indices: Sequence[int]

    def __init__(self, sparse: bool, dense_size: int, segments: Sequence[int] = (), indices: Sequence[int] = ()) -> None:
        self.__dict__.update(sparse=sparse, dense_size=dense_size, segments=segments, indices=indices)


class SparsityInfo(Frozen):
    """A sparse tensor's storage: dimensions in ``traversal_order``, with ``block_map`` naming blocked dimensions."""

    _fields = ("traversal_order", "block_map", "dims")
    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dims: tuple[DimensionInfo, ...]

    def __init__(
        self, traversal_order: tuple[int, ...], block_map: tuple[int, ...], dims: tuple[DimensionInfo, ...]
    ) -> None:
        self.__dict__.update(traversal_order=traversal_order, block_map=block_map, dims=dims)


class TensorInfo(Frozen):
    """One tensor as stored in the file.

    ``scales`` and ``zero_points`` are sequences: long per-channel vectors are decoded on first use.
    """

    _fields = ("index", "name", "shape", "shape_signature", "dtype", "buffer", "scales", "zero_points",
               "quantized_dimension", "is_variable", "sparsity")
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    buffer: int
    scales: Sequence[float]
    zero_points: Sequence[int]
    quantized_dimension: int
    is_variable: bool
    sparsity: SparsityInfo | None

    def __init__(
        self, index: int, name: str, shape: tuple[int, ...], shape_signature: tuple[int, ...], dtype: str,
        buffer: int, scales: Sequence[float] = (), zero_points: Sequence[int] = (), quantized_dimension: int = 0,
        is_variable: bool = False, sparsity: SparsityInfo | None = None,
    ) -> None:
        self.__dict__.update(
            index=index, name=name, shape=shape, shape_signature=shape_signature, dtype=dtype, buffer=buffer,
            scales=scales, zero_points=zero_points, quantized_dimension=quantized_dimension,
            is_variable=is_variable, sparsity=sparsity,
        )


class OperatorInfo(Frozen):
    """One operator: its op name (``CONV_2D``, or the custom code), tensor indices, version and checked options.

    ``options`` holds the builtin options edgeq validates (strides, dilations, filter sizes, padding,
    fused activation, the subgraphs control-flow ops call), by name; it is empty for other ops.
    """

    _fields = ("index", "op", "inputs", "outputs", "version", "intermediates", "options")
    _compared = _fields[:-1]  # not the options
    index: int
    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    version: int
    intermediates: tuple[int, ...]
    options: Mapping[str, int]

    def __init__(
        self, index: int, op: str, inputs: tuple[int, ...], outputs: tuple[int, ...], version: int = 1,
        intermediates: tuple[int, ...] = (), options: Mapping[str, int] | None = None,
    ) -> None:
        self.__dict__.update(
            index=index, op=op, inputs=inputs, outputs=outputs, version=version, intermediates=intermediates,
            options={} if options is None else options,
        )

    def called_subgraphs(self) -> dict[str, int]:
        """The subgraphs this operator runs (``{"body_subgraph": 3, …}``); empty for ordinary ops."""
        return {k: v for k, v in self.options.items() if k.endswith("subgraph")}


class SubgraphInfo(Frozen):
    _fields = ("name", "tensors", "inputs", "outputs", "operators")
    name: str
    tensors: Sequence[TensorInfo]  # a tuple, or read lazily when the model was checked before
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: Sequence[OperatorInfo]

    def __init__(
        self, name: str, tensors: Sequence[TensorInfo], inputs: tuple[int, ...], outputs: tuple[int, ...],
        operators: Sequence[OperatorInfo],
    ) -> None:
        self.__dict__.update(name=name, tensors=tensors, inputs=inputs, outputs=outputs, operators=operators)


class SignatureInfo(Frozen):
    _fields = ("key", "subgraph", "inputs", "outputs")
    key: str
    subgraph: int
    inputs: dict[str, int]
    outputs: dict[str, int]

    def __init__(self, key: str, subgraph: int, inputs: dict[str, int], outputs: dict[str, int]) -> None:
        self.__dict__.update(key=key, subgraph=subgraph, inputs=inputs, outputs=outputs)


class TFLiteFile(Frozen):
    """What :func:`parse` read from a ``.tflite`` file."""

    _fields = ("version", "subgraphs", "signatures", "buffer_sizes", "metadata")
    version: int
    subgraphs: tuple[SubgraphInfo, ...]
    signatures: tuple[SignatureInfo, ...]
    buffer_sizes: Sequence[int]  # a tuple, or read lazily when the model was checked before
    metadata: Mapping[str, bytes]  # read-only

    def __init__(
        self, version: int, subgraphs: tuple[SubgraphInfo, ...], signatures: tuple[SignatureInfo, ...],
        buffer_sizes: Sequence[int], metadata: Mapping[str, bytes] | None = None,
    ) -> None:
        self.__dict__.update(
            version=version, subgraphs=subgraphs, signatures=signatures, buffer_sizes=buffer_sizes,
            metadata={} if metadata is None else metadata,
        )

    def op_counts(self) -> dict[str, int]:
        """Count the operators of every subgraph by op name."""
        counts: dict[str, int] = {}
        for sg in self.subgraphs:
            for op in sg.operators:
                counts[op.op] = counts.get(op.op, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


class _Opcode(Frozen):
    _fields = ("name", "version")
    name: str
    version: int

    def __init__(self, name: str, version: int) -> None:
        self.__dict__.update(name=name, version=version)


def _opcode(i: int, t: _Table) -> _Opcode:
    deprecated, builtin = int(t.scalar(0, "b")), int(t.scalar(3, "i"))
    version = int(t.scalar(2, "i", 1))
    if version < 1:
        raise InvalidModel(f"opcode {i} has version {version}; versions start at 1")
    # old files have only deprecated_builtin_code (builtin_code 0); newer ones write the code in builtin_code and
    # in deprecated_builtin_code either the same code, 127 for codes above 126, or 0 (ai-edge-quantizer); the
    # interpreter takes the larger of the two
    consistent = 0 <= deprecated < 127 if builtin == 0 else builtin > 0 and deprecated in (0, min(builtin, 127))
    if not consistent:
        raise InvalidModel(f"opcode {i} has inconsistent builtin codes ({builtin}, deprecated {deprecated})")
    custom = t.string(1, "custom_code")
    code = max(deprecated, builtin)
    return _Opcode(custom if custom else BUILTIN_OPS.get(code, f"BUILTIN_{code}"), version)


def _quant(t: _Table | None) -> tuple[Sequence[float], Sequence[int], int]:
    if t is None:
        return (), (), 0
    return t.numbers(2, "f", "quantization scale"), t.numbers(3, "q", "quantization zero_point"), int(t.scalar(6, "i"))


#: SparseIndexVector union types -> the element format of their ``values`` vector
_INDEX_VECTORS = {1: "i", 2: "H", 3: "B"}


def _index_vector(t: _Table, slot: int, what: str) -> Sequence[int]:
    """A SparseIndexVector union field (its type tag is in the slot before it); empty when absent."""
    table = t.table(slot, what)
    if table is None:
        return ()
    kind = int(t.scalar(slot - 1, "B"))
    fmt = _INDEX_VECTORS.get(kind)
    if fmt is None:
        raise InvalidModel(f"sparse {what} has an unknown vector type {kind}")
    return table.numbers(0, fmt, what)


def _sparsity(t: _Table) -> SparsityInfo:
    dims = tuple(
        DimensionInfo(bool(d.scalar(0, "b")), int(d.scalar(1, "i")), _index_vector(d, 3, "array_segments"),
                      _index_vector(d, 5, "array_indices"))
        for d in t.tables(2, "sparsity dim_metadata", lambda x: x)
    )
    return SparsityInfo(t.scalars(0, "i", "sparsity traversal_order"), t.scalars(1, "i", "sparsity block_map"), dims)


def _buffer(t: _Table, file_size: int) -> int:
    _, n = t.vector(0, 1, "buffer data")
    if n:
        return n
    offset, size = int(t.scalar(1, "Q")), int(t.scalar(2, "Q"))
    if offset > 1 and (offset + size > file_size):
        raise InvalidModel(f"external buffer (offset {offset}, {size} bytes) lies outside the file of "
                           f"{file_size} bytes")
    return size if offset > 1 else 0


def parse(data: bytes | bytearray | memoryview, name: str = "model") -> TFLiteFile:
    """Parse and structurally check a TFLite flatbuffer (see the module docstring for the checks).

    A model that passed before (:mod:`edgeq._checked`: the same unchanged file, or the same bytes) is neither checked
    nor parsed again: what a load needs comes from its proof, its other tables are read on first use, or an earlier
    call's result is given back.

    Args:
        data: the whole file's bytes. Long quantization vectors (and a checked model's tensors) are read from it lazily:
            do not modify a ``bytearray`` while the result is in use.
        name: what to call the file in error messages.

    Returns:
        The :class:`TFLiteFile` view of the model.

    Raises:
        ModelError: the bytes are not a TFLite model, or an offset, index, size, option or
            quantization parameter is inconsistent.
    """
    buf = memoryview(data)
    if buf.format != "B" or buf.ndim != 1:  # a cast view is 3x slower to read: only when needed
        buf = buf.cast("B")
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        got = bytes(buf[4:8]) if len(buf) >= 8 else b"(file too short)"
        raise ModelError(
            f"{name} is not a TFLite model: expected the identifier {FILE_IDENTIFIER!r} at byte 4, got {got!r}; "
            "give a .tflite file made by a TFLite/LiteRT converter"
        )
    try:
        stamp = _checked.stamp_of(data)
        model = _checked.recall(data, stamp)
        if model is None:
            model, summary = _parse_once(buf, stamp)
            _checked.keep(data, stamp, model, summary)
        return model
    except InvalidModel as exc:
        raise ModelError(f"{name} is a corrupt TFLite model: {exc}; re-export or re-download it") from None
    except (struct.error, UnicodeDecodeError, OverflowError, ValueError, MemoryError, RecursionError) as exc:
        raise ModelError(f"{name} is a corrupt TFLite model ({type(exc).__name__}: {exc}); re-export it") from None


def _parse_once(buf: memoryview, stamp: _checked.Stamp | None) -> tuple[TFLiteFile, bytes]:
    """Read a model not kept in memory from its proof's summary if it passed before, else check it in full.

    A file with a stamp is known by it alone: hashing a large file costs about as much as checking it (SHA-256 of
    MobileNetV2 int8, 3.9 MB: 7 ms here; its checks: 4.4 ms). Bytes and files without a stamp are known by their
    content's hash.
    """
    key = _checked.stamp_key(stamp) if stamp is not None else _checked.content_key(buf)
    summary = _checked.proof(key)
    if summary is not None:
        model = _from_summary(buf, summary)
        if model is not None:
            return model, summary
    model, summary = _check_in_full(buf)
    _checked.record(key, summary)
    return model, summary


def _options(op: str, t: _Table, where: Callable[[], str]) -> dict[str, int]:
    """The checked builtin options of ``op`` (see ``_OPTIONS``); a missing or mistyped options table is corrupt."""
    spec = _OPTIONS.get(op)
    if spec is None:
        return {}
    union_type, slot, fields = spec
    table = t.table(slot, f"{op} options") if int(t.scalar(slot - 1, "B")) == union_type else None
    if table is None:
        raise InvalidModel(f"{where()} has no {op} options")
    return {k: int(table.scalar(s, fmt, default)) for k, (s, fmt, default) in fields.items()}


def _tensor(i: int, t: _Table) -> TensorInfo:
    shape = t.scalars(0, "i", "tensor shape")
    dtype_code = t.scalar(1, "b")
    scales, zps, qdim = _quant(t.table(4, "quantization")) if t.fields[4] else ((), (), 0)
    return TensorInfo(
        i, t.string(3, "tensor name"), shape, t.scalars(7, "i", "tensor shape_signature") or shape,
        TENSOR_TYPES.get(dtype_code) or f"TYPE_{dtype_code}", t.scalar(2, "I"), scales, zps, qdim,
        bool(t.scalar(5, "B")), _sparsity(t.table(6, "sparsity")) if t.fields[6] else None,
    )


def _operator(opcodes: Sequence[_Opcode], s: int, i: int, t: _Table) -> OperatorInfo:
    code = int(t.scalar(0, "I"))
    if code >= len(opcodes):
        raise InvalidModel(f"operator {i} of subgraph {s} uses opcode {code}, but the model has {len(opcodes)} opcodes")
    opcode = opcodes[code]

    def where() -> str:
        return f"operator {i} ({opcode.name}) of subgraph {s}"

    if opcode.name in BUILTIN_CUSTOM_OPS:
        _check_custom_options(t.bytes(5, "custom options"), opcode.name, where())
    return OperatorInfo(
        i, opcode.name, tuple(t.scalars(1, "i", "op inputs")), tuple(t.scalars(2, "i", "op outputs")),
        opcode.version, tuple(t.scalars(8, "i", "op intermediates")), _options(opcode.name, t, where),
    )


def _signature(t: _Table) -> SignatureInfo:
    def tmap(slot: int) -> dict[str, int]:
        return dict(t.tables(slot, "signature tensor map", lambda m: (m.string(0, "name"), int(m.scalar(1, "I")))))
    return SignatureInfo(t.string(2, "signature key"), int(t.scalar(4, "I")), tmap(0), tmap(1))


def _check_in_full(buf: memoryview) -> tuple[TFLiteFile, bytes]:
    """Read and check every table of the model; return it with its summary (what :func:`_from_summary` reads)."""
    root = _Table(_Reader(buf), struct.unpack_from("<I", buf, 0)[0], "model")
    opcodes = [_opcode(i, t) for i, t in enumerate(root.tables(1, "operator_codes", lambda x: x))]
    buffer_sizes = tuple(root.tables(4, "buffers", lambda t: _buffer(t, len(buf))))
    meta_entries = root.tables(6, "metadata", lambda t: (t.string(0, "metadata name"), int(t.scalar(1, "I"))))

    def subgraph(s: int, t: _Table) -> SubgraphInfo:
        raw_tensors = t.tables(0, "tensors", lambda x: x)
        if len(raw_tensors) > MAX_TENSORS:
            raise InvalidModel(f"subgraph declares {len(raw_tensors)} tensors (limit {MAX_TENSORS})")
        tensors = tuple(_tensor(i, x) for i, x in enumerate(raw_tensors))
        ops = tuple(_operator(opcodes, s, i, x) for i, x in enumerate(t.tables(3, "operators", lambda x: x)))
        return SubgraphInfo(t.string(4, "subgraph name"), tensors, tuple(t.scalars(1, "i", "subgraph inputs")),
                            tuple(t.scalars(2, "i", "subgraph outputs")), ops)

    raw_subgraphs = root.tables(2, "subgraphs", lambda x: x)
    subgraphs = tuple(subgraph(s, t) for s, t in enumerate(raw_subgraphs))
    if not subgraphs:
        raise InvalidModel("the model has no subgraph")
    signatures = tuple(root.tables(7, "signature_defs", _signature))
    spans: dict[str, tuple[int, int]] = {}
    for key, i in meta_entries:
        if i >= len(buffer_sizes):
            raise InvalidModel(f"metadata {key!r} names buffer {i}, but the model has {len(buffer_sizes)} buffers")
        spans[key] = _buffer_span(root, i)
    metadata = _metadata(buf, spans)
    model = TFLiteFile(int(root.scalar(0, "I")), subgraphs, signatures, buffer_sizes, metadata)
    validate(model, len(buf))
    _check_string_buffers(root, model)

    def io_tensors(g: SubgraphInfo) -> tuple:
        used = [g.tensors[i] for i in sorted(set(g.inputs + g.outputs)) if i >= 0 and g.tensors[i].sparsity is None]
        return tuple((t.index, t.name, t.shape, t.shape_signature, t.dtype, t.buffer, tuple(t.scales),
                      tuple(t.zero_points), t.quantized_dimension, t.is_variable) for t in used)

    summary = (
        _SUMMARY_FORMAT, len(buf), model.version, root.vector(1, 4, "operator_codes"), root.vector(4, 4, "buffers"),
        spans, tuple((s.key, s.subgraph, s.inputs, s.outputs) for s in signatures),
        tuple((g.name, g.inputs, g.outputs, t.vector(0, 4, "tensors"), t.vector(3, 4, "operators"), io_tensors(g))
              for g, t in zip(subgraphs, raw_subgraphs)),
    )
    return model, marshal.dumps(summary)


def _from_summary(buf: memoryview, summary: bytes) -> TFLiteFile | None:
    """A proven model from its summary, without checks: tensors, operators, opcodes and buffers are read on first use.

    ``None`` if the summary is not one this code wrote for bytes of this size (a damaged or foreign proof).
    """
    try:
        fmt, size, version, (o_start, o_n), (b_start, b_n), spans, sigs, graphs = marshal.loads(summary)
        if fmt != _SUMMARY_FORMAT or size != len(buf):
            return None
        r = _Reader(buf)
        opcodes = _Lazy(r, o_start, o_n, "operator_codes", _opcode)
        subgraphs = []
        for s, (name, inputs, outputs, (t_start, t_n), (op_start, op_n), io) in enumerate(graphs):
            tensors = _Lazy(r, t_start, t_n, "tensors", _tensor)
            for fields in io:
                tensors._items[fields[0]] = TensorInfo(*fields)
            ops = _Lazy(r, op_start, op_n, "operators", partial(_operator, opcodes, s))
            subgraphs.append(SubgraphInfo(name, tensors, inputs, outputs, ops))
        return TFLiteFile(
            version, tuple(subgraphs), tuple([SignatureInfo(*sig) for sig in sigs]),
            _Lazy(r, b_start, b_n, "buffers", lambda i, t: _buffer(t, size)), _metadata(buf, spans),
        )
    except (ValueError, TypeError, EOFError, IndexError, KeyError, AttributeError):
        return None


def _metadata(buf: memoryview, spans: dict[str, tuple[int, int]]) -> Mapping[str, bytes]:
    """The model's metadata entries by name, read-only (``spans``: where each value lies in ``buf``)."""
    return MappingProxyType({key: bytes(buf[start : start + n]) for key, (start, n) in spans.items()})


def _buffer_span(root: _Table, index: int) -> tuple[int, int]:
    """Where buffer ``index``'s bytes are: (start, length); (0, 0) for an empty buffer."""
    start, _ = root.vector(4, 4, "buffers")
    at = start + 4 * index
    t = _Table(root.r, at + struct.unpack_from("<I", root.buf, at)[0], f"buffer {index}")
    dstart, dn = t.vector(0, 1, "buffer data")
    if dn:
        return dstart, dn
    offset, size = int(t.scalar(1, "Q")), int(t.scalar(2, "Q"))
    return (offset, size) if offset > 1 else (0, 0)


def _buffer_bytes(root: _Table, index: int) -> bytes:
    start, n = _buffer_span(root, index)
    return bytes(root.buf[start : start + n])


def _check_custom_options(options: bytes, op: str, where: str) -> None:
    """The interpreter's own custom ops read their options as a flexbuffer map without checking it."""
    if not options:
        raise InvalidModel(f"{where} has no custom options")
    try:
        from flatbuffers import flexbuffers
    except ImportError:  # tflite-runtime installs do not have the flatbuffers package: the size check only
        return
    try:
        decoded = flexbuffers.Loads(options)
    except Exception as exc:  # noqa: BLE001 - any failure to decode is a corrupt blob
        raise InvalidModel(f"{where} has unreadable custom options ({type(exc).__name__})") from None
    if not isinstance(decoded, dict):
        raise InvalidModel(f"{where} has custom options that are not a map")


def _check_string_buffers(root: _Table, model: TFLiteFile) -> None:
    """Constant STRING tensors: ``count``, ``count + 1`` offsets, ascending and inside their buffer."""
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.dtype != "STRING" or not t.buffer or not model.buffer_sizes[t.buffer]:
                continue
            data = _buffer_bytes(root, t.buffer)
            count = struct.unpack_from("<i", data, 0)[0] if len(data) >= 4 else -1
            if count < 0 or 4 * (count + 2) > len(data):
                raise InvalidModel(f"string tensor {t.index} ({t.name!r}) has a malformed buffer")
            offsets = struct.unpack_from(f"<{count + 1}i", data, 4)
            if offsets[0] != 4 * (count + 2) or list(offsets) != sorted(offsets) or offsets[-1] > len(data):
                raise InvalidModel(f"string tensor {t.index} ({t.name!r}) has string offsets outside its buffer")
