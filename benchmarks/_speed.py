"""The rows of issue #18 ("speed on the device"), each measured against its bare equivalent in the same run.

* ``cold``: fresh processes taking turns (medians over rounds): ``import edgeq.runtime`` + the backend against
  ``import ai_edge_litert.interpreter, numpy``, and ``edgeq run M --random --json`` against a 5-line LiteRT script
  (load, random input, invoke, print). Wall time, CPU time (user + system, ``wait4``: less sensitive to the other
  processes of a busy machine) and peak RSS of each child (through GNU time, see ``GNU_TIME``). The bare script
  runs twice under two names: their ratio (A/A) is the noise floor.
* ``float_input``: ``Model.predict(float array)`` against the naive numpy loop a user would write
  (``set_tensor(np.round(x / s + z).clip().astype())``, ``invoke``, dequantize the output), 1 thread; the naive
  loop is timed twice (A/A). Ratios and differences are paired per round.
* ``model_check``: the model check before the interpreter (``edgeq._flatbuffer.parse``, then what ``Model`` reads
  of the parsed file: a proven model's tables are read on first use, so they are timed with the check) as a share
  of a warm ``Model(path)`` load (file in the page cache), and, stricter, of the check plus the bare interpreter's
  load (``Interpreter(model_content=…)`` + ``allocate_tensors``): checked in full, proven in this process (the
  file's stamp or a byte compare), proven by an earlier process (the file's stamp and the proof's marker on disk)
  and, for a file without a stamp, by its SHA-256 (see ``edgeq/_checked.py``); CPU time of this process, wall time
  alongside.
"""

from __future__ import annotations

import contextlib
import importlib
import marshal
import os
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from _common import interleaved_calls, load_average, median

BARE_SCRIPT = """import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1]); it.allocate_tensors(); d = it.get_input_details()[0]
it.set_tensor(d["index"], np.random.default_rng().integers(-128, 128, d["shape"]).astype(d["dtype"])); it.invoke()
print(it.get_tensor(it.get_output_details()[0]["index"]).tolist())
"""


#: GNU time reports the peak RSS of a child it forked itself. A child of this (large) process would count this
#: process's pages: Linux keeps the high-water mark of the memory a process had before its exec.
GNU_TIME = Path("/usr/bin/time")


def _child(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, float | None, int]:
    """Run ``cmd``; its wall seconds, CPU seconds, peak RSS in MiB (``None`` without GNU time) and exit code."""
    rss_file = Path(cwd) / "maxrss"
    if GNU_TIME.exists():
        cmd = [str(GNU_TIME), "-f", "%M", "-o", str(rss_file), *cmd]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss = None
    if GNU_TIME.exists():
        last = rss_file.read_text().split()[-1:] if rss_file.exists() else []
        rss = int(last[0]) / 1024 if last and last[0].isdigit() else None
    return wall, usage.ru_utime + usage.ru_stime, rss, proc.returncode


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
                    if value is not None:
                        samples[name][key].append(value)
    med = {n: {k: median(v) if v else None for k, v in s.items()} for n, s in samples.items()}

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


def model_reads(f: Any) -> None:
    """Read what ``Model(path)`` reads of a parsed file (``runtime/model.py``: metadata, signature, input tensors)."""
    f.metadata.get("edgeq")
    sig = f.signatures[0] if f.signatures else None
    graph = f.subgraphs[sig.subgraph if sig else 0]
    for i in graph.inputs:
        graph.tensors[i].shape_signature


#: a child that reads and checks one model (proven by an earlier process); prints the check's CPU and wall seconds
FIRST_CHECK = """import sys, time
from edgeq._flatbuffer import parse
from edgeq._io import read_model_bytes
from _speed import model_reads
data, name = read_model_bytes(sys.argv[1])
w, c = time.perf_counter(), time.process_time()
model_reads(parse(data, name))
print(time.process_time() - c, time.perf_counter() - w)
"""


def proof_floor(fd: int, folder: str, boot: str) -> None:
    """What any look-up of a file's proof costs, without edgeq around it: ``fstat``, the proof's name, open, read and
    close the proof, its CRC and ``marshal.loads`` (no objects built). A lower bound of a load proven earlier."""
    st = os.fstat(fd)
    name = "s%s-%x-%x-%x-%x-%x" % (boot, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    proof = os.open(folder + name, os.O_RDONLY)
    raw = os.read(proof, 1 << 16)
    os.close(proof)
    zlib.crc32(raw[4:])
    marshal.loads(raw[4:])


def model_check(path: Path, name: str, rounds: int) -> dict[str, Any]:
    """The share of a load the model check takes, each way a model can be accepted (interleaved with the loads).

    Every ``parse`` gets bytes fresh from ``read_model_bytes``, as ``Model(path)`` does: ``full`` (nothing proven),
    ``memory`` (proven in this process), ``disk`` (proven by an earlier process: the file's stamp, then its proof's
    marker), ``content`` (proven by an earlier process, the file without
    a stamp: changed less than 2 s ago, or on a network file system). ``stamp`` is what taking a file's stamp adds to
    every read (an ``fstat`` and the bookkeeping); it is added to ``memory``, ``disk`` and ``content``. Shares are
    of CPU time (this process's: on a busy machine wall time mostly measures the other jobs), wall time alongside.
    ``first in a new process``: ``disk`` in a fresh process, with what a process reads once (the checking code's
    id; for a stamp, the boot id and the mount table), listed in ``once_per_process_us``. ``floor``: what any look-up
    of a stamped file's proof costs without edgeq around it (:func:`proof_floor`), a lower bound of ``disk``.
    """
    from ai_edge_litert.interpreter import Interpreter

    from edgeq import _checked
    from edgeq._flatbuffer import parse
    from edgeq._io import read_model_bytes
    from edgeq._native import quiet_native_output
    from edgeq.runtime import Model

    data = path.read_bytes()
    times: dict[str, list[float]] = {k: [] for k in ("full", "memory", "disk", "content", "stamp", "interpreter",
                                                     "model", "first in a new process", "floor")}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    saved = os.environ.get("EDGEQ_CACHE_DIR")

    @contextlib.contextmanager
    def clock(key: str) -> Iterator[None]:
        """Time the block: wall time into ``times``, CPU time of this process into ``cpu``."""
        wall, used = time.perf_counter(), time.process_time()
        yield
        times[key].append(time.perf_counter() - wall)
        cpu[key].append(time.process_time() - used)

    def timed(key: str, fresh: bytes) -> None:
        with clock(key):
            model_reads(parse(fresh))

    with tempfile.TemporaryDirectory(prefix="edgeq-bench-proofs-") as cache, open(path, "rb") as fh:
        try:
            for r in range(rounds):
                os.environ["EDGEQ_CACHE_DIR"] = ""  # proofs in memory only (read by forget())
                _checked.forget()
                timed("full", read_model_bytes(path)[0])
                timed("memory", read_model_bytes(path)[0])
                os.environ["EDGEQ_CACHE_DIR"] = cache
                for by_content in (False, True) if r == 0 else ():  # the proofs on disk, before any is timed
                    _checked.forget()
                    fresh = read_model_bytes(path)[0]
                    if by_content:
                        _checked.stamp_of(fresh)  # as if the file had no stamp
                    parse(fresh)
                for way in ("disk", "content")[:: 1 if r % 2 else -1]:  # taking turns
                    _checked.forget()
                    fresh = read_model_bytes(path)[0]
                    if way == "content":
                        _checked.stamp_of(fresh)  # as if the file had no stamp
                    timed(way, fresh)
                started, before = time.time_ns(), os.stat(path)  # read_model_bytes takes both anyway
                with clock("stamp"):
                    after = os.fstat(fh.fileno())
                    _checked.note_read(data, before, after, started)
                    stamp = _checked.stamp_of(data)
                if stamp is not None:
                    _checked.forget()
                    read_model_bytes(path)
                    with clock("floor"):
                        proof_floor(fh.fileno(), f"{_checked._folder()}/", stamp[0])
                with quiet_native_output():
                    with clock("interpreter"):
                        interpreter = Interpreter(model_content=data, num_threads=1)
                        interpreter.allocate_tensors()
                    with clock("model"):
                        Model(path, threads=1)  # proven in this process, as every load after the first
            env = {**os.environ, "EDGEQ_CACHE_DIR": cache}
            for _ in range(max(3, rounds // 2)):  # the first check of a new process: its one-time reads included
                out = subprocess.run([sys.executable, "-c", FIRST_CHECK, str(path)], env=env, capture_output=True,
                                     cwd=Path(__file__).resolve().parent,
                                     text=True, check=True).stdout
                times["first in a new process"].append(float(out.split()[-1]))
                cpu["first in a new process"].append(float(out.split()[-2]))
        finally:
            _checked.forget()
            if saved is None:
                os.environ.pop("EDGEQ_CACHE_DIR", None)
            else:
                os.environ["EDGEQ_CACHE_DIR"] = saved
    med = {k: median(v) for k, v in times.items() if v}  # no floor for a file without a stamp
    med_cpu = {k: median(v) for k, v in cpu.items() if v}

    def mount_table() -> None:
        _checked._mounts = (-_checked._MOUNTS_TTL, {})  # as in a new process
        _checked._file_system(os.stat(path).st_dev)

    once = {}  # what a process reads once, for its first marker or stamp (the loop above pays it only once)
    for what, read in (("code id", _checked._code_id.__wrapped__), ("boot id", _checked._boot_id.__wrapped__),
                       ("mount table", mount_table)):
        t = time.perf_counter()
        read()
        once[what] = (time.perf_counter() - t) * 1e6
    for m in (med, med_cpu):
        for k in ("memory", "disk", "content"):
            m[k] += m["stamp"]
    ways = ("full", "memory", "disk", "content", "floor")[: 5 if "floor" in med else 4]

    def shares(m: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
        load, rest = m["interpreter"], m["model"] - m["memory"]  # a Model load without its check
        return {k: m[k] / (m[k] + rest) for k in ways}, {k: m[k] / (m[k] + load) for k in ways}

    (of_model, of_bare), (of_model_wall, of_bare_wall) = shares(med_cpu), shares(med)
    return {
        "model": name, "size_bytes": len(data), "rounds": rounds, "clock": "CPU time of this process (wall in ms_wall)",
        "ms": {k: v * 1e3 for k, v in med_cpu.items()}, "ms_wall": {k: v * 1e3 for k, v in med.items()},
        "stamped": _checked.stamp_of(read_model_bytes(path)[0]) is not None, "once_per_process_us": once,
        "share_of_model_load": of_model, "share": of_bare,
        "share_of_model_load_wall": of_model_wall, "share_wall": of_bare_wall,
    }


CNN64 = Path(__file__).resolve().parent / "models" / "cnn64_int8.tflite"


def speed(int8_models: dict[str, Path], cold_model: Path, rounds: int, budget_s: float) -> dict[str, Any]:
    """Every row: cold start on ``cold_model``, float input and model check on each int8 model (and the 64x64 CNN)."""
    models = {**int8_models, "cnn64": CNN64}
    return {
        "cold": cold(cold_model, rounds),
        "float_input": [float_input(p, n, budget_s, 0.05) for n, p in models.items()],
        "model_check": [model_check(p, n, max(5, rounds)) for n, p in models.items()],
    }


def targets(speed: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets with what this run measured (CPU time for processes: wall time is the machine's)."""
    rows = []
    c = speed["cold"]
    noise = f"A/A {c['a_a_ratio']['cpu']:.2f}"
    rows.append({"id": "cold-import", "what": "`import edgeq.runtime` + backend / `import ai_edge_litert.interpreter, numpy` (CPU)",
                 "target": "≤ 1.15x", "measured": f"{c['import_ratio']['cpu']:.2f}x (wall {c['import_ratio']['wall']:.2f}x; {noise})",
                 "met": c["import_ratio"]["cpu"] <= 1.15})
    rows.append({"id": "cold-run", "what": "`edgeq run M --random` / 5-line LiteRT script, whole process (CPU)",
                 "target": "≤ 1.3x", "measured": f"{c['run_ratio']['cpu']:.2f}x (wall {c['run_ratio']['wall']:.2f}x; {noise})",
                 "met": c["run_ratio"]["cpu"] <= 1.3})
    rss = c["run_ratio"]["rss"]
    rows.append({"id": "cold-run-memory", "what": "same, peak RSS (GNU time)", "target": "≤ 1.15x",
                 "measured": f"{rss:.2f}x" if rss else "not measured (no /usr/bin/time)", "met": rss <= 1.15 if rss else None})
    for f in speed["float_input"]:
        small = not f["model"].startswith("mnv2")  # the issue: a ratio on MobileNetV2, microseconds on small CNNs
        rows.append({"id": f"float-input-{f['model']}", "what": f"`Model.predict(float)` vs the naive numpy loop, {f['model']}",
                     "target": "≤ +8 µs" if small else "≤ 1.01x",
                     "measured": (f"{f['predict_extra_us']:+.1f} µs" if small else f"{f['predict_over_naive']:.3f}x")
                     + f" (A/A {f['a_a_extra_us']:+.1f} µs, {f['a_a_ratio']:.3f}x)",
                     "met": f["predict_extra_us"] <= 8 if small else f["predict_over_naive"] <= 1.01})
    for m in speed["model_check"]:
        s, b = m["share_of_model_load"], m["share"]
        rows.append({"id": f"model-check-{m['model']}", "what": f"model check / warm `Model(path)` load, {m['model']}",
                     "target": "≤ 5 %", "measured": f"in full {s['full']:.0%}, proven in this process {s['memory']:.1%}, "
                     f"proven by an earlier one {s['disk']:.1%} (by content: {s['content']:.1%}; of check + bare "
                     f"interpreter load: {b['full']:.0%}, {b['memory']:.1%}, {b['disk']:.1%}"
                     + (f"; a proof look-up's floor alone: {s['floor']:.1%}" if "floor" in s else "") + ")",
                     "met": max(s["memory"], s["disk"]) <= 0.05})
    return rows


def markdown(speed: dict[str, Any]) -> list[str]:
    """The section of the report: the cold-start medians, then the per-model rows."""
    c = speed["cold"]
    out = ["## Speed (issue #18): edgeq against its bare equivalent, same run", "",
           f"Fresh processes on `{c['model']}`, interleaved, median of {c['rounds']} rounds; {c['compiled']}. "
           "CPU = user + system time of the child (less sensitive to a busy machine than wall time).", "",
           "| command | wall s | CPU s | peak RSS MiB |", "|---|---|---|---|"]
    out += [f"| {name} | {v['wall']:.3f} | {v['cpu']:.3f} | {v['rss'] or float('nan'):.1f} |" for name, v in c["medians"].items()
            if v["wall"]]
    out += ["", "| float input, 1 thread | naive µs | predict µs | predict − naive µs | predict / naive | A/A |",
            "|---|---|---|---|---|---|"]
    out += [f"| {f['model']} | {f['us']['naive']:.1f} | {f['us']['predict']:.1f} | {f['predict_extra_us']:+.1f} | "
            f"{f['predict_over_naive']:.3f} | {f['a_a_ratio']:.3f} ({f['a_a_extra_us']:+.1f} µs) |" for f in speed["float_input"]]
    out += ["", "| model check (CPU) | size KiB | in full ms | proven here ms | proven on disk ms | same, by content ms | "
            "stamp µs | floor of a proof look-up µs | first in a new process ms | interpreter load ms | `Model(path)` ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    out += [f"| {m['model']} | {m['size_bytes'] / 1024:.0f} | {m['ms']['full']:.2f} | {m['ms']['memory']:.3f} | "
            f"{m['ms']['disk']:.3f}{'' if m['stamped'] else ' (hash)'} | {m['ms']['content']:.3f} | "
            f"{m['ms']['stamp'] * 1e3:.1f} | {m['ms'].get('floor', float('nan')) * 1e3:.1f} | "
            f"{m['ms']['first in a new process']:.3f} | {m['ms']['interpreter']:.2f} | "
            f"{m['ms']['model']:.2f} |"
            for m in speed["model_check"]]
    return out + [""]


def main() -> None:
    """``python benchmarks/_speed.py [--rounds N] MODEL.tflite …``: the rows on any int8 models, as JSON and Markdown."""
    import argparse
    import json

    from _common import SAMPLE_DIR

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("models", nargs="*", type=Path, help="int8 models (default: the bundled sample)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--budget", type=float, default=4.0, help="seconds per float-input model")
    args = p.parse_args()
    models = {m.stem: m.resolve() for m in args.models} or {"sample": SAMPLE_DIR / "model_int8.tflite"}
    result = speed(models, SAMPLE_DIR / "model_int8.tflite", args.rounds, args.budget)
    result["targets"] = targets(result)
    print(json.dumps(result, indent=1, default=str))
    print("\n".join(markdown(result)))
    print("\n".join(f"- {t['id']}: {t['measured']} (target {t['target']}): {'met' if t['met'] else 'NOT met'}"
                    for t in result["targets"]))


if __name__ == "__main__":
    main()
