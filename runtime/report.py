"""The profile report: what ``edgeq profile`` measures, as data, and what ``edgeq compare`` reads.

This module is the only place that defines the report's fields; ``docs/report-schema.md`` documents
them. A report is a tree of frozen dataclasses with ``to_dict``/``from_dict``; its JSON carries
``kind`` (``"edgeq-profile"``) and ``schema_version`` (:data:`SCHEMA_VERSION`). Readers refuse
other kinds and versions with a one-line :class:`~edgeq.errors.DataError` instead of guessing.

Shape of the JSON (``schema_version`` 1, abridged)::

    {"kind": "edgeq-profile", "schema_version": 1, "edgeq_version": "0.1.0",
     "created": "2025-01-31T12:00:00Z",
     "model": {"name": "model_int8.tflite", "sha256": "…", "size_bytes": 3942808, "mode": "int8", …},
     "device": {"board": "Raspberry Pi 5 Model B Rev 1.0", "cpu_part": "Cortex-A76", …},
     "backend": {"name": "litert", "version": "2.3.0"},
     "settings": {"runs": null, "duration_s": null, "warmup": 5, "input": "random", …},
     "live_before": {"temperature_c": 48.3, …}, "live_after": {…},
     "results": [{"threads": 1, "load_ms": 9.5, "first_ms": 12.1, "runs": 200,
                  "latency": {"mean_ms": 7.7, "p50_ms": 7.6, "p90_ms": 8.0, "p99_ms": 9.1, "fps": 129.8, …},
                  "timings_ms": [7.61, 7.58, …], "memory": {…}, "ops": {…}}],
     "notes": []}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from edgeq.errors import DataError, UsageError

__all__ = [
    "SCHEMA_VERSION", "REPORT_KIND", "LatencyStats", "MemoryStats", "OpTiming", "OpProfile", "ThreadResult",
    "ModelInfo", "ProfileReport", "load_report", "report_from_timings", "CompareEntry", "CompareResult", "compare",
]

SCHEMA_VERSION = 1
REPORT_KIND = "edgeq-profile"
#: percentile definition used for every ``pNN_ms`` (numpy's default, linear interpolation)
PERCENTILE_METHOD = "linear"


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _ms(v: float) -> float:
    """Round a duration in milliseconds to 0.1 µs, which keeps reports small and loses nothing measurable."""
    return round(float(v), 4)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of steady-state inference times (milliseconds) over ``runs`` timed runs.

    Percentiles use numpy's linear interpolation; ``fps`` is ``1000 / mean_ms`` (inferences per second
    one after the other on one interpreter).
    """

    runs: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    fps: float

    @classmethod
    def from_timings(cls, timings_ms: Sequence[float]) -> LatencyStats:
        """Compute the summary of raw timings in milliseconds.

        Raises:
            DataError: ``timings_ms`` is empty or not finite.
        """
        a = np.asarray(timings_ms, dtype=np.float64)
        if a.size == 0 or not np.isfinite(a).all():
            raise DataError(f"latency statistics need at least one finite timing. Received: {a.size} values")
        p50, p90, p99 = np.percentile(a, [50, 90, 99], method=PERCENTILE_METHOD)
        mean = float(a.mean())
        return cls(
            runs=int(a.size), mean_ms=_ms(mean), std_ms=_ms(a.std()), min_ms=_ms(a.min()), p50_ms=_ms(p50),
            p90_ms=_ms(p90), p99_ms=_ms(p99), max_ms=_ms(a.max()), fps=round(1000.0 / mean, 3) if mean > 0 else math.inf,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencyStats:
        """Rebuild from :meth:`to_dict`; only ``fps`` may be ``null`` (infinite), times must be plausible.

        Raises:
            ValueError: a time is missing, not a number, negative or above ``MAX_MS``.
        """
        times = {k: _time_ms(d[k], f"latency.{k}") for k in cls.__dataclass_fields__ if k not in ("runs", "fps")}
        fps = math.inf if d["fps"] is None else float(d["fps"])
        if not fps >= 0:
            raise ValueError(f"latency.fps must be a non-negative number, got {d['fps']!r}")
        return cls(runs=int(d["runs"]), fps=fps, **times)


@dataclass(frozen=True)
class MemoryStats:
    """Resident memory of a fresh child process that loads the model and runs it.

    Args:
        method: how it was measured (``"child process, /proc/self/status VmRSS/VmHWM"``…).
        baseline_rss_bytes: RSS once Python, numpy and the backend are imported, before the model.
        load_rss_delta_bytes: RSS after loading the model and allocating tensors, minus the baseline.
        peak_rss_bytes: the child's peak RSS (high-water mark) while loading and running.
        peak_rss_delta_bytes: ``peak_rss_bytes`` minus the baseline: what the model costs at its peak.
        runs: inferences the child ran.
        peak_reset: whether the high-water mark was reset at the baseline (Linux ``clear_refs``); when
            false the peak may include the import phase and the delta is an upper bound.
    """

    method: str
    baseline_rss_bytes: int
    load_rss_delta_bytes: int
    peak_rss_bytes: int
    peak_rss_delta_bytes: int
    runs: int
    peak_reset: bool

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MemoryStats:
        return cls(
            method=str(d["method"]), baseline_rss_bytes=int(d["baseline_rss_bytes"]),
            load_rss_delta_bytes=int(d["load_rss_delta_bytes"]), peak_rss_bytes=int(d["peak_rss_bytes"]),
            peak_rss_delta_bytes=int(d["peak_rss_delta_bytes"]), runs=int(d["runs"]), peak_reset=bool(d["peak_reset"]),
        )


@dataclass(frozen=True)
class OpTiming:
    """One operator's time as a one-op model.

    Args:
        index: the operator's position in the model's execution order (subgraph 0).
        op: the op name (``CONV_2D``).
        dtype: the dtype of its first non-constant input (``int8``, ``float32``).
        output: the name of its first output tensor (usually names the layer).
        ms: median time of the one-op model minus the median per-invoke overhead (never below 0).
        min_ms: its fastest time minus the fastest per-invoke overhead (never below 0).
        delegated: whether a delegate (XNNPACK by default) took the one-op model; ``None``: unknown.
        subgraph: the subgraph the operator belongs to (0 is the main graph; others are control-flow bodies).
        not_timed: why the operator could not be timed alone (then ``ms`` and ``min_ms`` are 0); ``None`` if timed.
    """

    index: int
    op: str
    dtype: str
    output: str
    ms: float
    min_ms: float
    delegated: bool | None
    subgraph: int = 0
    not_timed: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpTiming:
        return cls(int(d["index"]), str(d["op"]), str(d["dtype"]), str(d["output"]), float(d["ms"]),
                   float(d["min_ms"]), None if d.get("delegated") is None else bool(d["delegated"]),
                   int(d.get("subgraph", 0)), None if d.get("not_timed") is None else str(d["not_timed"]))


@dataclass(frozen=True)
class OpProfile:
    """Per-operator times, and how well they add up to the whole model.

    Args:
        method: how the times were measured, in words (shown in the CLI and kept in the report).
        rounds: timed rounds; each round runs the whole model once and every one-op model once.
        whole_ms: median time of the whole model over the same rounds.
        sum_ms: the sum of ``ops[*].ms``.
        ratio: ``sum_ms / whole_ms``; 1.0 means the per-op times account exactly for the whole model.
        whole_min_ms: the whole model's fastest round.
        sum_min_ms: the sum of ``ops[*].min_ms``.
        ratio_min: ``sum_min_ms / whole_min_ms``. Minimums are what the CPU does without interference:
            other load on the CPU preempts the long whole-model run far more often than the short one-op
            runs, which lowers ``ratio`` on a busy machine but hardly moves ``ratio_min``.
        overhead_ms: the per-invoke overhead subtracted from each op (a trivial one-op model's median).
        delegate_partitions: delegate nodes in the whole model's graph (1 = one XNNPACK partition);
            ``None`` when the backend does not tell.
        ops: each operator, in execution order.
    """

    method: str
    rounds: int
    whole_ms: float
    sum_ms: float
    ratio: float
    whole_min_ms: float
    sum_min_ms: float
    ratio_min: float
    overhead_ms: float
    delegate_partitions: int | None
    ops: tuple[OpTiming, ...]

    def by_type(self) -> list[dict[str, Any]]:
        """Time per op type, largest first: ``[{"op", "count", "ms", "share"}]``."""
        agg: dict[str, list[float]] = {}
        for o in self.ops:
            agg.setdefault(o.op, []).append(o.ms)
        total = self.sum_ms or 1.0
        rows = [{"op": k, "count": len(v), "ms": _ms(sum(v)), "share": round(sum(v) / total, 4)} for k, v in agg.items()]
        return sorted(rows, key=lambda r: (-r["ms"], r["op"]))

    def top(self, k: int = 10) -> list[OpTiming]:
        """The ``k`` slowest operators."""
        return sorted(self.ops, key=lambda o: (-o.ms, o.index))[:k]

    def not_timed(self) -> list[OpTiming]:
        """The operators that could not be timed alone (each says why)."""
        return [o for o in self.ops if o.not_timed is not None]

    def not_delegated(self) -> dict[str, int]:
        """Op types (and counts) that no delegate took, so they ran on the interpreter's own kernels."""
        out: dict[str, int] = {}
        for o in self.ops:
            if o.delegated is False:
                out[o.op] = out.get(o.op, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "rounds": self.rounds, "whole_ms": self.whole_ms, "sum_ms": self.sum_ms,
            "ratio": self.ratio, "whole_min_ms": self.whole_min_ms, "sum_min_ms": self.sum_min_ms,
            "ratio_min": self.ratio_min, "overhead_ms": self.overhead_ms, "delegate_partitions": self.delegate_partitions,
            "ops": [o.to_dict() for o in self.ops],
            # derived, for readers that do not want to aggregate; ignored by from_dict
            "by_type": self.by_type(), "not_delegated": self.not_delegated(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OpProfile:
        return cls(
            method=str(d["method"]), rounds=int(d["rounds"]), whole_ms=float(d["whole_ms"]), sum_ms=float(d["sum_ms"]),
            ratio=float(d["ratio"]), whole_min_ms=float(d["whole_min_ms"]), sum_min_ms=float(d["sum_min_ms"]),
            ratio_min=float(d["ratio_min"]), overhead_ms=float(d["overhead_ms"]),
            delegate_partitions=_opt_int(d.get("delegate_partitions")),
            ops=tuple(OpTiming.from_dict(o) for o in d["ops"]),
        )


@dataclass(frozen=True)
class ThreadResult:
    """Everything measured at one thread count.

    Args:
        threads: interpreter threads.
        load_ms: reading the file, parsing it, creating the interpreter (delegates applied) and allocating tensors.
        first_ms: the first inference (includes one-time work such as weight packing and cache warm-up).
        warmup: untimed inferences after the first.
        latency: the summary of ``timings_ms``.
        timings_ms: every timed steady-state inference, in order.
        memory: RSS measured in a child process; ``None`` when not measured.
        ops: the per-op profile; ``None`` unless asked for.
        temperature_before_c: CPU temperature before this thread count's runs (``None``: not exposed).
        temperature_after_c: CPU temperature after them.
    """

    threads: int
    load_ms: float
    first_ms: float
    warmup: int
    latency: LatencyStats
    timings_ms: tuple[float, ...]
    memory: MemoryStats | None = None
    ops: OpProfile | None = None
    temperature_before_c: float | None = None
    temperature_after_c: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "threads": self.threads, "load_ms": self.load_ms, "first_ms": self.first_ms, "warmup": self.warmup,
            "latency": self.latency.to_dict(), "timings_ms": list(self.timings_ms),
            "memory": self.memory.to_dict() if self.memory else None, "ops": self.ops.to_dict() if self.ops else None,
            "temperature_before_c": self.temperature_before_c, "temperature_after_c": self.temperature_after_c,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ThreadResult:
        return cls(
            threads=int(d["threads"]), load_ms=float(d["load_ms"]), first_ms=float(d["first_ms"]),
            warmup=int(d["warmup"]), latency=LatencyStats.from_dict(d["latency"]),
            timings_ms=tuple(_time_ms(v, "timings_ms") for v in d["timings_ms"]),
            memory=MemoryStats.from_dict(d["memory"]) if d.get("memory") else None,
            ops=OpProfile.from_dict(d["ops"]) if d.get("ops") else None,
            temperature_before_c=_opt_float(d.get("temperature_before_c")),
            temperature_after_c=_opt_float(d.get("temperature_after_c")),
        )


@dataclass(frozen=True)
class ModelInfo:
    """The model that was profiled.

    Args:
        name: its file name (or ``"model bytes"``).
        sha256: SHA-256 of the file's bytes: two reports are of the same model exactly when these match.
        size_bytes: file size.
        mode: ``int8``, ``uint8``, ``int16x8``, ``dynamic``, ``float16``, ``float32``… (see ``mode_source``).
        mode_source: ``metadata`` (the edgeq recipe embedded in the model) or ``inferred`` (from tensor dtypes).
        inputs: each input as ``{"name", "shape", "dtype", "scale", "zero_point"}``.
        outputs: each output, the same way.
        op_counts: operators by op name.
        metadata: the model's embedded ``edgeq`` metadata, or ``None``.
    """

    name: str
    sha256: str
    size_bytes: int
    mode: str
    mode_source: str
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    op_counts: dict[str, int]
    metadata: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "sha256": self.sha256, "size_bytes": self.size_bytes, "mode": self.mode,
            "mode_source": self.mode_source, "inputs": [dict(i) for i in self.inputs],
            "outputs": [dict(o) for o in self.outputs], "op_counts": dict(self.op_counts), "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelInfo:
        return cls(
            name=str(d["name"]), sha256=str(d["sha256"]), size_bytes=int(d["size_bytes"]), mode=str(d["mode"]),
            mode_source=str(d["mode_source"]), inputs=tuple(dict(i) for i in d["inputs"]),
            outputs=tuple(dict(o) for o in d["outputs"]), op_counts={str(k): int(v) for k, v in d["op_counts"].items()},
            metadata=d.get("metadata"),
        )


@dataclass(frozen=True)
class ProfileReport:
    """What ``edgeq profile`` / :func:`edgeq.runtime.profile` measured on one device for one model.

    Args:
        model: the model.
        device: the device fingerprint (board, SoC, CPU, cores, features, OS, Python…; see the schema doc).
        backend: ``{"name", "version"}`` of the interpreter that ran the model.
        settings: what was asked: ``runs``, ``duration_s``, ``warmup``, ``input``, ``seed``, ``ops``, ``memory``.
        results: one :class:`ThreadResult` per thread count, in the order asked.
        live_before: the device's live state (temperature, clocks, governor, throttling) before measuring.
        live_after: the same after measuring.
        notes: warnings about the measurement (throttling seen, per-op unavailable, …).
        created: when the report was made, ISO 8601 UTC.
        edgeq_version: the edgeq that made it.
        host: the board it was measured on over SSH, as given to ``--host`` (``pi@pi4.local:2222``); ``None``
            (and absent from the JSON) when measured on this machine.
        schema_version: the report format version (:data:`SCHEMA_VERSION`).
    """

    model: ModelInfo
    device: dict[str, Any]
    backend: dict[str, str]
    settings: dict[str, Any]
    results: tuple[ThreadResult, ...]
    live_before: dict[str, Any] | None = None
    live_after: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()
    created: str = ""
    edgeq_version: str = ""
    schema_version: int = SCHEMA_VERSION
    kind: str = field(default=REPORT_KIND, repr=False)
    host: str | None = None

    def __post_init__(self) -> None:
        if self.kind != REPORT_KIND or self.schema_version != SCHEMA_VERSION:
            raise DataError(
                f"expected an {REPORT_KIND} report of schema_version {SCHEMA_VERSION}. Received: kind={self.kind!r}, "
                f"schema_version={self.schema_version!r}; re-run 'edgeq profile' with this edgeq to make one"
            )

    def result(self, threads: int) -> ThreadResult:
        """The result at ``threads`` threads.

        Raises:
            UsageError: that thread count was not measured.
        """
        for r in self.results:
            if r.threads == threads:
                return r
        raise UsageError(f"the report has no result for threads={threads}; it has {[r.threads for r in self.results]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "schema_version": self.schema_version, "edgeq_version": self.edgeq_version,
            "created": self.created, "model": self.model.to_dict(), "device": self.device, "backend": dict(self.backend),
            "settings": dict(self.settings), "live_before": self.live_before, "live_after": self.live_after,
            "results": [r.to_dict() for r in self.results], "notes": list(self.notes),
        } | ({"host": self.host} if self.host is not None else {})

    def to_json(self) -> bytes:
        """The report as UTF-8 JSON (indented, keys in schema order, non-finite numbers as ``null``)."""
        return (json.dumps(_finite(self.to_dict()), indent=1, allow_nan=False) + "\n").encode()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], name: str = "report") -> ProfileReport:
        """Rebuild a report from :meth:`to_dict` output.

        Raises:
            DataError: ``d`` is not an edgeq profile report of this schema version, or a field is missing or malformed.
        """
        if not isinstance(d, Mapping):
            raise DataError(f"{name} is not an edgeq profile report: expected a JSON object, got {type(d).__name__}")
        kind, version = d.get("kind"), d.get("schema_version")
        if kind != REPORT_KIND:
            raise DataError(f"{name} is not an edgeq profile report: expected kind {REPORT_KIND!r}, got {kind!r}")
        if version != SCHEMA_VERSION or type(version) is not int:
            raise DataError(
                f"{name} has report schema_version {version!r}, but this edgeq reads version {SCHEMA_VERSION}; "
                "re-run 'edgeq profile' with this edgeq, or use the edgeq that wrote it"
            )
        try:
            return cls(
                model=ModelInfo.from_dict(d["model"]), device=dict(d["device"] or {}), backend=dict(d["backend"]),
                settings=dict(d["settings"]), results=tuple(ThreadResult.from_dict(r) for r in d["results"]),
                live_before=d.get("live_before"), live_after=d.get("live_after"),
                notes=tuple(str(n) for n in d.get("notes") or ()), created=str(d.get("created", "")),
                edgeq_version=str(d.get("edgeq_version", "")), schema_version=int(version), kind=str(kind),
                host=None if d.get("host") is None else str(d["host"]),
            )
        except KeyError as exc:
            raise DataError(f"{name} is a malformed edgeq profile report: field {exc.args[0]!r} is missing") from None
        except (TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise DataError(f"{name} is a malformed edgeq profile report ({type(exc).__name__}: {exc})") from None


#: the longest time a report may hold (one day): larger values are corrupt and would break the charts
MAX_MS = 86_400_000.0


def _time_ms(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_MS:
        raise ValueError(f"{what} must be a number of milliseconds from 0 to {MAX_MS:.0f}, got {value!r}")
    return float(value)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def load_report(path: str | os.PathLike) -> ProfileReport:
    """Read a report file written by ``edgeq profile --json-out OUT`` (or ``ProfileReport.to_json``).

    Raises:
        DataError: the file is missing, not JSON, or not an edgeq profile report of this schema version.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"report file not found: {path}; check the path") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a folder; expected a report .json file written by 'edgeq profile --json'") from None
    except OSError as exc:
        raise DataError(f"cannot read report {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else exc
        raise DataError(
            f"{path} is not JSON ({reason}); expected a report written by 'edgeq profile --json-out FILE'"
        ) from None
    return ProfileReport.from_dict(data, name=str(path))


def report_from_timings(
    model: Any, timings_ms: Sequence[float], first_ms: float, settings: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
) -> ProfileReport:
    """A report of inference times measured outside :func:`~edgeq.runtime.profile`, e.g. by a camera app.

    ``edgeq compare`` reads it like a report of ``edgeq profile``: one result at the model's thread
    count, with no memory or per-op section.

    Args:
        model: the :class:`~edgeq.runtime.Model` that ran (its file, backend, threads and load time are recorded).
        timings_ms: steady-state inference times in milliseconds, in order, e.g.
            ``model.last_invoke_seconds * 1000`` after each ``predict``.
        first_ms: the first inference, kept apart because it includes one-time work.
        settings: entries to record under ``settings``, e.g. ``{"input": "camera 0"}``; ``threads``,
            ``runs``, ``warmup`` (0), ``memory`` and ``ops`` (false) are filled in.
        notes: how the times were taken, or other caveats.

    Raises:
        DataError: ``timings_ms`` is empty or not finite.
    """
    from datetime import datetime, timezone

    from edgeq._io import sha256_of
    from edgeq._version import __version__
    from edgeq.runtime.profile import _device, _infer_mode  # profile imports this module, so import it here

    latency = LatencyStats.from_timings(timings_ms)
    data = model._data  # noqa: SLF001 - the bytes the model was loaded from
    mode, source = _infer_mode(model)
    info = ModelInfo(
        name=Path(model.name).name if model.path is not None else model.name, sha256=sha256_of(data),
        size_bytes=len(data), mode=mode, mode_source=source, inputs=tuple(s.to_dict() for s in model.inputs),
        outputs=tuple(s.to_dict() for s in model.outputs), op_counts=model.file.op_counts(),
        metadata=model.metadata.to_dict() if model.metadata else None,
    )
    fingerprint, live = _device()
    result = ThreadResult(
        threads=model.threads, load_ms=round(model.load_seconds * 1000, 4), first_ms=round(float(first_ms), 4),
        warmup=0, latency=latency, timings_ms=tuple(round(float(v), 4) for v in timings_ms),
    )
    recorded = {"threads": [model.threads], "runs": latency.runs, "duration_s": None, "warmup": 0, "input": "",
                "seed": None, "ops": False, "ops_rounds": None, "memory": False, **dict(settings or {})}
    return ProfileReport(
        model=info, device=fingerprint, backend=model.backend.to_dict(), settings=recorded, results=(result,),
        live_after=live(), notes=tuple(notes),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        edgeq_version=__version__,
    )


# ------------------------------------------------------------------------------------------ compare
#: metrics of a comparison row: key -> (label, unit, True when lower is better)
COMPARE_METRICS: dict[str, tuple[str, str, bool]] = {
    "p50_ms": ("p50", "ms", True),
    "p99_ms": ("p99", "ms", True),
    "fps": ("FPS", "1/s", False),  # 1000 / p50: an outlier cannot halve it, as it would 1000 / mean
    "peak_rss_delta_bytes": ("memory", "bytes", True),
    "size_bytes": ("size", "bytes", True),
}


#: bootstrap resamples behind a p50 ratio's confidence interval
BOOTSTRAP_ROUNDS = 1000
#: the interval's coverage
CONFIDENCE = 0.95
#: below this relative difference of the p50s two entries are "the same" even when the interval excludes 1
PRACTICAL_DIFFERENCE = 0.02


def p50_ratio_interval(timings: Sequence[float], baseline: Sequence[float], seed: int = 0) -> tuple[float, float] | None:
    """A bootstrap confidence interval (:data:`CONFIDENCE`) of ``median(timings) / median(baseline)``.

    Each side's timings are resampled with replacement :data:`BOOTSTRAP_ROUNDS` times; the interval is the
    percentiles of the resampled ratios. ``None`` with fewer than 5 timings on either side (no noise estimate).
    """
    a, b = np.asarray(timings, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.size < 5 or b.size < 5:
        return None
    rng = np.random.default_rng(seed)
    ratios = (np.median(a[rng.integers(0, a.size, (BOOTSTRAP_ROUNDS, a.size))], axis=1)
              / np.median(b[rng.integers(0, b.size, (BOOTSTRAP_ROUNDS, b.size))], axis=1))
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    return round(float(lo), 4), round(float(hi), 4)


def verdict(ratio: float | None, interval: tuple[float, float] | None) -> str | None:
    """``faster``/``slower`` than the baseline when the whole interval is beyond the noise, else ``same``.

    ``None`` when there is nothing to judge (the baseline itself, or no timings). A difference counts only when
    the p50 ratio's interval excludes 1 and the ratio differs from 1 by more than :data:`PRACTICAL_DIFFERENCE`.
    """
    if ratio is None or interval is None:
        return None
    lo, hi = interval
    if hi < 1 and ratio < 1 - PRACTICAL_DIFFERENCE:
        return "faster"
    if lo > 1 and ratio > 1 + PRACTICAL_DIFFERENCE:
        return "slower"
    return "same"


@dataclass(frozen=True)
class CompareEntry:
    """One column of a comparison: one report at one thread count.

    ``ratios`` holds each metric divided by the baseline entry's (``None`` when either is unknown).
    ``p50_interval`` is the bootstrap interval of the p50 ratio and ``verdict`` what it says
    (``faster``, ``slower`` or ``same``; ``None`` for the baseline). ``name`` is the report's file name.
    """

    source: str
    device: str
    model: str
    mode: str
    threads: int
    backend: str
    metrics: dict[str, float | None]
    ratios: dict[str, float | None]
    timings_ms: tuple[float, ...]
    latency: LatencyStats
    host: str | None = None
    name: str = ""
    p50_interval: tuple[float, float] | None = None
    verdict: str | None = None

    @property
    def label(self) -> str:
        return f"{self.device} · {self.model} · {self.mode} · {self.threads} thr" + (f" · {self.name}" if self.name else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "name": self.name, "device": self.device, "model": self.model, "mode": self.mode,
            "threads": self.threads, "backend": self.backend, "metrics": dict(self.metrics),
            "ratios": dict(self.ratios), "p50_interval": list(self.p50_interval) if self.p50_interval else None,
            "verdict": self.verdict, "latency": self.latency.to_dict(), "host": self.host,
        }


@dataclass(frozen=True)
class CompareResult:
    """Reports side by side (devices × models × modes × threads), with ratios to a baseline entry.

    Args:
        entries: one per (report, thread count), in the order the reports were given.
        baseline: the index in ``entries`` of the baseline.
        notes: caveats (e.g. the same model hash on different backends).
    """

    entries: tuple[CompareEntry, ...]
    baseline: int
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "metrics": {k: {"label": v[0], "unit": v[1], "lower_is_better": v[2]}
                                                      for k, v in COMPARE_METRICS.items()},
                "entries": [e.to_dict() for e in self.entries], "notes": list(self.notes)}


def device_label(device: Mapping[str, Any]) -> str:
    """A short name for a device fingerprint: the board, else the CPU, else the architecture."""
    for key in ("board", "cpu_model", "cpu_part", "soc", "arch", "machine"):
        value = device.get(key)
        if value:
            return str(value)
    return "unknown device"


def compare(
    reports: Sequence[ProfileReport | str | os.PathLike], baseline: int = 0, threads: Sequence[int] | None = None
) -> CompareResult:
    """Put reports side by side: one entry per report and thread count.

    Args:
        reports: :class:`ProfileReport` objects or paths of report files.
        baseline: index (0-based) of the entry the ratios are taken against.
        threads: keep only these thread counts; default all.

    Returns:
        The :class:`CompareResult`.

    Raises:
        DataError: a report file is missing, not JSON, or of another schema version.
        UsageError: no reports, or ``baseline`` is not an entry.
    """
    if not reports:
        raise UsageError("compare needs at least one report; give report files written by 'edgeq profile --json-out FILE'")
    loaded = [r if isinstance(r, ProfileReport) else load_report(r) for r in reports]
    sources = [str(r) if not isinstance(r, ProfileReport) else r.host or r.model.name for r in reports]
    rows: list[tuple[str, ProfileReport, ThreadResult]] = []
    for src, rep in zip(sources, loaded):
        for res in rep.results:
            if threads is None or res.threads in threads:
                rows.append((src, rep, res))
    if not rows:
        raise UsageError(f"no results with threads in {list(threads or [])} in the reports given")
    if not 0 <= baseline < len(rows):
        raise UsageError(f"--baseline must be between 1 and {len(rows)} (the table's columns). Received: {baseline + 1}")

    def metrics(rep: ProfileReport, res: ThreadResult) -> dict[str, float | None]:
        return {
            "p50_ms": res.latency.p50_ms, "p99_ms": res.latency.p99_ms,
            "fps": round(1000.0 / res.latency.p50_ms, 3) if res.latency.p50_ms > 0 else None,
            "peak_rss_delta_bytes": float(res.memory.peak_rss_delta_bytes) if res.memory else None,
            "size_bytes": float(rep.model.size_bytes),
        }

    base = metrics(rows[baseline][1], rows[baseline][2])
    base_timings = rows[baseline][2].timings_ms
    entries = []
    for i, (src, rep, res) in enumerate(rows):
        m = metrics(rep, res)
        ratios = {k: (round(v / base[k], 4) if v is not None and base[k] else None) for k, v in m.items()}
        interval = None if i == baseline else p50_ratio_interval(res.timings_ms, base_timings, seed=i)
        entries.append(CompareEntry(
            source=src, device=f"{rep.host} · {device_label(rep.device)}" if rep.host else device_label(rep.device),
            model=rep.model.name, mode=rep.model.mode, threads=res.threads,
            backend=f"{rep.backend.get('name', '?')} {rep.backend.get('version', '')}".strip(), metrics=m,
            ratios=ratios, timings_ms=res.timings_ms, latency=res.latency, host=rep.host, name=Path(src).name,
            p50_interval=interval, verdict=verdict(ratios["p50_ms"], interval),
        ))
    notes = []
    hashes: dict[str, set[str]] = {}
    for rep in loaded:
        hashes.setdefault(rep.model.sha256, set()).add(rep.model.name)
    renamed = [sorted(names) for names in hashes.values() if len(names) > 1]
    for names in renamed:
        notes.append(f"{' and '.join(names)} are the same file (same sha256)")
    throttled = [src for src, rep in zip(sources, loaded) if any("throttl" in n for n in rep.notes)]
    if throttled:
        notes.append(f"throttling was seen while measuring {', '.join(throttled)}; its times may be pessimistic")
    return CompareResult(tuple(entries), baseline, tuple(notes))
