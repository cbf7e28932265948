"""Fixtures of the robustness tests: the fuzz tool, control-flow models, model editing, child processes.

* ``fuzz``, ``soak``: ``benchmarks/fuzz.py`` (mutations, workers, the multi-subgraph seed) and
  ``benchmarks/soak.py`` (the generated camera video) imported as modules.
* ``while_model``: two signatures and a WHILE loop, four subgraphs (``fuzz.build_multi_subgraph``).
* ``if_model``, ``variable_model``: an IF (``tf.cond``) and a resource variable (CALL_ONCE, VAR_HANDLE,
  READ_VARIABLE, ASSIGN_VARIABLE): valid control flow the structural checks must accept.
* ``edit(path, change)``: the model's bytes after ``change(model)`` on LiteRT's flatbuffer object API.
* ``edgeq_child(args, tmp)``: ``python -m edgeq ARGS`` as a real child process whose ``TMPDIR`` is a fresh,
  checked folder, so tests can send it signals and see every temporary file it leaves behind.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_MODEL = REPO / "samples" / "fashion_mnist" / "model_int8.tflite"


def _load_benchmark(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"edgeq_bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def fuzz() -> Any:
    return _load_benchmark("fuzz")


@pytest.fixture(scope="session")
def soak() -> Any:
    return _load_benchmark("soak")


@pytest.fixture(scope="session")
def while_model(models_dir: Path, fuzz: Any) -> Path:
    path = models_dir / "while_two_signatures.tflite"
    if not path.exists():
        fuzz.build_multi_subgraph(path)
    return path


def _saved_model_to_tflite(module: Any, signatures: dict[str, Any], folder: Path, **converter: Any) -> bytes:
    import tensorflow as tf

    tf.saved_model.save(module, str(folder), signatures=signatures)
    c = tf.lite.TFLiteConverter.from_saved_model(str(folder))
    for key, value in converter.items():
        setattr(c, key, value)
    return bytes(c.convert())


@pytest.fixture(scope="session")
def if_model(models_dir: Path) -> Path:
    """``y = 2x if p else sin(x)`` (x: 1x4 float32, p: bool): IF with its two branch subgraphs."""
    path = models_dir / "if.tflite"
    if not path.exists():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x"), tf.TensorSpec([], tf.bool, name="p")])
        def f(x, p):  # type: ignore[no-untyped-def]
            return {"y": tf.cond(p, lambda: x * 2.0, lambda: tf.sin(x))}

        module = tf.Module()
        module.f = f
        path.write_bytes(_saved_model_to_tflite(module, {"serving_default": f}, models_dir / "if_saved_model"))
    return path


@pytest.fixture(scope="session")
def variable_model(models_dir: Path) -> Path:
    """``v += x; y = v`` with a resource variable: CALL_ONCE (its init subgraph), VAR_HANDLE, READ/ASSIGN_VARIABLE."""
    path = models_dir / "variable.tflite"
    if not path.exists():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        class Accumulate(tf.Module):
            def __init__(self) -> None:
                super().__init__()
                self.v = tf.Variable(tf.zeros([1, 4]))

            @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
            def f(self, x):  # type: ignore[no-untyped-def]
                self.v.assign_add(x)
                return {"y": self.v * 1.0}

        module = Accumulate()
        path.write_bytes(_saved_model_to_tflite(module, {"serving_default": module.f}, models_dir / "variable_saved_model",
                                                experimental_enable_resource_variables=True))
    return path


@pytest.fixture(scope="session")
def edit() -> Callable[[Path | bytes, Callable[[Any], Any]], bytes]:
    """``edit(model, change)``: apply ``change(model_object)`` (it may return bytes to append) and re-serialise."""
    from ai_edge_litert.tools import flatbuffer_utils

    def apply(model: Path | bytes, change: Callable[[Any], Any]) -> bytes:
        data = model.read_bytes() if isinstance(model, Path) else model
        obj = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
        extra = change(obj)
        return bytes(flatbuffer_utils.convert_object_to_bytearray(obj, extra or b""))

    return apply


def child_env(tmp: Path) -> dict[str, str]:
    """Environment of a CLI child: its own empty TMPDIR (checked afterwards), no colours, quiet TensorFlow."""
    tmp.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "3", "NO_COLOR": "1", "COLUMNS": "200",
            "PYTHONWARNINGS": "ignore"}


@pytest.fixture()
def edgeq_child() -> Callable[..., subprocess.Popen]:
    """Start ``python -m edgeq ARGS`` with its own TMPDIR (``tmp``); stdout/stderr are pipes (text)."""

    def start(args: list[str], tmp: Path, cwd: Path | None = None) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "edgeq", *args], cwd=cwd, env=child_env(tmp),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    return start
