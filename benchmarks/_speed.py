"""The rows of issue #18 ("speed on the device"), each measured against its bare equivalent in the same run.

* ``cold``: fresh processes taking turns (medians over rounds): ``import edgeq.runtime`` + the backend against
  ``import ai_edge_litert.interpreter, numpy``, and ``edgeq run M --random --json`` against a 5-line LiteRT script
  (load, random input, invoke, print). Wall time, CPU time (user + system: less sensitive to the other processes
  of a busy machine) and peak RSS of each child (``wait4``). The bare script runs twice under two names: their
  ratio (A/A) is the noise floor.
* ``float_input``: ``Model.predict(float array)`` against the naive numpy loop a user would write
  (``set_tensor(np.round(x / s + z).clip().astype())``, ``invoke``, dequantize the output), 1 thread; the naive
  loop is timed twice (A/A). Ratios and differences are paired per round.
* ``model_check``: the model check before the interpreter (``edgeq._flatbuffer.parse``) as a share of a load
  (check + ``Interpreter(model_content=…)`` + ``allocate_tensors``): checked in full, proven in this process
  (a byte compare) and proven by an earlier process (SHA-256 of the file, a marker on disk).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import interleaved_calls, load_average, median

BARE_SCRIPT = """import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors(); d = it.get_input_details()[0]
it.set_tensor(d["index"], np.random.default_rng().integers(-128, 128, d["shape"]).astype(d["dtype"])); it.invoke()
print(it.get_tensor(it.get_output_details()[0]["index"]).tolist())
"""


def _child(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float, int]:
    """Run ``cmd``; its wall seconds, CPU seconds, peak RSS in MiB and exit code."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode


def _compile_edgeq() -> str:
    """Byte-compile edgeq's sources, as ``pip install`` does: a checkout run with PYTHONDONTWRITEBYTECODE=1 (or a
    read-only tree) would otherwise compile every edgeq module on every start, which numpy and LiteRT never do."""
    import compileall

    import edgeq

    roots = {Path(edgeq.__file__).parent} | {Path(importlib.import_module(f"edgeq.{p}").__file__).parent
                                             for p in ("runtime", "devices")}
    ok = all(compileall.compile_dir(str(root), quiet=1) for root in sorted(roots))
    return "edgeq byte-compiled before timing" if ok else "byte-compiling edgeq failed: its modules compile on every start"


def cold(model: Path, rounds: int) -> dict[str, Any]:
    """Fresh processes, interleaved: edgeq against bare LiteRT (see the module docstring)."""
    py = sys.executable
    script = Path(py).with_name("edgeq")
    edgeq = [str(script)] if script.exists() else [py, "-m", "edgeq"]
    commands = {
        "bare import": [py, "-c", "import ai_edge_litert.interpreter, numpy"],
        "edgeq import": [py, "-c", "import edgeq.runtime; edgeq.runtime.get_backend()"],
        "bare script": [py, "-c", BARE_SCRIPT, str(model)],
        "bare script (A/A)": [py, "-c", BARE_SCRIPT, str(model)],
        "edgeq run --random": [*edgeq, "run", str(model), "--random", "--json"],
    }
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    compiled = _compile_edgeq()
    names = list(commands)
    samples: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": [], "rss": []} for n in names}
    failures: dict[str, int] = {}
    before = load_average()
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-speed-") as cwd:
        for name in names:  # warm the page cache (and the model-check proof, as on every run after the first)
            _child(commands[name], env, cwd)
        for r in range(rounds):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                wall, cpu, rss, code = _child(commands[name], env, cwd)
                if code:
                    failures[name] = failures.get(name, 0) + 1
                    continue
                for key, value in (("wall", wall), ("cpu", cpu), ("rss", rss)):
                    samples[name][key].append(value)
    med = {n: {k: median(v) for k, v in s.items()} for n, s in samples.items()}

    def ratios(a: str, b: str) -> dict[str, float | None]:
        return {k: (med[a][k] / med[b][k]) if med[a][k] and med[b][k] else None for k in ("wall", "cpu", "rss")}

    return {
        "model": model.name, "rounds": rounds, "medians": med, "failures": failures, "compiled": compiled,
        "import_ratio": ratios("edgeq import", "bare import"),
        "run_ratio": ratios("edgeq run --random", "bare script"),
        "a_a_ratio": ratios("bare script (A/A)", "bare script"),
        "load_before": before, "load_after": load_average(),
    }


def float_input(path: Path, name: str, budget_s: float, block_s: float) -> dict[str, Any]:
    """``Model.predict(float array)`` against the naive numpy loop, 1 thread (see the module docstring)."""
    from edgeq._native import quiet_native_output
    from edgeq.runtime import Model

    with quiet_native_output():
        model = Model(path, threads=1)
    spec, out = model.inputs[0], model.outputs[0]
    info = np.iinfo(spec.dtype)
    # values across the input's quantized range (what calibration saw), so neither loop spends its time clipping
    low, high = (info.min - spec.zero_point) * spec.scale, (info.max - spec.zero_point) * spec.scale
    x = np.random.default_rng(0).uniform(low, high, spec.shape).astype(np.float32)
    interpreter = model.interpreter
    s, z, so, zo = spec.scale, spec.zero_point, out.scale, out.zero_point

    def naive() -> np.ndarray:
        interpreter.set_tensor(spec.index, np.round(x / s + z).clip(info.min, info.max).astype(spec.dtype))
        interpreter.invoke()
        return (interpreter.get_tensor(out.index).astype(np.float32) - zo) * so

    def naive_again() -> np.ndarray:  # the same loop under another name: the A/A ratio is the noise floor
        interpreter.set_tensor(spec.index, np.round(x / s + z).clip(info.min, info.max).astype(spec.dtype))
        interpreter.invoke()
        return (interpreter.get_tensor(out.index).astype(np.float32) - zo) * so

    calls = {"naive": naive, "naive (A/A)": naive_again, "predict": lambda: model.predict(x)}
    for fn in calls.values():
        warm_until = time.perf_counter() + 0.2
        while time.perf_counter() < warm_until:
            fn()
    before = load_average()
    blocks = interleaved_calls(calls, budget_s, block_s, min_rounds=5, per_call=False)
    base = blocks["naive"]
    return {
        "model": name, "threads": 1, "rounds": len(base),
        "us": {k: median(v) * 1e6 for k, v in blocks.items()},
        "predict_over_naive": median([p / b for p, b in zip(blocks["predict"], base)]),
        "predict_extra_us": median([(p - b) * 1e6 for p, b in zip(blocks["predict"], base)]),
        "a_a_ratio": median([a / b for a, b in zip(blocks["naive (A/A)"], base)]),
        "a_a_extra_us": median([(a - b) * 1e6 for a, b in zip(blocks["naive (A/A)"], base)]),
        "load_before": before, "load_after": load_average(),
    }


def model_check(path: Path, name: str, rounds: int) -> dict[str, Any]:
    """The share of a load the model check takes: in full, proven in memory, proven on disk (interleaved)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeq import _checked
    from edgeq._flatbuffer import parse
    from edgeq._native import quiet_native_output

    data = path.read_bytes()
    times: dict[str, list[float]] = {k: [] for k in ("full", "memory", "disk", "interpreter")}
    saved = os.environ.get("EDGEQ_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-proofs-") as cache:
        os.environ["EDGEQ_CACHE_DIR"] = cache
        try:
            for _ in range(rounds):
                fresh = path.read_bytes()  # a new bytes object, as each Model(path) reads one
                _checked._recent.clear(), _checked._proven.clear()
                os.environ["EDGEQ_CACHE_DIR"] = ""
                for key, copy in (("full", fresh), ("memory", path.read_bytes())):
                    t = time.perf_counter()
                    parse(copy)
                    times[key].append(time.perf_counter() - t)
                os.environ["EDGEQ_CACHE_DIR"] = cache
                parse(path.read_bytes())  # write the marker
                _checked._recent.clear(), _checked._proven.clear()
                t = time.perf_counter()
                parse(fresh)
                times["disk"].append(time.perf_counter() - t)
                with quiet_native_output():
                    t = time.perf_counter()
                    interpreter = Interpreter(model_content=data, num_threads=1)
                    interpreter.allocate_tensors()
                    times["interpreter"].append(time.perf_counter() - t)
        finally:
            if saved is None:
                os.environ.pop("EDGEQ_CACHE_DIR", None)
            else:
                os.environ["EDGEQ_CACHE_DIR"] = saved
    med = {k: median(v) for k, v in times.items()}
    load = med["interpreter"]
    return {
        "model": name, "size_bytes": len(data), "rounds": rounds, "ms": {k: v * 1e3 for k, v in med.items()},
        "share": {k: med[k] / (med[k] + load) for k in ("full", "memory", "disk")},
    }
