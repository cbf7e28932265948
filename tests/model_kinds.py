"""Small models of the kinds real third-party files have, written with LiteRT's flatbuffer object API (no TF).

* :func:`fc_model`: ``x [1, 8] float32 -> FULLY_CONNECTED`` whose float16 weights go through DEQUANTIZE, as
  mediapipe writes them; ``sparse=True`` stores the weights as CSR and expands them with DENSIFY (pruned models).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


class Builder:
    """A one-subgraph model under construction: add buffers, tensors and ops, then :meth:`bytes`."""

    def __init__(self) -> None:
        schema = _schema()
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.buffers = [schema.BufferT()]
        self.model.operatorCodes = []
        self.sg = schema.SubGraphT()
        self.sg.tensors, self.sg.operators, self.sg.inputs, self.sg.outputs = [], [], [], []
        self.model.subgraphs = [self.sg]

    def tensor(self, name: str, shape: Sequence[int], dtype: int, data: np.ndarray | None = None,
               signature: Sequence[int] | None = None, **fields: Any) -> int:
        """Add a tensor (constant when ``data`` is given); returns its index."""
        schema = _schema()
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), list(shape), dtype, 0
        if signature is not None:
            t.shapeSignature = list(signature)
        if data is not None:
            buffer = schema.BufferT()
            buffer.data = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
            self.model.buffers.append(buffer)
            t.buffer = len(self.model.buffers) - 1
        for key, value in fields.items():
            setattr(t, key, value)
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def op(self, code: int, inputs: Sequence[int], outputs: Sequence[int], options: Any = None,
           options_type: int = 0) -> None:
        schema = _schema()
        codes = [c.builtinCode for c in self.model.operatorCodes]
        if code not in codes:
            c = schema.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            self.model.operatorCodes.append(c)
            codes.append(code)
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = codes.index(code), list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.sg.operators.append(op)

    def bytes(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        from ai_edge_litert.tools import flatbuffer_utils

        self.sg.inputs, self.sg.outputs = list(inputs), list(outputs)
        return bytes(flatbuffer_utils.convert_object_to_bytearray(self.model))


def csr(values: np.ndarray) -> tuple[Any, np.ndarray]:
    """The sparsity parameters storing the non-zeros of 2-D ``values`` row by row (CSR), and those non-zeros."""
    schema = _schema()
    kept = values != 0

    def vector(array: np.ndarray) -> Any:
        v = schema.Int32VectorT()
        v.values = array.astype(np.int32).tolist()
        return v

    dims = [schema.DimensionMetadataT(), schema.DimensionMetadataT()]
    dims[0].format, dims[0].denseSize = schema.DimensionType.DENSE, values.shape[0]
    dims[1].format = schema.DimensionType.SPARSE_CSR
    dims[1].arraySegmentsType = dims[1].arrayIndicesType = schema.SparseIndexVector.Int32Vector
    dims[1].arraySegments = vector(np.concatenate([[0], np.cumsum(kept.sum(axis=1))]))
    dims[1].arrayIndices = vector(np.nonzero(kept)[1])
    sparsity = schema.SparsityParametersT()
    sparsity.traversalOrder, sparsity.blockMap, sparsity.dimMetadata = [0, 1], [], dims
    return sparsity, values[kept]


def fc_weights(seed: int = 0) -> np.ndarray:
    """Float16 weights [4, 8] with about 70 % zeros (a pruned layer)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(4, 8)).astype(np.float16)
    w[rng.random(w.shape) < 0.7] = 0
    w[:, 0] = 1  # every row keeps at least one value
    return w


def fc_model(sparse: bool = False, seed: int = 0) -> bytes:
    """``x [1, 8] -> FULLY_CONNECTED(x, DEQUANTIZE(w16)) -> y [1, 4]``; ``sparse``: w16 stored CSR + DENSIFY."""
    schema = _schema()
    ops = schema.BuiltinOperator
    b = Builder()
    w = fc_weights(seed)
    x = b.tensor("x", [1, 8], schema.TensorType.FLOAT32)
    if sparse:
        sparsity, kept = csr(w)
        stored = b.tensor("w16_sparse", [4, 8], schema.TensorType.FLOAT16, kept, sparsity=sparsity)
        w16 = b.tensor("w16", [4, 8], schema.TensorType.FLOAT16)
        b.op(ops.DENSIFY, [stored], [w16])
    else:
        w16 = b.tensor("w16", [4, 8], schema.TensorType.FLOAT16, w)
    w32 = b.tensor("w32", [4, 8], schema.TensorType.FLOAT32)
    y = b.tensor("y", [1, 4], schema.TensorType.FLOAT32)
    b.op(ops.DEQUANTIZE, [w16], [w32])
    b.op(ops.FULLY_CONNECTED, [x, w32, -1], [y], schema.FullyConnectedOptionsT(),
         schema.BuiltinOptions.FullyConnectedOptions)
    return b.bytes([x], [y])


def signature(b: Builder, inputs: dict[str, int], outputs: dict[str, int], key: str = "serving_default") -> None:
    """Give the model a signature ``key`` mapping names to tensor indices."""
    schema = _schema()

    def maps(named: dict[str, int]) -> list[Any]:
        out = []
        for name, index in named.items():
            m = schema.TensorMapT()
            m.name, m.tensorIndex = name.encode(), index
            out.append(m)
        return out

    sig = schema.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex, sig.inputs, sig.outputs = key.encode(), 0, maps(inputs), maps(outputs)
    b.model.signatureDefs = [sig]


def float_fc_with_signature(seed: int = 0) -> bytes:
    """``x [1, 32] float32 -> FULLY_CONNECTED (float32 weights [16, 32]) -> y [1, 16]`` with a signature."""
    schema = _schema()
    b = Builder()
    w = np.random.default_rng(seed).normal(size=(16, 32)).astype(np.float32)
    x = b.tensor("x", [1, 32], schema.TensorType.FLOAT32)
    wt = b.tensor("w", [16, 32], schema.TensorType.FLOAT32, w)
    y = b.tensor("y", [1, 16], schema.TensorType.FLOAT32)
    b.op(schema.BuiltinOperator.FULLY_CONNECTED, [x, wt, -1], [y], schema.FullyConnectedOptionsT(),
         schema.BuiltinOptions.FullyConnectedOptions)
    signature(b, {"x": x}, {"y": y})
    return b.bytes([x], [y])


def accumulator_model(initial: Sequence[float] = (1.0, 2.0, 3.0, 4.0)) -> bytes:
    """A stateful streaming model as TF writes one: ``y = state + x; state = y`` with ``x, y [1, 4]`` (batch fixed).

    The state is a resource variable (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE) that an init subgraph, run
    once by CALL_ONCE, sets to ``initial``.
    """
    schema = _schema()
    ops, types = schema.BuiltinOperator, schema.TensorType
    b = Builder()

    def handle(graph: Any) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = b"state_handle", [], types.RESOURCE, 0
        graph.tensors.append(t)
        return len(graph.tensors) - 1

    def var_handle_options() -> Any:
        o = schema.VarHandleOptionsT()
        o.container, o.sharedName = b"", b"state"
        return o

    x = b.tensor("x", [1, 4], types.FLOAT32, signature=[1, 4])
    h = handle(b.sg)
    state = b.tensor("state", [1, 4], types.FLOAT32)
    y = b.tensor("y", [1, 4], types.FLOAT32)
    init = schema.CallOnceOptionsT()
    init.initSubgraphIndex = 1
    b.op(ops.CALL_ONCE, [], [], init, schema.BuiltinOptions.CallOnceOptions)
    b.op(ops.VAR_HANDLE, [], [h], var_handle_options(), schema.BuiltinOptions.VarHandleOptions)
    b.op(ops.READ_VARIABLE, [h], [state])
    b.op(ops.ADD, [state, x], [y], schema.AddOptionsT(), schema.BuiltinOptions.AddOptions)
    b.op(ops.ASSIGN_VARIABLE, [h, y], [])

    main = b.sg
    b.sg = schema.SubGraphT()
    b.sg.tensors, b.sg.operators, b.sg.inputs, b.sg.outputs = [], [], [], []
    b.model.subgraphs.append(b.sg)
    h0 = handle(b.sg)
    value = b.tensor("initial", [1, 4], types.FLOAT32, np.asarray([initial], dtype=np.float32))
    b.op(ops.VAR_HANDLE, [], [h0], var_handle_options(), schema.BuiltinOptions.VarHandleOptions)
    b.op(ops.ASSIGN_VARIABLE, [h0, value], [])
    b.sg = main
    signature(b, {"x": x}, {"y": y})
    return b.bytes([x], [y])


def fully_convolutional_model(seed: int = 0) -> bytes:
    """``x [-1, -1, -1, 3] -> CONV_2D 3x3 VALID, 2 filters -> y``: any image size, as fully convolutional models take.

    Its placeholder shape ``[1, 1, 1, 3]`` cannot be prepared (a 3x3 window does not fit), as in real files.
    """
    schema = _schema()
    types = schema.TensorType
    b = Builder()
    w = np.random.default_rng(seed).normal(size=(2, 3, 3, 3)).astype(np.float32)
    x = b.tensor("x", [1, 1, 1, 3], types.FLOAT32, signature=[-1, -1, -1, 3])
    wt = b.tensor("w", [2, 3, 3, 3], types.FLOAT32, w)
    bias = b.tensor("bias", [2], types.FLOAT32, np.asarray([0.5, -0.5], dtype=np.float32))
    y = b.tensor("y", [1, 1, 1, 2], types.FLOAT32, signature=[-1, -1, -1, 2])
    options = schema.Conv2DOptionsT()
    options.padding, options.strideW, options.strideH = schema.Padding.VALID, 1, 1
    options.dilationWFactor = options.dilationHFactor = 1
    b.op(schema.BuiltinOperator.CONV_2D, [x, wt, bias], [y], options, schema.BuiltinOptions.Conv2DOptions)
    return b.bytes([x], [y])
