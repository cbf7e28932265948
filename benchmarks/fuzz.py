"""Fuzz edgeq's model loading: mutate real ``.tflite`` files, load and run every mutant in a child process.

edgeq loads model files people download from the internet; a corrupt file must end in a clean
``ModelError``, never in a crash of the process. This script takes seed models, derives thousands of
mutants from each and hands them to worker processes that load and run them exactly as a user
would (``edgeq.runtime.inspect_model``, then ``Model`` + ``predict`` on every signature). Each mutant
ends in one of:

==================  ===================================================================================
``ran``             loaded and ran (the mutation hit weights or names, or was harmless)
``rejected``        ``ModelError`` from edgeq's own structural checks, before the interpreter saw it
``interp_rejected`` ``ModelError`` wrapping the interpreter's refusal to load it (or to prepare it at first invoke)
``inference_error`` ``InferenceError`` at invoke (a clean error, exit 1 in the CLI)
``other_error``     another ``EdgeqError`` (e.g. ``DataError``): clean
``unexpected``      a Python exception that is not an ``EdgeqError``: a bug in edgeq
``crash``           the worker died (a signal, e.g. SIGSEGV/SIGABRT/SIGFPE): what edgeq must prevent
``hang``            no answer within ``--timeout`` seconds
==================  ===================================================================================

Mutations (round-robin, so every kind gets the same share): byte level (bit flips, ``0xff``/zero runs,
truncation, rewritten offsets, spliced chunks) and structural ones made through LiteRT's flatbuffer
object API (tensor/buffer/opcode/subgraph index rewrites and swaps, huge/negative/zero dimensions and
ranks, quantization parameters, tensor types, op codes and versions, op options such as strides and
control-flow subgraph indices, buffer sizes, external buffers, removed operators/tensors). Every mutant
is reproducible from ``(--seed, model name, index)``; crashing and hanging mutants are kept (``--keep``).

``--raw`` sends the same mutants to bare LiteRT (``Interpreter`` + ``allocate_tensors`` + ``invoke``)
without edgeq's checks: the baseline that shows what the checks prevent.

Usage::

    python benchmarks/fuzz.py                          # full campaign: 1000 mutants per seed (builds seeds, needs TF)
    python benchmarks/fuzz.py --mutants 200 --model sample=samples/fashion_mnist/model_int8.tflite
    python benchmarks/fuzz.py --raw --json /tmp/raw.json   # the same mutants through bare LiteRT
    python benchmarks/fuzz.py --replay crashes/multi-00042.tflite   # run one file in a worker and say what happened
    python benchmarks/fuzz.py --cost mobilenet_v2.tflite             # what the checks cost next to loading the model
    python benchmarks/fuzz.py --documents 300          # mutate the edgeq metadata JSON and a profile report instead

``--documents N`` mutates the JSON documents edgeq reads (``benchmarks/_fuzz_json.py``): the ``edgeq``
metadata embedded in the sample model (read by ``inspect``, ``inspect --json``, ``run``) and a profile report
(read by ``compare --json`` and ``compare --html --png``); every run must be exit 0 or a one-line exit 2 that
leaves no file, with no raw control character in the output.

Writes ``benchmarks/results/fuzz-<date>-<host>.json`` (or ``--json``) and prints a table. Exit status 1 if
any mutant crashed, hung or raised an unexpected exception.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "samples" / "fashion_mnist" / "model_int8.tflite"

OUTCOMES = ("ran", "rejected", "interp_rejected", "inference_error", "other_error", "unexpected", "crash", "hang")
FAILURES = ("unexpected", "crash", "hang")
#: address-space limit of a worker: a mutant asking for absurd memory fails inside it, not on the machine
WORKER_MEMORY_BYTES = 3 << 30
#: int32 and int64 inputs (loop counts, indices) get small values; quantized ones their whole range
SMALL_INT_HIGH = 8


# ----------------------------------------------------------------------------------------- worker
def _feeds(specs: Any, rng: Any) -> dict[str, Any]:
    import numpy as np

    feeds = {}
    for s in specs:
        shape = tuple(max(1, d) for d in s.shape)
        dtype = np.dtype(s.dtype)
        if dtype == np.bool_:
            feeds[s.name] = rng.integers(0, 2, size=shape).astype(np.bool_)
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            low, high = (0, SMALL_INT_HIGH) if dtype.itemsize >= 4 else (int(info.min), int(info.max) + 1)
            feeds[s.name] = rng.integers(low, high, size=shape, dtype=dtype)
        else:
            feeds[s.name] = rng.random(shape, dtype=np.float32).astype(dtype)
    return feeds


def _trial_edgeq(path: str, stage: Callable[[str], None]) -> tuple[str, str]:
    import numpy as np

    from edgeq.errors import EdgeqError, InferenceError, ModelError
    from edgeq.runtime import Model, inspect_model

    rng = np.random.default_rng(0)
    try:
        stage("inspect")
        inspect_model(path)
        stage("load")
        model = Model(path, threads=1)
        keys = [s.key for s in model.file.signatures] or [None]
        for key in keys:
            if key != model.signature:
                stage(f"load:{key}")
                model = Model(path, threads=1, signature=key)
            stage(f"invoke:{key}")
            model.predict(_feeds(model.inputs, rng), raw=True)
        return "ran", ""
    except ModelError as exc:
        interpreter = "cannot be loaded by" in str(exc) or "cannot be run by" in str(exc)
        return ("interp_rejected" if interpreter else "rejected"), str(exc)[:300]
    except InferenceError as exc:
        return "inference_error", str(exc)[:300]
    except EdgeqError as exc:
        return "other_error", f"{type(exc).__name__}: {str(exc)[:300]}"
    except Exception as exc:  # noqa: BLE001 - what the fuzzer looks for
        return "unexpected", f"{type(exc).__name__}: {str(exc)[:300]}"


def _trial_raw(path: str, stage: Callable[[str], None]) -> tuple[str, str]:
    """Bare LiteRT, no edgeq checks: load, allocate, run every signature (or the graph) once."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    rng = np.random.default_rng(0)

    @dataclass
    class Spec:
        name: str
        shape: tuple
        dtype: Any

    try:
        stage("load")
        interp = Interpreter(model_content=Path(path).read_bytes(), num_threads=1)
        stage("allocate")
        interp.allocate_tensors()
        signatures = interp.get_signature_list()
        if signatures:
            for key in signatures:
                stage(f"invoke:{key}")
                runner = interp.get_signature_runner(key)
                specs = [Spec(n, tuple(d["shape"]), d["dtype"]) for n, d in runner.get_input_details().items()]
                runner(**_feeds(specs, rng))
        else:
            stage("invoke")
            details = interp.get_input_details()
            feeds = _feeds([Spec(str(d["index"]), tuple(d["shape"]), d["dtype"]) for d in details], rng)
            for d in details:
                interp.set_tensor(d["index"], feeds[str(d["index"])])
            interp.invoke()
        return "ran", ""
    except Exception as exc:  # noqa: BLE001 - any Python exception is a clean error for the bare interpreter
        return "interp_rejected", f"{type(exc).__name__}: {str(exc)[:300]}"


def worker_main(raw: bool) -> int:
    """Read mutant paths from stdin, answer one JSON line each; ``stage`` lines say how far a trial got."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    import faulthandler

    faulthandler.enable()
    out = sys.stdout
    trial = _trial_raw if raw else _trial_edgeq

    def stage(name: str) -> None:
        out.write(json.dumps({"stage": name}) + "\n")
        out.flush()

    if raw:  # import before the first deadline starts
        import ai_edge_litert.interpreter  # noqa: F401
    else:
        import edgeq.runtime  # noqa: F401
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        outcome, detail = trial(line.strip(), stage)
        out.write(json.dumps({"outcome": outcome, "detail": detail}) + "\n")
        out.flush()
    return 0


class Worker:
    """One worker process; :meth:`run` returns ``(outcome, detail, last stage)``, restarting it after a crash."""

    def __init__(self, raw: bool, timeout: float, log_dir: Path) -> None:
        self.raw, self.timeout, self.log_dir = raw, timeout, log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def _start(self) -> None:
        self.starts += 1
        self.stderr_path = self.log_dir / f"worker-{os.getpid()}-{id(self)}-{self.starts}.err"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"] + (["--raw"] if self.raw else [])
        self.stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in _stop
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=env, bufsize=0)
        self.buffer = b""
        message = self._read(60.0)
        if not message or not message.get("ready"):
            raise RuntimeError(f"the fuzz worker did not start: {self.stderr_path.read_text(errors='replace')[-2000:]}")

    def _read(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            if b"\n" not in self.buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                ready, _, _ = select.select([self.proc.stdout], [], [], left)
                if not ready:
                    continue
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return None  # the worker died
                self.buffer += chunk
                continue
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.startswith(b"{"):  # native code may print on stdout too: skip anything else
                return json.loads(line)

    def _stop(self) -> str:
        """Kill the worker (if alive); return how it ended."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        self.stderr.close()
        self.proc = None
        if code < 0:
            return signal.Signals(-code).name
        return f"exit {code}"

    def run(self, path: Path) -> tuple[str, str, str]:
        if self.proc is None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        stage = "send"
        try:
            self.proc.stdin.write(f"{path}\n".encode())
            while True:
                message = self._read(self.timeout)
                if message is None:
                    break
                if "stage" in message:
                    stage = message["stage"]
                    continue
                return message["outcome"], message["detail"], stage
        except TimeoutError:
            self._stop()
            return "hang", f"no answer within {self.timeout:g} s", stage
        except BrokenPipeError:
            pass
        how = self._stop()
        tail = self.stderr_path.read_text(errors="replace").strip().splitlines()
        fatal = next((ln for ln in tail if "Fatal Python error" in ln), tail[-1] if tail else "")
        return "crash", f"{how}: {fatal[:200]}", stage

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()  # type: ignore[union-attr]
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.stderr.close()
            self.proc = None


# -------------------------------------------------------------------------------------- mutations
def _fb() -> Any:
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils


def _pick_int(rng: random.Random, n: int) -> int:
    """An index near the edges of ``range(n)`` or past them: what breaks bounds checks."""
    return rng.choice([-1, -2, n, n + 1, n + 100, 2**31 - 1, -(2**31), rng.randrange(max(1, n)), 0, max(0, n - 1)])


def _huge_dim(rng: random.Random) -> int:
    return rng.choice([0, -1, -7, 2**31 - 1, 2**30, 2**24 + 1, 65536, 2**16 * 3, 1000, 2, 3])


def bit_flips(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def ff_run(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    n = rng.choice([1, 2, 4, 8, 16, 64, 256])
    i = rng.randrange(len(buf))
    buf[i : i + n] = (b"\xff" if rng.random() < 0.7 else b"\x00") * len(buf[i : i + n])
    return bytes(buf)


def truncate(rng: random.Random, data: bytes) -> bytes:
    cut = rng.choice([rng.randrange(len(data)), len(data) - rng.randint(1, 64), rng.randint(0, 64)])
    return data[: max(0, cut)]


def offset_rewrite(rng: random.Random, data: bytes) -> bytes:
    """Rewrite a 4-byte word that looks like a forward offset (lands inside the file) with another value."""
    buf = bytearray(data)
    n = len(buf)
    candidates = [p for p in range(0, n - 3, 4) if 0 < int.from_bytes(buf[p : p + 4], "little") < n - p]
    pos = rng.choice(candidates) if candidates else rng.randrange(0, max(1, n - 3), 4)
    old = int.from_bytes(buf[pos : pos + 4], "little")
    new = rng.choice([old + rng.choice([-8, -4, -2, 2, 4, 8]), rng.randrange(n), n - pos, n, 2**31 - 1, 2**32 - 4,
                      0, old * 2])
    buf[pos : pos + 4] = (new % 2**32).to_bytes(4, "little")
    return bytes(buf)


def splice(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    n = rng.randint(4, 64)
    src, dst = rng.randrange(len(buf)), rng.randrange(len(buf))
    chunk = buf[src : src + n]
    buf[dst : dst + len(chunk)] = chunk
    return bytes(buf[: len(data)])


def _structural(edit: Callable[[random.Random, Any], None]) -> Callable[[random.Random, bytes], bytes]:
    """A mutator that edits the model object (LiteRT's flatbuffer object API) and re-serialises it."""

    def mutate(rng: random.Random, data: bytes) -> bytes:
        fb = _fb()
        model = fb.read_model_from_bytearray(bytearray(data))
        extra = edit(rng, model)
        return bytes(fb.convert_object_to_bytearray(model, extra or b""))

    mutate.__name__ = edit.__name__
    return mutate


def _tensors(model: Any) -> list[tuple[Any, Any]]:
    return [(sg, t) for sg in model.subgraphs for t in (sg.tensors or [])]


def _ops(model: Any) -> list[tuple[Any, Any]]:
    return [(sg, op) for sg in model.subgraphs for op in (sg.operators or [])]


@_structural
def index_rewrite(rng: random.Random, model: Any) -> None:
    """An operator/subgraph/signature tensor index, a tensor's buffer, an op's opcode or a signature's subgraph."""
    choice = rng.randrange(6)
    if choice == 0:
        sg, op = rng.choice(_ops(model))
        vec = op.inputs if (rng.random() < 0.6 or not op.outputs) and op.inputs else op.outputs
        vec[rng.randrange(len(vec))] = _pick_int(rng, len(sg.tensors))
    elif choice == 1:
        sg = rng.choice(model.subgraphs)
        vec = sg.inputs if rng.random() < 0.5 else sg.outputs
        if vec:
            vec[rng.randrange(len(vec))] = _pick_int(rng, len(sg.tensors))
    elif choice == 2:
        _, t = rng.choice(_tensors(model))
        t.buffer = _pick_int(rng, len(model.buffers)) % 2**32
    elif choice == 3:
        _, op = rng.choice(_ops(model))
        op.opcodeIndex = _pick_int(rng, len(model.operatorCodes)) % 2**32
    elif choice == 4 and model.signatureDefs:
        sig = rng.choice(model.signatureDefs)
        maps = (sig.inputs or []) + (sig.outputs or [])
        if maps and rng.random() < 0.7:
            rng.choice(maps).tensorIndex = _pick_int(rng, 20) % 2**32
        else:
            sig.subgraphIndex = _pick_int(rng, len(model.subgraphs)) % 2**32
    else:
        meta = model.metadata or []
        if meta:
            rng.choice(meta).buffer = _pick_int(rng, len(model.buffers)) % 2**32


@_structural
def index_swap(rng: random.Random, model: Any) -> None:
    """Swap two tensor indices of an op, two tensors' buffers, two ops, or two subgraphs."""
    choice = rng.randrange(4)
    if choice == 0:
        sg, op = rng.choice(_ops(model))
        both = (op.inputs or []) + (op.outputs or [])
        a, b = rng.randrange(len(both)), rng.randrange(len(both))
        both[a], both[b] = both[b], both[a]
        op.inputs, op.outputs = both[: len(op.inputs or [])], both[len(op.inputs or []) :]
    elif choice == 1:
        (_, a), (_, b) = rng.choice(_tensors(model)), rng.choice(_tensors(model))
        a.buffer, b.buffer = b.buffer, a.buffer
    elif choice == 2:
        sg = rng.choice(model.subgraphs)
        if sg.operators and len(sg.operators) > 1:
            i, j = rng.sample(range(len(sg.operators)), 2)
            sg.operators[i], sg.operators[j] = sg.operators[j], sg.operators[i]
    elif len(model.subgraphs) > 1:
        i, j = rng.sample(range(len(model.subgraphs)), 2)
        model.subgraphs[i], model.subgraphs[j] = model.subgraphs[j], model.subgraphs[i]


@_structural
def huge_dims(rng: random.Random, model: Any) -> None:
    """A dimension of a tensor (often an input or a constant) to 0, negative or huge, or a changed rank."""
    sg = rng.choice(model.subgraphs)
    pool = [sg.tensors[i] for i in (sg.inputs or [])] if rng.random() < 0.4 and sg.inputs else sg.tensors
    t = rng.choice(pool)
    shape = list(t.shape if t.shape is not None else [])
    what = rng.randrange(4)
    if what == 0 or not shape:
        shape.insert(rng.randint(0, len(shape)), _huge_dim(rng))
    elif what == 1:
        shape.pop(rng.randrange(len(shape)))
    else:
        shape[rng.randrange(len(shape))] = _huge_dim(rng)
    if what == 3 and t.shapeSignature is not None and len(t.shapeSignature):
        sig = list(t.shapeSignature)
        sig[rng.randrange(len(sig))] = rng.choice([-1, -5, 0, 2**31 - 1])
        t.shapeSignature = sig
    else:
        t.shape = shape
        if rng.random() < 0.5:
            t.shapeSignature = list(shape)


@_structural
def quantization(rng: random.Random, model: Any) -> None:
    """Zero points out of range, scales zero/negative/NaN/inf, scale counts or the quantized dimension off."""
    quantized = [t for _, t in _tensors(model) if t.quantization is not None and t.quantization.scale is not None]
    t = rng.choice(quantized or [t for _, t in _tensors(model)])
    fb_schema = _schema()
    if t.quantization is None:
        t.quantization = fb_schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [0.5], [0]
    q = t.quantization
    scales = list(q.scale if q.scale is not None else [1.0])
    zps = list(q.zeroPoint if q.zeroPoint is not None else [0])
    what = rng.randrange(5)
    if what == 0 and zps:
        zps[rng.randrange(len(zps))] = rng.choice([128, -129, 255, 256, 2**31 - 1, -(2**40), 70000])
    elif what == 1 and scales:
        scales[rng.randrange(len(scales))] = rng.choice([0.0, -1.0, math.nan, math.inf, 1e38, 1e-45])
    elif what == 2:
        if rng.random() < 0.5 and len(scales) > 1:
            scales.pop()
        else:
            scales.extend([0.1] * rng.randint(1, 3))
        if rng.random() < 0.5:
            zps = [0] * len(scales)
    elif what == 3:
        q.quantizedDimension = rng.choice([-1, 1, 2, 3, 4, 7, 2**31 - 1])
    else:
        zps = zps[: rng.randint(0, max(0, len(zps) - 1))] if rng.random() < 0.5 else zps + [0, 1]
    q.scale, q.zeroPoint = scales, zps


@_structural
def tensor_type(rng: random.Random, model: Any) -> None:
    _, t = rng.choice(_tensors(model))
    t.type = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 13, 14, 17, 19, 21, 22, 23, 100, 127])
    if rng.random() < 0.2:
        t.isVariable = not t.isVariable


@_structural
def opcode(rng: random.Random, model: Any) -> None:
    """An op's builtin code (to another op, an unknown code or CUSTOM), its version, or its custom name."""
    code = rng.choice(model.operatorCodes)
    what = rng.randrange(4)
    if what == 0:
        new = rng.choice([0, 1, 2, 3, 4, 9, 17, 18, 22, 25, 32, 34, 40, 83, 114, 118, 119, 129, 31, 150, 205, 250, 32767])
        code.builtinCode = new
        code.deprecatedBuiltinCode = min(new, 127)
    elif what == 1:
        code.version = rng.choice([0, -1, 2, 3, 7, 99, 2**31 - 1])
    elif what == 2:
        code.deprecatedBuiltinCode = rng.choice([0, 3, 9, 126, 127, -1])
    else:
        code.builtinCode, code.deprecatedBuiltinCode = 32, 32
        code.customCode = rng.choice([b"", b"TFLite_Detection_PostProcess", b"FlexAddV2", b"\xff\xfe"])


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


#: options fields worth breaking: (attribute, values)
_OPTION_VALUES = {
    "strideW": [0, -1, 2**31 - 1], "strideH": [0, -2, 2**30], "strideD": [0, -1],
    "dilationWFactor": [0, -1, 2**31 - 1], "dilationHFactor": [0, -3], "depthMultiplier": [0, -1, 1000],
    "filterWidth": [0, -1, 2**31 - 1], "filterHeight": [0, 2**20], "padding": [2, 7, -1],
    "fusedActivationFunction": [6, 7, 100, -1], "axis": [-100, 7, 2**31 - 1, -(2**31)], "beta": [math.nan, math.inf, -1.0],
    "newShape": [[-1, -1], [2**31 - 1], [0], [1, 2, 3, 4, 5, 6, 7]], "keepNumDims": [True],
    "condSubgraphIndex": "subgraph", "bodySubgraphIndex": "subgraph", "thenSubgraphIndex": "subgraph",
    "elseSubgraphIndex": "subgraph", "initSubgraphIndex": "subgraph", "subgraph": "subgraph",
    "alignCorners": [True], "halfPixelCenters": [True], "numSplits": [0, -1, 1000], "weightsFormat": [1, 5],
    "asymmetricQuantizeInputs": [True], "quantizedBiasType": [1, 9, 17], "outType": [0, 5, 99],
}


@_structural
def options(rng: random.Random, model: Any) -> None:
    """An op option: strides, dilations, filter sizes, activation, axis, new shape, control-flow subgraph indices…"""
    with_options = [(sg, op) for sg, op in _ops(model) if op.builtinOptions is not None]
    if not with_options or rng.random() < 0.1:
        sg, op = rng.choice(_ops(model))
        op.builtinOptionsType = rng.choice([0, 1, 2, 5, 17, 92, 93, 103, 126, 200])
        op.builtinOptions = None
        return
    _, op = rng.choice(with_options)
    fields = [k for k in vars(op.builtinOptions) if k in _OPTION_VALUES]
    if not fields:
        op.builtinOptionsType = rng.choice([1, 2, 5, 93])
        return
    name = rng.choice(fields)
    values = _OPTION_VALUES[name]
    value = _pick_int(rng, len(model.subgraphs)) if values == "subgraph" else rng.choice(values)
    setattr(op.builtinOptions, name, value)


@_structural
def buffers(rng: random.Random, model: Any) -> bytes | None:
    """Shrink, grow or empty a buffer's data, or move one out of the flatbuffer with a bad offset/size."""
    import numpy as np

    full = [b for b in model.buffers if b.data is not None and len(b.data)]
    if not full:
        return None
    b = rng.choice(full)
    data = np.asarray(b.data, dtype=np.uint8)
    what = rng.randrange(4)
    if what == 0:
        b.data = data[: rng.randrange(len(data))]
    elif what == 1:
        b.data = np.concatenate([data, np.full(rng.randint(1, 64), 0xFF, np.uint8)])
    elif what == 2:
        b.data = None
    else:  # an external buffer appended after the flatbuffer; offset/size perhaps off
        b.data = None
        b.offset = rng.choice([2**40, 1, 2, 4096, 2**31]) if rng.random() < 0.5 else 2**24
        b.size = rng.choice([len(data), len(data) * 2, 2**40, 0])
        return bytes(data)
    return None


@_structural
def remove(rng: random.Random, model: Any) -> None:
    """Remove an operator, a tensor (shifting later indices), a subgraph, an opcode or a buffer."""
    what = rng.randrange(5)
    if what == 0:
        sg, op = rng.choice(_ops(model))
        sg.operators.remove(op)
    elif what == 1:
        sg = rng.choice(model.subgraphs)
        sg.tensors.pop(rng.randrange(len(sg.tensors)))
    elif what == 2 and len(model.subgraphs) > 1:
        model.subgraphs.pop(rng.randrange(len(model.subgraphs)))
    elif what == 3 and len(model.operatorCodes) > 1:
        model.operatorCodes.pop(rng.randrange(len(model.operatorCodes)))
    elif len(model.buffers) > 1:
        model.buffers.pop(rng.randrange(1, len(model.buffers)))


MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "bit_flips": bit_flips, "ff_run": ff_run, "truncate": truncate, "offset_rewrite": offset_rewrite,
    "splice": splice, "index_rewrite": index_rewrite, "index_swap": index_swap, "huge_dims": huge_dims,
    "quantization": quantization, "tensor_type": tensor_type, "opcode": opcode, "options": options,
    "buffers": buffers, "remove": remove,
}


def mutant(data: bytes, model_name: str, index: int, seed: int) -> tuple[str, bytes]:
    """The ``index``-th mutant of ``data``: ``(mutator name, bytes)``, reproducible from the arguments."""
    names = list(MUTATORS)
    name = names[index % len(names)]
    rng = random.Random(f"{seed}/{model_name}/{index}")
    try:
        return name, MUTATORS[name](rng, data)
    except Exception:  # noqa: BLE001 - the object API could not re-serialise this edit: flip bits instead
        return "bit_flips", bit_flips(rng, data)


# ------------------------------------------------------------------------------------ seed models
def build_multi_subgraph(path: Path) -> Path:
    """A float model with two signatures and a WHILE loop (four subgraphs), via TensorFlow.

    Signature ``loop``: ``y = f^n(x)`` (x: 1x4 float32, n: int32 scalar) as a ``tf.while_loop`` (WHILE,
    its cond and body subgraphs); signature ``double``: ``z = 2x``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x"), tf.TensorSpec([], tf.int32, name="n")])
        def loop(self, x, n):  # type: ignore[no-untyped-def]
            def body(i, acc):  # type: ignore[no-untyped-def]
                return i + 1, acc * 0.5 + tf.sin(acc)

            _, out = tf.while_loop(lambda i, acc: i < n, body, [tf.constant(0), x])
            return {"y": out}

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def double(self, x):  # type: ignore[no-untyped-def]
            return {"z": x * 2.0}

    module = Loop()
    with tempfile.TemporaryDirectory(prefix="edgeq-fuzz-seed-") as tmp:
        tf.saved_model.save(module, tmp, signatures={"loop": module.loop, "double": module.double})
        data = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=["loop", "double"]).convert()
    path.write_bytes(data)
    return path


def build_seeds(folder: Path) -> dict[str, Path]:
    """The campaign's seed models (built once into ``folder``; needs the ``[convert]`` extra).

    ``sample``: the bundled Fashion-MNIST int8 model (edgeq-made, trained); ``int8_float_io``: a small
    CNN (Conv/BatchNorm/SeparableConv/pooling/Dense/softmax) by ``edgeq.convert`` as int8 with float IO
    (QUANTIZE/DEQUANTIZE ops); ``float16``: the same CNN by ``edgeq.convert --mode float16``;
    ``multi``: :func:`build_multi_subgraph`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {"sample": SAMPLE}
    cnn = {"int8_float_io": dict(mode="int8", io="float"), "float16": dict(mode="float16")}
    if not all((folder / f"{k}.tflite").exists() for k in cnn):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import keras
        import numpy as np

        import edgeq

        keras.utils.set_random_seed(0)
        inp = keras.Input((16, 16, 3), name="image")
        x = keras.layers.Conv2D(8, 3, padding="same")(inp)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.SeparableConv2D(8, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        keras.Model(inp, keras.layers.Dense(4, activation="softmax")(x)).save(folder / "cnn.keras")
        np.save(folder / "data.npy", np.random.default_rng(0).random((40, 16, 16, 3), dtype=np.float32))
        for name, kwargs in cnn.items():
            edgeq.convert(folder / "cnn.keras", folder / "data.npy", folder / f"{name}.tflite", samples=30,
                          labels=["a", "b", "c", "d"], force=True, **kwargs)
    seeds.update({k: folder / f"{k}.tflite" for k in cnn})
    if not (folder / "multi.tflite").exists():
        build_multi_subgraph(folder / "multi.tflite")
    seeds["multi"] = folder / "multi.tflite"
    return seeds


# --------------------------------------------------------------------------------------- campaign
@dataclass
class ModelResult:
    name: str
    size_bytes: int
    mutants: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_mutator: dict[str, Counter] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    details: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size_bytes": self.size_bytes, "mutants": self.mutants,
            "outcomes": {k: self.outcomes.get(k, 0) for k in OUTCOMES},
            "by_mutator": {m: dict(c) for m, c in sorted(self.by_mutator.items())},
            "failures": self.failures,
            "examples": self.examples,
            "top_errors": {
                outcome: [{"count": n, "message": m.split(": ", 1)[1]} for m, n in self.details.most_common()
                          if m.startswith(outcome + ": ")][:8]
                for outcome in OUTCOMES if self.outcomes.get(outcome) and outcome != "ran"
            },
        }


def _error_kind(detail: str) -> str:
    """The stable part of an error message (file names and numbers dropped), to group them."""
    import re

    text = re.sub(r"/\S+", "FILE", detail)
    text = re.sub(r"-?\d+(\.\d+)?", "N", text)
    return text[:140]


def campaign(seeds: dict[str, Path], mutants: int, seed: int, jobs: int, timeout: float, raw: bool,
             keep: Path | None, progress: bool = True) -> dict[str, ModelResult]:
    """Run ``mutants`` mutants of each seed through ``jobs`` workers; return the per-model results."""
    from concurrent.futures import ThreadPoolExecutor

    results: dict[str, ModelResult] = {}
    with tempfile.TemporaryDirectory(prefix="edgeq-fuzz-") as tmp_dir:
        tmp = Path(tmp_dir)
        workers = [Worker(raw, timeout, tmp) for _ in range(jobs)]
        try:
            for name, path in seeds.items():
                data = Path(path).read_bytes()
                result = results[name] = ModelResult(name, len(data))
                started = time.monotonic()

                def one(job: int) -> None:
                    worker = workers[job]
                    for index in range(job, mutants, jobs):
                        mutator, blob = mutant(data, name, index, seed)
                        file = tmp / f"{name}-{index:05d}.tflite"
                        file.write_bytes(blob)
                        outcome, detail, stage = worker.run(file)
                        result.mutants += 1
                        result.outcomes[outcome] += 1
                        result.by_mutator.setdefault(mutator, Counter())[outcome] += 1
                        if detail:
                            result.details[f"{outcome}: {_error_kind(detail)}"] += 1
                        if outcome != "ran" and len(result.examples.setdefault(outcome, [])) < 5:
                            result.examples[outcome].append(f"{name}:{index} ({mutator})")
                        if outcome in FAILURES:
                            kept = None
                            if keep is not None:
                                keep.mkdir(parents=True, exist_ok=True)
                                kept = str(shutil.copy(file, keep / file.name))
                            result.failures.append({"index": index, "mutator": mutator, "outcome": outcome,
                                                    "stage": stage, "detail": detail, "file": kept})
                        file.unlink()

                with ThreadPoolExecutor(jobs) as pool:
                    list(pool.map(one, range(jobs)))
                if progress:
                    print(f"  {name}: {result.mutants} mutants in {time.monotonic() - started:.0f} s: "
                          + ", ".join(f"{k} {v}" for k, v in result.outcomes.most_common()), file=sys.stderr)
        finally:
            for w in workers:
                w.close()
    return results


def table(results: dict[str, ModelResult]) -> str:
    head = "| model | size | mutants | " + " | ".join(OUTCOMES) + " |"
    rows = [head, "|" + " --- |" * (3 + len(OUTCOMES))]
    total: Counter = Counter()
    for r in results.values():
        rows.append(f"| {r.name} | {r.size_bytes} B | {r.mutants} | "
                    + " | ".join(str(r.outcomes.get(k, 0)) for k in OUTCOMES) + " |")
        total.update(r.outcomes)
    rows.append(f"| **all** | | {sum(r.mutants for r in results.values())} | "
                + " | ".join(str(total.get(k, 0)) for k in OUTCOMES) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=1000, help="mutants per seed model (default 1000)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="a seed model (repeatable); default: build the four seeds into --seeds-dir")
    parser.add_argument("--seeds-dir", type=Path, default=Path(tempfile.gettempdir()) / "edgeq-fuzz-seeds",
                        help="where the default seeds are built and cached")
    parser.add_argument("--seed", type=int, default=0, help="seed of the mutations (default 0)")
    parser.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="worker processes")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a mutant counts as a hang")
    parser.add_argument("--raw", action="store_true", help="bare LiteRT without edgeq's checks (the baseline)")
    parser.add_argument("--keep", type=Path, help="copy crashing/hanging mutants here")
    parser.add_argument("--json", type=Path, help="where to write the results (default benchmarks/results/…)")
    parser.add_argument("--replay", type=Path, help="run one .tflite file in a worker and print its outcome")
    parser.add_argument("--write-mutant", metavar="NAME:INDEX",
                        help="write that mutant of the seed NAME (with --model/--seed as in the campaign) to NAME-INDEX.tflite")
    parser.add_argument("--cost", type=Path, nargs="+", metavar="MODEL",
                        help="instead of fuzzing: time the checks against loading these models")
    parser.add_argument("--documents", type=int, metavar="N",
                        help="mutate the metadata JSON and a report JSON N times each instead of model files")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.raw)
    if args.cost:
        costs = [validation_cost(p) for p in args.cost]
        print("| model | size | checks (warm, median) | Model load incl. checks | share | cold: first parse / first load |")
        print("| --- | --- | --- | --- | --- | --- |")
        for c in costs:
            w, k = c["warm"], c["cold"]
            print(f"| {c['model']} | {c['size_bytes'] / 1e6:.1f} MB | {w['parse_ms_median']:.2f} ms | "
                  f"{w['load_ms_median']:.2f} ms | {w['share_median']:.0%} | {k['first_parse_ms']:.1f} / "
                  f"{k['first_load_ms']:.1f} ms ({k['share']:.0%}) |")
        if args.json:
            args.json.write_text(json.dumps({"validation_cost": costs, "date": date.today().isoformat(),
                                             "host": socket.gethostname(), "interpreter": _interpreter_version()},
                                            indent=1) + "\n")
        return 0
    if args.documents is not None:
        return _documents(args.documents, args.seed, args.json)
    if args.replay:
        with tempfile.TemporaryDirectory() as tmp:
            worker = Worker(args.raw, args.timeout, Path(tmp))
            outcome, detail, stage = worker.run(args.replay.resolve())
            worker.close()
        print(json.dumps({"outcome": outcome, "stage": stage, "detail": detail}))
        return 1 if outcome in FAILURES else 0
    seeds = dict(item.split("=", 1) for item in args.model) if args.model else build_seeds(args.seeds_dir)
    seeds = {k: Path(v) for k, v in seeds.items()}
    if args.write_mutant:
        name, index = args.write_mutant.rsplit(":", 1)
        mutator, blob = mutant(seeds[name].read_bytes(), name, int(index), args.seed)
        out = Path(f"{name}-{int(index):05d}.tflite")
        out.write_bytes(blob)
        print(f"{out}: {mutator} mutant, {len(blob)} bytes")
        return 0
    started = time.monotonic()
    results = campaign(seeds, args.mutants, args.seed, args.jobs, args.timeout, args.raw, args.keep)
    report = {
        "what": "edgeq model fuzzing: mutants loaded and run in worker processes",
        "checks": "bare LiteRT (no edgeq checks)" if args.raw else "edgeq (inspect_model + Model + predict)",
        "date": date.today().isoformat(), "host": socket.gethostname(), "python": sys.version.split()[0],
        "settings": {"mutants_per_model": args.mutants, "seed": args.seed, "jobs": args.jobs,
                     "timeout_s": args.timeout, "worker_memory_bytes": WORKER_MEMORY_BYTES,
                     "mutators": list(MUTATORS)},
        "interpreter": _interpreter_version(),
        "seconds": round(time.monotonic() - started, 1),
        "models": {k: r.to_dict() for k, r in results.items()},
    }
    out = args.json or HERE / "results" / f"fuzz{'-raw' if args.raw else ''}-{date.today()}-{socket.gethostname()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(table(results))
    print(f"\n{report['checks']}; {report['seconds']} s; written to {out}")
    return 1 if any(r.outcomes.get(k) for r in results.values() for k in FAILURES) else 0


def _documents(mutants: int, seed: int, out: Path | None) -> int:
    """``--documents``: the JSON campaign of ``_fuzz_json``; exit 1 if any run ended badly."""
    sys.path.insert(0, str(HERE))
    from _fuzz_json import BAD_OUTCOMES, json_campaign

    started = time.monotonic()
    result = json_campaign(mutants, seed)
    result.update({"what": "edgeq JSON document fuzzing (metadata, profile reports) through the CLI",
                   "date": date.today().isoformat(), "host": socket.gethostname(),
                   "seconds": round(time.monotonic() - started, 1)})
    out = out or HERE / "results" / f"fuzz-documents-{date.today()}-{socket.gethostname()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("| document | runs | " + " | ".join(("ok", "clean", *BAD_OUTCOMES)) + " |")
    print("| --- " * (len(BAD_OUTCOMES) + 4) + "|")
    for doc, counts in result["outcomes"].items():
        cells = " | ".join(str(counts.get(k, 0)) for k in ("ok", "clean", *BAD_OUTCOMES))
        print(f"| {doc} | {sum(counts.values())} | {cells} |")
    print(f"\n{mutants} mutants per document; {result['seconds']} s; written to {out}")
    return 1 if result["bad"] else 0


def validation_cost(path: Path, repeats: int = 40, cold_runs: int = 5) -> dict[str, Any]:
    """Time ``parse`` (the checks) against ``Model(...)`` (which includes them) on one model file.

    Warm: both in this process, taking turns, CPU time of this process (less sensitive than wall time to
    other work on a shared machine); min and median over ``repeats``. Cold: the first ``Model`` of a
    fresh process (wall time; what ``edgeq run`` pays once), with the first ``parse`` in that process.
    """
    import statistics

    from edgeq._flatbuffer import parse
    from edgeq.runtime import Model

    data = path.read_bytes()
    Model(data, threads=1)
    parse_s, load_s = [], []
    clock = time.process_time
    for _ in range(repeats):
        t = clock()
        parse(data)
        parse_s.append(clock() - t)
        t = clock()
        Model(data, threads=1)
        load_s.append(clock() - t)
    child = ("import sys, time\nfrom edgeq._flatbuffer import parse\nfrom edgeq.runtime import Model\n"
             "from edgeq.runtime.backend import get_backend\nget_backend(None)\n"
             "data = open(sys.argv[1], 'rb').read()\nt = time.perf_counter(); parse(data); p = time.perf_counter() - t\n"
             "t = time.perf_counter(); Model(sys.argv[1], threads=1); m = time.perf_counter() - t\nprint(p, m)\n")
    cold = []
    for _ in range(cold_runs):
        done = subprocess.run([sys.executable, "-c", child, str(path)], capture_output=True, text=True, timeout=300,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        cold.append(tuple(float(v) for v in done.stdout.split()[-2:]))
    ms = lambda v: round(v * 1000, 3)  # noqa: E731
    p_med, l_med = statistics.median(parse_s), statistics.median(load_s)
    c_parse, c_load = statistics.median(c[0] for c in cold), statistics.median(c[1] for c in cold)
    return {
        "model": path.name, "size_bytes": len(data),
        "warm": {"parse_ms_min": ms(min(parse_s)), "parse_ms_median": ms(p_med), "load_ms_min": ms(min(load_s)),
                 "load_ms_median": ms(l_med), "share_median": round(p_med / l_med, 4),
                 "share_min": round(min(parse_s) / min(load_s), 4), "repeats": repeats, "clock": "process CPU time"},
        "cold": {"first_parse_ms": ms(c_parse), "first_load_ms": ms(c_load), "share": round(c_parse / c_load, 4),
                 "runs": cold_runs, "clock": "wall time, fresh process"},
    }


def _interpreter_version() -> str:
    try:
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # noqa: BLE001 - informative only
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
