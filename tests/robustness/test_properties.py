"""Property-based tests (hypothesis) of preprocessing and (de)quantization.

* any image (mode, size), any ``Preprocess`` → pixels of exactly the asked size and channel count, and
  model values that follow the documented formula;
* any array (dtype, shape) or file bytes fed to ``Model.prepare`` → the model's input tensor, or a
  ``DataError`` — never another exception;
* quantization: every integer survives dequantize → quantize; a float in range moves by at most half
  a step; out of range it is clamped; the per-pixel lookup table equals quantizing the float image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgeq.errors import DataError
from edgeq.metadata import Preprocess
from edgeq.runtime.preprocess import apply_table, dequantize, load_image, normalize, quantize, quantize_table
from edgeq.runtime.preprocess import resize_pixels

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
PIL_MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LA", "I", "F", "I;16", "HSV"]
INT_TYPES = [np.int8, np.uint8, np.int16]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def images(draw):  # type: ignore[no-untyped-def]
    from PIL import Image

    mode = draw(st.sampled_from(PIL_MODES))
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2**32 - 1))
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    return img.convert("L").convert(mode) if mode == "I;16" else img.convert(mode)


@st.composite
def preprocesses(draw):  # type: ignore[no-untyped-def]
    color = draw(st.sampled_from(["rgb", "bgr", "grayscale"]))
    channels = 1 if color == "grayscale" else 3
    size = draw(st.none() | st.tuples(st.integers(1, 40), st.integers(1, 40)))
    per_channel = st.lists(st.floats(-2, 2, allow_nan=False), min_size=channels, max_size=channels)
    mean = draw(st.sampled_from([[0.0], [0.5]]) | per_channel)
    std = draw(st.sampled_from([[1.0], [0.25]]) | st.lists(st.floats(0.05, 4), min_size=channels, max_size=channels))
    return Preprocess(size=size, resize=draw(st.sampled_from(["stretch", "crop", "pad"])), color=color,
                      scale=draw(st.sampled_from([1 / 255, 1.0, 2 / 255])), mean=tuple(mean), std=tuple(std))


@SETTINGS
@given(images(), preprocesses())
def test_any_image_becomes_pixels_of_the_asked_size(img, pp):
    pixels = resize_pixels(load_image(img), pp)
    height, width = pp.size if pp.size is not None else (img.height, img.width)
    assert pixels.dtype == np.uint8 and pixels.shape == (height, width, pp.channels)
    values = normalize(pixels, pp)
    assert values.dtype == np.float32 and values.shape == pixels.shape
    expected = (pixels.astype(np.float64) * pp.scale - np.asarray(pp.mean)) / np.asarray(pp.std)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)


@SETTINGS
@given(hnp.arrays(dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.int32, np.float32, np.float64, np.bool_]),
                  shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6)))
def test_load_image_takes_an_image_array_or_says_why_not(array):
    try:
        img = load_image(array)
    except DataError as exc:
        assert "expected an image array of uint8" in str(exc)
        return
    assert array.dtype == np.uint8 and array.ndim in (2, 3)
    assert (img.height, img.width) == array.shape[:2]


@pytest.fixture(scope="module")
def sample_model():  # type: ignore[no-untyped-def]
    from edgeq.runtime import Model

    return Model(SAMPLE_MODEL, threads=1)


ARRAY_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.uint64, np.float16, np.float32,
                np.float64, np.complex64]


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # float64 beyond float32: clamped
@SETTINGS
@given(data=st.data())
def test_prepare_gives_the_input_tensor_or_a_data_error(sample_model, data):
    """The sample takes int8 ``[1, 28, 28, 1]``: anything else is converted to it, or refused as bad data."""
    spec = sample_model.inputs[0]
    shape = data.draw(st.sampled_from([spec.shape, spec.shape[1:], (28, 28), (3, 28, 28, 1), (1, 28, 28), (28, 28, 3),
                                       (1, 28, 28, 3), (1, 27, 28, 1), (), (0, 28, 28, 1), (5,)]))
    dtype = data.draw(st.sampled_from(ARRAY_DTYPES))
    elements = hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True) if dtype != np.complex64 else None
    array = data.draw(hnp.arrays(dtype=dtype, shape=shape, elements=elements))
    try:
        (tensor,) = sample_model.prepare(array)
    except DataError:
        return
    assert tensor.dtype == spec.dtype and tensor.shape[1:] == spec.shape[1:] and tensor.ndim == 4
    assert tensor.flags.c_contiguous


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([".png", ".jpg", ".bmp", ".webp"]))
def test_image_files_with_any_bytes(sample_model, tmp_path_factory, payload, suffix):
    path = tmp_path_factory.mktemp("bytes") / f"x{suffix}"
    path.write_bytes(payload)
    try:
        (tensor,) = sample_model.prepare(str(path))
    except DataError as exc:
        assert str(path) in str(exc)
        return
    assert tensor.shape == sample_model.inputs[0].shape and tensor.dtype == np.int8


# ---------------------------------------------------------------------------------------- quantization
@st.composite
def quant_params(draw):  # type: ignore[no-untyped-def]
    dtype = draw(st.sampled_from(INT_TYPES))
    info = np.iinfo(dtype)
    scale = float(np.float32(draw(st.floats(1e-5, 10.0, allow_nan=False))))
    zero_point = draw(st.integers(int(info.min), int(info.max)))
    return dtype, scale, zero_point


@SETTINGS
@given(quant_params(), st.data())
def test_every_integer_survives_dequantize_then_quantize(params, data):
    dtype, scale, zero_point = params
    info = np.iinfo(dtype)
    q = data.draw(hnp.arrays(dtype, st.integers(1, 64), elements=st.integers(int(info.min), int(info.max))))
    np.testing.assert_array_equal(quantize(dequantize(q, scale, zero_point), scale, zero_point, dtype), q)


@SETTINGS
@given(quant_params(), st.data())
def test_floats_move_by_at_most_half_a_step_or_clamp(params, data):
    dtype, scale, zero_point = params
    info = np.iinfo(dtype)
    low, high = (info.min - zero_point) * scale, (info.max - zero_point) * scale
    bounds = float(np.float32(low - 4 * scale)), float(np.float32(high + 4 * scale))  # float32-representable
    x = data.draw(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(*bounds, width=32, allow_nan=False)))
    q = quantize(x, scale, zero_point, dtype)
    assert q.dtype == dtype
    back = dequantize(q, scale, zero_point)
    inside = (x >= low) & (x <= high)
    # float32 arithmetic: half a step, plus the rounding of values as large as the range
    slack = scale * 0.5 + np.abs(x).astype(np.float64) * 2e-6 + 1e-7
    assert np.all(np.abs(back[inside].astype(np.float64) - x[inside]) <= slack[inside])
    assert np.all(q[x < low] == info.min) and np.all(q[x > high] == info.max)


@SETTINGS
@given(preprocesses(), quant_params(), st.integers(0, 2**32 - 1))
def test_lookup_table_equals_quantizing_the_float_image(pp, params, seed):
    dtype, scale, zero_point = params
    assume(pp.size is not None)
    pixels = np.random.default_rng(seed).integers(0, 256, (*pp.size, pp.channels), dtype=np.uint8)
    table = quantize_table(pp, scale, zero_point, dtype)
    np.testing.assert_array_equal(apply_table(pixels, table), quantize(normalize(pixels, pp), scale, zero_point, dtype))
