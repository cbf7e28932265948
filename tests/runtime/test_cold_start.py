"""What a run does not need stays off its start-up path (issue #18: cold start on a Raspberry Pi).

Each case runs in a fresh interpreter and lists the modules it ended up importing; the heavy ones named here
cost 1-30 ms each on an x86 core and several times that on a Pi.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
#: never needed to load and run a model, or to print its result as JSON
OFF_THE_RUN_PATH = ("rich", "importlib.metadata", "email", "socket", "subprocess", "concurrent.futures",
                    "logging", "tempfile",
                    "edgeq.devices._display", "edgeq.runtime.profile", "edgeq.runtime.report", "edgeq.runtime.inspect",
                    "edgeq._render.common", "edgeq._render.profile", "edgeq._render.compare",
                    # full device detection and board profiles: the thread default reads the board rules alone
                    "edgeq.devices._detect", "edgeq.devices._profiles", "edgeq.devices._live", "edgeq.devices._revision")
#: the command modules of the other subcommands (only the one that runs builds its parser)
OTHER_COMMANDS = tuple(f"edgeq._commands.{c}" for c in ("demo", "convert", "qat", "debug", "inspect", "camera", "eval",
                                                          "profile", "compare", "tune", "devices", "doctor"))


def imported(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def run_modules(*options: str) -> set[str]:
    return imported(f"from edgeq.cli import main\nmain(['run', {str(SAMPLE)!r}, '--random', {', '.join(map(repr, options))}])")


def test_a_json_run_loads_no_table_renderer_no_device_probe_and_no_other_command():
    modules = run_modules("--json")
    assert "edgeq.runtime.model" in modules and "edgeq.devices._threads" in modules  # it ran, with the thread default
    assert sorted(m for m in (*OFF_THE_RUN_PATH, *OTHER_COMMANDS) if m in modules) == []


def test_a_run_with_threads_given_reads_no_device_at_all():
    modules = run_modules("--json", "--threads", "1")
    assert "edgeq.runtime.model" in modules
    assert sorted(m for m in modules if m.startswith("edgeq.devices")) == []


def test_import_runtime_loads_model_only():
    modules = imported("import edgeq.runtime\nedgeq.runtime.get_backend()")
    assert "edgeq.runtime.model" in modules
    # the model check, the metadata reader and their imports load with the first model
    later = ("edgeq.devices", "edgeq._flatbuffer", "edgeq._model_checks", "edgeq.metadata", "edgeq._io", "hashlib")
    assert sorted(m for m in (*OFF_THE_RUN_PATH, *later) if m in modules) == []


def test_a_table_run_still_draws_with_rich():
    modules = run_modules("--threads", "1")
    assert "rich" in modules and "edgeq._render.common" in modules


def test_native_output_is_still_logged_when_logging_is_configured(caplog):
    from edgeq._native import quiet_native_output

    with caplog.at_level("DEBUG", logger="edgeq.native"), quiet_native_output():
        import os

        os.write(2, b"chatter from C++\n")
    assert any("chatter from C++" in r.getMessage() for r in caplog.records)


def test_a_run_generates_no_dataclass_but_the_public_metadata():
    # @dataclass compiles its methods at each import (~3 M instructions a class); the metadata classes stay
    # dataclasses because callers use dataclasses.replace on them
    code = ("import dataclasses\nmade = []\nprocess = dataclasses._process_class\n"
            "def spy(cls, *a, **k):\n    made.append(f'{cls.__module__}.{cls.__qualname__}')\n    return process(cls, *a, **k)\n"
            "dataclasses._process_class = spy\n"
            f"from edgeq.cli import main\nmain(['run', {str(SAMPLE)!r}, '--random', '--json'])\n"
            "print(json.dumps(made))")
    script = f"import sys, json\n{code}"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    made = json.loads(done.stdout.strip().splitlines()[-1])
    assert "edgeq.metadata.ModelMetadata" in made  # the spy saw the run
    assert sorted(m for m in made if m.startswith("edgeq.") and not m.startswith("edgeq.metadata.")) == []
