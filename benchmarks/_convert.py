"""Conversion timings: ``edgeq.convert`` against the bare TFLite converter, interleaved.

Run by ``benchmarks/run.py`` as a child process (it imports TensorFlow; the parent never does)::

    python benchmarks/_convert.py PLAN.json RESULT.json

For every model x mode the bare call and ``edgeq.convert`` run back to back, the one going first
alternating from pair to pair, after an untimed warm-up of both. With ``rounds`` > 1 (the plan's) each
model x mode is timed in that many rounds of bare, edgeq and bare again (the A/A noise floor), the order
rotating, and the figures are medians over the rounds. Both read the same SavedModel and
the same representative arrays (a ``.npy`` file), and the bare converter gets exactly edgeq's
converter settings (the mode registry's ``configure``):

* bare: ``np.load`` + ``TFLiteConverter.from_saved_model(dir)`` + settings + ``convert()``;
* edgeq: ``edgeq.convert(dir, data=npy, ...)`` wall time; ``ConversionResult.seconds`` splits it into
  load / convert / verify, and the overhead is ``(wall - verify) / bare - 1``; the same in CPU time
  (``ConversionResult.cpu_seconds``) as ``cpu_overhead``.

Per model, the ``.keras`` path is timed once more in int8 (bare: ``keras.models.load_model`` +
``model.export`` + the same converter call), because that is what most users convert from.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _common import SAMPLE_DIR
from _models import MODELS, BenchModel, preprocess_for, sources


def _bare_converter(tf: Any, saved_model: Path, mode: str, data_file: Path) -> bytes:
    from edgeq.converters.modes import get_mode

    spec = get_mode(mode)
    data = np.load(data_file)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    dataset = (lambda: ([data[i : i + 1]] for i in range(len(data)))) if spec.needs_data else None
    spec.configure(converter, tf, spec.io_type, dataset)
    return bytes(converter.convert())


def _bare_from_keras(tf: Any, keras: Any, keras_path: Path, workdir: Path, mode: str, data_file: Path) -> bytes:
    net = keras.models.load_model(keras_path, compile=False)
    export = workdir / "bare_export"
    net.export(str(export), format="tf_saved_model", verbose=False)
    try:
        return _bare_converter(tf, export, mode, data_file)
    finally:
        import shutil

        shutil.rmtree(export, ignore_errors=True)


def _timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall and CPU seconds (all threads of this process) of ``fn()``, and its value."""
    gc.collect()
    started, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return time.perf_counter() - started, time.process_time() - cpu, value


def _edgeq(src: Path, data: Path, out: Path, mode: str, samples: int) -> dict[str, Any]:
    import edgeq

    wall, cpu, result = _timed(lambda: edgeq.convert(str(src), str(data), str(out), mode=mode, samples=samples,
                                                     force=True))
    seconds = dict(result.seconds)
    cpu_seconds = dict(getattr(result, "cpu_seconds", {}))  # edgeq before 2026-12-01 did not time CPU
    v = result.verification
    return {
        "wall_s": wall,
        "seconds": seconds,
        "without_verify_s": wall - seconds.get("verify", 0.0),
        "cpu_seconds": cpu_seconds,
        "cpu_without_verify_s": cpu - cpu_seconds["verify"] if "verify" in cpu_seconds else None,
        "bytes": out.stat().st_size,
        "warnings": list(result.warnings),
        "agreement": v.agreement,
        "sqnr_db": v.sqnr_db if np.isfinite(v.sqnr_db) else None,
        "verify_samples": v.samples,
    }


def _pair(index: int, bare: Callable[[], bytes], ours: Callable[[], dict[str, Any]],
          aa: bool = False) -> dict[str, Any]:
    """Time the bare call and edgeq's (and the bare call again when ``aa``), the first rotating with ``index``."""
    steps = [("bare", bare), ("edgeq", ours)] + ([("again", bare)] if aa else [])
    start = index % len(steps)
    steps = steps[start:] + steps[:start]
    record: dict[str, Any] = {"order": " → ".join(name for name, _ in steps)}
    for name, fn in steps:
        try:
            if name == "edgeq":
                record["edgeq"] = fn()
            else:
                seconds, cpu, body = _timed(fn)
                record[name] = {"seconds": seconds, "cpu_s": cpu, "bytes": len(body)}
        except Exception as exc:  # noqa: BLE001 - a failed conversion is a result of the benchmark
            record[f"{name}_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
    bare_s = record.get("bare", {}).get("seconds")
    ours_s = record.get("edgeq", {}).get("without_verify_s")
    record["overhead"] = ours_s / bare_s - 1 if bare_s and ours_s else None
    bare_cpu = record.get("bare", {}).get("cpu_s")
    ours_cpu = record.get("edgeq", {}).get("cpu_without_verify_s")
    record["cpu_overhead"] = ours_cpu / bare_cpu - 1 if bare_cpu and ours_cpu else None
    return record


def _rounds(index: int, rounds: int, bare: Callable[[], bytes], ours: Callable[[], dict[str, Any]],
            aa: bool) -> dict[str, Any]:
    """``rounds`` interleaved pairs (see :func:`_pair`) summarised by medians.

    ``bare.seconds`` and ``edgeq.without_verify_s`` are the medians over the rounds, ``edgeq`` otherwise the round
    with the median time, ``overhead`` their ratio minus one, and ``aa`` the second bare call's median over the
    first's minus one: what the machine's noise alone makes of two identical calls. ``cpu_*`` are the same in
CPU seconds of all threads (user + system), which a busy machine disturbs less than wall time.
    """
    runs = [_pair(index + r, bare, ours, aa) for r in range(rounds)]
    if rounds == 1:
        return runs[0]
    record: dict[str, Any] = {"rounds": [{"order": r["order"], "bare_s": r.get("bare", {}).get("seconds"),
                                          "edgeq_s": r.get("edgeq", {}).get("without_verify_s"),
                                          "again_s": r.get("again", {}).get("seconds"),
                                          "bare_cpu_s": r.get("bare", {}).get("cpu_s"),
                                          "edgeq_cpu_s": r.get("edgeq", {}).get("cpu_without_verify_s"),
                                          "again_cpu_s": r.get("again", {}).get("cpu_s")} for r in runs]}
    for r in runs:
        record.update({k: v for k, v in r.items() if k.endswith("_error") and k not in record})
    timed = [r for r in runs if r.get("edgeq") and r.get("bare")]
    if not timed:
        return {**runs[0], **record}
    bare_s = float(np.median([r["bare"]["seconds"] for r in timed]))
    ours = sorted(timed, key=lambda r: r["edgeq"]["without_verify_s"])
    middle = ours[(len(ours) - 1) // 2]["edgeq"]
    ours_s = float(np.median([r["edgeq"]["without_verify_s"] for r in timed]))
    record.update(bare={**timed[0]["bare"], "seconds": bare_s}, edgeq={**middle, "without_verify_s": ours_s},
                  overhead=ours_s / bare_s - 1)
    again = [r["again"]["seconds"] for r in timed if r.get("again")]
    if again:
        record["aa"] = float(np.median(again)) / bare_s - 1
    bare_cpu = float(np.median([r["bare"]["cpu_s"] for r in timed]))
    record["bare"]["cpu_s"] = bare_cpu
    cpus = [r["edgeq"]["cpu_without_verify_s"] for r in timed if r["edgeq"].get("cpu_without_verify_s") is not None]
    if cpus:
        record["edgeq"]["cpu_without_verify_s"] = float(np.median(cpus))
        record["cpu_overhead"] = float(np.median(cpus)) / bare_cpu - 1
    again_cpu = [r["again"]["cpu_s"] for r in timed if r.get("again")]
    if again_cpu:
        record["cpu_aa"] = float(np.median(again_cpu)) / bare_cpu - 1
    return record


def _sample_keras_accuracy(keras: Any, files: Any) -> dict[str, Any]:
    """Top-1 accuracy of the float Keras sample on the bundled labelled images (the reference row)."""
    from edgeq.runtime.evaluate import labelled_folder
    from edgeq.runtime.preprocess import image_to_array

    images = labelled_folder(SAMPLE_DIR / "eval")
    pp = preprocess_for(MODELS["sample"])
    batch = np.stack([image_to_array(p, pp) for p in images.paths])
    net = keras.models.load_model(files.keras, compile=False)
    scores = np.asarray(net.predict(batch, batch_size=250, verbose=0))
    return {"accuracy": float((scores.argmax(axis=1) == images.labels).mean()), "images": len(images.paths),
            "bytes": files.keras.stat().st_size}


def main(plan_file: str, result_file: str) -> int:
    plan = json.loads(Path(plan_file).read_text())
    work = Path(plan["work"])
    out_dir = Path(plan["models_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from edgeq import _lazy

    t0 = time.perf_counter()
    tf = _lazy.tensorflow()
    keras = _lazy.keras()
    result: dict[str, Any] = {"import_tensorflow_s": time.perf_counter() - t0, "tensorflow": tf.__version__,
                              "keras": keras.__version__, "models": {}, "pairs": [], "keras_path": []}
    models: list[BenchModel] = [MODELS[name] for name in plan["models"]]
    files = {}
    for model in models:
        started = time.perf_counter()
        files[model.name] = sources(model, Path(plan["sources_dir"]) / model.name)
        result["models"][model.name] = {"source_built": files[model.name].built,
                                        "source_seconds": time.perf_counter() - started,
                                        "calibration_samples": int(np.load(files[model.name].data, mmap_mode="r").shape[0]),
                                        "keras_bytes": files[model.name].keras.stat().st_size}
        print(f"sources of {model.name}: {'built' if files[model.name].built else 'cached'}", file=sys.stderr, flush=True)

    # warm-up (untimed): the first conversion in a process pays TensorFlow's one-time set-up
    first = files[models[0].name]
    _bare_converter(tf, first.saved_model, "float32", first.data)
    _edgeq(first.saved_model, first.data, work / "warmup.tflite", "float32", len(np.load(first.data, mmap_mode="r")))

    index = 0
    rounds = int(plan.get("rounds", 1))
    result["rounds"] = rounds
    for model in models:
        src = files[model.name]
        samples = result["models"][model.name]["calibration_samples"]
        for mode in plan["modes"]:
            out = out_dir / model.name / f"{mode}.tflite"
            out.parent.mkdir(parents=True, exist_ok=True)
            if plan.get("reuse") and out.exists():
                result["pairs"].append({"model": model.name, "mode": mode, "cached": True, "bytes": out.stat().st_size})
                continue
            record = _rounds(
                index, rounds,
                lambda: _bare_converter(tf, src.saved_model, mode, src.data),
                lambda: _edgeq(src.saved_model, src.data, out, mode, samples),
                aa=rounds > 1,
            )
            record.update(model=model.name, mode=mode, cached=False)
            result["pairs"].append(record)
            print(f"converted {model.name} {mode}: overhead {record['overhead']} (A/A {record.get('aa')}), "
                  f"CPU {record.get('cpu_overhead')} (A/A {record.get('cpu_aa')})",
                  file=sys.stderr, flush=True)
            index += rounds
        if plan.get("keras_path") and not plan.get("reuse"):
            record = _pair(
                index,
                lambda: _bare_from_keras(tf, keras, src.keras, work, "int8", src.data),
                lambda: _edgeq(src.keras, src.data, work / "keras_path.tflite", "int8", samples),
            )
            record.update(model=model.name, mode="int8")
            result["keras_path"].append(record)
            index += 1
    if "sample" in plan["models"] and plan.get("keras_accuracy", True):
        result["sample_keras"] = _sample_keras_accuracy(keras, files["sample"])

    from edgeq._io import atomic_write

    atomic_write(result_file, json.dumps(result, indent=1).encode(), force=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
