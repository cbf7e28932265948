"""Float fallback: keep chosen layers in float (``--keep-float``), or find them for an accuracy budget (``--max-drop``).

Keeping a layer in float means keeping its output *tensor* out of int8. A float op whose output is read
by an int8 op still gets quantized (with the same calibrated range) on the way in, so the readers of the
tensor run in float too, as does every tensor the int8 graph ties to the same scale (a MAX_POOL_2D or
RESHAPE of it). :func:`resolve_keep_float` expands each name that way and lists what runs in float.

The route is the one the TFLite quantization debugger documents for selective quantization: calibrate
once (``converter._experimental_calibrate_only``), then ``mlir_quantize(calibrated, denylisted_nodes=…,
denylisted_ops=…)`` for each choice, which takes milliseconds. The accuracy budget (:func:`selective_quantize`
with ``max_drop``) quantizes full int8, measures the drop against the Keras model, and while it is over
budget keeps the next-worst layer of the debugger's ranking in float.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from edgeq._native import quiet_native_output
from edgeq._progress import step, track
from edgeq.errors import InferenceError, UsageError

from edgeq.converters.calibration import Calibration, RangeChange, apply_statistic, quantize_calibrated
from edgeq.converters.convert import _run_converter
from edgeq.converters.datasets import Sample, image_preprocess, load_samples
from edgeq.converters.debug import SELECTIVE_MODES, Graph, LayerError, keras_layer_names, layer_errors, trace_layers
from edgeq.converters.modes import ModeSpec
from edgeq.converters.source import SourceModel

log = logging.getLogger(__name__)

#: at most this many layers are tried one by one before the float body
MAX_STEPS = 12
#: timed inferences per model, interleaved across the models compared
LATENCY_RUNS = 30
#: eval samples used from ``eval_data`` at most
MAX_EVAL_SAMPLES = 2000
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
_FLOAT_TYPES = {0, 1}  # TensorType FLOAT32, FLOAT16


def split_names(keep_float: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b,c"]`` → ``("a", "b", "c")``, in order, without blanks or repeats.

    A string is split on commas; the items of a sequence are taken whole.
    """
    if not keep_float:
        return ()
    items = keep_float.split(",") if isinstance(keep_float, str) else list(keep_float)
    return tuple(dict.fromkeys(n.strip() for n in items if n.strip()))


# --------------------------------------------------------------------------- what runs in float
@dataclass(frozen=True)
class KeepFloatPlan:
    """The ops to keep in float, and the quantizer denylists that do it.

    Attributes:
        names: the names asked for (Keras layers, tensor names, op types), in order.
        ops: indices (in the full-int8 graph) of the ops kept in float by name.
        nodes: their output tensor names (``denylisted_nodes``).
        op_types: op types kept in float everywhere (``denylisted_ops``).
        details: per name (as shown), the ops it puts in float, as ``OP layer-or-tensor`` strings.
        shown: ``names`` as tables show them (the Keras layers of a tensor the budget search chose).
    """

    names: tuple[str, ...] = ()
    ops: frozenset[int] = frozenset()
    nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()
    details: dict[str, list[str]] = field(default_factory=dict)
    shown: tuple[str, ...] = ()

    def float_op_count(self, graph: Graph) -> int:
        return sum(1 for op in graph.ops if op.index in self.ops or op.type in self.op_types)


def _tensor_group(graph: Graph, tensor: int) -> set[int]:
    """``tensor`` and the activation tensors the int8 graph ties to its scale through one op (pooling, reshape…)."""
    def activation(t: int) -> bool:
        return t >= 0 and (t in graph.inputs or graph.producer(t) is not None)

    group, todo = {tensor}, [tensor]
    while todo:
        t = todo.pop()
        quant = graph.quantization[t]
        neighbours = []
        producer = graph.producer(t)
        if producer is not None and producer.type not in _BOUNDARY_OPS:
            neighbours += producer.inputs
        for reader in graph.readers(t):
            if reader.type not in _BOUNDARY_OPS:
                neighbours += reader.outputs
        for n in neighbours:
            if n not in group and activation(n) and quant[0] and graph.quantization[n] == quant:
                group.add(n)
                todo.append(n)
    return group


def float_closure(graph: Graph, tensor: int) -> set[int]:
    """The ops that must run in float so that ``tensor`` is never quantized: its group's producers and readers."""
    ops: set[int] = set()
    for t in _tensor_group(graph, tensor):
        producer = graph.producer(t)
        if producer is not None:
            ops.add(producer.index)
        ops.update(r.index for r in graph.readers(t))
    return {i for i in ops if graph.ops[i].type not in _BOUNDARY_OPS}


def resolve_keep_float(graph: Graph, names: Sequence[str], keras_model: Any = None) -> KeepFloatPlan:
    """Turn ``--keep-float`` names into quantizer denylists on the full-int8 ``graph``.

    A name is an op type present in the model (``SOFTMAX``: every op of that type), an op output tensor
    name as ``edgeq debug`` prints it, a Keras layer name (every op traced to that layer), or ``*`` (every
    op: the float body). Tensors and layers are expanded with :func:`float_closure`.

    Raises:
        UsageError: a name matches nothing; the message lists the valid names.
    """
    traced = trace_layers(graph, keras_model)
    op_types = sorted({op.type for op in graph.ops if op.type not in _BOUNDARY_OPS})
    by_tensor = {graph.names[t]: op for op in graph.ops for t in op.outputs if op.type not in _BOUNDARY_OPS}
    ops: set[int] = set()
    types: list[str] = []
    details: dict[str, list[str]] = {}
    for name in names:
        if name.upper() in op_types and not any(name in layers for layers in traced.values()):
            types.append(name.upper())
            details[name] = [f"every {name.upper()} op"]
            continue
        if name == "*":
            roots = [op for op in graph.ops if op.type not in _BOUNDARY_OPS]
        elif name in by_tensor:
            roots = [by_tensor[name]]
        else:
            roots = [graph.ops[i] for i, layers in sorted(traced.items()) if name in layers]
        if not roots:
            raise UsageError(_unknown_name(name, traced, op_types, keras_model))
        added: set[int] = set()
        for root in roots:
            for t in root.outputs:
                added |= float_closure(graph, t)
        details[name] = ["every op"] if name == "*" else [_describe(graph, graph.ops[i], traced) for i in sorted(added)]
        ops |= added
    nodes = tuple(dict.fromkeys(graph.names[t] for i in sorted(ops) for t in graph.ops[i].outputs))
    return KeepFloatPlan(tuple(names), frozenset(ops), nodes, tuple(dict.fromkeys(types)), details, tuple(names))


def _describe(graph: Graph, op: Any, traced: dict[int, tuple[str, ...]]) -> str:
    where = "+".join(traced.get(op.index, ())) or graph.names[op.outputs[0]]
    return f"{op.type} {where}"


def _unknown_name(name: str, traced: dict[int, tuple[str, ...]], op_types: list[str], keras_model: Any) -> str:
    layers = list(dict.fromkeys(v for _, vs in sorted(traced.items()) for v in vs))
    if not layers and keras_model is not None:
        layers = keras_layer_names(keras_model)
    shown = ", ".join(layers[:30]) + (", …" if len(layers) > 30 else "")
    return (f"--keep-float {name!r} matches no layer, tensor or op type of this model; valid names: Keras layers "
            f"{shown or '(none traced)'}; op types {', '.join(op_types)}; or a tensor name as 'edgeq debug' prints it")


def unexpected_float_ops(model: bytes, allowed: dict[str, int], op_types: Sequence[str] = ()) -> dict[str, int]:
    """Op types computing in float in ``model`` beyond ``allowed`` (op type → count kept in float on purpose).

    Counted by type rather than by tensor name: the quantizer renames an output tensor when it adds a
    QUANTIZE after a float op.
    """
    graph = Graph.read(model)
    counts: dict[str, int] = {}
    producer = {t: op for op in graph.ops for t in op.outputs}
    for op in graph.ops:
        if op.type in _BOUNDARY_OPS or op.type in op_types:
            continue
        if any(t >= 0 and graph.dtypes[t] in _FLOAT_TYPES for t in op.outputs):
            fed = [producer.get(t) for t in op.inputs if t >= 0 and graph.dtypes[t] in _FLOAT_TYPES and t in producer]
            if fed and all(f is not None and f.type in op_types for f in fed):
                continue  # float only because a kept op type feeds it (RESHAPE after a kept NEG)
            counts[op.type] = counts.get(op.type, 0) + 1
    return {t: n - allowed.get(t, 0) for t, n in sorted(counts.items()) if n > allowed.get(t, 0)}


# ------------------------------------------------------------------------------------ reports
@dataclass(frozen=True)
class FallbackStep:
    """One candidate model: what it keeps in float and what that costs and buys.

    Attributes:
        label: ``full int8``, ``+ NAME`` (a step of the budget search), ``keep NAME`` or ``float body``.
        keep_float: the names kept in float (cumulative), as ``--keep-float`` takes them.
        shown: the same, as tables show them.
        float_ops: how many ops compute in float.
        size: bytes of the model body.
        latency_ms: median inference time (interleaved with the other steps' models).
        accuracy: top-1 accuracy on the labelled eval data, if any.
        agreement: top-1 agreement with the Keras model on the eval (or held-back) samples.
        within_budget: whether the step meets the budget (``None`` without a budget).
    """

    label: str
    keep_float: tuple[str, ...]
    float_ops: int
    size: int
    latency_ms: float | None = None
    accuracy: float | None = None
    agreement: float | None = None
    within_budget: bool | None = None
    shown: tuple[str, ...] = ()
    failed: int = 0
    scored: int = 0

    @property
    def failure_text(self) -> str:
        """``fails on k of N inputs`` when the model crashed at run time on some scored samples, else empty."""
        return f"fails on {self.failed} of {self.scored} inputs" if self.failed else ""

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "keep_float": list(self.keep_float), "shown": list(self.shown),
                "float_ops": self.float_ops, "size": self.size,
                "latency_ms": self.latency_ms, "accuracy": self.accuracy, "agreement": self.agreement,
                "within_budget": self.within_budget, "failed": self.failed, "scored": self.scored}


@dataclass
class FallbackReport:
    """What the calibrate-then-quantize route did (calibration statistic, float fallback, budget search).

    Attributes:
        calibration: the statistic used (``minmax``, ``percentile:99.99``, ``mse``).
        range_changes: activation tensors whose range that statistic changed.
        steps: the candidate models compared, in order.
        chosen: index in ``steps`` of the model written.
        plan: what the written model keeps in float.
        budget: the accuracy budget and its outcome (``None`` without one): ``metric`` (``top1``/``agreement``),
            ``max_drop`` (points), ``reference`` (the Keras model's top-1, or 1.0 for agreement), ``achieved``,
            ``drop`` (points), ``met``, ``samples``, ``data``.
        ranking: the debugger's worst layers, when the budget search ran it.
        message: one sentence on the outcome.
        allowed_float: op type → how many ops ``plan`` keeps in float (the full-integer check allows those).
    """

    calibration: str
    range_changes: list[RangeChange]
    steps: list[FallbackStep]
    chosen: int
    plan: KeepFloatPlan
    budget: dict[str, Any] | None = None
    ranking: list[LayerError] = field(default_factory=list)
    message: str = ""
    allowed_float: dict[str, int] = field(default_factory=dict)

    @property
    def keep_float(self) -> tuple[str, ...]:
        return self.plan.names

    @property
    def met(self) -> bool:
        return self.budget is None or bool(self.budget["met"])

    def unexpected_float_ops(self, model: bytes) -> dict[str, int]:
        """Float ops in ``model`` that the plan did not ask for (see :func:`unexpected_float_ops`)."""
        return unexpected_float_ops(model, self.allowed_float, self.plan.op_types)

    def to_dict(self) -> dict[str, Any]:
        return {"calibration": self.calibration, "range_changes": [c.to_dict() for c in self.range_changes],
                "steps": [s.to_dict() for s in self.steps], "chosen": self.chosen,
                "keep_float": list(self.keep_float), "float_ops": self.plan.details, "budget": self.budget,
                "ranking": [r.to_dict() for r in self.ranking], "message": self.message}


# ---------------------------------------------------------------------------------- evaluation
@dataclass
class _EvalSet:
    """Samples to score candidates on, the Keras model's predictions on them, and labels when known."""

    samples: list[Sample]
    reference: np.ndarray
    labels: np.ndarray | None
    source: str
    input_names: tuple[str, ...] = ()
    failures: int = 0

    @property
    def reference_accuracy(self) -> float | None:
        return None if self.labels is None else float(np.mean(self.reference == self.labels))

    def score(self, model_bytes: bytes) -> tuple[float | None, float]:
        """(top-1 accuracy or ``None``, agreement with the Keras model) of a candidate model.

        A sample the candidate fails to run on (e.g. an integer division by zero) counts as wrong; the
        candidate's ``failures`` say on how many.
        """
        from edgeq.runtime.model import Model

        with quiet_native_output():  # LiteRT's one-time "Created TensorFlow Lite XNNPACK delegate" line
            model = Model(model_bytes, threads=None)
        predicted = []
        for s in track(self.samples, "Scoring a candidate"):
            try:
                feed = dict(zip(self.input_names, s)) if self.input_names else (s if len(s) > 1 else s[0])
                predicted.append(int(np.argmax(next(iter(model.predict(feed).values())))))
            except InferenceError:
                predicted.append(-1)
        predicted_array = np.asarray(predicted)
        self.failures = int(np.sum(predicted_array < 0))
        accuracy = None if self.labels is None else float(np.mean(predicted_array == self.labels))
        return accuracy, float(np.mean(predicted_array == self.reference))


def _eval_set(source: SourceModel, samples: list[Sample], labels: np.ndarray | None, where: str) -> _EvalSet:
    """Score ``samples`` with the Keras model (in batches when its batch dimension is dynamic)."""
    batch = 32 if all(spec.shape[0] is None for spec in source.inputs) else 1
    predicted: list[int] = []
    with step("Float model predictions", len(samples)) as advance:
        for start in range(0, len(samples), batch):
            chunk = samples[start:start + batch]
            arrays = [np.concatenate([s[i] for s in chunk]) for i in range(len(source.inputs))]
            predicted += np.argmax(source.predict(arrays)[0].reshape(len(chunk), -1), axis=1).tolist()
            advance(len(chunk))
    return _EvalSet(samples, np.asarray(predicted), labels, where, tuple(spec.name for spec in source.inputs))


def _labelled_eval(source: SourceModel, eval_data: Any, labels: Sequence[str], preprocess: Any) -> _EvalSet:
    from edgeq.runtime.evaluate import read_labelled

    if len(source.inputs) != 1:
        raise UsageError(f"--max-drop evaluates single-input classifiers; this model has {len(source.inputs)} inputs")
    outputs = [o.shape for o in source.keras_model.outputs] if source.keras_model is not None else []
    classes = int(outputs[0][-1]) if len(outputs) == 1 and outputs[0][-1] else None
    labelled = read_labelled(eval_data, labels, classes)
    count = min(len(labelled.items), MAX_EVAL_SAMPLES)
    arrays = [[a] for a, _ in zip(labelled.arrays(preprocess), range(count))]
    return _eval_set(source, arrays, labelled.labels[:count], labelled.source)


# --------------------------------------------------------------------------------------- latency
def interleaved_latency_ms(models: Sequence[bytes], sample: Sample, runs: int = LATENCY_RUNS) -> list[float | None]:
    """Median inference time of each model, timed in rounds (one run of each model per round) to share the noise."""
    from edgeq.runtime.model import Model

    with quiet_native_output():
        loaded = [Model(m, threads=None) for m in models]
    feeds = [m.prepare(sample if len(sample) > 1 else sample[0]) for m in loaded]
    times: list[list[float] | None] = [[] for _ in loaded]
    with step("Timing the candidates", runs) as advance:
        for round_ in range(runs + 2):
            for i, (model, feed) in enumerate(zip(loaded, feeds)):
                record = times[i]
                if record is None:
                    continue
                try:
                    model.predict(feed if len(feed) > 1 else feed[0], raw=True)
                except InferenceError:  # a candidate that crashes on this input has no latency
                    times[i] = None
                    continue
                if round_ >= 2:  # two warm-up rounds
                    record.append(model.last_invoke_seconds)
            if round_ >= 2:
                advance(1)
    return [statistics.median(t) * 1000 if t else None for t in times]


# ------------------------------------------------------------------------------------- the route
def check_options(spec: ModeSpec, data: Any, keep_float: Any, calibration: Any, max_drop: float | None,
                  eval_data: Any, max_drop_agreement: float | None) -> Calibration:
    """Validate the fallback/budget/calibration options before any work; returns the parsed calibration.

    Raises:
        UsageError: a mode the route cannot quantize, a missing ``eval_data``, both budgets, a negative budget.
    """
    method = Calibration.parse(calibration)
    if spec.key.value not in SELECTIVE_MODES:
        raise UsageError(f"--keep-float, --calibration and --max-drop work on the int8 quantizer: use --mode int8 or uint8. "
                         f"Received: --mode {spec.key.value}")
    if data is None:
        raise UsageError("--keep-float, --calibration and --max-drop need representative data; pass --data")
    if max_drop is not None and max_drop_agreement is not None:
        raise UsageError("give one budget: --max-drop (top-1 points on labelled --eval-data) or --max-drop-agreement")
    for flag, value in (("--max-drop", max_drop), ("--max-drop-agreement", max_drop_agreement)):
        if value is not None and not 0 <= value <= 100:
            raise UsageError(f"{flag} is in percentage points, from 0 to 100. Received: {value}")
    if max_drop is not None and eval_data is None:
        raise UsageError("--max-drop needs labelled --eval-data (class sub-folders, a labels CSV or .npz with x and y); "
                         "without labels use --max-drop-agreement")
    return method


def selective_quantize(
    tf: Any,
    source: SourceModel,
    spec: ModeSpec,
    io_type: str,
    samples: Any,
    calibration: Calibration,
    keep_float: Sequence[str] = (),
    max_drop: float | None = None,
    eval_data: Any = None,
    max_drop_agreement: float | None = None,
    labels: Sequence[str] = (),
    preprocess_args: dict[str, Any] | None = None,
) -> tuple[bytes, FallbackReport]:
    """Calibrate once, apply the calibration statistic, then quantize with the chosen layers in float.

    Without a budget, every name in ``keep_float`` is priced on its own (size, latency, agreement). With
    ``max_drop`` (top-1 points vs the Keras model on labelled ``eval_data``) or ``max_drop_agreement``
    (points of top-1 agreement on ``eval_data`` or the held-back samples), the debugger's worst layers
    are kept in float one at a time until the drop is within budget.

    Returns:
        The model to write (no metadata yet) and a :class:`FallbackReport`.
    """
    pp_args = preprocess_args or {}
    calibrated = _run_converter(tf, source, spec, io_type, samples, calibrate_only=True)
    calibrated, changes = apply_statistic(calibrated, samples.calibration, calibration,
                                          [spec.name for spec in source.inputs])
    full = quantize_calibrated(tf, calibrated, io_type)
    graph = Graph.read(full)
    plan = resolve_keep_float(graph, split_names(keep_float), source.keras_model)
    budgeted = max_drop is not None or max_drop_agreement is not None
    evals = None
    if eval_data is not None and max_drop_agreement is None:  # labelled: --max-drop, or accuracy in the cost table
        preprocess = samples.preprocess
        if preprocess is None and source.inputs[0].is_image:
            preprocess = image_preprocess(source.inputs[0], **pp_args)
        evals = _labelled_eval(source, eval_data, labels, preprocess)
    elif max_drop_agreement is not None and eval_data is not None:
        extra = load_samples(eval_data, source.inputs, MAX_EVAL_SAMPLES, 0, **pp_args)
        evals = _eval_set(source, extra.calibration, None, extra.source)
    elif budgeted or plan.names:
        evals = _eval_set(source, samples.verification, None, samples.source)

    candidates: list[tuple[FallbackStep, bytes, KeepFloatPlan]] = []

    def add(label: str, candidate: KeepFloatPlan) -> FallbackStep:
        body = full if not candidate.ops and not candidate.op_types else quantize_calibrated(
            tf, calibrated, io_type, candidate.nodes, candidate.op_types)
        accuracy, agreement = evals.score(body) if evals is not None else (None, None)
        row = FallbackStep(label, candidate.names, candidate.float_op_count(graph), len(body), None, accuracy, agreement,
                           _within(accuracy, agreement, evals, max_drop, max_drop_agreement), candidate.shown,
                           evals.failures if evals is not None else 0, len(evals.samples) if evals is not None else 0)
        candidates.append((row, body, candidate))
        return row

    ranking: list[LayerError] = []
    message = ""
    if not budgeted:
        if plan.names:
            add("full int8", KeepFloatPlan())
            if len(plan.names) > 1:
                for name in plan.names:
                    add(f"keep {name}", resolve_keep_float(graph, [name], source.keras_model))
            add(f"keep {', '.join(plan.names)}", plan)
        else:
            add(f"int8 ({calibration})", plan)
        chosen = len(candidates) - 1
    else:
        chosen, ranking, message = _search(tf, add, graph, plan, calibrated, samples, source)
    models = [body for _, body, _ in candidates]
    latencies = interleaved_latency_ms(models, (evals.samples if evals else samples.verification)[0])
    steps = [replace(row, latency_ms=ms) for (row, _, _), ms in zip(candidates, latencies)]
    final_row, final_body, final_plan = candidates[chosen]
    budget = None
    if budgeted:
        metric = "top1" if max_drop is not None else "agreement"
        reference = evals.reference_accuracy if metric == "top1" else 1.0
        achieved = final_row.accuracy if metric == "top1" else final_row.agreement
        budget = {"metric": metric, "max_drop": max_drop if max_drop is not None else max_drop_agreement,
                  "reference": reference, "achieved": achieved, "drop": (reference - achieved) * 100,
                  "met": bool(final_row.within_budget), "samples": len(evals.samples), "data": evals.source,
                  "steps": len(steps)}
    allowed: dict[str, int] = {}
    for i in final_plan.ops:
        allowed[graph.ops[i].type] = allowed.get(graph.ops[i].type, 0) + 1
    report = FallbackReport(str(calibration), changes, steps, chosen, final_plan, budget, ranking[:10], message, allowed)
    return final_body, report


def _within(accuracy: float | None, agreement: float | None, evals: _EvalSet | None, max_drop: float | None,
            max_drop_agreement: float | None) -> bool | None:
    if max_drop is not None and evals is not None and accuracy is not None:
        return (evals.reference_accuracy - accuracy) * 100 <= max_drop + 1e-9  # type: ignore[operator]
    if max_drop_agreement is not None and agreement is not None:
        return (1 - agreement) * 100 <= max_drop_agreement + 1e-9
    return None


def _search(tf: Any, add: Any, graph: Graph, plan: KeepFloatPlan, calibrated: bytes, samples: Any,
            source: SourceModel) -> tuple[int, list[LayerError], str]:
    """The budget search: full int8 (plus the user's keep-float), then the debugger's worst layers one by one."""
    first = add("full int8" if not plan.names else f"keep {', '.join(plan.names)}", plan)
    if first.within_budget:
        return 0, [], "full int8 is within budget: nothing kept in float" if not plan.names else "within budget"
    ranking = layer_errors(tf, calibrated, samples.verification, [s.name for s in source.inputs], source.keras_model,
                           plan.nodes, plan.op_types)
    current, rows = plan, [first]
    for layer in ranking:
        if len(rows) > MAX_STEPS:
            break
        if graph.op_producing(layer.tensor) is None:
            log.info("skipping %s: not an op output of the int8 graph", layer.tensor)
            continue
        step_plan = resolve_keep_float(graph, [layer.tensor], source.keras_model)
        if step_plan.ops <= current.ops:
            continue
        shown = layer.layer or layer.tensor
        current = KeepFloatPlan(current.names + (layer.tensor,), current.ops | step_plan.ops,
                                tuple(dict.fromkeys(current.nodes + step_plan.nodes)), current.op_types,
                                {**current.details, shown: step_plan.details[layer.tensor]}, current.shown + (shown,))
        rows.append(add(f"+ {shown} ({layer.op}, {layer.sqnr_db:.1f} dB)", current))
        if rows[-1].within_budget:
            return len(rows) - 1, ranking, f"within budget with {len(current.names) - len(plan.names)} layer(s) kept in float"
    rows.append(add("float body", resolve_keep_float(graph, plan.names + ("*",), source.keras_model)))
    if rows[-1].within_budget:
        return len(rows) - 1, ranking, (f"only the float body (every op in float, int8 only at the inputs/outputs) is within "
                                        f"budget; the {len(rows) - 2} layer(s) tried one by one were not enough")
    best = max(range(len(rows)), key=lambda i: (_score(rows[i]), -i))
    return best, ranking, (f"impossible budget: even the float body misses it (the inputs/outputs alone cost that much "
                           f"accuracy); kept the best step, {rows[best].label!r}")


def _score(row: FallbackStep) -> float:
    return row.accuracy if row.accuracy is not None else (row.agreement or 0.0)
