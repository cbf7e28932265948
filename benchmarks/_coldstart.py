"""Cold start: fresh processes timed end to end, interleaved.

``python -c pass`` (the interpreter alone), ``import edgeq.runtime``, ``edgeq run`` of the sample on one
image (import, model load, preprocessing, inference, output) and ``import tensorflow``, each in a new
process, taking turns; medians over rounds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import SAMPLE_DIR, load_average, median, ratio, run_process


def _commands(include_tensorflow: bool) -> dict[str, list[str]]:
    py = sys.executable
    image = next(iter(sorted((SAMPLE_DIR / "eval").rglob("*.png"))))
    script = Path(py).with_name("edgeq")  # the console script, as a user runs it
    edgeq = [str(script)] if script.exists() else [py, "-m", "edgeq"]
    commands = {
        "python": [py, "-c", "pass"],
        "import edgeq.runtime": [py, "-c", "import edgeq.runtime"],
        "edgeq run (sample, 1 image)": [*edgeq, "run", str(SAMPLE_DIR / "model_int8.tflite"), str(image), "--top", "1"],
    }
    if include_tensorflow:
        commands["import tensorflow"] = [py, "-c", "import tensorflow"]
    return commands


def _import_profile(module: str) -> list[dict[str, Any]]:
    """The slowest imports under ``module`` (``python -X importtime``, cumulative), for the tuning notes."""
    done = run_process([sys.executable, "-X", "importtime", "-c", f"import {module}"], timeout=120)
    rows = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append({"module": parts[2].rstrip(), "self_us": int(parts[0].split(":")[1]), "cumulative_us": int(parts[1])})
    top = sorted((r for r in rows if r["module"].strip().startswith(("edgeq", "numpy"))),
                 key=lambda r: -r["cumulative_us"])
    return [{**r, "module": r["module"].strip()} for r in top[:8]]


def cold_start(rounds: int, include_tensorflow: bool = True) -> dict[str, Any]:
    commands = _commands(include_tensorflow)
    env = {"TF_CPP_MIN_LOG_LEVEL": "3"}
    times: dict[str, list[float]] = {name: [] for name in commands}
    errors: dict[str, str] = {}
    names = list(commands)
    before = load_average()
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-cold-") as cwd:
        for _ in range(1):  # warm the page cache: the first start reads every file from disk
            for name in names:
                run_process(commands[name], env=env, cwd=cwd)
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                done = run_process(commands[name], env=env, cwd=cwd)
                elapsed = time.perf_counter() - started
                if done.returncode != 0:
                    last = (done.stderr.strip().splitlines() or ["exit %d" % done.returncode])[-1][:300]
                    errors[name] = {"failed_rounds": errors.get(name, {}).get("failed_rounds", 0) + 1, "error": last}
                else:
                    times[name].append(elapsed)
    med = {name: median(values) for name, values in times.items()}
    result: dict[str, Any] = {"rounds": rounds, "seconds": med, "errors": errors,
                              "load_before": before, "load_after": load_average()}
    tf = med.get("import tensorflow")
    result["tensorflow_over_edgeq_runtime"] = ratio(tf, med["import edgeq.runtime"])
    result["tensorflow_over_edgeq_run"] = ratio(tf, med["edgeq run (sample, 1 image)"])
    result["import_profile"] = _import_profile("edgeq.runtime")
    return result
