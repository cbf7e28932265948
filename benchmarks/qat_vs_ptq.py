#!/usr/bin/env python3
"""Float vs post-training quantization (PTQ) vs quantization-aware training (QAT), int8 and int4 weights: accuracy and size.

Two cases, both on Fashion-MNIST read from Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``;
not needed by the tests):

* ``sample``: the bundled sample model (``samples/fashion_mnist/model.keras``), measured on the 10 000 test images
  and on the 1000 bundled labelled images;
* ``mobilenet``: a narrow MobileNet-style model (depthwise-separable blocks, BatchNorm, ReLU), trained briefly.

Each case reports float, PTQ int8 (``edgeq.convert``, 200 calibration images from the training split) and QAT
int8 (``edgeq.qat``, fine-tuned on training images it never saw before). Because QAT fine-tunes and PTQ does not,
a control separates the two effects: the float model fine-tuned the same way (same images, epochs, optimizer),
then converted post-training (``ft+PTQ``). QAT beating PTQ but not ft+PTQ means the gain is the training, not the
quantization-awareness.

With ``--weights int4`` (or ``int8,int4``, the default) the same for int4 weights (``--mode int4-weights``: int4
Conv2D/Dense weights, float activations): PTQ int4 (plain rounding), PTQ int4 ``--refine``, QAT int4
(``edgeq.qat(weights="int4")``, whose learning rate decays to 0, cosine) and the float control fine-tuned with the
same schedule, converted to int4.

    python benchmarks/qat_vs_ptq.py                      # ~15 min on a busy 2-core VM (int4 rows alone: ~10 min)
    python benchmarks/qat_vs_ptq.py --weights int4 --epochs 2 --learning-rate 3e-4 --out /tmp/qat4.json  # the int4 results

Accuracy differences below ~0.5 points on 10 000 images (~0.3 % standard error) are noise.
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
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE = REPO / "samples" / "fashion_mnist"
DATA_DIR = Path("/usr/share/datasets/fashion-mnist")


def fashion_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    sys.path.insert(0, str(REPO / "samples"))
    from make_fashion_mnist import load_fashion_mnist, preprocess

    x_train, y_train, x_test, y_test = load_fashion_mnist(DATA_DIR)
    return preprocess(x_train), y_train.astype(np.int64), preprocess(x_test), y_test.astype(np.int64)


def mobilenet_style(width: float = 0.25) -> Any:
    """Depthwise-separable blocks (DepthwiseConv/BN/ReLU, 1x1 Conv/BN/ReLU), global pooling, Dense softmax."""
    import keras

    L = keras.layers
    inp = keras.Input((28, 28, 1), name="image")
    x = L.Conv2D(max(2, int(16 * width)), 3, strides=2, padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    for filters, stride in [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1)]:
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(max(2, int(filters * width)), 1, use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10, activation="softmax")(x), name="mobilenet_style")


def tflite_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float:
    from edgeq.runtime import Model

    model = Model(path)
    hits = sum(int(np.argmax(next(iter(model.predict(x[i : i + 1]).values()))) == y[i]) for i in range(len(x)))
    return hits / len(x)


def keras_accuracy(model: Any, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(model.predict(x, batch_size=512, verbose=0), axis=1) == y))


def run_case(name: str, model_path: Path, data: dict[str, Any], work: Path, epochs: int, lr: float,
             weights: list[str]) -> dict[str, Any]:
    import keras

    import edgeq

    x_test, y_test = data["x_test"], data["y_test"]
    calib, train_npz, ft_x, ft_y = data["calib"], data["train_npz"], data["ft_x"], data["ft_y"]
    rows: dict[str, Any] = {}
    float_model = keras.models.load_model(model_path, compile=False)
    rows["float"] = {"accuracy": keras_accuracy(float_model, x_test, y_test), "bytes": model_path.stat().st_size}

    ptq_modes = {"int8": {"mode": "int8"}, "int4": {"mode": "int4-weights"}}
    for w in weights:
        variants = [("", False)] + ([("_refine", True)] if w == "int4" else [])
        for suffix, refine in variants:
            t0 = time.perf_counter()
            ptq = edgeq.convert(model_path, calib, work / f"{name}_ptq_{w}{suffix}.tflite", samples=200, force=True,
                                refine=refine, **ptq_modes[w])
            rows[f"ptq_{w}{suffix}"] = {"accuracy": tflite_accuracy(ptq.out, x_test, y_test), "bytes": ptq.out.stat().st_size,
                                        "seconds": time.perf_counter() - t0}

        t0 = time.perf_counter()
        qat = edgeq.qat(model_path, train_npz, work / f"{name}_qat_{w}.tflite", epochs=epochs, learning_rate=lr, force=True,
                        weights=w)
        rows[f"qat_{w}"] = {"accuracy": tflite_accuracy(qat.out, x_test, y_test), "bytes": qat.out.stat().st_size,
                            "seconds": time.perf_counter() - t0, "ranges": len(qat.ranges),
                            "trained_accuracy": keras_accuracy(qat.trained_model, x_test, y_test),
                            "agreement_with_trained": qat.conversion.verification.agreement,
                            "sqnr_vs_trained_db": qat.conversion.verification.sqnr_db}

    # control: the same fine-tuning in float (same images as QAT trained on, same epochs, batch and optimizer;
    # for int4 the same cosine decay of the learning rate as QAT int4)
    for w in weights:
        keras.utils.set_random_seed(0)
        tuned = keras.models.load_model(model_path, compile=False)
        rate = keras.optimizers.schedules.CosineDecay(lr, -(-len(ft_y) // 32) * epochs) if w == "int4" else lr
        tuned.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy")
        tuned.fit(ft_x, ft_y, epochs=epochs, batch_size=32, verbose=0)
        tuned_path = work / f"{name}_finetuned_{w}.keras"
        tuned.save(tuned_path)
        rows[f"finetuned_float_{w}"] = {"accuracy": keras_accuracy(tuned, x_test, y_test)}
        ft_ptq = edgeq.convert(tuned_path, calib, work / f"{name}_ft_ptq_{w}.tflite", samples=200, force=True, **ptq_modes[w])
        rows[f"finetuned_ptq_{w}"] = {"accuracy": tflite_accuracy(ft_ptq.out, x_test, y_test), "bytes": ft_ptq.out.stat().st_size}
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="write the JSON here")
    parser.add_argument("--qat-samples", type=int, default=5000, help="training images QAT fine-tunes on")
    parser.add_argument("--epochs", type=int, default=1, help="QAT (and control) epochs")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="QAT (and control) Adam learning rate")
    parser.add_argument("--weights", default="int8,int4", help="int8, int4 or int8,int4: which rows to measure")
    args = parser.parse_args(argv)
    weights = [w.strip() for w in args.weights.split(",")]
    if not weights or set(weights) - {"int8", "int4"}:
        parser.error(f"--weights takes int8, int4 or int8,int4. Received: {args.weights!r}")

    import keras
    import tensorflow as tf

    from edgeq.runtime.evaluate import evaluate

    x_train, y_train, x_test, y_test = fashion_mnist()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "device": {"machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "settings": {"qat_samples": args.qat_samples, "epochs": args.epochs, "learning_rate": args.learning_rate,
                     "weights": weights, "test_images": len(y_test), "calibration_images": 200},
        "load_average": list(os.getloadavg()),
        "cases": {},
    }
    with tempfile.TemporaryDirectory(prefix="edgeq-qat-bench-") as tmp:
        work = Path(tmp)
        # QAT trains on indices 50 000+: unseen by the MobileNet (trained on < 30 000); the sample saw all 60 000
        lo, hi = 50_000, 50_000 + args.qat_samples
        np.savez(work / "qat_train.npz", x=x_train[lo:hi], y=y_train[lo:hi])
        np.save(work / "calib.npy", x_train[-200:])
        held = min(100, args.qat_samples // 10)  # edgeq.qat holds these back; the control skips them too
        order = np.random.default_rng(0).permutation(args.qat_samples)
        train_idx = lo + order[held:]
        data = {"x_test": x_test, "y_test": y_test, "calib": work / "calib.npy", "train_npz": work / "qat_train.npz",
                "ft_x": x_train[train_idx], "ft_y": y_train[train_idx]}

        sample = run_case("sample", SAMPLE / "model.keras", data, work, args.epochs, args.learning_rate, weights)
        first = weights[0]
        bundled = {"float": evaluate(work / f"sample_ptq_{first}.tflite", SAMPLE / "eval",
                                     reference=SAMPLE / "model.keras").reference.top1}
        for w in weights:
            for kind in ("ptq", "qat"):
                bundled[f"{kind}_{w}"] = evaluate(work / f"sample_{kind}_{w}.tflite", SAMPLE / "eval").top1
        sample["bundled_eval_1000"] = bundled
        results["cases"]["sample"] = sample

        keras.utils.set_random_seed(1)
        mobilenet = mobilenet_style()
        mobilenet.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        t0 = time.perf_counter()
        mobilenet.fit(x_train[:30_000], y_train[:30_000], epochs=3, batch_size=128, verbose=0)
        results["settings"]["mobilenet_training_s"] = time.perf_counter() - t0
        mobilenet.save(work / "mobilenet.keras")
        results["cases"]["mobilenet"] = run_case("mobilenet", work / "mobilenet.keras", data, work, args.epochs,
                                                 args.learning_rate, weights)
    results["seconds"] = time.perf_counter() - started
    results["load_average_end"] = list(os.getloadavg())
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2, default=float) + "\n")
    return 0


def markdown(results: dict[str, Any]) -> str:
    settings = results["settings"]
    lines = [f"10 000 Fashion-MNIST test images; QAT: {settings['qat_samples']} training images, "
             f"{settings['epochs']} epoch(s), Adam {settings['learning_rate']:g}"]
    weights = settings.get("weights", ["int8"])
    if "int8" in weights:
        lines += ["", "| model | float | PTQ int8 | QAT int8 | QAT − PTQ | control: fine-tuned float → PTQ | size float / PTQ / QAT |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in results["cases"].items():
            f, p, q, c = (r[k]["accuracy"] * 100 for k in ("float", "ptq_int8", "qat_int8", "finetuned_ptq_int8"))
            sizes = " / ".join(f"{r[k]['bytes'] / 1024:.1f} KB" for k in ("float", "ptq_int8", "qat_int8"))
            lines.append(f"| {name} | {f:.2f} % | {p:.2f} % | {q:.2f} % | {q - p:+.2f} pts | {c:.2f} % | {sizes} |")
    if "int4" in weights:
        lines += ["", "int4 weights (`--mode int4-weights`: int4 Conv2D/Dense weights per channel, float activations):", "",
                  "| model | float | PTQ int4 | PTQ int4 --refine | QAT int4 | QAT − float | control: fine-tuned float (cosine) "
                  "| control → PTQ int4 | size PTQ / QAT |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name, r in results["cases"].items():
            f, p, pr, q, t, c = (r[k]["accuracy"] * 100 for k in ("float", "ptq_int4", "ptq_int4_refine", "qat_int4",
                                                                    "finetuned_float_int4", "finetuned_ptq_int4"))
            sizes = " / ".join(f"{r[k]['bytes'] / 1024:.1f} KB" for k in ("ptq_int4", "qat_int4"))
            lines.append(f"| {name} | {f:.2f} % | {p:.2f} % | {pr:.2f} % | {q:.2f} % | {q - f:+.2f} pts | {t:.2f} % | "
                         f"{c:.2f} % | {sizes} |")
    e = results["cases"]["sample"]["bundled_eval_1000"]
    lines += ["", "bundled sample on its 1000 labelled images: float " + f"{e['float'] * 100:.2f} %" + "".join(
        f", {k.replace('_', ' ').upper().replace('INT', 'int')} {v * 100:.2f} %" for k, v in e.items() if k != "float")]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
