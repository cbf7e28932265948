"""The same int8 models under each interpreter backend: LiteRT, tflite-runtime 2.14, TensorFlow Lite.

tflite-runtime 2.14 (its last release) needs numpy<2, so it runs from a side venv made here
(``python -m venv`` + ``pip install tflite-runtime==2.14.0 'numpy<2'``), kept in the cache folder and
reused by later runs. Each backend runs :mod:`_backend_child` in fresh processes, the backends taking
turns over rounds; figures are medians over rounds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _common import HERE, load_average, median, run_process

TFLITE_RUNTIME = "tflite-runtime==2.14.0"


def side_venv(cache: Path) -> dict[str, Any]:
    """The tflite-runtime venv: created once, then reused (``cached``); ``error`` when it cannot be installed."""
    env_dir = cache / "venv-tflite-runtime-2.14"
    marker = env_dir / "edgeq-bench-ok"
    python = env_dir / "bin" / "python"
    if marker.exists():
        return {"python": str(python), "cached": True}
    done = run_process([sys.executable, "-m", "venv", "--clear", str(env_dir)], timeout=300)
    if done.returncode == 0:
        done = run_process([str(python), "-m", "pip", "install", "-q", TFLITE_RUNTIME, "numpy<2"], timeout=900)
    if done.returncode != 0:
        return {"error": f"pip install {TFLITE_RUNTIME} 'numpy<2' failed: "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1][:300]}", "cached": False}
    marker.write_text(TFLITE_RUNTIME + "\n")
    return {"python": str(python), "cached": False}


def backends(models: dict[str, Path], cache: Path, rounds: int, budget_s: float, threads: str = "1,2",
             include_tensorflow: bool = True, include_tflite_runtime: bool = True) -> dict[str, Any]:
    """Latency of ``models`` (name -> .tflite) on every backend; medians of per-round p50s."""
    candidates: dict[str, dict[str, Any]] = {"litert": {"python": sys.executable, "module": "ai_edge_litert.interpreter"}}
    venv_info = None
    if include_tflite_runtime:
        venv_info = side_venv(cache)
        candidates["tflite-runtime 2.14"] = {"python": venv_info.get("python"), "module": "tflite_runtime.interpreter",
                                            "error": venv_info.get("error")}
    if include_tensorflow:
        candidates["tensorflow (tf.lite)"] = {"python": sys.executable, "module": "tensorflow.lite.python.interpreter"}
    child = str(HERE / "_backend_child.py")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in candidates}
    names = list(candidates)
    before = load_average()
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            c = candidates[name]
            if c.get("error"):
                continue
            done = run_process([c["python"], child, c["module"], str(budget_s), threads, *map(str, models.values())],
                               env={"TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=900)
            try:
                runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                runs[name].append({"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:300]})
    out: dict[str, Any] = {"rounds": rounds, "threads": threads, "side_venv": venv_info, "backends": {},
                           "load_before": before, "load_after": load_average()}
    for name, c in candidates.items():
        results = runs[name]
        error = c.get("error") or next((res["error"] for res in results if "error" in res), None)
        entry: dict[str, Any] = {"module": c["module"], "error": error, "models": {}}
        good = [res for res in results if "error" not in res]
        if good:
            entry["import_s"] = median([res["import_s"] for res in good])
            entry["peak_rss_mib"] = median([res["peak_rss_mib"] for res in good])
            entry["numpy"] = good[0]["numpy"]
            for label, path in models.items():
                per = {}
                for t in threads.split(","):
                    cells = [res["models"][str(path)][t] for res in good]
                    ok = [cell for cell in cells if "error" not in cell]
                    if not ok:
                        per[t] = {"error": cells[0]["error"]}
                        continue
                    per[t] = {"p50_ms": median([cell["p50_ms"] for cell in ok]),
                              "p90_ms": median([cell["p90_ms"] for cell in ok]),
                              "load_s": median([cell["load_s"] for cell in ok]),
                              "output_sha256": ok[0]["output_sha256"]}
                entry["models"][label] = per
        out["backends"][name] = entry
    return out
