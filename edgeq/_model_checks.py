"""The semantic checks of a TFLite model that :func:`edgeq._flatbuffer.parse` has read.

The reader (:mod:`edgeq._flatbuffer`) guarantees that every offset lies inside the file; this module
checks what the interpreter's kernels would trust: indices, data flow, operator tensor counts and
options, control-flow calls, tensor types, shapes and sizes, quantization parameters. Each rule is
here because a model breaking it crashed, hung or silently misran LiteRT 2.3 in the fuzz campaign
(``benchmarks/fuzz.py``), or because it is a value a kernel indexes or divides by without checking.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from edgeq._flatbuffer import OperatorInfo, SubgraphInfo, TensorInfo, TFLiteFile

MAX_RANK = 16
#: the largest tensor accepted: kernels compute sizes and element counts in 32-bit integers
MAX_TENSOR_BYTES = 2**31 - 1
#: strides, dilations and filter sizes above this are corrupt (window arithmetic would overflow)
MAX_WINDOW = 2**16
#: bits per element of each tensor type (absent: not a plain numeric type)
_ELEMENT_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "BOOL": 8, "INT16": 16,
    "COMPLEX64": 64, "INT8": 8, "FLOAT64": 64, "COMPLEX128": 128, "UINT64": 64, "UINT32": 32,
    "UINT16": 16, "INT4": 4, "BFLOAT16": 16, "INT2": 2, "UINT4": 4, "FLOAT8_E4M3FN": 8, "FLOAT8_E5M2": 8,
}
#: the range a zero point of each integer type must lie in
_ZERO_POINT_RANGE = {
    "INT2": (-2, 1), "INT4": (-8, 7), "UINT4": (0, 15), "INT8": (-128, 127), "UINT8": (0, 255),
    "INT16": (-(2**15), 2**15 - 1), "UINT16": (0, 2**16 - 1), "INT32": (-(2**31), 2**31 - 1),
    "UINT32": (0, 2**32 - 1), "INT64": (-(2**63), 2**63 - 1), "UINT64": (0, 2**63 - 1),  # zero points are int64
}


def _min_io_table(text: str) -> dict[str, tuple[int, int]]:
    """Parse lines of ``MIN_INPUTS MIN_OUTPUTS OP OP …`` into ``{op: (inputs, outputs)}``."""
    table = {}
    for line in text.strip().splitlines():
        n_in, n_out, *ops = line.split()
        table.update({op: (int(n_in), int(n_out)) for op in ops})
    return table


#: the fewest inputs and outputs of builtin ops whose kernels read them by position
_MIN_IO = _min_io_table("""
    0 1 VAR_HANDLE HASHTABLE
    1 0 ASSIGN_VARIABLE
    1 1 ABS CEIL COS SIN EXP FLOOR LOG LOGISTIC NEG RELU RELU6 RELU_N1_TO_1 RELU_0_TO_1 ROUND RSQRT SQRT SQUARE
    1 1 TANH HARD_SWISH ELU LEAKY_RELU LOGICAL_NOT SIGN GELU L2_NORMALIZATION LOCAL_RESPONSE_NORMALIZATION
    1 1 LOG_SOFTMAX SOFTMAX DEQUANTIZE QUANTIZE CAST ZEROS_LIKE SHAPE RANK AVERAGE_POOL_2D MAX_POOL_2D
    1 1 L2_POOL_2D DEPTH_TO_SPACE SPACE_TO_DEPTH SQUEEZE RESHAPE CONCATENATION PACK WHERE MATRIX_DIAG DENSIFY
    1 1 ADD_N READ_VARIABLE HASHTABLE_SIZE
    1 2 UNIQUE
    2 1 ADD SUB MUL DIV SQUARED_DIFFERENCE MAXIMUM MINIMUM POW FLOOR_DIV FLOOR_MOD LESS LESS_EQUAL GREATER
    2 1 GREATER_EQUAL EQUAL NOT_EQUAL LOGICAL_AND LOGICAL_OR ATAN2 PRELU BATCH_MATMUL RIGHT_SHIFT BITWISE_XOR
    2 1 CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED CONV_3D PAD MIRROR_PAD MEAN SUM REDUCE_MAX REDUCE_MIN
    2 1 REDUCE_PROD REDUCE_ANY REDUCE_ALL GATHER GATHER_ND TRANSPOSE TILE EXPAND_DIMS ARG_MAX ARG_MIN
    2 1 RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR BROADCAST_TO FILL CUMSUM EMBEDDING_LOOKUP REVERSE_V2
    2 1 SEGMENT_SUM MATRIX_SET_DIAG BROADCAST_ARGS SPLIT
    2 2 TOPK_V2
    3 1 SELECT SELECT_V2 SLICE SPACE_TO_BATCH_ND BATCH_TO_SPACE_ND RANGE SCATTER_ND PADV2 TRANSPOSE_CONV
    3 1 CONV_3D_TRANSPOSE SPLIT_V HASHTABLE_FIND
    3 0 HASHTABLE_IMPORT
    4 1 STRIDED_SLICE ONE_HOT SPARSE_TO_DENSE
    5 2 NON_MAX_SUPPRESSION_V4
    6 3 NON_MAX_SUPPRESSION_V5
""")
#: input positions that may be ``-1`` (an omitted optional tensor); every other input of a ``_MIN_IO`` op must exist
_OPTIONAL_INPUTS = {"CONV_2D": {2}, "DEPTHWISE_CONV_2D": {2}, "FULLY_CONNECTED": {2}, "TRANSPOSE_CONV": {3},
                    "CONV_3D": {2}, "CONV_3D_TRANSPOSE": {3}}
#: ops that take or make RESOURCE/VARIANT tensors (handles, not data); ``_MIN_IO`` ops other than these do not
_HANDLE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
               "HASHTABLE_SIZE"}
#: ``_MIN_IO`` ops that may move or compare STRING tensors; the others compute on numbers only
_STRING_OPS = _HANDLE_OPS | {
    "RESHAPE", "GATHER", "GATHER_ND", "CONCATENATION", "SLICE", "STRIDED_SLICE", "TILE", "PACK", "SQUEEZE",
    "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "FILL", "SPLIT", "SPLIT_V", "TRANSPOSE", "REVERSE_V2", "BROADCAST_TO",
    "SELECT", "SELECT_V2", "SHAPE", "RANK", "ZEROS_LIKE", "UNIQUE", "WHERE", "SCATTER_ND", "EMBEDDING_LOOKUP",
    "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "PAD", "PADV2", "MIRROR_PAD", "CAST", "DENSIFY",
}
#: the input that holds the weights of ops whose weights are symmetric (zero point 0) in the TFLite quantization spec
_WEIGHTS_INPUT = {"CONV_2D": 1, "DEPTHWISE_CONV_2D": 1, "FULLY_CONNECTED": 1, "TRANSPOSE_CONV": 1, "CONV_3D": 1,
                  "CONV_3D_TRANSPOSE": 1}
#: custom ops the interpreter itself registers; their options are a flexbuffer map its kernels read unchecked
BUILTIN_CUSTOM_OPS = {"TFLite_Detection_PostProcess": (3, 4), "Mfcc": (2, 1), "AudioSpectrogram": (1, 1)}
#: option fields that must be at least 1 (and at most MAX_WINDOW)
_POSITIVE = ("stride_w", "stride_h", "stride_d", "dilation_w", "dilation_h", "dilation_d", "filter_w", "filter_h")
_PADDINGS = 2  # SAME, VALID
_ACTIVATIONS = 6  # NONE, RELU, RELU_N1_TO_1, RELU6, TANH, SIGN_BIT


class InvalidModel(Exception):
    """A check failed; the message names what is wrong (``parse`` turns it into a ModelError naming the file)."""


def validate(model: TFLiteFile, file_size: int) -> None:
    """Check indices, sizes, data flow, operators and quantization that the interpreter would otherwise trust.

    Args:
        model: what the reader read (every offset already inside the file).
        file_size: the file's length in bytes.

    Raises:
        InvalidModel: the first problem found, as a phrase naming the tensor, operator or subgraph.
    """
    nbuf = len(model.buffer_sizes)
    if sum(model.buffer_sizes) > file_size:  # buffers never overlap: together they fit in the file
        raise InvalidModel(f"the buffers hold {sum(model.buffer_sizes)} bytes in all, more than the file's {file_size}")
    for s, sg in enumerate(model.subgraphs):
        per_channel: list[TensorInfo] = []
        for t in sg.tensors:
            if t.buffer >= nbuf:
                raise InvalidModel(f"tensor {t.index} ({t.name!r}) of subgraph {s} names buffer {t.buffer} of {nbuf}")
            _check_tensor(t, model.buffer_sizes[t.buffer] if t.buffer else 0, s, per_channel)
        _check_channel_values(per_channel, s)
        n = len(sg.tensors)
        for what, idx in (("input", sg.inputs), ("output", sg.outputs)):
            for i in idx:
                if not 0 <= i < n:
                    raise InvalidModel(f"subgraph {s} {what} {i} is not one of its {n} tensors")
        for op in sg.operators:
            _check_operator(op, sg, s, len(model.subgraphs))
        _check_data_flow(sg, s, model.buffer_sizes)
    _check_calls(model)
    for sig in model.signatures:
        if sig.subgraph >= len(model.subgraphs):
            raise InvalidModel(f"signature {sig.key!r} names subgraph {sig.subgraph} of {len(model.subgraphs)}")
        sg = model.subgraphs[sig.subgraph]
        for what, names, allowed in (("input", sig.inputs, sg.inputs), ("output", sig.outputs, sg.outputs)):
            for i in names.values():
                if i not in allowed:
                    raise InvalidModel(f"signature {sig.key!r} names tensor {i} as an {what}, but it is not one of "
                                       f"subgraph {sig.subgraph}'s {what}s {list(allowed)}")


def _check_tensor(t: TensorInfo, size: int, s: int, per_channel: list[TensorInfo]) -> None:
    """Check one tensor; integer tensors with several scales go to ``per_channel`` (values checked together)."""

    def what() -> str:  # built only for the error message: this runs for every tensor of every model loaded
        return f"tensor {t.index} ({t.name!r}) of subgraph {s}"

    shape = t.shape
    if t.dtype[0] == "T" and t.dtype.startswith("TYPE_"):
        raise InvalidModel(f"{what()} has an unknown type code {t.dtype[5:]}")
    if len(shape) > MAX_RANK or (shape and min(shape) < 0):
        raise InvalidModel(f"{what()} has an invalid shape {list(shape)}")
    sig = t.shape_signature
    if sig is not shape and sig != shape and (
        len(sig) != len(shape) or any(a != d and a != -1 for a, d in zip(sig, shape))
    ):
        raise InvalidModel(f"{what()} has a shape_signature {list(sig)} that does not match its shape {list(shape)}")
    elements = math.prod(shape)
    bits = _ELEMENT_BITS.get(t.dtype)
    nbytes = (elements * bits + 7) // 8 if bits else elements
    if nbytes > MAX_TENSOR_BYTES:
        raise InvalidModel(f"{what()} of shape {list(shape)} {t.dtype} would take {nbytes} bytes "
                           f"(limit {MAX_TENSOR_BYTES})")
    if t.sparsity is not None:
        if not size or not bits:
            raise InvalidModel(f"{what()} is sparse but has no constant {t.dtype} data; only weights can be sparse")
        stored = _sparse_values(t, what)
        nbytes = (stored * bits + 7) // 8
        if nbytes != size:
            raise InvalidModel(f"{what()} is sparse with {stored} stored {t.dtype} values ({nbytes} bytes) but its "
                               f"buffer has {size}")
    elif size and bits and nbytes != size:  # converters write exactly shape x type; anything else is corrupt
        raise InvalidModel(f"{what()} of shape {list(shape)} {t.dtype} needs {nbytes} bytes but its buffer has {size}")
    if t.scales:
        _check_quantization(t, what, per_channel)


def _sparse_values(t: TensorInfo, what: Callable[[], str]) -> int:
    """Check a sparse tensor's storage as LiteRT's densifier walks it; return how many values it stores.

    Dimensions are visited in ``traversal_order`` (the tensor's dimensions, then one per ``block_map`` entry, whose
    ``dense_size`` is the block size). A dense dimension multiplies the positions so far by its size; a CSR
    dimension has one segment per position so far (ascending, from 0 to the number of indices) and indices below
    its size. The kernels trust all of this.
    """
    sp, shape = t.sparsity, t.shape
    rank, blocks = len(shape), len(sp.block_map)
    if sorted(sp.traversal_order) != list(range(rank + blocks)) or len(sp.dims) != rank + blocks:
        raise InvalidModel(f"{what()} has sparsity traversal order {list(sp.traversal_order)} and "
                           f"{len(sp.dims)} dimension entries for a shape of rank {rank} with {blocks} blocks")
    if len(set(sp.block_map)) != blocks or any(not 0 <= d < rank for d in sp.block_map):
        raise InvalidModel(f"{what()} has sparsity block map {list(sp.block_map)} for a shape of rank {rank}")
    sizes = list(shape)
    for j, d in enumerate(sp.block_map):  # the densifier reads block sizes from the last dimension entries
        block = sp.dims[rank + j]
        if block.sparse or block.dense_size < 1 or shape[d] % block.dense_size:
            raise InvalidModel(f"{what()} has a block of {block.dense_size} along dimension {d} of size {shape[d]}")
        sizes[d] //= block.dense_size
        sizes.append(block.dense_size)
    positions = 1
    for k, dim in enumerate(sp.dims):
        size = sizes[sp.traversal_order[k]]
        if not dim.sparse:
            if dim.dense_size != size:
                raise InvalidModel(f"{what()} has a dense sparsity dimension of {dim.dense_size}, expected {size}")
            positions *= size
            continue
        segments, indices = _values(dim.segments), _values(dim.indices)
        if (len(segments) != positions + 1 or segments[0] != 0 or segments[-1] != len(indices)
                or (np.diff(segments) < 0).any()):
            raise InvalidModel(f"{what()} has {len(segments)} sparse segments for {positions} positions and "
                               f"{len(indices)} indices; expected {positions + 1}, ascending from 0 to {len(indices)}")
        if len(indices) and not _in_range(indices, 0, size - 1):
            raise InvalidModel(f"{what()} has sparse indices outside 0..{size - 1}")
        positions = len(indices)
    return positions


def _values(values: Sequence[int]) -> np.ndarray:
    """Sparse index values as an int64 array (a lazy vector's view, or a short tuple)."""
    return values.array().astype(np.int64) if hasattr(values, "array") else np.asarray(values, dtype=np.int64)


def _array(values: Sequence, dtype: str) -> np.ndarray:
    """A sequence of quantization values as a numpy array of ``dtype`` (reinterpreting a lazy vector's bytes)."""
    if hasattr(values, "array"):  # the reader's lazily decoded vector: a view of the file's bytes
        return values.array(dtype)
    source = np.asarray(values, dtype=np.float32 if dtype == "<u4" else np.int64)
    return source.view(dtype) if dtype == "<u4" else source


#: float32 bit patterns strictly between these are the finite positive floats
_POSITIVE_FINITE_BITS = (0, 0x7F800000)


def _check_quantization(t: TensorInfo, what: Callable[[], str], per_channel: list[TensorInfo]) -> None:
    n = len(t.scales)
    if len(t.zero_points) != n:
        raise InvalidModel(f"{what()} has {n} quantization scales but {len(t.zero_points)} zero points")
    if not 0 <= t.quantized_dimension < max(1, len(t.shape)):
        raise InvalidModel(f"{what()} has quantized_dimension {t.quantized_dimension} for a shape of rank "
                           f"{len(t.shape)}")
    if n > 1 and t.shape and t.shape[t.quantized_dimension] != n:
        raise InvalidModel(f"{what()} has {n} per-channel scales but dimension {t.quantized_dimension} of its shape "
                           f"{list(t.shape)} has {t.shape[t.quantized_dimension]} channels")
    zero_range = _ZERO_POINT_RANGE.get(t.dtype)
    if zero_range is None:  # float tensors may carry calibration ranges; kernels do not use them
        return
    if n > 1:
        per_channel.append(t)
        return
    low, high = zero_range
    _check_values(t, what, 0 < t.scales[0] < math.inf, low <= t.zero_points[0] <= high)  # NaN fails both ways


def _check_channel_values(tensors: list[TensorInfo], s: int) -> None:
    """Scales and zero points of every per-channel tensor of a subgraph in a few numpy passes (tens of thousands)."""
    if not tensors:
        return
    bits = np.concatenate([_array(t.scales, "<u4") for t in tensors])
    if bits.min() > _POSITIVE_FINITE_BITS[0] and bits.max() < _POSITIVE_FINITE_BITS[1]:
        by_type: dict[str, list[TensorInfo]] = {}
        for t in tensors:
            by_type.setdefault(t.dtype, []).append(t)
        if all(_in_range(np.concatenate([_array(t.zero_points, "<i8") for t in group]), *_ZERO_POINT_RANGE[dtype])
               for dtype, group in by_type.items()):
            return
    for t in tensors:  # something is out of range: find the tensor to name it
        low, high = _ZERO_POINT_RANGE[t.dtype]
        bits = _array(t.scales, "<u4")
        _check_values(t, lambda: f"tensor {t.index} ({t.name!r}) of subgraph {s}",
                      bool(bits.min() > _POSITIVE_FINITE_BITS[0] and bits.max() < _POSITIVE_FINITE_BITS[1]),
                      _in_range(_array(t.zero_points, "<i8"), low, high))


def _in_range(values: np.ndarray, low: int, high: int) -> bool:
    return bool(values.min() >= low and values.max() <= high)


def _check_values(t: TensorInfo, what: Callable[[], str], scale_ok: bool, zero_ok: bool) -> None:
    low, high = _ZERO_POINT_RANGE[t.dtype]
    if not scale_ok:
        bad = next(v for v in t.scales if not 0 < v < math.inf)
        raise InvalidModel(f"{what()} has a quantization scale of {bad}; scales must be finite and positive")
    if not zero_ok:
        bad = next(z for z in t.zero_points if not low <= z <= high)
        raise InvalidModel(f"{what()} has a zero point of {bad}, outside the {t.dtype} range {low}..{high}")


def _check_operator(op: OperatorInfo, sg: SubgraphInfo, s: int, nsub: int) -> None:
    n = len(sg.tensors)

    def where() -> str:
        return f"operator {op.index} ({op.op}) of subgraph {s}"

    for i in op.inputs + op.outputs + op.intermediates:
        if not -1 <= i < n:
            raise InvalidModel(f"{where()} uses tensor {i} of {n}")
    if -1 in op.outputs:
        raise InvalidModel(f"{where()} has a missing (-1) output")
    need = _MIN_IO.get(op.op) or BUILTIN_CUSTOM_OPS.get(op.op)
    if need is not None and (len(op.inputs) < need[0] or len(op.outputs) < need[1]):
        raise InvalidModel(f"{where()} has {len(op.inputs)} inputs and {len(op.outputs)} outputs; "
                           f"it needs at least {need[0]} and {need[1]}")
    if need is not None or op.called_subgraphs():  # other ops (LSTMs, custom ops) may omit any input
        optional = _OPTIONAL_INPUTS.get(op.op, ())
        missing = next((k for k, i in enumerate(op.inputs) if i == -1 and k not in optional), None)
        if missing is not None:
            raise InvalidModel(f"{where()} has no tensor for its required input {missing}")
    if op.op in _MIN_IO and op.op not in _HANDLE_OPS:
        refused = ("RESOURCE", "VARIANT") if op.op in _STRING_OPS else ("RESOURCE", "VARIANT", "STRING")
        handle = next((i for i in op.inputs + op.outputs if i >= 0 and sg.tensors[i].dtype in refused), None)
        if handle is not None:
            raise InvalidModel(f"{where()} uses {sg.tensors[handle].dtype} tensor {handle} as data")
    weights = _WEIGHTS_INPUT.get(op.op)
    if weights is not None and weights < len(op.inputs) and op.inputs[weights] >= 0:
        w = sg.tensors[op.inputs[weights]]
        if w.dtype in ("INT4", "INT8", "INT16") and w.zero_points and _array(w.zero_points, "<i8").any():
            raise InvalidModel(f"{where()} has weights (tensor {w.index}) with zero points {list(w.zero_points)[:4]}; "
                               f"{w.dtype} weights are symmetric (zero point 0)")
    options = op.options
    for key in _POSITIVE:
        if key in options and not 1 <= options[key] <= MAX_WINDOW:
            raise InvalidModel(f"{where()} has {key} {options[key]}; expected 1 to {MAX_WINDOW}")
    if not 0 <= options.get("padding", 0) < _PADDINGS or not 0 <= options.get("fused_activation", 0) < _ACTIVATIONS:
        raise InvalidModel(f"{where()} has an unknown padding or activation ({options.get('padding')}, "
                           f"{options.get('fused_activation')})")
    for key, target in op.called_subgraphs().items():
        if not 0 <= target < nsub or target == s:
            raise InvalidModel(f"{where()} calls subgraph {target} as its {key.replace('_', ' ')}; the model has "
                               f"{nsub} subgraphs and an op cannot call its own")


def _check_data_flow(sg: SubgraphInfo, s: int, buffer_sizes: tuple[int, ...]) -> None:
    """Operators run in file order: each input must exist before it is read, and each output is written once."""
    constant = {t.index for t in sg.tensors if t.buffer and buffer_sizes[t.buffer]}
    variable = next((i for i in constant if sg.tensors[i].is_variable), None)
    if variable is not None:
        raise InvalidModel(f"tensor {variable} ({sg.tensors[variable].name!r}) of subgraph {s} is a variable with "
                           "constant data")
    ready = set(sg.inputs) | constant | {t.index for t in sg.tensors if t.is_variable or 0 in t.shape}
    written: set[int] = set()
    for op in sg.operators:
        for i in op.inputs:
            if i >= 0 and i not in ready:
                raise InvalidModel(f"operator {op.index} ({op.op}) of subgraph {s} reads tensor {i} "
                                   f"({sg.tensors[i].name!r}) before any operator writes it")
        if op.op == "DEQUANTIZE" and op.inputs[0] in constant and op.outputs:
            # delegates expand constant weights into the output's declared shape: it must be the input's
            source, target = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
            if source.shape != target.shape:
                raise InvalidModel(f"operator {op.index} (DEQUANTIZE) of subgraph {s} turns constant tensor "
                                   f"{source.index} of shape {list(source.shape)} into shape {list(target.shape)}")
        if op.op == "DENSIFY" and op.outputs:
            # DENSIFY expands constant sparse weights; XNNPACK does it at load time into the output's declared shape
            source, target = sg.tensors[op.inputs[0]], sg.tensors[op.outputs[0]]
            if source.sparsity is None or (source.shape, source.dtype) != (target.shape, target.dtype):
                raise InvalidModel(f"operator {op.index} (DENSIFY) of subgraph {s} turns tensor {source.index} "
                                   f"({'sparse' if source.sparsity else 'not sparse'}, {list(source.shape)} "
                                   f"{source.dtype}) into {list(target.shape)} {target.dtype}; it expands a sparse "
                                   "tensor into the same shape and type")
        for i in op.outputs:
            if i in written or i in constant or i in sg.inputs:
                state = "written twice" if i in written else "read-only"
                raise InvalidModel(f"operator {op.index} ({op.op}) of subgraph {s} writes tensor {i} "
                                   f"({sg.tensors[i].name!r}), which is {state}")
            written.add(i)
            ready.add(i)
    for i in sg.outputs:
        if i not in ready:
            raise InvalidModel(f"subgraph {s} output {i} ({sg.tensors[i].name!r}) is never written")


def _check_calls(model: TFLiteFile) -> None:
    """Control-flow ops: the subgraphs they call take and give the right number of tensors, without recursion."""
    subgraphs = model.subgraphs
    calls: dict[int, set[int]] = {}
    for s, sg in enumerate(subgraphs):
        for op in sg.operators:
            if not op.options or not op.called_subgraphs():
                continue
            called = op.called_subgraphs()
            calls.setdefault(s, set()).update(called.values())
            where = f"operator {op.index} ({op.op}) of subgraph {s}"
            n_in, n_out = len(op.inputs), len(op.outputs)
            expected: list[tuple[str, int, int, int]] = []  # (role, subgraph, inputs, outputs)
            if op.op == "WHILE":
                cond, body = called["cond_subgraph"], called["body_subgraph"]
                expected = [("cond", cond, n_in, 1), ("body", body, n_in, n_in)]
                if n_in != n_out:
                    raise InvalidModel(f"{where} has {n_in} inputs but {n_out} outputs; a loop's must match")
            elif op.op == "IF":
                if n_in < 1:
                    raise InvalidModel(f"{where} has no condition input")
                expected = [(k, called[f"{k}_subgraph"], n_in - 1, n_out) for k in ("then", "else")]
            elif op.op == "CALL_ONCE":
                expected = [("init", called["init_subgraph"], 0, 0)]
            for role, target, want_in, want_out in expected:
                got_in, got_out = len(subgraphs[target].inputs), len(subgraphs[target].outputs)
                if (got_in, got_out) != (want_in, want_out):
                    raise InvalidModel(f"{where} calls subgraph {target} as its {role} with {want_in} inputs and "
                                       f"{want_out} outputs, but it has {got_in} and {got_out}")
    state: dict[int, int] = {}  # 1 = on the current path, 2 = done

    def visit(s: int, path: list[int]) -> None:
        state[s] = 1
        for target in sorted(calls.get(s, ())):
            if state.get(target) == 1:
                cycle = " -> ".join(map(str, path + [s, target]))
                raise InvalidModel(f"subgraphs call each other in a cycle ({cycle}); the interpreter would recurse "
                                   "forever")
            if target not in state:
                visit(target, path + [s])
        state[s] = 2

    for s in range(len(subgraphs)):
        if s not in state:
            visit(s, [])

