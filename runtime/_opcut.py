"""Cutting one operator out of a ``.tflite`` model into a model of its own.

The per-op profiler times each operator of a model as a one-op model run by the same backend with
the same threads: the operator keeps its options, constant inputs (weights, biases, shapes) and
quantization; every other input becomes an input of the one-op model, and its outputs become the
model's outputs. The graph surgery uses LiteRT's own flatbuffer tools
(``ai_edge_litert.tools.flatbuffer_utils`` and ``schema_py_generated``), imported on first use.

Only the first subgraph is cut; other subgraphs (the bodies of ``WHILE``/``IF``/``CALL_ONCE``) are
kept whole in every one-op model so that control-flow operators still find them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Sequence

from edgeq.errors import DependencyMissing, ModelError

_HINT = (
    "per-op profiling needs LiteRT's flatbuffer tools (pip install ai-edge-litert, 64-bit OS); "
    "they are not part of tflite-runtime, so per-op profiling is unavailable here"
)


def flatbuffer_tools() -> tuple[ModuleType, ModuleType]:
    """``(flatbuffer_utils, schema_py_generated)`` from LiteRT.

    Raises:
        DependencyMissing: ``ai-edge-litert`` (or its ``flatbuffers`` dependency) is not installed.
    """
    try:
        from ai_edge_litert import schema_py_generated as schema
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError as exc:
        raise DependencyMissing(f"{_HINT} ({exc})") from exc
    return flatbuffer_utils, schema


@dataclass(frozen=True)
class OneOpModel:
    """One operator of subgraph 0 as a model of its own.

    Args:
        index: the operator's index in subgraph 0 (its position in the execution order).
        op: the op name (``CONV_2D``).
        content: the one-op model's flatbuffer.
        inputs: for each input of the one-op model, in order, the index of that tensor in the full model.
        outputs: for each output of the one-op model, the index of that tensor in the full model.
    """

    index: int
    op: str
    content: bytes
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class OpCutter:
    """Reads a model once, then cuts out any of its subgraph-0 operators.

    Args:
        content: the full model's flatbuffer.
        name: what to call the model in errors.

    Raises:
        DependencyMissing: LiteRT's flatbuffer tools are not installed.
        ModelError: the model cannot be read by them.
    """

    def __init__(self, content: bytes, name: str = "model") -> None:
        self._fb, self._schema = flatbuffer_tools()
        try:
            self.model = self._fb.read_model_from_bytearray(bytearray(content))
        except Exception as exc:  # noqa: BLE001 - any failure of the generated reader means "unreadable"
            raise ModelError(f"{name} cannot be read by LiteRT's flatbuffer tools: {exc}") from exc
        self.name = name
        self.graph = self.model.subgraphs[0]
        self._opnames = [self._opcode_name(code) for code in self.model.operatorCodes or []]
        self._keep_all = len(self.model.subgraphs) > 1

    def _opcode_name(self, code: Any) -> str:
        builtin = self._fb.get_builtin_code_from_operator_code(code)
        if code.customCode:
            custom = code.customCode
            return custom.decode() if isinstance(custom, bytes) else str(custom)
        names = {v: k for k, v in vars(self._schema.BuiltinOperator).items() if not k.startswith("_")}
        return names.get(builtin, f"BUILTIN_{builtin}")

    def opcode_name(self, opcode_index: int) -> str:
        """The op name of an opcode index (``CONV_2D``, or the custom code)."""
        return self._opnames[opcode_index]

    def callers(self, subgraph: int) -> list[int]:
        """Operators of subgraph 0 that run ``subgraph`` (directly or through the subgraphs they call)."""
        calls = [self._called(g) for g in self.model.subgraphs]

        def reaches(start: int) -> bool:
            todo, seen = [start], set()
            while todo:
                s = todo.pop()
                if s == subgraph:
                    return True
                if s not in seen and 0 <= s < len(calls):
                    seen.add(s)
                    todo.extend(calls[s])
            return False

        return [i for i, op in enumerate(self.graph.operators or []) if any(map(reaches, self._op_calls(op)))]

    def _called(self, graph: Any) -> set[int]:
        return {t for op in graph.operators or [] for t in self._op_calls(op)}

    @staticmethod
    def _op_calls(op: Any) -> list[int]:
        options = op.builtinOptions
        return [int(v) for k, v in vars(options).items() if k.endswith("SubgraphIndex") and isinstance(v, int)] \
            if options is not None else []

    def __len__(self) -> int:
        return len(self.graph.operators or [])

    def op_name(self, index: int) -> str:
        return self._opnames[self.graph.operators[index].opcodeIndex]

    def is_constant(self, tensor: int, graph: Any = None) -> bool:
        """Whether a tensor of subgraph 0 (or of ``graph``) holds constant data in the file."""
        t = (graph or self.graph).tensors[tensor]
        buf = self.model.buffers[t.buffer] if t.buffer < len(self.model.buffers) else None
        return bool(t.buffer) and buf is not None and (buf.data is not None and len(buf.data) > 0 or bool(buf.size))

    def cut(self, index: int, input_shapes: dict[int, Sequence[int]] | None = None) -> OneOpModel:
        """Make operator ``index`` of subgraph 0 into a one-op model.

        Args:
            index: the operator's index.
            input_shapes: the runtime shape of input tensors whose stored shape is dynamic (by full-model index).

        Returns:
            The :class:`OneOpModel`.
        """
        schema = self._schema
        op = self.graph.operators[index]
        used: list[int] = []
        for t in list(op.inputs or []) + list(op.outputs or []) + list(op.intermediates or []):
            if t >= 0 and t not in used:
                used.append(t)
        remap = {old: new for new, old in enumerate(used)}
        buffers = list(self.model.buffers) if self._keep_all else [schema.BufferT()]
        tensors = []
        graph_inputs: list[int] = []
        for old in used:
            t = copy.copy(self.graph.tensors[old])
            if self.is_constant(old):
                if not self._keep_all:
                    buffers.append(self.model.buffers[t.buffer])
                    t.buffer = len(buffers) - 1
            else:
                if not self._keep_all:
                    t.buffer = 0
                if old in (op.inputs or []) and not t.isVariable:
                    graph_inputs.append(old)
                    if input_shapes and old in input_shapes:
                        t.shape = [int(d) for d in input_shapes[old]]
            tensors.append(t)
        new_op = copy.copy(op)
        new_op.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs or []]
        new_op.outputs = [remap[t] for t in op.outputs or []]
        new_op.intermediates = [remap[t] for t in op.intermediates or []] or None
        outputs = [t for t in op.outputs or [] if t >= 0]
        graph = schema.SubGraphT(
            tensors=tensors, inputs=[remap[t] for t in graph_inputs], outputs=[remap[t] for t in outputs],
            operators=[new_op], name=f"op{index}",
        )
        model = copy.copy(self.model)
        model.subgraphs = [graph, *self.model.subgraphs[1:]]
        model.buffers = buffers
        model.signatureDefs = None
        model.metadata = None
        model.metadataBuffer = None
        model.description = f"edgeq one-op cut: operator {index} of {self.name}"
        try:
            content = bytes(self._fb.convert_object_to_bytearray(model))
        except Exception as exc:  # noqa: BLE001 - the generated writer raises bare exceptions
            raise ModelError(f"cannot cut operator {index} ({self.op_name(index)}) out of {self.name}: {exc}") from exc
        return OneOpModel(index, self.op_name(index), content, tuple(graph_inputs), tuple(outputs))


def trivial_model(size: int = 1) -> bytes:
    """A one-op model doing almost nothing (``ADD`` of two ``size``-element float32 tensors; default 1).

    With ``size`` 1 its run time is the fixed cost of one ``invoke()`` (Python call, interpreter and delegate
    dispatch), which the per-op profiler subtracts from each one-op model's time.
    """
    fb, schema = flatbuffer_tools()
    add = schema.BuiltinOperator.ADD
    tensors = [schema.TensorT(shape=[size], type=schema.TensorType.FLOAT32, buffer=0, name=name) for name in "abc"]
    op = schema.OperatorT(opcodeIndex=0, inputs=[0, 1], outputs=[2],
                          builtinOptionsType=schema.BuiltinOptions.AddOptions, builtinOptions=schema.AddOptionsT())
    graph = schema.SubGraphT(tensors=tensors, inputs=[0, 1], outputs=[2], operators=[op], name="overhead")
    model = schema.ModelT(version=3, operatorCodes=[schema.OperatorCodeT(deprecatedBuiltinCode=add, builtinCode=add)],
                          subgraphs=[graph], buffers=[schema.BufferT()], description="edgeq invoke overhead")
    return bytes(fb.convert_object_to_bytearray(model))
