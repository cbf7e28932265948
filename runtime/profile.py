"""`profile`: measure a model on the device it runs on (what ``edgeq profile`` calls).

For each thread count asked it measures, through the same backend the runtime uses:

* model load + interpreter init (delegates applied, tensors allocated) and the first inference;
* steady-state latency over timed runs after a warm-up: mean, std, min, p50, p90, p99, max and
  inferences per second, with every raw timing kept;
* memory, in a fresh child process (:mod:`edgeq.runtime.profile_memory`): RSS increase from loading
  the model and peak RSS while running it;
* optionally, per-operator times (:mod:`edgeq.runtime.profile_ops`);

and records the device fingerprint (:func:`edgeq.devices.current`) and its live state (temperature,
clocks, governor, throttling) before and after. Nothing on the system is changed: the CPU governor,
clocks and affinity are only read.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgeq._io import read_model_bytes, sha256_of
from edgeq._progress import step
from edgeq._version import __version__
from edgeq.errors import DataError, DeviceError, InferenceError, UsageError
from edgeq.runtime.report import LatencyStats, ModelInfo, ProfileReport, ThreadResult

__all__ = ["profile", "ProfileReport", "default_threads", "AUTO_BUDGET_S", "AUTO_MIN_RUNS", "AUTO_MAX_RUNS"]

log = logging.getLogger(__name__)

#: with neither ``runs`` nor ``duration``: time at least AUTO_MIN_RUNS runs, then stop after
#: AUTO_BUDGET_S seconds or AUTO_MAX_RUNS runs, whichever comes first
AUTO_MIN_RUNS = 10
AUTO_MAX_RUNS = 1000
AUTO_BUDGET_S = 5.0
#: ``duration`` mode stops at this many runs even if time is left (keeps the report's raw timings bounded)
MAX_RUNS = 100_000
#: inferences the memory child runs after loading
MEMORY_RUNS = 10


def default_threads() -> list[int]:
    """``[1, recommended]``: one thread and the device's recommended count (deduplicated)."""
    recommended = _device()[0].get("recommended_threads") or os.cpu_count() or 1
    return sorted({1, max(1, int(recommended))})


def _device() -> tuple[dict[str, Any], Callable[[], dict[str, Any] | None]]:
    """The device fingerprint and a reader of its live state, from :mod:`edgeq.devices` when it imports."""
    try:
        from edgeq.devices import current

        device = current()
        fingerprint = {k: v for k, v in device.to_dict().items() if k != "camera"}
        fingerprint["source"] = "edgeq.devices"

        def live() -> dict[str, Any] | None:
            try:
                return device.live().to_dict()
            except Exception as exc:  # noqa: BLE001 - live state is informative only
                log.debug("cannot read the live state: %s", exc)
                return None

        return fingerprint, live
    except Exception as exc:  # noqa: BLE001 - detection must never stop a measurement
        log.debug("edgeq.devices unavailable (%s); using a minimal fingerprint", exc)
    uname = platform.uname()
    fingerprint = {
        "board": None, "cpu_part": platform.processor() or None, "arch": uname.machine, "cores": os.cpu_count(),
        "os": {"name": uname.system, "release": uname.release}, "python": platform.python_version(),
        "recommended_threads": os.cpu_count() or 1, "source": "platform",
    }
    return fingerprint, lambda: None


def _infer_mode(model: Any) -> tuple[str, str]:
    """``(mode, source)``: the edgeq recipe's mode, else a guess from the tensor dtypes."""
    if model.metadata is not None:
        return model.metadata.quant.mode, "metadata"
    graph = model.file.subgraphs[0]
    sizes = model.file.buffer_sizes
    const = {t.index for t in graph.tensors if t.buffer and sizes[t.buffer]}
    acts: dict[str, int] = {}
    weights: dict[str, int] = {}
    for op in graph.operators:
        for i in op.outputs:
            if i >= 0:
                acts[graph.tensors[i].dtype] = acts.get(graph.tensors[i].dtype, 0) + 1
        for i in op.inputs:
            if i >= 0 and i in const:
                weights[graph.tensors[i].dtype] = weights.get(graph.tensors[i].dtype, 0) + 1
    act = max(acts, key=acts.get) if acts else "FLOAT32"
    if act == "INT16" and "INT8" in weights:
        return "int16x8", "inferred"
    if act in ("INT8", "UINT8"):
        return act.lower(), "inferred"
    if act == "FLOAT32":
        if "INT8" in weights or "INT4" in weights:
            return "dynamic", "inferred"
        if "FLOAT16" in weights:
            return "float16", "inferred"
        return "float32", "inferred"
    return act.lower(), "inferred"


def _prepare_input(model: Any, value: Any, seed: int,
                   input_shape: Sequence[Sequence[int]] | None = None) -> tuple[list[np.ndarray], str]:
    from edgeq.runtime.sources import random_input

    if value is None:
        if input_shape is None:
            if model.dynamic:
                dynamic = ", ".join(f"{s.name} {list(s.shape_signature)}" for s in model.inputs)
                raise UsageError(f"{model.name} has inputs of dynamic size ({dynamic}); give the size to profile "
                                 "with --input-shape (e.g. --input-shape 1,16000, once per input) or feed a file "
                                 "with --input")
            return random_input(model.inputs, seed), f"random (seed {seed})"
        _check_shapes(model, input_shape)
        shapes = "; ".join(",".join(map(str, shape)) for shape in input_shape)
        return random_input(model.inputs, seed, input_shape), f"random {shapes} (seed {seed})"
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        if not path.is_file():
            raise DataError(f"--input {path} not found; give an image or a .npy array file")
        if path.suffix.lower() == ".npy":
            from edgeq._io import load_npy

            value = load_npy(path)
        return model.prepare(value), path.name
    return model.prepare(value), f"{type(value).__name__}"


def _check_shapes(model: Any, shapes: Sequence[Sequence[int]]) -> None:
    """``--input-shape`` values: one per input, each matching the input's shape signature."""
    if len(shapes) != len(model.inputs):
        raise UsageError(f"{model.name} has {len(model.inputs)} inputs; give --input-shape once per input "
                         f"(got {len(shapes)})")
    for spec, shape in zip(model.inputs, shapes):
        sig = spec.shape_signature
        if len(shape) != len(sig) or any(d < 1 or want not in (-1, d) for want, d in zip(sig, shape)):
            raise UsageError(f"input {spec.name!r} has the shape signature {list(sig)} (-1: any size); "
                             f"--input-shape {','.join(map(str, shape))} does not fit it")


class _Runner:
    """Feeds prepared inputs and times one inference at a time."""

    def __init__(self, model: Any, arrays: list[np.ndarray]) -> None:
        self.model = model
        self.arrays = arrays
        self.feed: Any = arrays[0] if len(arrays) == 1 else arrays  # predict() takes one array for one input
        f = model.file
        self.direct = len(f.subgraphs) == 1 and len(f.signatures) <= 1
        self.timer = time.perf_counter_ns

    def first(self) -> float:
        """Run once through ``Model.predict`` (which resizes inputs if needed); milliseconds."""
        started = self.timer()
        self.model.predict(self.feed, raw=True)
        return (self.timer() - started) / 1e6

    def once(self) -> float:
        """One inference in milliseconds: ``invoke()`` alone when possible (inputs set before the clock starts)."""
        if self.direct:
            interp = self.model.interpreter
            for spec, array in zip(self.model.inputs, self.arrays):
                interp.set_tensor(spec.index, array)
            started = self.timer()
            try:
                interp.invoke()
            except (ValueError, RuntimeError) as exc:
                raise InferenceError(f"{self.model.name} failed to run on {self.model.backend.name}: {exc}") from exc
            return (self.timer() - started) / 1e6
        started = self.timer()
        self.model.predict(self.feed, raw=True)
        return (self.timer() - started) / 1e6


def _timed_runs(runner: _Runner, runs: int | None, duration: float | None, desc: str) -> list[float]:
    timings: list[float] = []
    if runs is not None:
        with step(desc, runs) as advance:
            for _ in range(runs):
                timings.append(runner.once())
                advance(1)
        return timings
    budget = duration if duration is not None else AUTO_BUDGET_S
    low, high = (1, MAX_RUNS) if duration is not None else (AUTO_MIN_RUNS, AUTO_MAX_RUNS)
    ticks = max(1, int(budget * 10))
    with step(f"{desc} ({budget:g} s)", ticks) as advance:
        start = time.perf_counter()
        shown = 0
        while len(timings) < high:
            timings.append(runner.once())
            elapsed = time.perf_counter() - start
            now = min(ticks, int(elapsed * 10))
            if now > shown:
                advance(now - shown)
                shown = now
            if elapsed >= budget and len(timings) >= low:
                break
        if shown < ticks:
            advance(ticks - shown)
    return timings


def _check_args(threads: Sequence[int] | None, runs: int | None, duration: float | None, warmup: int,
                ops_rounds: int) -> None:
    if runs is not None and duration is not None:
        raise UsageError(f"give runs or duration, not both. Received: runs={runs}, duration={duration}")
    if runs is not None and (not isinstance(runs, int) or isinstance(runs, bool) or runs < 1):
        raise UsageError(f"runs must be a positive integer. Received: runs={runs!r}")
    if duration is not None and not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
        raise UsageError(f"duration must be a positive number of seconds. Received: duration={duration!r}")
    if not isinstance(warmup, int) or warmup < 0:
        raise UsageError(f"warmup must be an integer of at least 0. Received: warmup={warmup!r}")
    if not isinstance(ops_rounds, int) or ops_rounds < 1:
        raise UsageError(f"ops_rounds must be a positive integer. Received: ops_rounds={ops_rounds!r}")
    if threads is not None:
        if not threads:
            raise UsageError("threads must list at least one thread count. Received: threads=[]")
        bad = [t for t in threads if not isinstance(t, int) or isinstance(t, bool) or t < 1]
        if bad:
            raise UsageError(f"thread counts must be positive integers. Received: threads={list(threads)!r}")
        from edgeq.runtime.model import check_threads

        for t in threads:
            check_threads(t)


def profile(
    model: str | os.PathLike | bytes | Any,
    threads: Sequence[int] | int | None = None,
    runs: int | None = None,
    duration: float | None = None,
    warmup: int = 5,
    input: Any = None,  # noqa: A002 - mirrors the CLI's --input
    ops: bool = False,
    ops_rounds: int = 20,
    memory: bool = True,
    backend: str | None = None,
    seed: int = 0,
    input_shape: Sequence[Sequence[int]] | None = None,
) -> ProfileReport:
    """Measure a ``.tflite`` model on this device, for one or more thread counts.

    Args:
        model: a ``.tflite`` path, its bytes, or a loaded :class:`~edgeq.runtime.Model` (its file and backend are used).
        threads: thread counts to measure, in order; default ``[1, recommended]`` (see :func:`default_threads`).
        runs: timed steady-state runs per thread count. With neither ``runs`` nor ``duration``: at least
            10 runs, then until 5 s or 1000 runs.
        duration: time steady-state runs for this many seconds per thread count instead (at most 100 000 runs).
        warmup: untimed runs after the first inference.
        input: what to feed: ``None`` for random values in each input's dtype and range, or anything
            ``Model.predict`` accepts (an image path, a ``.npy`` path, an array, a PIL image).
        ops: also time each operator (:func:`edgeq.runtime.profile_ops.profile_ops`).
        ops_rounds: timed rounds of the per-op profile.
        memory: measure RSS in a child process (adds about a second per thread count).
        backend: ``litert``, ``tflite-runtime`` or ``tensorflow``; default: the first installed.
        seed: seed of the random input.
        input_shape: the shape of each random input (needed for inputs of dynamic size, ``-1`` beyond the batch).

    Returns:
        The :class:`~edgeq.runtime.report.ProfileReport` (write it with ``report.to_json()``).

    Raises:
        UsageError: a count is not positive, or both ``runs`` and ``duration`` are given.
        ModelError: the model is missing, invalid, or the backend cannot load it.
        DataError: ``input`` cannot be fed to the model.
        DependencyMissing: ``ops=True`` without LiteRT's flatbuffer tools (e.g. on tflite-runtime).
        InferenceError: the interpreter fails while running.
    """
    from edgeq.runtime.model import Model

    if isinstance(threads, int) and not isinstance(threads, bool):
        threads = [threads]
    _check_args(threads, runs, duration, warmup, ops_rounds)
    if isinstance(model, Model):
        backend = backend or model.backend.name
        model = model.path if model.path is not None else model._data  # noqa: SLF001 - the bytes it was loaded from
    data, name = read_model_bytes(model)
    path = None if isinstance(model, (bytes, bytearray, memoryview)) else Path(model)
    if ops:
        from edgeq.runtime._opcut import flatbuffer_tools

        flatbuffer_tools()  # fail now, not after minutes of timing
    from edgeq.runtime.backend import get_backend

    get_backend(backend)  # import the interpreter now so that its import time is not counted as model load time
    # one untimed load first: the backend's once-per-process set-up (XNNPACK's) and reading the file into
    # the page cache then count for no thread count, so load_ms compares across thread counts
    Model(path if path is not None else data, threads=1, backend=backend)
    fingerprint, live = _device()
    thread_counts = list(dict.fromkeys(threads)) if threads else default_threads()
    notes: list[str] = []
    live_before = live()
    results = []
    info: ModelInfo | None = None
    used_backend: dict[str, str] = {}
    input_desc = ""
    tmp_model: str | None = None
    try:
        for t in thread_counts:
            temp_before = (live() or {}).get("temperature_c")
            loaded = Model(path if path is not None else data, threads=t, backend=backend)
            load_ms = loaded.load_seconds * 1000
            used_backend = loaded.backend.to_dict()
            if info is None:
                mode, source = _infer_mode(loaded)
                info = ModelInfo(
                    name=Path(name).name if path is not None else name, sha256=sha256_of(data), size_bytes=len(data),
                    mode=mode, mode_source=source, inputs=tuple(s.to_dict() for s in loaded.inputs),
                    outputs=tuple(s.to_dict() for s in loaded.outputs), op_counts=loaded.file.op_counts(),
                    metadata=loaded.metadata.to_dict() if loaded.metadata else None,
                )
            arrays, input_desc = _prepare_input(loaded, input, seed, input_shape)
            runner = _Runner(loaded, arrays)
            first_ms = runner.first()
            with step(f"{t} thread(s): warm-up", warmup) as advance:
                for _ in range(warmup):
                    runner.once()
                    advance(1)
            timings = _timed_runs(runner, runs, duration, f"{t} thread(s): timing")
            latency = LatencyStats.from_timings(timings)
            op_profile = None
            if ops:
                op_profile = _profile_ops(loaded, data, arrays, t, ops_rounds, seed)
            del runner, loaded
            mem = None
            if memory:
                if path is None and tmp_model is None:
                    fd, tmp_model = tempfile.mkstemp(suffix=".tflite", prefix="edgeq-profile-")
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                from edgeq.runtime.profile_memory import measure_memory

                with step(f"{t} thread(s): memory (child process)", None):
                    try:
                        mem = measure_memory(path if path is not None else tmp_model, t, used_backend.get("name"),
                                             runs=MEMORY_RUNS)
                    except DeviceError as exc:  # the timings are still good; say why memory is missing
                        notes.append(f"memory not measured at {t} thread(s): {exc}")
            results.append(ThreadResult(
                threads=t, load_ms=round(load_ms, 4),
                first_ms=round(first_ms, 4), warmup=warmup, latency=latency,
                timings_ms=tuple(round(v, 4) for v in timings), memory=mem, ops=op_profile,
                temperature_before_c=temp_before, temperature_after_c=(live() or {}).get("temperature_c"),
            ))
    finally:
        if tmp_model is not None:
            os.unlink(tmp_model)
    live_after = live()
    notes += _live_notes(live_before, live_after)
    assert info is not None
    return ProfileReport(
        model=info, device=fingerprint, backend=used_backend,
        settings={"threads": thread_counts, "runs": runs, "duration_s": duration, "warmup": warmup,
                  "input": input_desc, "seed": seed, "ops": ops, "ops_rounds": ops_rounds if ops else None,
                  "memory": memory},
        results=tuple(results), live_before=live_before, live_after=live_after, notes=tuple(notes),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        edgeq_version=__version__,
    )


def _profile_ops(model: Any, data: bytes, arrays: list[np.ndarray], threads: int, rounds: int, seed: int) -> Any:
    from edgeq.runtime.profile_ops import profile_ops

    sig = model.file.signatures[0] if model.file.signatures else None
    if sig is not None and sig.subgraph != 0:
        raise UsageError(f"per-op profiling covers subgraph 0, but {model.name} runs subgraph {sig.subgraph}; "
                         "profile it without --ops")
    feed = {spec.index: array for spec, array in zip(model.inputs, arrays)}
    return profile_ops(data, model.backend, threads, feed, rounds=rounds, name=model.name, seed=seed,
                       label=f"{threads} thread(s): per-op")


def _live_notes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """Warnings about the device state that make the numbers less trustworthy."""
    notes = []
    for when, state in (("before", before), ("after", after)):
        flags = ((state or {}).get("throttled") or {})
        active = [k for k, v in flags.items() if k != "raw" and v is True and not k.endswith("_occurred")]
        if active:
            notes.append(f"throttling {when} measuring: {', '.join(active)} (vcgencmd {flags.get('raw')}); "
                         "times may be pessimistic, check cooling and the power supply")
    t0, t1 = (before or {}).get("temperature_c"), (after or {}).get("temperature_c")
    if t0 is not None and t1 is not None and t1 - t0 >= 10:
        notes.append(f"the CPU warmed from {t0:.1f} to {t1:.1f} C while measuring; later runs may be throttled")
    governor = (before or {}).get("governor")
    if governor and governor not in ("performance",):
        notes.append(f"the CPU governor is {governor!r} (edgeq leaves it as it is); clocks may vary between runs")
    return notes
