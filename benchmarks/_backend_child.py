"""Time one interpreter backend on .tflite models: a bare set_tensor/invoke loop (no edgeq code).

Run in a fresh process by :mod:`_backends` with the Python of the environment that has the backend
(the tflite-runtime one is a side venv with numpy<2), so it imports nothing but numpy and the backend::

    python _backend_child.py MODULE BUDGET_S THREADS MODEL.tflite [MODEL.tflite ...]

Prints one JSON object: the backend's import time, and per model and thread count the load time,
p50/p90 latency and a digest of the raw outputs for a seeded input (to compare backends), and the
process's peak RSS.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings


def main(module_name: str, budget: str, threads: str, *models: str) -> int:
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            module = __import__(module_name, fromlist=["Interpreter"])
        import numpy as np
    except Exception as exc:  # noqa: BLE001 - report why the backend is unusable
        print(json.dumps({"error": f"import {module_name}: {type(exc).__name__}: {exc}"[:400]}))
        return 0
    result = {"import_s": time.perf_counter() - started, "numpy": np.__version__, "models": {}}
    for path in models:
        per_threads = {}
        for n in (int(t) for t in threads.split(",")):
            try:
                t0 = time.perf_counter()
                interpreter = module.Interpreter(model_path=path, num_threads=n)
                interpreter.allocate_tensors()
                load_s = time.perf_counter() - t0
                inp = interpreter.get_input_details()[0]
                out = interpreter.get_output_details()[0]
                info = np.iinfo(inp["dtype"]) if np.issubdtype(inp["dtype"], np.integer) else None
                rng = np.random.default_rng(0)
                x = rng.integers(info.min, info.max + 1, inp["shape"]) if info else rng.random(inp["shape"])
                x = x.astype(inp["dtype"])
                interpreter.set_tensor(inp["index"], x)
                interpreter.invoke()
                digest = hashlib.sha256(interpreter.get_tensor(out["index"]).tobytes()).hexdigest()[:16]
                times = []
                end = time.perf_counter() + float(budget)
                while len(times) < 3 or (time.perf_counter() < end and len(times) < 5000):
                    t0 = time.perf_counter()
                    interpreter.set_tensor(inp["index"], x)
                    interpreter.invoke()
                    times.append(time.perf_counter() - t0)
                per_threads[str(n)] = {"load_s": load_s, "runs": len(times), "p50_ms": float(np.percentile(times, 50)) * 1e3,
                                       "p90_ms": float(np.percentile(times, 90)) * 1e3, "output_sha256": digest}
            except Exception as exc:  # noqa: BLE001 - e.g. an op version the old runtime lacks
                first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
                per_threads[str(n)] = {"error": f"{type(exc).__name__}: {first}"}
        result["models"][path] = per_threads
    import resource

    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
