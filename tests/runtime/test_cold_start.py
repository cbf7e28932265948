"""What a run does not need stays off its start-up path (issue #18: cold start on a Raspberry Pi).

Each case runs in a fresh interpreter and lists the modules it ended up importing; the heavy ones named here
cost 5-30 ms each on an x86 core and several times that on a Pi.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
#: never needed to load and run a model, or to print its result as JSON
OFF_THE_RUN_PATH = ("rich", "importlib.metadata", "email", "socket", "subprocess", "concurrent.futures",
                    "edgeq.devices._display", "edgeq.runtime.profile", "edgeq.runtime.report", "edgeq.runtime.inspect",
                    "edgeq._render.common", "edgeq._render.profile", "edgeq._render.compare")


def imported(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_json_run_loads_no_table_renderer_and_no_device_probe():
    modules = imported(f"from edgeq.cli import main\nmain(['run', {str(SAMPLE)!r}, '--random', '--json'])")
    assert "edgeq.runtime.model" in modules and "edgeq.devices._detect" in modules  # it ran, with the thread default
    assert sorted(m for m in OFF_THE_RUN_PATH if m in modules) == []


def test_import_runtime_loads_model_only():
    modules = imported("import edgeq.runtime\nedgeq.runtime.get_backend()")
    assert "edgeq.runtime.model" in modules
    assert sorted(m for m in (*OFF_THE_RUN_PATH, "edgeq.devices") if m in modules) == []


def test_a_table_run_still_draws_with_rich():
    modules = imported(f"from edgeq.cli import main\nmain(['run', {str(SAMPLE)!r}, '--random', '--threads', '1'])")
    assert "rich" in modules and "edgeq._render.common" in modules
