"""One preprocessing for calibration and inference: the runtime's tensor equals the converter's, bit for bit.

The converter reads calibration images with ``edgeq.converters.datasets.load_samples`` and embeds the
``Preprocess`` it used; the runtime rebuilds it from the model's metadata. For the same image file
both must give the identical array (float IO), or the identical quantized array (int8 IO, where the
runtime uses a 256-entry lookup table instead of normalising every pixel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeq.errors import DataError, UsageError
from edgeq.metadata import Preprocess
from edgeq.runtime.preprocess import (
    apply_table,
    default_preprocess,
    dequantize,
    image_to_array,
    load_image,
    normalize,
    quantize,
    quantize_table,
    resize_pixels,
)
from support import SAMPLE_MODEL, write_images


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Images that stress the colour and resize code: odd sizes, JPEG, grayscale, RGBA, palette, 16-bit."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("odd_images")
    write_images(folder / "rgb", 3, size=(23, 17))
    write_images(folder / "tall", 2, size=(9, 31), seed=4)
    rng = np.random.default_rng(5)
    rgb = rng.integers(0, 256, (21, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "photo.jpg", quality=90)
    Image.fromarray(rgb[:, :, 0]).save(folder / "gray.png")
    Image.fromarray(np.dstack([rgb, rgb[:, :, :1]])).save(folder / "rgba.png")
    Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE, colors=16).save(folder / "palette.png")
    Image.fromarray(rng.integers(0, 65536, (13, 11), dtype=np.uint16)).save(folder / "deep.png")
    return folder


def calibration_arrays(folder: Path, model, **pp_args):  # type: ignore[no-untyped-def]
    """The converter's calibration path: every image of ``folder`` through ``load_samples``."""
    from edgeq.converters.datasets import image_files, load_samples
    from edgeq.converters.source import InputSpec

    spec = model.inputs[0]
    files = image_files(folder)
    samples = load_samples(folder, [InputSpec(spec.name, (None, *spec.shape[1:]))], samples=len(files), **pp_args)
    assert len(samples.calibration) == len(files)  # all of them, in sorted file order
    return files, [s[0] for s in samples.calibration], samples.preprocess


# ------------------------------------------------- metadata-driven runtime == converter calibration
@pytest.mark.tf
@pytest.mark.parametrize(
    ("fixture", "pp_args"),
    [
        ("edgeq_int8", {}),  # stretch, RGB, 0..1, int8 input: the lookup table
        ("edgeq_float_io", {"resize": "pad", "normalize": "imagenet", "bgr": True}),  # float input
        ("edgeq_gray", {"resize": "crop", "normalize": "-1,1"}),  # grayscale, 1-channel table
    ],
)
def test_runtime_tensor_is_bit_identical_to_calibration(fixture, pp_args, odd_images, request):
    from PIL import Image

    from edgeq.runtime import Model

    model = Model(request.getfixturevalue(fixture))
    spec = model.inputs[0]
    files, arrays, pp = calibration_arrays(odd_images, model, **pp_args)
    assert model.metadata.preprocess == pp  # the converter embedded what it used; the runtime read it back
    assert model.preprocess == pp
    for path, calibrated in zip(files, arrays):
        expected = quantize(calibrated, spec.scale, spec.zero_point, spec.dtype) if spec.quantized else calibrated
        (got,) = model.prepare(path)
        assert got.dtype == spec.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected, err_msg=path.name)
        with Image.open(path) as img:
            np.testing.assert_array_equal(model.prepare(img)[0], expected, err_msg=f"{path.name} as PIL")
    batch = model.prepare([files[0], files[-1]])[0]
    np.testing.assert_array_equal(batch, np.concatenate([model.prepare(files[0])[0], model.prepare(files[-1])[0]]))


@pytest.mark.skipif(not SAMPLE_MODEL.exists(), reason="the bundled sample model is not built yet")
def test_bundled_sample_runtime_tensor_is_its_calibration_tensor():
    """The Fashion-MNIST sample, read back from its own metadata, against its calibration images."""
    from edgeq.runtime import Model

    model = Model(SAMPLE_MODEL)
    pp = model.metadata.preprocess
    assert pp == Preprocess(size=(28, 28), color="grayscale")  # stretch, 0..1: the converter's defaults
    files, arrays, used = calibration_arrays(SAMPLE_MODEL.parent / "calib", model)
    assert used == pp
    spec = model.inputs[0]
    for path, calibrated in list(zip(files, arrays))[::10]:
        np.testing.assert_array_equal(model.prepare(path)[0], quantize(calibrated, spec.scale, spec.zero_point, np.int8))


@pytest.mark.tf
def test_runtime_quantize_matches_the_tflite_quantize_op(edgeq_float_io):
    """The runtime's own ``quantize`` agrees with TFLite's QUANTIZE kernel (float-IO model's first op)."""
    from ai_edge_litert.interpreter import Interpreter

    from edgeq._flatbuffer import parse

    sg = parse(edgeq_float_io.read_bytes()).subgraphs[0]
    op = next(op for op in sg.operators if op.op == "QUANTIZE")
    t = sg.tensors[op.outputs[0]]
    with pytest.warns(UserWarning, match="preserve_all_tensors"):
        interpreter = Interpreter(model_path=str(edgeq_float_io), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    scale, zero_point = t.scales[0], t.zero_points[0]
    ties = ((np.arange(-150, 150) + 0.5) * np.float32(scale)).astype(np.float32)  # halfway between two steps
    noise = np.random.default_rng(6).normal(0, 2, 16 * 16 * 3).astype(np.float32)
    for x in (noise.reshape(1, 16, 16, 3), np.resize(ties, (1, 16, 16, 3))):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        np.testing.assert_array_equal(quantize(x, scale, zero_point, np.int8), interpreter.get_tensor(t.index))


# --------------------------------------------------- Preprocess variants, given instead of embedded
VARIANTS = [
    Preprocess(resize="stretch", color="rgb"),
    Preprocess(resize="crop", color="rgb", scale=1 / 255, mean=(0.5,), std=(0.5,)),
    Preprocess(resize="pad", color="bgr", scale=1.0, mean=(127.5,), std=(127.5,)),
    Preprocess.from_normalize("imagenet", resize="crop"),
    Preprocess.from_normalize("raw", resize="pad", color="bgr"),
]


@pytest.mark.tf
@pytest.mark.parametrize("pp", VARIANTS, ids=lambda pp: f"{pp.resize}-{pp.color}-{pp.mean[0]:g}")
def test_given_preprocess_float_and_uint8_inputs(pp, tfl_float32, tfl_uint8, odd_images):
    """Models without metadata take ``preprocess=``; size ``None`` means the input's size."""
    from edgeq.runtime import Model

    float_model = Model(tfl_float32, preprocess=pp)
    uint8_model = Model(tfl_uint8, preprocess=pp)
    sized = Preprocess(**{**pp.to_dict(), "size": (16, 16), "mean": pp.mean, "std": pp.std})
    spec = uint8_model.inputs[0]
    for path in sorted(odd_images.rglob("*.*")):
        expected = image_to_array(path, sized)[None]
        np.testing.assert_array_equal(float_model.prepare(path)[0], expected, err_msg=path.name)
        np.testing.assert_array_equal(uint8_model.prepare(path)[0], quantize(expected, spec.scale, spec.zero_point, np.uint8))


# ------------------------------------------------------------------------------ pure functions
@settings(max_examples=60, deadline=None)
@given(
    color=st.sampled_from(["rgb", "bgr", "grayscale"]),
    scale=st.sampled_from([1 / 255, 1.0, 2 / 255]),
    mean=st.floats(-200, 200, allow_nan=False),
    std=st.floats(0.01, 300, allow_nan=False),
    q_scale=st.floats(1e-4, 2.0, allow_nan=False),
    zero_point=st.integers(-128, 127),
    dtype=st.sampled_from([np.int8, np.uint8, np.int16]),
)
def test_lookup_table_equals_quantizing_the_normalized_pixels(color, scale, mean, std, q_scale, zero_point, dtype):
    pp = Preprocess(color=color, scale=scale, mean=(mean,), std=(std,))
    if dtype == np.uint8:
        zero_point = abs(zero_point)
    table = quantize_table(pp, q_scale, zero_point, np.dtype(dtype))
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, pp.channels), dtype=np.uint8)
    looked_up = table[pixels, np.arange(pp.channels)]
    np.testing.assert_array_equal(looked_up, quantize(normalize(pixels, pp), q_scale, zero_point, np.dtype(dtype)))


@pytest.mark.parametrize("pp", [Preprocess(color="grayscale"), Preprocess(), Preprocess.from_normalize("imagenet")],
                         ids=["gray", "rgb-one-table", "rgb-per-channel"])
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16])
def test_apply_table_equals_indexing_the_table(pp, dtype):
    """The runtime's fast lookup (one ``take`` per channel, or one for all) gives the indexed table."""
    table = quantize_table(pp, 0.02, 3, np.dtype(dtype))
    pixels = np.random.default_rng(1).integers(0, 256, (2, 9, 11, pp.channels), dtype=np.uint8)
    got = apply_table(pixels, table)
    assert got.dtype == np.dtype(dtype) and got.shape == pixels.shape
    np.testing.assert_array_equal(got, table[pixels, np.arange(pp.channels)])
    np.testing.assert_array_equal(got, quantize(normalize(pixels, pp), 0.02, 3, np.dtype(dtype)))


def test_quantize_rounds_clips_and_inverts():
    x = np.array([-10.0, -0.26, 0.0, 0.24, 0.26, 10.0], np.float32)
    q = quantize(x, 0.5, 3, np.int8)
    np.testing.assert_array_equal(q, [-17, 2, 3, 3, 4, 23])
    np.testing.assert_array_equal(dequantize(q, 0.5, 3), [-10.0, -0.5, 0.0, 0.0, 0.5, 10.0])
    np.testing.assert_array_equal(quantize(np.array([1e6, -1e6], np.float32), 0.1, 0, np.int8), [127, -128])
    assert dequantize(q, 0.5, 3).dtype == np.float32


def test_resize_modes_geometry():
    from PIL import Image

    wide = Image.new("RGB", (40, 10), (255, 255, 255))
    wide.paste((0, 0, 255), (0, 0, 10, 10))  # a blue left quarter
    pad = resize_pixels(wide, Preprocess(size=(20, 20), resize="pad"))
    assert pad.shape == (20, 20, 3)
    assert (pad[:7] == 0).all() and (pad[-7:] == 0).all()  # letterbox: black bars top and bottom
    assert (pad[10, 10:] == 255).all()
    crop = resize_pixels(wide, Preprocess(size=(20, 20), resize="crop"))
    assert (crop == 255).all()  # the centre 10x10 is all white; the blue quarter is cut away
    stretch = resize_pixels(wide, Preprocess(size=(20, 20), resize="stretch"))
    assert (stretch[:, :4, 2] == 255).all() and (stretch[:, :4, 0] == 0).all()  # squeezed, not cut
    bgr = resize_pixels(wide, Preprocess(size=(20, 20), resize="stretch", color="bgr"))
    np.testing.assert_array_equal(bgr, stretch[:, :, ::-1])
    gray = resize_pixels(wide, Preprocess(size=(10, 40), color="grayscale"))
    assert gray.shape == (10, 40, 1) and gray.dtype == np.uint8
    assert resize_pixels(wide, Preprocess()).shape == (10, 40, 3)  # size None keeps the image's


def test_normalize_per_channel():
    pp = Preprocess.from_normalize("imagenet")
    pixels = np.full((1, 1, 3), 255, np.uint8)
    expected = (np.float32(1.0) - np.array(pp.mean, np.float32)) / np.array(pp.std, np.float32)
    np.testing.assert_array_equal(normalize(pixels, pp)[0, 0], expected)
    assert normalize(pixels, pp).dtype == np.float32


def test_default_preprocess():
    assert default_preprocess((1, 28, 28, 1)) == Preprocess(size=(28, 28), color="grayscale")
    assert default_preprocess((1, 224, 224, 3)) == Preprocess(size=(224, 224), color="rgb")
    assert default_preprocess((1, 10)) is None
    assert default_preprocess((1, 8, 8, 4)) is None


def test_load_image_inputs_and_errors(tmp_path):
    from PIL import Image

    arr = np.random.default_rng(7).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(load_image(arr)), arr)
    assert load_image(arr[:, :, :1]).mode == "L"
    img = Image.fromarray(arr)
    assert load_image(img) is img
    path = tmp_path / "x.png"
    img.save(path)
    np.testing.assert_array_equal(np.asarray(load_image(path)), arr)
    np.testing.assert_array_equal(image_to_array(str(path), Preprocess()), image_to_array(arr, Preprocess()))
    with pytest.raises(DataError, match="image not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match="cannot decode image .*bad.jpg.*; give a JPEG, PNG, BMP or WebP file"):
        load_image(tmp_path / "bad.jpg")
    with pytest.raises(DataError, match=r"expected an image array of uint8 .*Received: dtype=float32"):
        load_image(arr.astype(np.float32))
    with pytest.raises(DataError, match=r"shape=\(2, 2, 2\)"):
        load_image(np.zeros((2, 2, 2), np.uint8))


def test_preprocess_rejects_impossible_settings():
    with pytest.raises(UsageError, match="resize must be one of"):
        Preprocess(resize="zoom")
    with pytest.raises(UsageError, match="std and scale must be non-zero"):
        Preprocess(std=(0.0,))
    with pytest.raises(UsageError, match="mean needs 1 or 1 values for color=grayscale"):
        Preprocess(color="grayscale", mean=(0.1, 0.2, 0.3))
    assert Preprocess.from_dict(Preprocess.from_normalize("-1,1", size=(4, 5)).to_dict()) == Preprocess(
        size=(4, 5), scale=1 / 255, mean=(0.5,), std=(0.5,)
    )
