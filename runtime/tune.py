"""Measure a folder of candidate models on this device and pick the best one under constraints.

The on-device half of ``edgeq tune``: TensorFlow-free, it needs only the base install. For every
candidate ``.tflite`` file (as :func:`edgeq.converters.tune.build_candidates` writes them) and every
thread count it measures:

* accuracy on labelled data: top-1, and top-1 agreement with the ``float32`` candidate (the reference);
* latency: p50/p90 of single inferences, with the candidates run round-robin (one inference of each
  in turn) so that a clock or temperature change affects them all alike;
* peak memory: the RSS a fresh child process gains by loading and running the model
  (:func:`edgeq.runtime.profile_memory.measure_memory`);
* file size.

Results are cached in ``tune-cache.json`` in the candidates folder, keyed by the file's SHA-256 and the
measurement options, so a rerun only measures what changed. :func:`pick` then marks the Pareto front
(higher accuracy, lower p50 latency, smaller file) and chooses the candidate the objective prefers among
those that meet the constraints.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeq._io import atomic_write, sha256_file
from edgeq._progress import step
from edgeq.errors import CheckFailed, DataError, ModelError, UsageError

log = logging.getLogger(__name__)

#: the file in a candidates folder that caches measurements
CACHE_FILE = "tune-cache.json"
#: bump when what is measured changes, so old cache entries are ignored
CACHE_VERSION = 1
#: the candidate accuracy is compared with
REFERENCE_MODE = "float32"
PREFER = ("latency", "size", "accuracy")
#: the order candidates are listed in (by mode; others after them, by name)
MODE_ORDER = ("float32", "float16", "dynamic", "int8", "uint8", "int16x8", "int8-weights", "int4-weights")
#: candidates listed when nothing meets the constraints
NEAREST = 3


@dataclass(frozen=True)
class Candidate:
    """One candidate model file.

    Attributes:
        name: the file's stem (``int8``, ``int8-keep1``…), unique in its folder.
        path: the ``.tflite`` file.
        mode: the quantization mode from its embedded ``edgeq`` metadata (``unknown`` without it).
        keep_float: the layers its recipe kept in float.
        size_bytes: the file size.
        sha256: the file's hash (the cache key).
    """

    name: str
    path: Path
    mode: str
    keep_float: tuple[str, ...]
    size_bytes: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "mode": self.mode, "keep_float": list(self.keep_float),
                "size_bytes": self.size_bytes, "sha256": self.sha256}


@dataclass(frozen=True)
class Constraints:
    """What the pick must satisfy (``None`` = no limit).

    Attributes:
        max_drop: top-1 points below the ``float32`` candidate.
        max_latency_ms: p50 latency in milliseconds.
        max_size_kb: file size in KiB.
        max_memory_mb: peak memory (RSS increase) in MiB.
    """

    max_drop: float | None = None
    max_latency_ms: float | None = None
    max_size_kb: float | None = None
    max_memory_mb: float | None = None

    def __post_init__(self) -> None:
        for name, value in dataclasses.asdict(self).items():
            if value is not None and not (math.isfinite(value) and value >= 0):
                flag = "--" + name.replace("_", "-")
                raise UsageError(f"{flag} must be a number of at least 0. Received: {value}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Row:
    """One candidate at one thread count, measured.

    Attributes:
        candidate: the model file.
        threads: interpreter threads.
        top1: top-1 accuracy on the labelled data (0..1).
        agreement: share of samples with the same top-1 class as the reference (``None`` without one).
        drop_points: reference top-1 minus this top-1, in points (``None`` without a reference).
        p50_ms, p90_ms: latency percentiles of single inferences.
        memory_mb: peak RSS increase of a fresh process loading and running it (``None`` if not measured).
        on_front: on the Pareto front of accuracy, p50 latency and size.
        violations: the constraints it breaks, in words (empty = it meets them all).
    """

    candidate: Candidate
    threads: int
    top1: float
    agreement: float | None
    drop_points: float | None
    p50_ms: float
    p90_ms: float
    memory_mb: float | None
    on_front: bool = False
    violations: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.candidate.name} ×{self.threads}"

    @property
    def size_kb(self) -> float:
        return self.candidate.size_bytes / 1024

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate.name, "mode": self.candidate.mode,
                "keep_float": list(self.candidate.keep_float), "sha256": self.candidate.sha256,
                "threads": self.threads, "top1": self.top1, "agreement": self.agreement,
                "drop_points": self.drop_points, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms,
                "memory_mb": self.memory_mb, "size_kb": self.size_kb, "on_front": self.on_front,
                "violations": list(self.violations)}


@dataclass
class TuneResult:
    """What :func:`tune_folder` (or :func:`merge`) measured and picked.

    Attributes:
        rows: every candidate × thread count, in measurement order.
        pick: the chosen row, or ``None`` when no row meets the constraints.
        why: the reason for the pick, or what is missing, in words.
        nearest: the rows closest to meeting the constraints (only when nothing meets them).
        constraints, prefer: what was asked.
        reference: the reference candidate's name (``None`` without a ``float32`` candidate).
        devices: the device fingerprint(s) the rows were measured on.
        samples: labelled samples evaluated.
        runs: timed inferences per row.
        cached: rows taken from the cache.
        seconds: wall time.
    """

    rows: list[Row]
    pick: Row | None
    why: str
    nearest: list[Row]
    constraints: Constraints
    prefer: str
    reference: str | None
    devices: list[dict[str, Any]]
    samples: int
    runs: int
    cached: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows],
                "candidates": {r.candidate.name: r.candidate.to_dict() for r in self.rows},
                "pick": self.pick.to_dict() if self.pick else None, "why": self.why,
                "nearest": [r.to_dict() for r in self.nearest], "constraints": self.constraints.to_dict(),
                "prefer": self.prefer, "reference": self.reference, "devices": self.devices,
                "samples": self.samples, "runs": self.runs, "cached": self.cached, "seconds": self.seconds,
                "notes": list(self.notes)}


# ----------------------------------------------------------------------------------- candidates
def discover(folder: str | os.PathLike) -> list[Candidate]:
    """The ``.tflite`` files in ``folder``, read with their embedded recipe, float32 first (see ``MODE_ORDER``).

    Raises:
        UsageError: the folder is missing or holds no ``.tflite`` file.
        ModelError: a file is not a valid TFLite model.
    """
    from edgeq._flatbuffer import parse
    from edgeq.metadata import METADATA_NAME, ModelMetadata

    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"candidates folder not found: {root}; make one with 'edgeq tune MODEL --candidates {root}'")
    files = sorted(root.glob("*.tflite"))
    if not files:
        raise UsageError(f"{root} holds no .tflite files; make candidates with 'edgeq tune MODEL --candidates {root}'")
    found = []
    for path in files:
        data = path.read_bytes()
        raw = parse(data, path.name).metadata.get(METADATA_NAME)
        meta = ModelMetadata.from_json(raw, path.name) if raw else None
        mode = meta.quant.mode if meta is not None else "unknown"
        keep = tuple(meta.quant.keep_float) if meta is not None else ()
        found.append(Candidate(path.stem, path, mode, keep, len(data), sha256_file(path)))
    rank = {mode: i for i, mode in enumerate(MODE_ORDER)}
    return sorted(found, key=lambda c: (rank.get(c.mode, len(rank)), len(c.keep_float), c.name))


def reference_of(candidates: Sequence[Candidate]) -> Candidate | None:
    """The ``float32`` candidate without layers kept in float: the accuracy reference."""
    return next((c for c in candidates if c.mode == REFERENCE_MODE and not c.keep_float), None)


# ------------------------------------------------------------------------------------ measuring
def _predictions(path: Path, data: Any, limit: int | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(predicted classes, true labels, data source)`` of one model on the labelled data."""
    from edgeq.runtime.evaluate import _first_output, model_preprocess, read_labelled
    from edgeq.runtime.model import Model

    model = Model(path)  # the device's recommended threads: the classes predicted do not depend on them
    out_shape = model.outputs[0].shape
    if len(model.outputs) != 1 or len(out_shape) != 2 or out_shape[1] < 2:
        raise ModelError(f"{path.name} is not a classifier: tune needs one output of shape (1, classes); it has "
                         f"{[list(s.shape) for s in model.outputs]}")
    labelled = read_labelled(data, model.labels, int(out_shape[1]))
    if limit is not None and len(labelled.items) > limit:
        keep = np.linspace(0, len(labelled.items) - 1, limit).round().astype(int)
        labelled = dataclasses.replace(labelled, items=tuple(labelled.items[i] for i in keep), labels=labelled.labels[keep])
    pp = model_preprocess(model)
    with step(f"Evaluating {path.stem}", len(labelled.items)) as advance:
        predicted = []
        for x in labelled.arrays(pp):
            predicted.append(int(np.argmax(_first_output(model.predict, x))))
            advance(1)
    return np.asarray(predicted), np.asarray(labelled.labels), labelled.source


def _latencies(candidates: Sequence[Candidate], threads: Sequence[int], runs: int, warmup: int) -> dict[tuple[str, int], list[float]]:
    """Timed single inferences of every (candidate, threads), run round-robin."""
    from edgeq._native import quiet_native_output
    from edgeq.runtime.model import Model
    from edgeq.runtime.profile import _Runner
    from edgeq.runtime.sources import random_input

    runners: dict[tuple[str, int], Any] = {}
    with quiet_native_output():
        for c in candidates:
            for t in threads:
                model = Model(c.path, threads=t)
                runners[(c.name, t)] = _Runner(model, random_input(model.inputs, 0))
    timings: dict[tuple[str, int], list[float]] = {key: [] for key in runners}
    with step("Timing (round-robin)", runs) as advance:
        for runner in runners.values():
            runner.first()
            for _ in range(warmup):
                runner.once()
        for _ in range(runs):
            for key, runner in runners.items():
                timings[key].append(runner.once())
            advance(1)
    return timings


def _data_key(data: str | os.PathLike, limit: int | None) -> str:
    path = Path(data)
    if not path.exists():
        raise DataError(f"labelled data not found: {path}")
    return f"{sha256_file(path)}:{limit}"


def _read_cache(folder: Path) -> dict[str, Any]:
    try:
        cache = json.loads((folder / CACHE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache.get("entries", {}) if isinstance(cache, dict) and cache.get("version") == CACHE_VERSION else {}


def _write_cache(folder: Path, entries: dict[str, Any]) -> None:
    if not os.access(folder, os.W_OK):
        log.info("%s is not writable: measurements not cached", folder)
        return
    body = json.dumps({"version": CACHE_VERSION, "entries": entries}, indent=1).encode()
    atomic_write(folder / CACHE_FILE, body, force=True)


def _device() -> dict[str, Any]:
    from edgeq.runtime.profile import _device as fingerprint

    return fingerprint()[0]


def check_options(threads: Sequence[int] | None, runs: int, warmup: int, limit: int | None) -> list[int]:
    """Validate the measuring options; returns the thread counts (default ``1..min(cores, 4)``).

    Raises:
        UsageError: a count out of range.
    """
    if runs < 1 or warmup < 0:
        raise UsageError(f"--runs must be at least 1 and --warmup at least 0. Received: runs={runs}, warmup={warmup}")
    if limit is not None and limit < 1:
        raise UsageError(f"--eval-samples must be at least 1. Received: {limit}")
    counts = sorted(set(threads or range(1, min(os.cpu_count() or 1, 4) + 1)))
    if not counts or counts[0] < 1:
        raise UsageError(f"thread counts must be positive integers. Received: {list(threads or [])}")
    return counts


def measure(
    folder: str | os.PathLike,
    eval_data: str | os.PathLike,
    threads: Sequence[int] | None = None,
    runs: int = 30,
    warmup: int = 3,
    memory: bool = True,
    limit: int | None = None,
) -> tuple[list[Row], Candidate | None, dict[str, Any]]:
    """Measure every candidate in ``folder`` at every thread count (cached in the folder).

    Args:
        folder: a candidates folder (``.tflite`` files with embedded ``edgeq`` metadata).
        eval_data: labelled data: class sub-folders, a labels CSV or a ``.npz`` with ``x`` and ``y``.
        threads: thread counts; default ``1..min(cores, 4)``.
        runs: timed inferences per candidate and thread count.
        warmup: untimed inferences before timing.
        memory: measure peak memory in a child process per candidate and thread count.
        limit: evaluate at most this many labelled samples (evenly spaced); ``None`` = all.

    Returns:
        ``(rows, reference candidate or None, {"device", "samples", "cached"})``.

    Raises:
        UsageError, ModelError, DataError: bad folder, options or data.
    """
    threads = check_options(threads, runs, warmup, limit)
    root = Path(folder)
    candidates = discover(root)
    reference = reference_of(candidates)
    data_key = _data_key(eval_data, limit)
    device = _device()
    cache = _read_cache(root)
    cached = 0

    # accuracy: once per file (threads do not change the classes predicted)
    predicted: dict[str, np.ndarray] = {}
    labels = np.zeros(0)
    for c in candidates:
        key = f"acc:{c.sha256}:{data_key}"
        if key in cache:
            predicted[c.name], labels = np.asarray(cache[key]["predicted"]), np.asarray(cache[key]["labels"])
            continue
        predicted[c.name], labels, _ = _predictions(c.path, eval_data, limit)
        cache[key] = {"predicted": predicted[c.name].tolist(), "labels": labels.tolist()}
        _write_cache(root, cache)  # each finished step survives an interruption

    # latency: every (file, threads) not cached, interleaved
    def lat_key(c: Candidate, t: int) -> str:
        return f"lat:{c.sha256}:{t}:{runs}:{warmup}:{device.get('cpu_part')}:{device.get('cores')}"

    todo = [c for c in candidates if any(lat_key(c, t) not in cache for t in threads)]
    if todo:
        for (name, t), ms in _latencies(todo, threads, runs, warmup).items():
            c = next(x for x in todo if x.name == name)
            cache[lat_key(c, t)] = {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90))}
        _write_cache(root, cache)

    mem: dict[tuple[str, int], float | None] = {}
    if memory:
        from edgeq.runtime.profile_memory import measure_memory

        with step("Measuring memory", len(candidates) * len(threads)) as advance:
            for c in candidates:
                for t in threads:
                    key = f"mem:{c.sha256}:{t}:{device.get('cpu_part')}:{device.get('cores')}"
                    if key not in cache:
                        stats = measure_memory(c.path, t, None, runs=3)
                        cache[key] = {"memory_mb": stats.peak_rss_delta_bytes / 2**20}
                        _write_cache(root, cache)
                    mem[(c.name, t)] = cache[key]["memory_mb"]
                    advance(1)

    rows = []
    ref_pred = predicted.get(reference.name) if reference is not None else None
    for c in candidates:
        top1 = float(np.mean(predicted[c.name] == labels))
        agreement = float(np.mean(predicted[c.name] == ref_pred)) if ref_pred is not None else None
        drop = (float(np.mean(ref_pred == labels)) - top1) * 100 if ref_pred is not None else None
        for t in threads:
            lat = cache[lat_key(c, t)]
            cached += int(c not in todo)
            rows.append(Row(c, t, top1, agreement, drop, lat["p50_ms"], lat["p90_ms"], mem.get((c.name, t))))
    return rows, reference, {"device": device, "samples": int(len(labels)), "cached": cached}


# -------------------------------------------------------------------------------------- picking
def _dominates(a: Row, b: Row) -> bool:
    ge = a.top1 >= b.top1 and a.p50_ms <= b.p50_ms and a.size_kb <= b.size_kb
    gt = a.top1 > b.top1 or a.p50_ms < b.p50_ms or a.size_kb < b.size_kb
    return ge and gt


def mark_front(rows: Sequence[Row]) -> None:
    """Set ``on_front`` on the rows no other row beats in accuracy, p50 latency and size at once."""
    for row in rows:
        row.on_front = not any(_dominates(other, row) for other in rows if other is not row)


def _violations(row: Row, limits: Constraints) -> list[str]:
    out = []
    if limits.max_drop is not None and row.drop_points is not None and row.drop_points > limits.max_drop:
        out.append(f"drop {row.drop_points:.1f} pts > {limits.max_drop:g}")
    if limits.max_latency_ms is not None and row.p50_ms > limits.max_latency_ms:
        out.append(f"p50 {row.p50_ms:.3g} ms > {limits.max_latency_ms:g}")
    if limits.max_size_kb is not None and row.size_kb > limits.max_size_kb:
        out.append(f"size {row.size_kb:.0f} KB > {limits.max_size_kb:g}")
    if limits.max_memory_mb is not None and row.memory_mb is not None and row.memory_mb > limits.max_memory_mb:
        out.append(f"memory {row.memory_mb:.1f} MB > {limits.max_memory_mb:g}")
    return out


def _shortfall(row: Row, limits: Constraints) -> float:
    """How far a row is from meeting the constraints: the sum of each excess relative to its limit."""
    pairs = [(row.drop_points, limits.max_drop), (row.p50_ms, limits.max_latency_ms),
             (row.size_kb, limits.max_size_kb), (row.memory_mb, limits.max_memory_mb)]
    return sum(max(0.0, value - limit) / max(limit, 1e-9) for value, limit in pairs
               if value is not None and limit is not None)


def _order(prefer: str):  # type: ignore[no-untyped-def]
    if prefer == "latency":
        return lambda r: (r.p50_ms, -r.top1, r.size_kb)
    if prefer == "size":
        return lambda r: (r.size_kb, -r.top1, r.p50_ms)
    return lambda r: (-r.top1, r.p50_ms, r.size_kb)


def pick(rows: list[Row], constraints: Constraints, prefer: str = "latency",
         reference: str | None = None) -> tuple[Row | None, str, list[Row]]:
    """Mark the Pareto front and the violations of every row, and choose one.

    The pick meets every constraint and is the best by ``prefer`` (ties: accuracy, then latency, then
    size) among the rows on the Pareto front that meet them.

    Returns:
        ``(pick or None, why, nearest rows when nothing meets the constraints)``.

    Raises:
        UsageError: unknown ``prefer``, or ``max_drop`` without a ``float32`` reference.
    """
    if prefer not in PREFER:
        raise UsageError(f"--prefer must be one of {', '.join(PREFER)}. Received: {prefer!r}")
    if constraints.max_drop is not None and reference is None:
        raise UsageError("--max-drop is measured against the float32 candidate, and there is none; "
                         "rebuild the candidates with float32 included")
    mark_front(rows)
    for row in rows:
        row.violations = _violations(row, constraints)
    feasible = [r for r in rows if not r.violations]
    asked = [f"--{k.replace('_', '-')} {v:g}" for k, v in constraints.to_dict().items() if v is not None]
    if not feasible:
        nearest = sorted(rows, key=lambda r: (_shortfall(r, constraints), _order(prefer)(r)))[:NEAREST]
        return None, f"no candidate meets {' '.join(asked)}", nearest
    best = sorted([r for r in feasible if r.on_front] or feasible, key=_order(prefer))[0]
    what = {"latency": f"the fastest (p50 {best.p50_ms:.3g} ms)", "size": f"the smallest ({best.size_kb:.0f} KB)",
            "accuracy": f"the most accurate (top-1 {best.top1:.1%})"}[prefer]
    scope = f"of the {len(feasible)} of {len(rows)} that meet {' '.join(asked)}" if asked else f"of all {len(rows)}"
    why = f"{best.label} is {what} {scope}"
    if best.drop_points is not None:
        why += f"; drop {best.drop_points:+.1f} pts vs {reference}"
    why += "; on the Pareto front" if best.on_front else "; off the front (a dominating row breaks --max-memory-mb)"
    return best, why, []


def tune_folder(
    folder: str | os.PathLike,
    eval_data: str | os.PathLike,
    constraints: Constraints = Constraints(),
    prefer: str = "latency",
    threads: Sequence[int] | None = None,
    runs: int = 30,
    warmup: int = 3,
    memory: bool = True,
    limit: int | None = None,
) -> TuneResult:
    """Measure a candidates folder on this device and pick the best candidate (see :func:`measure`, :func:`pick`).

    Raises:
        UsageError, ModelError, DataError: bad folder, options or data.
    """
    started = time.perf_counter()
    if prefer not in PREFER:
        raise UsageError(f"--prefer must be one of {', '.join(PREFER)}. Received: {prefer!r}")
    rows, reference, info = measure(folder, eval_data, threads, runs, warmup, memory, limit)
    ref_name = reference.name if reference is not None else None
    chosen, why, nearest = pick(rows, constraints, prefer, ref_name)
    notes = [] if reference is not None else ["no float32 candidate: accuracy drop and agreement are not reported"]
    return TuneResult(rows, chosen, why, nearest, constraints, prefer, ref_name, [info["device"]], info["samples"],
                      runs, info["cached"], time.perf_counter() - started, notes)


def _read_report(path: str | os.PathLike) -> dict[str, Any]:
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot read the tune report {path}: {exc}; give files written by 'edgeq tune … --json'") from None
    if not isinstance(report, dict) or not isinstance(report.get("rows"), list) or not isinstance(report.get("candidates"), dict):
        raise DataError(f"{path} is not an 'edgeq tune --json' report (no rows/candidates)")
    return report


def merge_reports(
    paths: Sequence[str | os.PathLike],
    constraints: Constraints = Constraints(),
    prefer: str = "latency",
) -> TuneResult:
    """Pick one candidate for a fleet from the ``--json`` reports of several devices.

    Each candidate × threads row keeps its worst case over the devices: the lowest top-1 and agreement,
    the largest drop, latency and memory. Rows missing from a report (a candidate or thread count a
    device did not measure) are left out.

    Raises:
        UsageError: fewer than two reports.
        DataError: a report is unreadable or not a tune report.
    """
    if len(paths) < 2:
        raise UsageError(f"--merge takes at least two reports. Received: {len(paths)}")
    reports = [_read_report(p) for p in paths]
    try:
        keyed = [{(r["sha256"], int(r["threads"])): r for r in rep["rows"]} for rep in reports]
        common = [k for k in keyed[0] if all(k in other for other in keyed[1:])]
        rows = []
        for sha, threads in common:
            seen = [k[(sha, threads)] for k in keyed]
            first = seen[0]
            info = reports[0]["candidates"][first["candidate"]]
            cand = Candidate(first["candidate"], Path(info["path"]), info["mode"], tuple(info["keep_float"]),
                             int(info["size_bytes"]), sha)

            def worst(key: str, fn: Any) -> Any:
                values = [r[key] for r in seen if r[key] is not None]
                return fn(values) if values else None

            rows.append(Row(cand, threads, worst("top1", min), worst("agreement", min), worst("drop_points", max),
                            worst("p50_ms", max), worst("p90_ms", max), worst("memory_mb", max)))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"a --merge report lacks a field ({exc}); give files written by 'edgeq tune … --json'") from None
    if not rows:
        raise DataError("the reports share no candidate × threads row; measure the same candidates folder on each device")
    dropped = max(len(k) for k in keyed) - len(rows)
    reference = reports[0].get("reference")
    chosen, why, nearest = pick(rows, constraints, prefer, reference)
    notes = [f"{dropped} rows were not measured on every device and are left out"] if dropped else []
    devices = [d for rep in reports for d in rep.get("devices", [])]
    return TuneResult(rows, chosen, why + f" (worst case over {len(reports)} devices)" if chosen else why, nearest,
                      constraints, prefer, reference, devices, min(int(r.get("samples", 0)) for r in reports),
                      min(int(r.get("runs", 0)) for r in reports), notes=notes)


def install_pick(result: TuneResult, out: str | os.PathLike, force: bool = False) -> Path:
    """Copy the picked candidate to ``out`` atomically.

    Raises:
        CheckFailed: nothing was picked.
    """
    if result.pick is None:
        raise CheckFailed(f"{result.why}; nothing written")
    return atomic_write(out, result.pick.candidate.path.read_bytes(), force=force)
