#!/usr/bin/env python3
"""QAT on a real architecture that uses the layouts `edgeq qat` used to refuse: Keras's own EfficientNetB0.

``keras.applications.EfficientNetB0`` has ``Rescaling`` and ``Normalization`` at its input, swish convolutions,
squeeze-excite blocks (sigmoid convolution, ``Multiply``), ``Add`` and BatchNorm. It is built with random weights
(no download) at 32x32x3 with 3 classes, fine-tuned for one epoch of QAT on 120 synthetic images, and compared with
a plain ``edgeq.convert`` of the same model:

* op types of both ``.tflite`` files, and the ops left in float (none expected in either);
* the QAT int8 model against the QAT model as trained (what was trained should be what runs) and against the float
  model, in steps of the int8 output scale, on the 12 held-back samples;
* times of each stage, and the load average (the machine may be shared).

    python benchmarks/qat_layouts.py                      # ~10 min on a loaded 2-core VM
    python benchmarks/qat_layouts.py --out results/x.md   # also writes x.json beside
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = Path(__file__).resolve().parent


def run(workdir: Path) -> dict[str, Any]:
    import keras

    import edgeq
    from edgeq._flatbuffer import parse
    from edgeq.converters.verify import float_ops
    from edgeq.runtime import Model

    keras.utils.set_random_seed(0)
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=3)
    path = workdir / "efficientnetb0.keras"
    model.save(path)
    rng = np.random.default_rng(0)
    x = rng.random((120, 32, 32, 3), dtype=np.float32) * 255
    y = (x.mean(axis=(1, 2, 3)) / 255 * 27).astype(np.int64) % 3
    np.savez(workdir / "train.npz", x=x, y=y)

    t0 = time.perf_counter()
    qat = edgeq.qat(path, workdir / "train.npz", workdir / "qat.tflite", epochs=1, batch_size=16)
    qat_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    ptq = edgeq.convert(path, workdir / "train.npz", workdir / "ptq.tflite", samples=40)
    ptq_seconds = time.perf_counter() - t0

    files = {"qat": parse(qat.out.read_bytes()), "ptq": parse(ptq.out.read_bytes())}
    step = Model(qat.out).outputs[0].scale
    trained, original = qat.conversion.verification, qat.original
    return {
        "model": "keras.applications.EfficientNetB0(weights=None, input_shape=(32, 32, 3), classes=3)",
        "layers": {role: n for role, n in Counter(s["role"] for s in qat.layers.values()).items()},
        "ops": {k: dict(Counter(op.op for op in f.subgraphs[0].operators)) for k, f in files.items()},
        "float_ops": {k: float_ops(f) for k, f in files.items()},
        "output_step": step,
        "vs_trained": {"samples": trained.samples, "max_steps": trained.max_abs_error / step,
                       "mean_steps": trained.mean_abs_error / step, "sqnr_db": trained.sqnr_db},
        "vs_float": {"samples": original.samples, "max_steps": original.max_abs_error / step,
                     "mean_steps": original.mean_abs_error / step, "sqnr_db": original.sqnr_db},
        "seconds": {"qat_total": qat_seconds, **{f"qat_{k}": v for k, v in qat.conversion.seconds.items()},
                    "plain_convert": ptq_seconds},
        "load_average": os.getloadavg(), "cpus": os.cpu_count(), "machine": platform.machine(),
    }


def markdown(r: dict[str, Any]) -> str:
    ops = sorted(set(r["ops"]["qat"]) | set(r["ops"]["ptq"]))
    lines = [
        "# QAT on EfficientNetB0 (Rescaling, Normalization, swish, sigmoid, Multiply, Add, BatchNorm)", "",
        f"`{r['model']}`, random weights, one epoch of QAT on 120 synthetic images; `benchmarks/qat_layouts.py`.", "",
        f"QAT plan: {', '.join(f'{n} {role}' for role, n in sorted(r['layers'].items()))}.", "",
        "| op | QAT int8 | plain `edgeq convert` int8 |", "|---|---:|---:|",
        *[f"| {op} | {r['ops']['qat'].get(op, 0)} | {r['ops']['ptq'].get(op, 0)} |" for op in ops],
        f"| ops left in float | {r['float_ops']['qat'] or 'none'} | {r['float_ops']['ptq'] or 'none'} |", "",
        "| QAT int8 model vs | samples | max error (output steps) | mean error (output steps) | SQNR dB |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, label in (("vs_trained", "the QAT model as trained"), ("vs_float", "the original float model")):
        v = r[key]
        lines.append(f"| {label} | {v['samples']} | {v['max_steps']:.2f} | {v['mean_steps']:.3f} | {v['sqnr_db']:.1f} |")
    s = r["seconds"]
    lines += ["", f"Output step {r['output_step']:.6f}. Times: QAT {s['qat_total']:.0f} s (load {s['qat_load']:.0f}, "
              f"train {s['qat_train']:.0f}, convert {s['qat_convert']:.0f}, verify {s['qat_verify']:.0f}); plain convert "
              f"{s['plain_convert']:.0f} s. Load average {', '.join(f'{v:.1f}' for v in r['load_average'])} on "
              f"{r['cpus']} {r['machine']} cores (shared machine: times are indicative only).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Markdown file to write (a .json with every figure goes beside)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qat-layouts-") as tmp:
        result = run(Path(tmp))
    text = markdown(result)
    print(text)
    if args.out:
        args.out.write_text(text)
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
