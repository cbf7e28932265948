"""Per-operator timing on the device, through the same backend, without any C++ tool.

The Python interpreters expose no op timers, so each operator is measured as a model of its own:

1. the whole model runs once on the reference kernels with every intermediate tensor kept
   (``experimental_preserve_all_tensors``), which captures the real input values of every operator;
2. each operator of subgraph 0 is cut out into a one-op model (:mod:`edgeq.runtime._opcut`) and
   loaded by the same backend with the same thread count and default delegates (XNNPACK), fed
   the captured values;
3. in each timed round the whole model runs once, then every one-op model once, then a trivial
   one-op model that measures the fixed cost of an ``invoke()``; interleaving keeps a change in
   machine load from biasing the ops against the whole model;
4. an operator's time is its median over the rounds minus that fixed cost; the sum of all of them
   is reported next to the whole model's median over the same rounds (``ratio``).

Whether a delegate took an operator is read from its one-op model's graph: the backend adds a
delegate node when XNNPACK (or another default delegate) claims the op. Inside the whole model
XNNPACK partitions the same way for supported ops; ``delegate_partitions`` says how many delegate
nodes the whole model got.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from edgeq._progress import step
from edgeq.errors import InferenceError, ModelError
from edgeq.runtime._opcut import OpCutter, trivial_model
from edgeq.runtime.backend import Backend
from edgeq.runtime.report import OpProfile, OpTiming

log = logging.getLogger(__name__)


def _resolver(backend: Backend, name: str) -> Any:
    module = backend.module
    kind = getattr(module, "OpResolverType", None) or getattr(getattr(module, "experimental", None), "OpResolverType", None)
    return getattr(kind, name, None) if kind is not None else None


def _num_nodes(interpreter: Any) -> int | None:
    try:
        return int(interpreter._interpreter.NumNodes())  # noqa: SLF001 - the wrappers' only view of the node list
    except Exception:  # noqa: BLE001 - not exposed by this backend
        return None


def _capture(backend: Backend, content: bytes, feed: Mapping[int, np.ndarray]) -> tuple[dict[int, np.ndarray], bool]:
    """Run the model once keeping every tensor; return ``({tensor index: value}, captured)``."""
    kwargs: dict[str, Any] = {"experimental_preserve_all_tensors": True}
    no_delegates = _resolver(backend, "BUILTIN_WITHOUT_DEFAULT_DELEGATES")
    if no_delegates is not None:
        kwargs["experimental_op_resolver_type"] = no_delegates
    try:
        interp = backend.Interpreter(model_content=content, num_threads=1, **kwargs)
        _set_inputs(interp, feed)
        interp.invoke()
    except (TypeError, ValueError, RuntimeError) as exc:
        log.debug("cannot capture intermediate tensors (%s); one-op models get random inputs", exc)
        return {}, False
    values = {}
    for d in interp.get_tensor_details():
        try:
            values[d["index"]] = np.array(interp.get_tensor(d["index"]))
        except (ValueError, RuntimeError):
            continue
    return values, True


def _set_inputs(interp: Any, feed: Mapping[int, np.ndarray]) -> None:
    """Resize inputs whose value has another shape (a batch, a dynamic size), allocate, then set them by index."""
    for d in interp.get_input_details():
        value = feed.get(d["index"])
        if value is not None and tuple(value.shape) != tuple(d["shape"]):
            interp.resize_tensor_input(d["index"], value.shape, strict=False)
    interp.allocate_tensors()
    for index, value in feed.items():
        interp.set_tensor(index, value)


def _random_like(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(int(info.max), 127) + 1, size=shape).astype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    return rng.standard_normal(shape).astype(dtype)


class _Timed:
    """A loaded interpreter with its inputs set, timed one invoke at a time."""

    def __init__(self, backend: Backend, content: bytes, threads: int, feed: list[np.ndarray | None] | None,
                 rng: np.random.Generator) -> None:
        self.content = content  # the interpreter reads from this buffer; keep it alive
        self.interpreter = backend.Interpreter(model_content=content, num_threads=threads)
        details = self.interpreter.get_input_details()
        values = [feed[k] if feed is not None and k < len(feed) else None for k in range(len(details))]
        for d, value in zip(details, values):  # before allocating: a dynamic size's placeholder may not prepare
            if value is not None and tuple(value.shape) != tuple(d["shape"]) and value.dtype == d["dtype"]:
                self.interpreter.resize_tensor_input(d["index"], value.shape, strict=False)
        self.interpreter.allocate_tensors()
        details = self.interpreter.get_input_details()
        for d, value in zip(details, values):
            if value is None or tuple(value.shape) != tuple(d["shape"]) or value.dtype != d["dtype"]:
                value = _random_like(tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]), rng)
            self.interpreter.set_tensor(d["index"], value)
        self.nodes = _num_nodes(self.interpreter)
        self.samples: list[int] = []

    def run(self, timer: Any, keep: bool) -> None:
        started = timer()
        self.interpreter.invoke()
        if keep:
            self.samples.append(timer() - started)

    def median_ms(self) -> float:
        return float(np.median(self.samples)) / 1e6

    def min_ms(self) -> float:
        return float(np.min(self.samples)) / 1e6


def profile_ops(
    content: bytes,
    backend: Backend,
    threads: int,
    feed: Mapping[int, np.ndarray],
    rounds: int = 20,
    warmup_rounds: int = 2,
    name: str = "model",
    seed: int = 0,
    label: str = "per-op",
) -> OpProfile:
    """Time every operator of subgraph 0 as a one-op model (see the module docstring).

    An operator whose one-op model does not load or run (a custom op, an op needing its graph's state) is
    listed with ``not_timed`` set to the reason, and so is every operator of the other subgraphs (control-flow
    bodies, timed as part of the op that calls them); the whole model's figures stay.

    Args:
        content: the model's flatbuffer.
        backend: the backend that runs the whole model.
        threads: interpreter threads, as for the whole model.
        feed: the whole model's input values by tensor index of subgraph 0.
        rounds: timed rounds (each runs the whole model and every op once).
        warmup_rounds: untimed rounds first.
        name: the model's name, for messages.
        seed: seed of random inputs, used only where a captured value is missing.
        label: how the progress steps are named.

    Returns:
        The :class:`~edgeq.runtime.report.OpProfile`.

    Raises:
        DependencyMissing: LiteRT's flatbuffer tools are not installed (e.g. tflite-runtime only).
        InferenceError: the whole model fails to load or run on this backend.
    """
    import time

    timer = time.perf_counter_ns
    rng = np.random.default_rng(seed)
    cutter = OpCutter(content, name)
    if not len(cutter):
        raise ModelError(f"{name} has no operators in its first subgraph; there is nothing to profile per op")
    with step(f"{label}: capturing intermediate tensors", None):
        values, captured = _capture(backend, content, feed)
    shapes = {i: v.shape for i, v in values.items()}
    ops: list[tuple[int, Any, _Timed]] = []
    untimed: dict[int, str] = {}
    with step(f"{label}: cutting one-op models", len(cutter)) as advance:
        for i in range(len(cutter)):
            try:
                one = cutter.cut(i, shapes)
                timed = _Timed(backend, one.content, threads, [values.get(t) for t in one.inputs], rng)
                timed.run(timer, False)  # an op that prepares but cannot run alone must not stop the rounds
            except (ValueError, RuntimeError, ModelError) as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.info("operator %d (%s) of %s is not timed alone: %s", i, cutter.op_name(i), name, reason)
                constant = not isinstance(exc, ModelError) and not one.inputs
                untimed[i] = ("its inputs are all constants: the delegate computes it once at load, not per inference"
                              if constant else f"its one-op model does not run on {backend.name}: {reason}")
            else:
                ops.append((i, one, timed))
            advance(1)
    try:
        whole = _Timed(backend, content, threads, [feed.get(t) for t in cutter.graph.inputs or []], rng)
    except (ValueError, RuntimeError) as exc:
        raise InferenceError(f"{name} cannot be loaded for per-op timing on {backend.name}: {exc}") from exc
    overhead = _Timed(backend, trivial_model(), threads, None, rng)
    everything = [whole, *(t for _, _, t in ops), overhead]
    with step(f"{label}: timing rounds", warmup_rounds + rounds) as advance:
        for r in range(warmup_rounds + rounds):
            keep = r >= warmup_rounds
            for timed in everything:
                timed.run(timer, keep)
            advance(1)
    overhead_ms, overhead_min = overhead.median_ms(), overhead.min_ms()
    whole_ms, whole_min = whole.median_ms(), whole.min_ms()
    timed_ops = {i: timed for i, _, timed in ops}
    timings = []
    for i in range(len(cutter)):
        dtype, out_name = _op_names(cutter, cutter.graph, i)
        timed = timed_ops.get(i)
        if timed is None:
            timings.append(OpTiming(i, cutter.op_name(i), dtype, out_name, 0.0, 0.0, None, 0, untimed[i]))
            continue
        delegated = None if timed.nodes is None else timed.nodes > 1
        timings.append(OpTiming(
            i, cutter.op_name(i), dtype, out_name, round(max(0.0, timed.median_ms() - overhead_ms), 4),
            round(max(0.0, timed.min_ms() - overhead_min), 4), delegated,
        ))
    for s, sub in enumerate(cutter.model.subgraphs[1:], start=1):  # control-flow bodies: timed inside their caller
        callers = ", ".join(f"#{i} {cutter.op_name(i)}" for i in cutter.callers(s)) or "another subgraph's op"
        for i, op in enumerate(sub.operators or []):
            dtype, out_name = _op_names(cutter, sub, i)
            timings.append(OpTiming(i, cutter.opcode_name(op.opcodeIndex), dtype, out_name, 0.0, 0.0, None, s,
                                    f"runs inside subgraph {s}, timed as part of {callers}"))
    total = sum(t.ms for t in timings)
    total_min = sum(t.min_ms for t in timings)
    partitions = None if whole.nodes is None else max(0, whole.nodes - len(cutter))
    method = (
        f"each of the {len(timings)} operators cut into a one-op model (constants kept, inputs = "
        f"{'values captured from a full run' if captured else 'random values'}), run by {backend.name} "
        f"{backend.version} with {threads} thread(s) and its default delegates; {rounds} interleaved rounds "
        f"(whole model, every op, invoke overhead); op time = median (and min) - per-invoke overhead "
        f"({overhead_ms * 1000:.1f} us); 'delegated' = the one-op model's graph gained a delegate node"
    )
    return OpProfile(
        method=method, rounds=rounds, whole_ms=round(whole_ms, 4), sum_ms=round(total, 4),
        ratio=round(total / whole_ms, 4) if whole_ms > 0 else 0.0, whole_min_ms=round(whole_min, 4),
        sum_min_ms=round(total_min, 4), ratio_min=round(total_min / whole_min, 4) if whole_min > 0 else 0.0,
        overhead_ms=round(overhead_ms, 4),
        delegate_partitions=partitions, ops=tuple(timings),
    )


def _op_names(cutter: OpCutter, graph: Any, i: int) -> tuple[str, str]:
    """The dtype of operator ``i``'s first non-constant input (else output) and its first output's name."""
    op = graph.operators[i]
    first_in = next((t for t in op.inputs or [] if t >= 0 and not cutter.is_constant(t, graph)),
                    next((t for t in op.outputs or [] if t >= 0), None))
    dtype = _dtype_name(graph.tensors[first_in].type) if first_in is not None else "?"
    out = next((t for t in op.outputs or [] if t >= 0), None)
    out_name = graph.tensors[out].name if out is not None else ""
    if isinstance(out_name, bytes):
        out_name = out_name.decode("utf-8", "replace")
    return dtype, out_name or ""


def _dtype_name(code: int) -> str:
    from edgeq._tflite_names import TENSOR_TYPES

    return TENSOR_TYPES.get(int(code), f"TYPE_{code}").lower()
