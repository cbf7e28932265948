"""Measuring what a model costs in resident memory, in a fresh child process.

Memory measured in the process that also parsed arguments, imported rich, ran other thread counts
or cut the model into one-op models would mix all of that in. :func:`measure_memory` therefore runs
``python -m edgeq.runtime.profile_memory`` in a new process that:

1. imports numpy, the edgeq runtime and the interpreter backend, then reads its RSS (the baseline)
   and, on Linux, resets its own RSS high-water mark (``echo 5 > /proc/self/clear_refs``; this
   touches only the child's own counters);
2. loads the model exactly as :class:`~edgeq.runtime.Model` does and reads its RSS again;
3. runs the model on random input and reads its peak RSS (``VmHWM``).

It prints one JSON object on stdout. ``resource.getrusage`` is the fallback where ``/proc`` is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from typing import Any

from edgeq.errors import DeviceError
from edgeq.runtime.report import MemoryStats

log = logging.getLogger(__name__)

_TIMEOUT_S = 600.0


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _rss_bytes() -> int | None:
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def _peak_bytes() -> tuple[int, str]:
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib * 1024, "VmHWM"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (peak if sys.platform == "darwin" else peak * 1024), "ru_maxrss"


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _child(model_path: str, threads: int, backend: str | None, runs: int) -> dict[str, Any]:
    import numpy as np  # noqa: F401 - part of the baseline, as in any program that uses edgeq

    from edgeq.runtime.backend import get_backend
    from edgeq.runtime.model import Model
    from edgeq.runtime.sources import random_input

    get_backend(backend)
    baseline = _rss_bytes()
    reset = _reset_peak()
    if baseline is None:  # no /proc: use the peak so far as the baseline
        baseline, _ = _peak_bytes()
    model = Model(model_path, threads=threads, backend=backend)
    loaded = _rss_bytes() or _peak_bytes()[0]
    arrays = random_input(model.inputs)
    feed = arrays[0] if len(arrays) == 1 else arrays
    for _ in range(runs):
        model.predict(feed, raw=True)
    peak, source = _peak_bytes()
    method = (f"fresh child process; RSS from /proc/self/status (VmRSS, peak {source}"
              f"{', reset after imports' if reset else ''})" if source == "VmHWM" else
              "fresh child process; peak from getrusage ru_maxrss (not reset: includes imports)")
    return {
        "method": method, "baseline_rss_bytes": baseline, "load_rss_delta_bytes": max(0, loaded - baseline),
        "peak_rss_bytes": peak, "peak_rss_delta_bytes": max(0, peak - baseline), "runs": runs, "peak_reset": reset,
    }


def _isolated_python() -> list[str]:
    """The interpreter command for a child that imports nothing from the working folder (``-P`` from Python 3.11)."""
    return [sys.executable, "-P"] if sys.version_info >= (3, 11) else [sys.executable]


def measure_memory(model_path: str | os.PathLike, threads: int, backend: str | None, runs: int = 10) -> MemoryStats:
    """Load and run the model in a fresh Python process and return its memory figures.

    Args:
        model_path: the ``.tflite`` file.
        threads: interpreter threads.
        backend: the backend name (``None``: the default one).
        runs: inferences to run after loading.

    Raises:
        DeviceError: the child process failed or printed no result.
    """
    cmd = [*_isolated_python(), "-m", "edgeq.runtime.profile_memory", os.path.abspath(model_path),
           "--threads", str(threads), "--runs", str(runs)]
    if backend:
        cmd += ["--backend", backend]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONWARNINGS="ignore", PYTHONSAFEPATH="1")
    try:
        with tempfile.TemporaryDirectory(prefix="edgeq-memory-") as neutral:  # nothing of the caller's folder on sys.path
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=_TIMEOUT_S, env=env, check=False,
                                  cwd=neutral)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DeviceError(f"cannot start the memory-measuring child process ({exc}); rerun with --no-memory") from exc
    line = next((ln for ln in reversed(done.stdout.splitlines()) if ln.startswith("{")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DeviceError(f"the memory-measuring child process failed (exit {done.returncode}: {tail}); rerun with --no-memory")
    return MemoryStats.from_dict(json.loads(line))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edgeq.runtime.profile_memory",
                                     description="Print the RSS cost of loading and running a model, as JSON.")
    parser.add_argument("model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--backend")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    result = _child(args.model, args.threads, args.backend, max(1, args.runs))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
