"""`edgeq demo`: the bundled Fashion-MNIST sample, end to end.

With TensorFlow installed it converts the sample Keras model to int8, verifies it, measures
float vs int8 accuracy on the bundled labelled images and times the int8 model in the
runtime. Without TensorFlow (e.g. on a Raspberry Pi) it evaluates and times the committed
int8 model through the runtime only.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


from edgeq.errors import DataError

#: calibration images of the 200 bundled; the other 50 are held back for verification
CALIBRATION_SAMPLES = 150
#: how many timed inferences the demo's latency figure is the median of
TIMED_RUNS = 200


@dataclass
class DemoResult:
    """The one table ``edgeq demo`` prints."""

    converted: bool
    backend: str
    threads: int
    samples: int
    int8_accuracy: float
    int8_size: int
    latency_ms_p50: float
    float_accuracy: float | None = None
    float_size: int | None = None
    #: the Keras model's parameter count (from the model when converted, else the sample's training.json)
    params: int | None = None
    #: the sample's folder (model.keras, calib/, eval/, labels.txt), kept after the demo
    sample: str = ""
    verification: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_dir() -> Path:
    """The bundled sample: ``edgeq/_sample`` in an installed wheel, ``samples/fashion_mnist`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_sample", here.parent / "samples" / "fashion_mnist"):
        if (candidate / "model_int8.tflite").exists():
            return candidate
    raise DataError("the bundled sample is missing (expected samples/fashion_mnist); reinstall edgeq")


def run_demo(sample: str | os.PathLike | None = None, threads: int | None = None, convert: bool | None = None) -> DemoResult:
    """Run the demo on ``sample`` (default: the bundled one); ``convert=None`` converts when TensorFlow is installed."""
    from edgeq.runtime import Model
    from edgeq.runtime.evaluate import labelled_folder, top1_accuracy

    root = Path(sample) if sample else sample_dir()
    eval_set = labelled_folder(root / "eval")
    notes: list[str] = []
    if convert is None:
        convert = importlib.util.find_spec("tensorflow") is not None
        if not convert:
            notes.append('TensorFlow is not installed: ran the committed int8 model (pip install "edgeq[convert]" to convert)')
    float_accuracy = float_size = verification = params = None
    with tempfile.TemporaryDirectory(prefix="edgeq-demo-") as tmp:
        if convert:
            from edgeq.converters import convert as convert_model
            from edgeq.converters.source import load_source
            from edgeq.runtime.preprocess import image_to_array

            result = convert_model(root / "model.keras", root / "calib", Path(tmp) / "model_int8.tflite",
                                   samples=CALIBRATION_SAMPLES, labels=root / "labels.txt")
            model_path = result.out
            verification = result.verification.to_dict()
            pp = result.metadata.preprocess
            source = load_source(root / "model.keras", tmp)
            float_accuracy = top1_accuracy(lambda p: source.predict([image_to_array(p, pp)[None]])[0],
                                           eval_set.paths, eval_set.labels, "Float accuracy")
            float_size = source.size_bytes()
            params = int(source.keras_model.count_params()) if source.keras_model is not None else None
        else:
            model_path = root / "model_int8.tflite"
            params = _recorded_params(root)
        model = Model(model_path, threads=threads)
        int8_accuracy = top1_accuracy(lambda p: next(iter(model.predict(p).values())), eval_set.paths, eval_set.labels,
                                      "Int8 accuracy")
        tensor = model.prepare(eval_set.paths[0])
        times = []
        for _ in range(TIMED_RUNS):
            t0 = time.perf_counter()
            model.predict(tensor)
            times.append(time.perf_counter() - t0)
    return DemoResult(
        converted=convert, backend=f"{model.backend.name} {model.backend.version}", threads=model.threads,
        samples=len(eval_set.paths), int8_accuracy=int8_accuracy, int8_size=model.size_bytes,
        latency_ms_p50=statistics.median(times) * 1000, float_accuracy=float_accuracy, float_size=float_size,
        verification=verification, notes=notes, params=params, sample=str(root),
    )


def _recorded_params(root: Path) -> int | None:
    """The parameter count ``make_fashion_mnist.py`` recorded in ``training.json`` (no TensorFlow needed)."""
    import json

    try:
        return int(json.loads((root / "training.json").read_text())["param_count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def next_commands(sample: str | os.PathLike) -> list[str]:
    """Three commands to try after the demo, on the sample's own files (paths quoted for a POSIX shell)."""
    import shlex

    root = Path(sample)
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    return [
        f"edgeq convert {q(root / 'model.keras')} --data {q(root / 'calib')} --labels {q(root / 'labels.txt')} "
        "--out fashion_int8.tflite",
        f"edgeq run fashion_int8.tflite {q(root / 'eval')} --csv predictions.csv",
        f"edgeq eval fashion_int8.tflite --data {q(root / 'eval')} --reference {q(root / 'model.keras')}",
    ]
