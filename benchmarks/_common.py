"""Shared helpers of the benchmark scripts: statistics, interleaved timing, paths, host facts.

Every comparison in the benchmark is a ratio measured in the same run: the things compared take
turns (interleaved rounds, the starting one rotating), and each figure is a median over rounds,
because absolute times drift on a shared machine.
"""

from __future__ import annotations

import gc
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE_DIR = REPO / "samples" / "fashion_mnist"

#: modes in table order; ``float32`` is the baseline of every ratio
MODES = ("float32", "float16", "dynamic", "int8", "uint8", "int16x8")


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (linear interpolation) of ``values``, or ``None`` when empty."""
    return float(np.percentile(values, q)) if values else None


def median(values: list[float]) -> float | None:
    return percentile(values, 50)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def load_average() -> list[float]:
    """The 1/5/15-minute load averages: how busy the shared machine was (2 cores: 1.0 = one busy core)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def interleaved_calls(
    fns: Mapping[str, Callable[[], Any]],
    budget_s: float,
    block_s: float,
    min_rounds: int = 3,
    max_rounds: int = 200,
    per_call: bool = True,
) -> dict[str, list[float]]:
    """Time several callables taking turns; seconds per call.

    Each callable is first timed once to size its block (about ``block_s`` of calls, at least one).
    Then rounds run until ``budget_s`` is spent (at least ``min_rounds``): in each round every callable
    runs one block, starting with a different callable each round.

    Args:
        fns: name -> callable to time (already warmed up by the caller).
        budget_s: wall-time budget for all the rounds.
        block_s: target duration of one block.
        min_rounds, max_rounds: bounds on the number of rounds.
        per_call: keep every call's time (for percentiles); else one mean per block (for overheads
            of a few microseconds, where the timer's own cost would show).

    Returns:
        name -> list of seconds (per call, or per-call means of each block).
    """
    timer = time.perf_counter_ns
    sizes = {}
    for name, fn in fns.items():
        started = timer()
        fn()
        sizes[name] = max(1, int(block_s / max((timer() - started) / 1e9, 1e-7)))
    names = list(fns)
    out: dict[str, list[float]] = {name: [] for name in names}
    started_all = time.perf_counter()
    rounds = 0
    gc_was = gc.isenabled()
    gc.disable()
    try:
        while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() - started_all < budget_s):
            shift = rounds % len(names)
            for name in names[shift:] + names[:shift]:
                fn, n = fns[name], sizes[name]
                if per_call:
                    for _ in range(n):
                        t0 = timer()
                        fn()
                        out[name].append((timer() - t0) / 1e9)
                else:
                    t0 = timer()
                    for _ in range(n):
                        fn()
                    out[name].append((timer() - t0) / 1e9 / n)
            rounds += 1
            gc.collect()
    finally:
        if gc_was:
            gc.enable()
    return out


def run_process(cmd: list[str], timeout: float = 600, env: Mapping[str, str] | None = None,
                cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """Run a command, capturing its output as text."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=cwd)


def dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def host_info() -> dict[str, Any]:
    """Where the run happened: the device fingerprint, Python and the packages that matter."""
    try:
        from edgeq.devices import current

        device = {k: v for k, v in current().to_dict().items() if k not in ("camera",)}
    except Exception as exc:  # noqa: BLE001 - the benchmark still runs without device detection
        device = {"error": str(exc), "arch": platform.machine(), "cores": os.cpu_count()}
    from edgeq._version import __version__

    return {
        "host": socket.gethostname(),
        "device": device,
        "python": platform.python_version(),
        "executable": sys.executable,
        "edgeq": __version__,
        "packages": {name: dist_version(name) for name in
                     ("ai-edge-litert", "numpy", "pillow", "tensorflow-cpu", "tensorflow", "keras")},
    }


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeq-bench"


def log(message: str) -> None:
    """Progress of the benchmark run, on stderr (the Markdown table goes to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
