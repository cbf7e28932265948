#!/usr/bin/env python3
"""Closeness to the float model: bare TF converter vs edgeq int8 vs int8 ``--refine``; int4 weights vs int4 ``--refine``.

Every row is measured on the same held-out images, never used for calibration or refinement, against the
float Keras model: mean |output error|, top-1 agreement, SQNR of the outputs, and the conversion time.

* ``bare TF int8``: ``TFLiteConverter`` with ``Optimize.DEFAULT``, int8 ops and IO and the same 200
  calibration samples (what edgeq's int8 mode runs);
* ``edgeq int8`` / ``int8 --refine``: ``edgeq.convert`` without and with ``refine=True``;
* ``AEQ int4`` / ``int4 --refine``: ``--mode int4-weights`` (ai-edge-quantizer, per-channel int4 weights)
  without and with ``refine=True``.

Cases: the bundled sample (``samples/fashion_mnist``: 200 calibration images, 1019 held-out labelled images),
and a narrow MobileNet-style model (depthwise-separable blocks with BatchNorm, from ``qat_vs_ptq.py``), trained
briefly on the held-out images (agreement with its own float model is what is measured, so that is fair).

    python benchmarks/accuracy.py                       # both cases, ~5 min on a busy 2-core VM
    python benchmarks/accuracy.py --cases sample --out benchmarks/results/accuracy.json
    python benchmarks/accuracy.py --cases none --mobilenetv2-samples 50  # cost of --refine on MobileNetV2-224

Writes JSON (``--out``) and a Markdown table next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "samples" / "fashion_mnist"
CALIB_SAMPLES = 200


def _images(folder: Path, inputs: Any) -> np.ndarray:
    from edgeq.converters.datasets import load_samples

    samples = load_samples(folder, inputs, samples=100_000, seed=0)
    return np.concatenate([s[0] for s in samples.calibration])


def _measure(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    from edgeq.runtime.output_stats import sqnr_db

    out = np.stack([predict(x[i : i + 1]).reshape(-1) for i in range(len(x))]).astype(np.float64)
    err = np.abs(out - reference)
    return {"mean_abs_error": float(err.mean()), "max_abs_error": float(err.max()),
            "agreement": float(np.mean(np.argmax(out, 1) == np.argmax(reference, 1))),
            "sqnr_db": sqnr_db(reference, out)}


def _tflite_predict(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    from edgeq.runtime import Model

    model = Model(path, threads=1)
    return lambda x: next(iter(model.predict(x).values()))


def _bare_converter(model_path: Path, calib: np.ndarray, out: Path) -> float:
    """The TFLite converter alone, configured as its documentation shows for full-integer int8."""
    import keras
    import tensorflow as tf

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        keras.models.load_model(model_path, compile=False).export(tmp, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        out.write_bytes(converter.convert())
    return time.perf_counter() - started


def run_case(name: str, model_path: Path, calib_npy: Path, x_eval: np.ndarray, work: Path) -> dict[str, Any]:
    import keras

    import edgeq

    reference = keras.models.load_model(model_path, compile=False).predict(x_eval, batch_size=256, verbose=0)
    reference = reference.reshape(len(x_eval), -1).astype(np.float64)
    calib = np.load(calib_npy)
    rows: dict[str, Any] = {}
    bare = work / f"{name}_bare.tflite"
    seconds = _bare_converter(model_path, calib, bare)
    rows["bare TF int8"] = {**_measure(_tflite_predict(bare), x_eval, reference), "seconds": seconds}
    for label, mode, refine in (("edgeq int8", "int8", False), ("int8 --refine", "int8", True),
                                ("AEQ int4", "int4-weights", False), ("int4 --refine", "int4-weights", True)):
        out = work / f"{name}_{mode}_{refine}.tflite"
        result = edgeq.convert(model_path, calib_npy, out, mode=mode, samples=CALIB_SAMPLES, refine=refine, force=True)
        row = {**_measure(_tflite_predict(out), x_eval, reference),
               "seconds": sum(v for k, v in result.seconds.items() if k != "verify"),
               "refine_seconds": result.seconds.get("refine"), "bytes": out.stat().st_size}
        if result.refine is not None:
            row["steps"] = [s.to_dict() for s in result.refine.steps]
            row["layers_refined"] = [result.refine.layers, result.refine.candidates]
        rows[label] = row
        print(f"{name:10s} {label:15s} mean|err| {row['mean_abs_error']:.5f}  agreement {row['agreement'] * 100:5.1f} %"
              f"  SQNR {row['sqnr_db']:5.1f} dB  {row['seconds']:.1f} s", file=sys.stderr)
    return {"held_out_images": len(x_eval), "calibration_images": len(calib), "rows": rows}


def _mobilenet(x: np.ndarray, y: np.ndarray, path: Path, epochs: int) -> None:
    import keras

    sys.path.insert(0, str(HERE))
    from qat_vs_ptq import mobilenet_style

    keras.utils.set_random_seed(0)
    model = mobilenet_style(width=0.5)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    model.save(path)


def _labels(folder: Path) -> np.ndarray:
    from edgeq.converters.datasets import image_files

    return np.array([int(p.parent.name.split("_")[0]) for p in image_files(folder)])


def mobilenetv2_cost(work: Path, samples: int) -> dict[str, Any]:
    """Time of int8 conversion with and without ``--refine`` on MobileNetV2-224 (untrained weights: cost only)."""
    import keras

    import edgeq

    keras.utils.set_random_seed(0)
    path = work / "mobilenetv2.keras"
    keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3)).save(path)
    data = np.random.default_rng(0).random((samples, 224, 224, 3), dtype=np.float32) * 2 - 1
    np.save(work / "mnv2.npy", data)
    row: dict[str, Any] = {"calibration_samples": samples}
    for label, refine in (("int8", False), ("int8 --refine", True)):
        started = time.perf_counter()
        result = edgeq.convert(path, work / "mnv2.npy", work / f"mnv2_{refine}.tflite", samples=samples, refine=refine,
                               force=True)
        row[label] = {"seconds_total": time.perf_counter() - started, "seconds": dict(result.seconds)}
        if result.refine is not None:
            row[label]["steps"] = [s.to_dict() for s in result.refine.steps]
            row[label]["layers_refined"] = [result.refine.layers, result.refine.candidates]
    plain = row["int8"]["seconds"]
    row["refine_over_conversion"] = row["int8 --refine"]["seconds"]["refine"] / (plain["load"] + plain["convert"])
    print(f"MobileNetV2-224: refine {row['int8 --refine']['seconds']['refine']:.0f} s vs load+convert "
          f"{plain['load'] + plain['convert']:.0f} s ({row['refine_over_conversion']:.2f}x)", file=sys.stderr)
    return row


def markdown(results: dict[str, Any]) -> str:
    lines = ["| case | conversion | mean abs error | top-1 agreement | SQNR (dB) | time (s) |", "|---|---|---:|---:|---:|---:|"]
    for case, data in results["cases"].items():
        for label, r in data["rows"].items():
            extra = f" (refine {r['refine_seconds']:.1f})" if r.get("refine_seconds") else ""
            lines.append(f"| {case} | {label} | {r['mean_abs_error']:.5f} | {r['agreement'] * 100:.1f} % | "
                         f"{r['sqnr_db']:.1f} | {r['seconds']:.1f}{extra} |")
    cost = results.get("mobilenetv2_cost")
    if cost:
        plain = cost["int8"]["seconds"]
        lines += ["", f"MobileNetV2-224 ({cost['calibration_samples']} calibration samples): --refine took "
                  f"{cost['int8 --refine']['seconds']['refine']:.0f} s, load + conversion {plain['load'] + plain['convert']:.0f} s "
                  f"({cost['refine_over_conversion']:.2f}x)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="sample,mobilenet", help="comma-separated: sample, mobilenet")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of the MobileNet-style model")
    parser.add_argument("--mobilenetv2-samples", type=int, default=0,
                        help="also time int8 vs int8 --refine on MobileNetV2-224 with this many calibration samples")
    parser.add_argument("--out", type=Path, help="write the JSON here (and the Markdown table beside it)")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from edgeq.converters.source import InputSpec

    inputs = [InputSpec("image", (None, 28, 28, 1), "float32")]
    x_eval, y_eval = _images(SAMPLE / "eval", inputs), _labels(SAMPLE / "eval")
    results: dict[str, Any] = {
        "device": {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "load_average": list(os.getloadavg()),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="edgeq-accuracy-") as tmp:
        work = Path(tmp)
        np.save(work / "calib.npy", _images(SAMPLE / "calib", inputs))
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        if "sample" in cases:
            results["cases"]["sample"] = run_case("sample", SAMPLE / "model.keras", work / "calib.npy", x_eval, work)
        if "mobilenet" in cases:
            _mobilenet(x_eval, y_eval, work / "mobilenet.keras", args.epochs)
            results["cases"]["mobilenet"] = run_case("mobilenet", work / "mobilenet.keras", work / "calib.npy", x_eval, work)
        if args.mobilenetv2_samples:
            results["mobilenetv2_cost"] = mobilenetv2_cost(work, args.mobilenetv2_samples)
    table = markdown(results)
    print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
        args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
