"""edgeq vs the bare TensorFlow converter on the Keras corpus (tests/zoo/corpus.py): does it convert, and how close is it.

For each corpus model: edgeq (``edgeq.convert``, int8; basic-pitch also ``--mode dynamic``) and the converter used
directly the way its documentation shows (``keras.models.load_model`` + ``TFLiteConverter.from_keras_model`` for
``.h5``, ``TFLiteConverter.from_saved_model`` for SavedModels, full int8 with the same representative data).
Both are scored on the same held-back inputs (tests/zoo/audio_data.py, another seed than calibration): top-1
agreement with the float model, per-output SQNR (``edgeq.runtime.output_stats.per_output``), size and time.

    python benchmarks/keras_corpus.py --out benchmarks/results/keras-corpus.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from zoo import corpus  # noqa: E402
from zoo.audio_data import pitch_windows, segmenter_patches  # noqa: E402

INA = {"keras_speech_music_noise_cnn.hdf5": 21, "keras_speech_music_cnn.hdf5": 21, "keras_male_female_cnn.hdf5": 24}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()] or text.splitlines() or [type(exc).__name__]
    return f"{type(exc).__name__}: {lines[0][:240]}"


def _score(tflite: bytes | str, float_outputs: list[dict[str, np.ndarray]], held: np.ndarray) -> dict:
    from edgeq.runtime import Model
    from edgeq.runtime.output_stats import per_output

    model = Model(tflite)
    outs, failed = [], 0
    for x in held:
        try:
            outs.append(model.predict(x[None]))
        except Exception:  # noqa: BLE001 - count run-time failures
            failed += 1
            outs.append(None)
    pairs = [(f, o) for f, o in zip(float_outputs, outs) if o is not None]
    if not pairs:
        return {"failed": failed}
    ref = [f for f, _ in pairs]
    got = [{name: o[name] for name in f} if set(f) <= set(o) else dict(zip(f, o.values())) for f, o in pairs]
    stats = per_output(ref, got)
    return {"outputs": [s.to_dict() for s in stats], "failed": failed, "size": model.size_bytes}


def bare_keras(path: Path, calib: np.ndarray) -> tuple[bytes, float]:
    import keras
    import tensorflow as tf

    started = time.perf_counter()
    model = keras.models.load_model(path, compile=False)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in calib)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert()), time.perf_counter() - started


def bare_saved_model(path: Path, calib: np.ndarray, name: str) -> tuple[bytes, float]:
    import tensorflow as tf

    started = time.perf_counter()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ({name: x[None]} for x in calib)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return bytes(converter.convert()), time.perf_counter() - started


def edgeq_row(model: Path, data: Path, held: Path, out: Path, **options) -> dict:
    import edgeq

    started = time.perf_counter()
    try:
        result = edgeq.convert(model, data, out, force=True, verify_data=held, **options)
    except Exception as exc:  # noqa: BLE001 - a failure is a result here
        return {"error": _first_line(exc), "seconds": time.perf_counter() - started}
    v = result.verification
    row = {"seconds": time.perf_counter() - started, "size": out.stat().st_size, "samples": v.samples,
           "failed": v.failed, "agreement": v.agreement, "outputs": [o.to_dict() for o in v.outputs],
           "warnings": result.warnings}
    if result.fallback is not None:
        row["fallback_rows"] = [{"label": s.label, "agreement": s.agreement, "failed": s.failed, "scored": s.scored}
                                for s in result.fallback.steps]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    report = {"tensorflow": __import__("tensorflow").__version__, "keras": keras.__version__, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name, mels in INA.items():
            path = corpus.files("inaSpeechSegmenter", f"inaSpeechSegmenter/{name}")[0]
            calib, held = segmenter_patches(100, mels, seed=1), segmenter_patches(100, mels, seed=2)
            np.save(work / "calib.npy", calib)
            np.save(work / "held.npy", held)
            entry = {"edgeq int8": edgeq_row(path, work / "calib.npy", work / "held.npy", work / "e.tflite",
                                             samples=100),
                     "command": f"edgeq convert {name} --data calib.npy --samples 100 --verify-data held.npy --out m.tflite"}
            try:
                model, seconds = bare_keras(path, calib)
                floats = [{"output_0": np.asarray(o)[None]} for o in keras.models.load_model(path, compile=False).predict(held[:, None], verbose=0)]
                entry["bare TF int8"] = {"seconds": seconds, **_score(model, floats, held)}
            except Exception as exc:  # noqa: BLE001
                entry["bare TF int8"] = {"error": _first_line(exc)}
            report["models"][name] = entry
            print(name, json.dumps(entry, default=str)[:1500], flush=True)
        pb = corpus.files("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp/saved_model.pb")[0].parent
        calib, held = pitch_windows(16, seed=1), pitch_windows(8, seed=2)
        np.save(work / "calib.npy", calib)
        np.save(work / "held.npy", held)
        entry = {}
        for label, options in (("edgeq int8", {}), ("edgeq int8 --keep-float NEG,SQUARE,RESHAPE",
                                                    {"keep_float": "NEG,SQUARE,RESHAPE"}),
                               ("edgeq dynamic", {"mode": "dynamic"})):
            entry[label] = edgeq_row(pb, work / "calib.npy", work / "held.npy", work / "e.tflite", samples=16, **options)
        try:
            model, seconds = bare_saved_model(pb, calib, "input_2")
            entry["bare TF int8"] = {"seconds": seconds, "size": len(model)}
        except Exception as exc:  # noqa: BLE001
            entry["bare TF int8"] = {"error": _first_line(exc)}
        entry["command"] = ("edgeq convert nmp/ --data calib.npy --samples 16 --verify-data held.npy "
                            "[--keep-float NEG,SQUARE,RESHAPE | --mode dynamic] --out m.tflite")
        report["models"]["basic-pitch nmp"] = entry
        print("basic-pitch", json.dumps(entry, default=str)[:3000], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
