"""The cold-start rows of issue #18, run inside the emulated aarch64 userland by ``coldstart_arm64.sh``.

``python3 _coldstart_arm64_child.py ROUNDS MODEL VENV [VENV_BEFORE]``: fresh processes taking turns, medians of
ROUNDS: ``import edgeq.runtime`` + backend against ``import ai_edge_litert.interpreter, numpy``, and ``edgeq run
MODEL --random --json`` against the 5-line LiteRT script of ``_speed.py``, which runs twice under two names (A/A:
the noise floor); with VENV_BEFORE, the edgeq rows of that install too. CPU = user + system time of the child
(``wait4``); peak RSS is the qemu process's. Standalone (the emulated userland has no edgeq checkout): JSON on stdout.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

BARE_SCRIPT = """import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors(); d = it.get_input_details()[0]
it.set_tensor(d["index"], np.random.default_rng().integers(-128, 128, d["shape"]).astype(d["dtype"])); it.invoke()
print(it.get_tensor(it.get_output_details()[0]["index"]).tolist())
"""
IMPORT_EDGEQ = "import edgeq.runtime; edgeq.runtime.get_backend()"


def commands(model: str, venv: str, before: str | None) -> dict[str, list[str]]:
    py = f"{venv}/bin/python"
    cmds = {
        "bare import": [py, "-c", "import ai_edge_litert.interpreter, numpy"],
        "edgeq import": [py, "-c", IMPORT_EDGEQ],
        "bare script": [py, "-c", BARE_SCRIPT, model],
        "bare script (A/A)": [py, "-c", BARE_SCRIPT, model],
        "edgeq run --random": [f"{venv}/bin/edgeq", "run", model, "--random", "--json"],
    }
    if before:
        cmds["edgeq import (before)"] = [f"{before}/bin/python", "-c", IMPORT_EDGEQ]
        cmds["edgeq run --random (before)"] = [f"{before}/bin/edgeq", "run", model, "--random", "--json"]
    return cmds


def child(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int]:
    """Wall seconds, CPU seconds, peak RSS (MiB) and exit code of one run of ``cmd``."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd="/tmp")
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main() -> None:
    rounds, model, venv = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    cmds = commands(model, venv, sys.argv[4] if len(sys.argv) > 4 else None)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    names = list(cmds)
    load_before = os.getloadavg()
    for name in names:  # warm the page cache and the model-check proof, as on every run after the first
        child(cmds[name], env)
    samples: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": [], "rss": []} for n in names}
    failures: dict[str, int] = {}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu, rss, code = child(cmds[name], env)
            if code:
                failures[name] = failures.get(name, 0) + 1
                continue
            for key, value in (("wall", wall), ("cpu", cpu), ("rss", rss)):
                samples[name][key].append(value)
    med = {n: {k: statistics.median(v) if v else None for k, v in s.items()} for n, s in samples.items()}

    def ratio(a: str, b: str) -> dict[str, float] | None:
        return {k: med[a][k] / med[b][k] for k in ("wall", "cpu", "rss")} if a in med and med[a]["cpu"] and med[b]["cpu"] else None

    print(json.dumps({
        "rounds": rounds, "medians": med, "samples": samples, "failures": failures,
        "load_before": load_before, "load_after": os.getloadavg(),
        "import_ratio": ratio("edgeq import", "bare import"), "run_ratio": ratio("edgeq run --random", "bare script"),
        "a_a_ratio": ratio("bare script (A/A)", "bare script"),
        "import_ratio_before": ratio("edgeq import (before)", "bare import"),
        "run_ratio_before": ratio("edgeq run --random (before)", "bare script"),
    }, indent=1))


if __name__ == "__main__":
    main()
