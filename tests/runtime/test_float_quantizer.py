"""The float-input path of ``Model.predict``: ``FloatQuantizer`` gives exactly what ``quantize`` gives, and refuses NaN/inf."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import DataError
from edgeq.runtime import Model
from edgeq.runtime.preprocess import FloatQuantizer, dequantize, quantize

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


@pytest.mark.parametrize("dtype, scale, zero_point", [(np.int8, 1 / 255, -128), (np.uint8, 0.0078125, 128),
                                                      (np.int16, 3.0517578e-05, 0), (np.int8, 0.37, 5)])
@pytest.mark.parametrize("source", [np.float32, np.float64, np.float16])
def test_equal_to_quantize(dtype, scale, zero_point, source):
    rng = np.random.default_rng(1)
    info = np.iinfo(dtype)
    span = (info.max - info.min) * scale
    x = rng.uniform(-span, span, (3, 17, 5)).astype(source)
    # halfway points (round half to even), the range's edges and far outside it, huge finite values
    huge = float(np.finfo(source).max) / 2  # overflows to inf once multiplied by 1 / scale: still clipped, not refused
    x.flat[:6] = np.array([0.5, 1.5, -2.5, (info.max + 0.5 - zero_point) * scale, huge, -huge]).astype(source)
    want = quantize(x, scale, zero_point, dtype)
    got = FloatQuantizer(scale, zero_point, dtype)(x)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused(bad):
    quantizer = FloatQuantizer(0.1, 0, np.int8)
    x = np.zeros((4, 4), np.float32)
    x[2, 3] = bad
    assert quantizer(x) is None
    model = Model(SAMPLE, threads=1)
    image = np.zeros(model.inputs[0].shape, np.float32)
    image.flat[7] = bad
    with pytest.raises(DataError, match="NaN or infinite"):
        model.predict(image)
    with pytest.raises(DataError, match="NaN or infinite"):  # the second call takes the fast path
        model.predict(image)


def test_results_do_not_share_buffers():
    model = Model(SAMPLE, threads=1)
    shape = model.inputs[0].shape
    a, b = np.full(shape, 0.25, np.float32), np.full(shape, 0.75, np.float32)
    qa, qb = model.prepare(a)[0], model.prepare(b)[0]
    assert not np.shares_memory(qa, qb) and (qa != qb).all()
    np.testing.assert_array_equal(qa, model.prepare(a)[0])
    out_a, out_b = model.predict(a), model.predict(b)
    assert not any(np.shares_memory(out_a[k], out_b[k]) for k in out_a)


def test_threads_quantize_their_own_inputs():
    quantizer = FloatQuantizer(0.01, 0, np.int8)
    inputs = [np.full((64, 64), v, np.float32) for v in (-1.0, -0.5, 0.0, 0.5)]
    errors = []

    def work(x: np.ndarray) -> None:
        want = quantize(x, 0.01, 0, np.int8)
        for _ in range(300):
            if not np.array_equal(quantizer(x), want):
                errors.append(float(x[0, 0]))
                return

    threads = [threading.Thread(target=work, args=(x,)) for x in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_dequantize_matches_the_formula():
    q = np.arange(-128, 128, dtype=np.int8)
    np.testing.assert_array_equal(dequantize(q, 0.0123, -7), (q.astype(np.float32) - np.float32(-7)) * np.float32(0.0123))
