"""Running a ``.tflite`` model on samples and reading any of its tensors (LiteRT, all tensors preserved)."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

from edgeq._lazy import import_optional
from edgeq._native import quiet_native_output

_HINT = "pip install ai-edge-litert"


class TensorReader:
    """An interpreter that keeps every intermediate tensor, fed one sample at a time.

    Samples are lists of float arrays in the order of the interpreter's inputs (as
    :meth:`edgeq.runtime.Model.predict` takes them); integer inputs are quantized with their own scale.
    """

    def __init__(self, model: bytes) -> None:
        interpreter_module = import_optional("ai_edge_litert.interpreter", _HINT)
        with quiet_native_output(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors", category=UserWarning)
            self.interpreter = interpreter_module.Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                                                              num_threads=1)
            self.interpreter.allocate_tensors()
        self._model = model  # the interpreter reads from these bytes
        self.details = {d["index"]: d for d in self.interpreter.get_tensor_details()}
        self.inputs = self.interpreter.get_input_details()

    def run(self, sample: Sequence[np.ndarray]) -> None:
        for detail, array in zip(self.inputs, sample):
            array = np.asarray(array)
            scale, zero = detail["quantization"]
            if np.issubdtype(detail["dtype"], np.integer) and scale:
                info = np.iinfo(detail["dtype"])
                array = np.clip(np.round(array / scale) + zero, info.min, info.max)
            self.interpreter.set_tensor(detail["index"], array.astype(detail["dtype"]).reshape(detail["shape"]))
        self.interpreter.invoke()

    def tensor(self, index: int, dtype: Any = np.float64) -> np.ndarray:
        """A tensor of the last run, dequantized to ``dtype`` (float32 is enough for statistics, and faster)."""
        value = self.interpreter.get_tensor(index)
        scale, zero = self.details[index]["quantization"]
        if np.issubdtype(value.dtype, np.integer) and scale:
            return (value.astype(dtype) - dtype(zero)) * dtype(scale)
        return value.astype(dtype, copy=False)


def predict_all(model: bytes, samples: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Every sample's outputs, dequantized and flattened into one float64 vector per sample."""
    from edgeq.runtime.model import Model

    runner = Model(model, threads=1)
    flat = []
    for sample in samples:
        outputs: Any = runner.predict(list(sample) if len(sample) > 1 else sample[0])
        flat.append(np.concatenate([np.asarray(o, np.float64).reshape(-1) for o in outputs.values()]))
    return flat
