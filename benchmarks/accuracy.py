#!/usr/bin/env python3
"""Closeness to the float model, side by side: bare TF converter, ai-edge-quantizer, edgeq, edgeq ``--refine``.

Every row is measured on the same held-back inputs, never used for calibration or refinement, against the
float Keras model: mean |output error|, top-1 agreement, SQNR of the outputs, the conversion time, and the
**output-grid floor**: the mean |error| of the float outputs merely rounded to the model's int8 output grid
(its output tensor's scale and zero point), the error no int8 model with that output can go below; and, for
a softmax output, the same with the softmax *input* also rounded to the model's int8 grid.

int8 rows (all with the same calibration samples):

* ``bare TF``: ``TFLiteConverter`` with ``Optimize.DEFAULT``, int8 ops and IO, as its documentation shows;
* ``AEQ``: ai-edge-quantizer's ``static_wi8_ai8`` recipe, calibrated, on edgeq's float32 conversion;
* ``edgeq`` / ``edgeq --refine``: ``edgeq.convert`` without and with ``refine=True``;
* ``edgeq weights only``: ``--mode int8-weights`` (float activations): the share of the error the weights cause.

int4-weights rows (the TF converter has no int4): ``AEQ`` (its ``weight_only_wi4_afp32`` recipe), ``edgeq``
(``--mode int4-weights``, per-channel int4 through ai-edge-quantizer), ``edgeq --refine``. QAT-int4 figures come
from ``benchmarks/qat_vs_ptq.py`` (training is out of scope here).

Cases: the bundled sample (``samples/fashion_mnist``: 200 calibration images, the 1000 held-out labelled
images), a narrow MobileNet-style model (depthwise-separable blocks with BatchNorm, from ``qat_vs_ptq.py``,
trained briefly on the held-out images; closeness to its own float model is what is measured, so that is fair),
and inaSpeechSegmenter's Keras CNNs (the test corpus, tests/zoo/corpus.py; synthetic log-mel patches from
tests/zoo/audio_data.py, calibration and held-back inputs from different seeds).

    python benchmarks/accuracy.py --out benchmarks/results/accuracy.json   # all cases, ~15 min on a busy 2-core VM
    python benchmarks/accuracy.py --cases sample
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
#: inaSpeechSegmenter models of the corpus and their mel bands; calibration / held-back patches
INA = {"keras_speech_music_cnn.hdf5": 21, "keras_male_female_cnn.hdf5": 24}
INA_CALIB, INA_HELD = 200, 300


def _images(folder: Path, inputs: Any) -> np.ndarray:
    from edgeq.converters.datasets import load_samples

    samples = load_samples(folder, inputs, samples=100_000, seed=0)
    return np.concatenate([s[0] for s in samples.calibration])


def _outputs(path: Path, x: np.ndarray) -> np.ndarray:
    from edgeq.runtime import Model

    model = Model(path, threads=1)
    return np.stack([np.concatenate([np.asarray(o, np.float64).reshape(-1) for o in model.predict(x[i : i + 1]).values()])
                     for i in range(len(x))])


def _output_grid(path: Path) -> tuple[float, int] | None:
    """The scale and zero point of the model's (single) int8 output, or ``None`` for a float output."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_path=str(path)).get_output_details()
    if len(details) != 1 or details[0]["dtype"] not in (np.int8, np.uint8) or not details[0]["quantization"][0]:
        return None
    return details[0]["quantization"]


def _measure(path: Path, x: np.ndarray, reference: np.ndarray) -> dict[str, Any]:
    from edgeq.runtime.output_stats import sqnr_db

    out = _outputs(path, x)
    err = np.abs(out - reference)
    row: dict[str, Any] = {"mean_abs_error": float(err.mean()), "max_abs_error": float(err.max()),
                           "agreement": float(np.mean(np.argmax(out, 1) == np.argmax(reference, 1))),
                           "sqnr_db": sqnr_db(reference, out), "bytes": path.stat().st_size, "floor": None}
    grid = _output_grid(path)
    if grid is not None:
        scale, zero = grid
        rounded = (np.clip(np.round(reference / scale) + zero, -128, 127) - zero) * scale
        row["floor"] = float(np.mean(np.abs(rounded - reference)))
    return row


def _softmax_input(path: Path) -> tuple[int, tuple[float, int] | None, float] | None:
    """For a model whose single output is a SOFTMAX: its input tensor, that tensor's int8 grid (or ``None``), beta."""
    from ai_edge_litert.tools import flatbuffer_utils

    from edgeq.converters.refine._layers import op_name

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(path.read_bytes()))
    graph = model.subgraphs[0]
    if len(graph.outputs) != 1:
        return None
    ops = [op for op in graph.operators if int(graph.outputs[0]) in op.outputs]
    if not ops or op_name(model, ops[0]) != "SOFTMAX":
        return None
    tensor = int(ops[0].inputs[0])
    q = graph.tensors[tensor].quantization
    grid = (float(q.scale[0]), int(q.zeroPoint[0])) if q is not None and q.scale is not None and len(q.scale) == 1 else None
    return tensor, grid, float(ops[0].builtinOptions.beta)


def _two_grid_floor(int8_path: Path, float_path: Path, x: np.ndarray, reference: np.ndarray) -> float | None:
    """Mean |error| of the float model with only its softmax input and output rounded to the int8 model's grids.

    What an int8 model whose softmax input and output keep the converter's ranges cannot go below, however
    exact every earlier layer is.
    """
    from edgeq.converters.refine._run import TensorReader

    quantized, floating = _softmax_input(int8_path), _softmax_input(float_path)
    output = _output_grid(int8_path)
    if quantized is None or floating is None or quantized[1] is None or output is None:
        return None
    (scale, zero), (out_scale, out_zero) = quantized[1], output
    reader = TensorReader(float_path.read_bytes())
    errors = []
    for i in range(len(x)):
        reader.run([x[i : i + 1]])
        logits = (np.clip(np.round(reader.tensor(floating[0]) / scale) + zero, -128, 127) - zero) * scale
        z = quantized[2] * (logits - logits.max(-1, keepdims=True))
        probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
        rounded = (np.clip(np.round(probs / out_scale) + out_zero, -128, 127) - out_zero) * out_scale
        errors.append(np.abs(rounded.reshape(-1) - reference[i]))
    return float(np.mean(errors))


def _bare_converter(model_path: Path, calib: np.ndarray, out: Path) -> float:
    """The TFLite converter alone, configured as its documentation shows for full-integer int8."""
    import keras
    import tensorflow as tf

    if model_path.suffix in (".h5", ".hdf5"):  # Keras-2 files: from_keras_model (benchmarks/keras_corpus.py)
        from keras_corpus import bare_keras

        data, seconds = bare_keras(model_path, calib)
        out.write_bytes(data)
        return seconds
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


def _aeq(float_tflite: Path, calib: np.ndarray | None, out: Path) -> float:
    """ai-edge-quantizer on the float32 model: static int8 (calibrated) when ``calib`` is given, else int4 weights."""
    import contextlib
    import io

    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    started = time.perf_counter()
    data = float_tflite.read_bytes()
    q = quantizer.Quantizer(bytearray(data))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if calib is None:
            q.load_quantization_recipe(recipe.weight_only_wi4_afp32())
            result = q.quantize()
        else:
            q.load_quantization_recipe(recipe.static_wi8_ai8())
            interpreter = Interpreter(model_content=data)
            key, signature = next(iter(interpreter.get_signature_list().items()))
            shape = interpreter.get_input_details()[0]["shape"]
            name = signature["inputs"][0]
            calibration = q.calibrate({key: [{name: calib[i : i + 1].reshape(shape)} for i in range(len(calib))]},
                                      num_threads=1)
            result = q.quantize(calibration)
    out.write_bytes(bytes(result.quantized_model))
    return time.perf_counter() - started


def _edgeq(model_path: Path, calib_npy: Path, out: Path, mode: str, refine: bool) -> tuple[float, Any]:
    import edgeq

    result = edgeq.convert(model_path, calib_npy, out, mode=mode, samples=CALIB_SAMPLES, refine=refine, force=True)
    return sum(v for k, v in result.seconds.items() if k != "verify"), result


def run_case(name: str, model_path: Path, calib_npy: Path, x_eval: np.ndarray, reference: np.ndarray,
             work: Path) -> dict[str, Any]:
    """Every conversion of one model, scored on ``x_eval`` against the float outputs ``reference`` (``[N, D]``)."""
    calib = np.load(calib_npy)
    rows: dict[str, dict[str, Any]] = {}
    float_path = work / f"{name}_float32.tflite"
    float_seconds, _ = _edgeq(model_path, calib_npy, float_path, "float32", False)

    def add(precision: str, label: str, path: Path, seconds: float, result: Any = None) -> None:
        row = {"precision": precision, **_measure(path, x_eval, reference), "seconds": seconds}
        if result is not None and result.refine is not None:
            row["refine_seconds"] = result.seconds.get("refine")
            row["steps"] = [s.to_dict() for s in result.refine.steps]
            row["layers_refined"] = [result.refine.layers, result.refine.candidates]
        if precision == "int8" and row["floor"] is not None:
            row["two_grid_floor"] = _two_grid_floor(path, float_path, x_eval, reference)
        rows[f"{precision} {label}"] = row
        print(f"{name:22s} {precision:5s} {label:20s} mean|err| {row['mean_abs_error']:.5f}  agreement "
              f"{row['agreement'] * 100:5.1f} %  SQNR {row['sqnr_db']:5.1f} dB  {seconds:.1f} s", file=sys.stderr)

    def attempt(precision: str, label: str, path: Path, convert: Callable[[], Any]) -> None:
        try:
            done = convert()
        except Exception as exc:  # noqa: BLE001 - a conversion that fails is a result of the table
            rows[f"{precision} {label}"] = {"precision": precision, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"{name:22s} {precision:5s} {label:20s} failed: {exc}", file=sys.stderr)
            return
        add(precision, label, path, *(done if isinstance(done, tuple) else (done,)))

    bare, aeq8, aeq4 = (work / f"{name}_{kind}.tflite" for kind in ("bare", "aeq8", "aeq4"))
    attempt("int8", "bare TF", bare, lambda: _bare_converter(model_path, calib, bare))
    attempt("int8", "AEQ", aeq8, lambda: float_seconds + _aeq(float_path, calib, aeq8))
    for precision, mode, label, refine in (("int8", "int8", "edgeq", False), ("int8", "int8", "edgeq --refine", True),
                                           ("int8", "int8-weights", "edgeq weights only", False),
                                           ("int4", "int4-weights", "edgeq", False),
                                           ("int4", "int4-weights", "edgeq --refine", True)):
        if (precision, label) == ("int4", "edgeq"):
            attempt("int4", "AEQ", aeq4, lambda: float_seconds + _aeq(float_path, None, aeq4))
        out = work / f"{name}_{mode}_{refine}.tflite"
        attempt(precision, label, out,
                lambda out=out, mode=mode, refine=refine: _edgeq(model_path, calib_npy, out, mode, refine))
    return {"held_out_inputs": len(x_eval), "calibration_inputs": len(calib), "model": model_path.name, "rows": rows}


def _keras_outputs(model_path: Path, x: np.ndarray) -> np.ndarray:
    import keras

    out = keras.models.load_model(model_path, compile=False).predict(x, batch_size=256, verbose=0)
    return np.asarray(out).reshape(len(x), -1).astype(np.float64)


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


def _targets(rows: dict[str, Any]) -> str:
    """The issue's targets for one case, met or not."""
    bare, refined = rows["int8 bare TF"], rows["int8 edgeq --refine"]
    plain4, refined4 = rows["int4 edgeq"], rows["int4 edgeq --refine"]
    if any("error" in r for r in (bare, refined)):
        return "int8: a conversion failed"
    half = bare["mean_abs_error"] / 2
    floor = refined.get("floor")
    int8 = (f"int8 --refine mean |err| {refined['mean_abs_error']:.5f} vs half the bare converter's {half:.5f}: "
            f"{'met' if refined['mean_abs_error'] <= half else 'not met'}"
            + (f" (output-grid floor {floor:.5f})" if floor is not None else "")
            + f", agreement {'not lower' if refined['agreement'] >= bare['agreement'] else 'LOWER'}")
    if any("error" in r for r in (plain4, refined4)):
        return f"{int8}; int4 weights: the conversion failed"
    gain = refined4["sqnr_db"] - plain4["sqnr_db"]
    int4 = (f"int4 --refine agreement {refined4['agreement'] * 100:.1f} % (target ≥ 99 %), SQNR {gain:+.1f} dB over "
            f"plain rounding (target ≥ +6)")
    return f"{int8}; {int4}"


def markdown(results: dict[str, Any]) -> str:
    load = ", ".join(f"{v:.1f}" for v in results["load_average"])
    lines = [f"`{results['command']}` (TensorFlow {results['versions']['tensorflow']}, Keras {results['versions']['keras']}, "
             f"{results['device']['cpus']} CPUs, load average at the start {load}). Every row on the same held-back "
             "inputs against the float Keras model.", "",
             "| case | precision | converter | mean abs error | top-1 agreement | SQNR (dB) | output-grid floor | "
             "+ softmax-input grid | time (s) |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for case, data in results["cases"].items():
        for label, r in data["rows"].items():
            precision, converter = label.split(" ", 1)
            precision = {"int8": "int8", "int4": "int4 weights"}[precision]
            if "error" in r:
                lines.append(f"| {case} | {precision} | {converter} | failed: {r['error'][:160]} | | | | | |")
                continue
            extra = f" (refine {r['refine_seconds']:.1f})" if r.get("refine_seconds") else ""
            floors = " | ".join(f"{r[k]:.5f}" if r.get(k) is not None else "–" for k in ("floor", "two_grid_floor"))
            lines.append(f"| {case} | {precision} | {converter} | {r['mean_abs_error']:.5f} | {r['agreement'] * 100:.1f} % | "
                         f"{r['sqnr_db']:.1f} | {floors} | {r['seconds']:.1f}{extra} |")
    lines.append("")
    for case, data in results["cases"].items():
        lines.append(f"- {case} ({data['held_out_inputs']} held-back inputs): {_targets(data['rows'])}")
    cost = results.get("mobilenetv2_cost")
    if cost:
        plain = cost["int8"]["seconds"]
        lines += ["", f"MobileNetV2-224 ({cost['calibration_samples']} calibration samples): --refine took "
                  f"{cost['int8 --refine']['seconds']['refine']:.0f} s, load + conversion {plain['load'] + plain['convert']:.0f} s "
                  f"({cost['refine_over_conversion']:.2f}x)"]
    return "\n".join(lines) + "\n"


def _ina_cases(work: Path, names: list[str]) -> dict[str, tuple[Path, Path, np.ndarray, np.ndarray]]:
    """inaSpeechSegmenter models of the corpus: model, calibration file, held-back patches, float outputs."""
    sys.path.insert(0, str(REPO / "tests"))
    from zoo import corpus
    from zoo.audio_data import segmenter_patches

    cases = {}
    for name, mels in INA.items():
        if name.removeprefix("keras_").removesuffix(".hdf5") not in names:
            continue
        path = corpus.files("inaSpeechSegmenter", f"inaSpeechSegmenter/{name}")[0]
        calib = work / f"{name}.npy"
        np.save(calib, segmenter_patches(INA_CALIB, mels, seed=1))
        held = segmenter_patches(INA_HELD, mels, seed=2)
        # Keras 3 loads these Keras-2 files with an extra leading input axis
        cases["ina " + name.removeprefix("keras_").removesuffix(".hdf5")] = (path, calib, held, _keras_outputs(path, held[:, None]))
    return cases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="sample,mobilenet,ina", help="comma-separated: sample, mobilenet, ina")
    parser.add_argument("--ina", default=",".join(n.removeprefix("keras_").removesuffix(".hdf5") for n in INA),
                        help="comma-separated inaSpeechSegmenter models of the ina case")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of the MobileNet-style model")
    parser.add_argument("--mobilenetv2-samples", type=int, default=0,
                        help="also time int8 vs int8 --refine on MobileNetV2-224 with this many calibration samples")
    parser.add_argument("--out", type=Path, help="write the JSON here (and the Markdown table beside it)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))

    import keras
    import tensorflow as tf

    from edgeq.converters.source import InputSpec

    inputs = [InputSpec("image", (None, 28, 28, 1), "float32")]
    x_eval, y_eval = _images(SAMPLE / "eval", inputs), _labels(SAMPLE / "eval")
    results: dict[str, Any] = {
        "device": {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__},
        "command": "python benchmarks/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "load_average": list(os.getloadavg()),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="edgeq-accuracy-") as tmp:
        work = Path(tmp)
        np.save(work / "calib.npy", _images(SAMPLE / "calib", inputs))
        cases = [c.strip() for c in args.cases.split(",") if c.strip()]
        todo: dict[str, tuple[Path, Path, np.ndarray, np.ndarray]] = {}
        if "sample" in cases:
            todo["sample"] = (SAMPLE / "model.keras", work / "calib.npy", x_eval, _keras_outputs(SAMPLE / "model.keras", x_eval))
        if "mobilenet" in cases:
            _mobilenet(x_eval, y_eval, work / "mobilenet.keras", args.epochs)
            todo["mobilenet"] = (work / "mobilenet.keras", work / "calib.npy", x_eval,
                                 _keras_outputs(work / "mobilenet.keras", x_eval))
        if "ina" in cases:
            todo.update(_ina_cases(work, args.ina.split(",")))
        for name, (model, calib, x, reference) in todo.items():
            results["cases"][name] = run_case(name, model, calib, x, reference, work)
        if args.mobilenetv2_samples:
            results["mobilenetv2_cost"] = mobilenetv2_cost(work, args.mobilenetv2_samples)
    results["load_average_after"] = list(os.getloadavg())
    table = markdown(results)
    print(table)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
        args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
