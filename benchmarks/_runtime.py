"""Runtime measurements through ``edgeq.runtime.Model`` (no TensorFlow in this process).

* latency: every mode of a model at a thread count, interleaved, p50/p90, ratio to float32;
* accuracy: top-1 of every mode of the sample on its 1000 labelled images;
* overhead: ``Model.predict`` against a bare ``set_tensor``/``invoke``/``get_tensor`` loop on the
  same interpreter and the same ready (already quantized) tensor;
* image path: ``Model.prepare(jpeg)`` against a plain Pillow + numpy baseline giving the same tensor.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from _common import SAMPLE_DIR, interleaved_calls, load_average, median, percentile, ratio
from _models import MODELS, preprocess_for


def _load(path: Path, model_name: str, threads: int) -> Any:
    from edgeq._native import quiet_native_output
    from edgeq.runtime import Model

    with quiet_native_output():  # LiteRT announces its XNNPACK delegate on stderr
        return Model(path, threads=threads, preprocess=preprocess_for(MODELS[model_name]))


def _ready_input(model: Any, seed: int = 0) -> np.ndarray:
    """A prepared input: seeded floats in the model's range, quantized as ``predict`` would."""
    spec, pp = model.inputs[0], model.preprocess
    ends = (np.array([0.0, 255.0]) * pp.scale - np.mean(pp.mean)) / np.mean(pp.std)  # pixels 0 and 255
    x = np.random.default_rng(seed).uniform(ends.min(), ends.max(), spec.shape).astype(np.float32)
    return model.prepare(x)[0]


def latency(paths: dict[str, Path], model_name: str, threads: int, budget_s: float, block_s: float) -> dict[str, Any]:
    """p50/p90 of ``Model.predict`` (ready tensor in, float out) for every mode, interleaved."""
    models = {mode: _load(path, model_name, threads) for mode, path in paths.items()}
    calls: dict[str, Callable[[], Any]] = {}
    for mode, model in models.items():
        x = _ready_input(model)
        calls[mode] = (lambda m, v: lambda: m.predict(v))(model, x)
        warm_until = time.perf_counter() + 0.3
        calls[mode]()
        while time.perf_counter() < warm_until:
            calls[mode]()
    before = load_average()
    runs = interleaved_calls(calls, budget_s, block_s, min_rounds=3)
    rows = {}
    base = median(runs.get("float32", []))
    for mode, values in runs.items():
        p50 = median(values)
        rows[mode] = {"runs": len(values), "p50_ms": p50 * 1e3, "p90_ms": percentile(values, 90) * 1e3,
                      "ratio_to_float32": ratio(p50, base)}
    return {"threads": threads, "budget_s": budget_s, "warmup_s": 0.3, "modes": rows, "load_before": before,
            "load_after": load_average()}


def accuracy(paths: dict[str, Path]) -> dict[str, Any]:
    """Top-1 accuracy of each mode of the sample on ``samples/fashion_mnist/eval`` (1000 labelled images)."""
    from edgeq.runtime.evaluate import labelled_folder

    images = labelled_folder(SAMPLE_DIR / "eval")
    out = {}
    for mode, path in paths.items():
        model = _load(path, "sample", 1)
        hits = sum(int(np.argmax(next(iter(model.predict(p).values()))) == label)
                   for p, label in zip(images.paths, images.labels))
        out[mode] = {"accuracy": hits / len(images.paths), "images": len(images.paths)}
    return out


def overhead(path: Path, model_name: str, threads: int, budget_s: float, block_s: float) -> dict[str, Any]:
    """``Model.predict(ready tensor)`` (float out, and ``raw=True``) against the bare interpreter loop."""
    model = _load(path, model_name, threads)
    x = _ready_input(model)
    interpreter = model.interpreter
    index, out_index = model.inputs[0].index, model.outputs[0].index

    def bare() -> np.ndarray:
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(out_index)

    def bare_again() -> np.ndarray:  # the same loop timed twice: the A/A ratio shows the noise floor
        interpreter.set_tensor(index, x)
        interpreter.invoke()
        return interpreter.get_tensor(out_index)

    calls = {"bare": bare, "bare_again": bare_again, "predict": lambda: model.predict(x),
             "predict_raw": lambda: model.predict(x, raw=True)}
    for fn in calls.values():
        warm_until = time.perf_counter() + 0.2
        while time.perf_counter() < warm_until:
            fn()
    np.testing.assert_array_equal(model.predict(x, raw=True)[model.outputs[0].name], bare())
    before = load_average()
    blocks = interleaved_calls(calls, budget_s, block_s, min_rounds=5, per_call=False)
    med = {name: median(values) for name, values in blocks.items()}
    # paired: each round's blocks ran back to back, so their difference/ratio cancels the machine's drift
    bare = blocks["bare"]
    return {
        "model": model_name, "threads": threads, "rounds": len(bare),
        "us": {name: value * 1e6 for name, value in med.items()},
        "a_a_ratio": median([a / b for a, b in zip(blocks["bare_again"], bare)]),
        "predict_over_bare": median([p / b for p, b in zip(blocks["predict"], bare)]),
        "predict_raw_over_bare": median([p / b for p, b in zip(blocks["predict_raw"], bare)]),
        "predict_extra_us": median([(p - b) * 1e6 for p, b in zip(blocks["predict"], bare)]),
        "predict_raw_extra_us": median([(p - b) * 1e6 for p, b in zip(blocks["predict_raw"], bare)]),
        "load_before": before, "load_after": load_average(),
    }


def make_photo(path: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """A 640x480 JPEG (quality 90) with gradients, edges and noise: a stand-in for a camera frame."""
    from PIL import Image

    w, h = size
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx * 255 / w, yy * 255 / h, ((xx // 40 + yy // 40) % 2) * 200 + 20], axis=-1)
    img += rng.normal(0, 18, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def image_path(model_path: Path, model_name: str, photo: Path, budget_s: float, block_s: float) -> dict[str, Any]:
    """``Model.prepare(photo)`` against a plain Pillow + numpy pipeline computing the same tensor."""
    from PIL import Image

    model = _load(model_path, model_name, 1)
    spec = model.inputs[0]
    pp = model.preprocess
    h, w = spec.shape[1:3]
    mode = "L" if pp.color == "grayscale" else "RGB"
    mean = np.asarray(pp.mean, dtype=np.float32)
    std = np.asarray(pp.std, dtype=np.float32)
    scale = np.float32(pp.scale)
    inv = np.float32(1) / np.float32(spec.scale)
    info = np.iinfo(spec.dtype)

    def baseline() -> np.ndarray:
        """What one would write by hand: decode, convert, resize, normalise in float, quantize."""
        with Image.open(photo) as img:
            pixels = np.asarray(img.convert(mode).resize((w, h), Image.BILINEAR), dtype=np.uint8)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        x = (pixels.astype(np.float32) * scale - mean) / std
        q = np.round(x * inv) + spec.zero_point
        return np.clip(q, info.min, info.max).astype(spec.dtype)[None]

    def edgeq_prepare() -> np.ndarray:
        return model.prepare(photo)[0]

    identical = bool(np.array_equal(baseline(), edgeq_prepare()))
    calls = {"baseline": baseline, "edgeq": edgeq_prepare}
    for fn in calls.values():
        for _ in range(5):
            fn()
    before = load_average()
    blocks = interleaved_calls(calls, budget_s, block_s, min_rounds=5, per_call=False)
    med = {name: median(values) for name, values in blocks.items()}
    with Image.open(photo) as img:
        source_size = list(img.size)
    return {
        "model": model_name, "image": f"{source_size[0]}x{source_size[1]} JPEG", "tensor": f"{w}x{h}x{spec.shape[3]} "
        f"{np.dtype(spec.dtype).name}", "identical": identical, "rounds": len(blocks["edgeq"]),
        "ms": {name: value * 1e3 for name, value in med.items()},
        "edgeq_over_baseline": median([e / b for e, b in zip(blocks["edgeq"], blocks["baseline"])]),
        "load_before": before, "load_after": load_average(),
    }
