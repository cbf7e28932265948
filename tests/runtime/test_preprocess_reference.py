"""Preprocessing against reference values written out in this file, not computed with edgeq's own functions.

The converter and the runtime share ``image_to_array``, so comparing them with each other cannot catch a
resize, colour or normalisation bug that hits both. Here every expected array is built by hand:

* geometry on small PNGs whose answer needs no resampling library: ``crop`` and ``pad`` at scale 1 are pure
  copies (which columns are kept, where the bars go), and ``stretch`` doubles the width, so each output pixel
  is ``0.75 a + 0.25 b`` of its two nearest source pixels (half-pixel centres, edges clamped: bilinear);
* grayscale is ITU-R 601 luma in Pillow's fixed point, ``(19595 R + 38470 G + 7471 B + 2**15) >> 16``;
* BGR reverses the channels; each ``--normalize`` value is its formula in float64.

Each case runs through the three places that preprocess: ``image_to_array``, the converter's calibration
(``load_samples``) and the runtime (``Model.prepare`` on a float-input and a uint8-input model, the latter
through its lookup table).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgeq.metadata import Preprocess
from edgeq.runtime.preprocess import image_to_array

SIZE = 16  # the input size of the tfl_float32 / tfl_uint8 fixtures

NORMALIZE = {  # --normalize value -> reference, per channel in the model's channel order, on 0-255 pixels
    "0,1": lambda p: p / 255,
    "-1,1": lambda p: p / 127.5 - 1,
    "imagenet": lambda p: (p / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225]),
    "raw": lambda p: p,
    "127.5/127.5": lambda p: (p - 127.5) / 127.5,
    "0.5/0.5": lambda p: (p / 255 - 0.5) / 0.5,
    "123.675,116.28,103.53/58.395,57.12,57.375":
        lambda p: (p - np.array([123.675, 116.28, 103.53])) / np.array([58.395, 57.12, 57.375]),
}


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((19595 * r + 38470 * g + 7471 * b + (1 << 15)) >> 16).astype(np.uint8)[..., None]


def _stretch_2x_width(src: np.ndarray) -> np.ndarray:
    """Bilinear doubling of the width: output ``2j`` and ``2j + 1`` sit at source ``j - 0.25`` and ``j + 0.25``."""
    padded = np.concatenate([src[:, :1], src, src[:, -1:]], axis=1).astype(np.int64)  # edges clamped
    out = np.empty((src.shape[0], 2 * src.shape[1], src.shape[2]), np.int64)
    out[:, 0::2] = (3 * padded[:, 1:-1] + padded[:, :-2]) // 4
    out[:, 1::2] = (3 * padded[:, 1:-1] + padded[:, 2:]) // 4
    return out.astype(np.uint8)


def _cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """resize mode -> (source RGB pixels, expected RGB pixels at SIZE x SIZE)."""
    rng = np.random.default_rng(0)
    # stretch: 16 high x 8 wide grey levels that are multiples of 4, so 0.75 a + 0.25 b is an integer
    grey = rng.integers(0, 64, (SIZE, SIZE // 2, 1)).astype(np.uint8) * 4
    stretch_src = np.repeat(grey, 3, axis=2)  # R = G = B: luma is the grey level itself
    # crop: 16 high x 20 wide -> the centre 16 columns, 2..17
    crop_src = rng.integers(0, 256, (SIZE, SIZE + 4, 3)).astype(np.uint8)
    # pad: 10 high x 16 wide -> black rows 0-2 and 13-15
    pad_src = rng.integers(1, 256, (10, SIZE, 3)).astype(np.uint8)
    padded = np.zeros((SIZE, SIZE, 3), np.uint8)
    padded[3:13] = pad_src
    return {
        "stretch": (stretch_src, _stretch_2x_width(stretch_src)),
        "crop": (crop_src, crop_src[:, 2:18]),
        "pad": (pad_src, padded),
    }


CASES = _cases()
COLORS = ("rgb", "bgr", "grayscale")
PER_CHANNEL = ("imagenet", "123.675,116.28,103.53/58.395,57.12,57.375")  # three means: not for grayscale
COMBOS = [(r, c, n) for r in CASES for c in COLORS for n in NORMALIZE if not (c == "grayscale" and n in PER_CHANNEL)]


def _expected(resize: str, color: str, normalize: str) -> np.ndarray:
    rgb = CASES[resize][1]
    pixels = {"rgb": rgb, "bgr": rgb[..., ::-1], "grayscale": _luma(rgb)}[color].astype(np.float64)
    return NORMALIZE[normalize](pixels)


def _preprocess(resize: str, color: str, normalize: str) -> Preprocess:
    return Preprocess.from_normalize(normalize, size=(SIZE, SIZE), resize=resize, color=color)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from PIL import Image

    root = tmp_path_factory.mktemp("reference-images")
    paths = {}
    for resize, (src, _) in CASES.items():
        (root / resize).mkdir()
        paths[resize] = root / resize / "image.png"
        Image.fromarray(src).save(paths[resize])
    return paths


def test_reference_helpers_on_hand_computed_pixels() -> None:
    """The written-out references themselves, on values computed on paper."""
    np.testing.assert_array_equal(_stretch_2x_width(np.array([[[0], [200]]], np.uint8))[0, :, 0], [0, 50, 150, 200])
    np.testing.assert_array_equal(_luma(np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]], np.uint8))[:, 0],
                                  [76, 150, 29, 9])


@pytest.mark.parametrize(("resize", "color", "normalize"), COMBOS)
def test_image_to_array_matches_the_reference(resize, color, normalize, images):
    got = image_to_array(images[resize], _preprocess(resize, color, normalize))
    expected = _expected(resize, color, normalize)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("color", COLORS)
@pytest.mark.parametrize("resize", list(CASES))
def test_calibration_matches_the_reference(resize, color, images):
    """The converter's side: an image folder through ``load_samples`` with the CLI's options."""
    from edgeq.converters.datasets import load_samples
    from edgeq.converters.source import InputSpec

    channels = 1 if color == "grayscale" else 3
    for normalize in ("-1,1", "raw") if color == "grayscale" else ("-1,1", *PER_CHANNEL):
        samples = load_samples(images[resize].parent, [InputSpec("x", (None, SIZE, SIZE, channels))], samples=1,
                               resize=resize, normalize=normalize, bgr=color == "bgr")
        (array,) = samples.calibration[0]
        assert array.shape == (1, SIZE, SIZE, channels)
        np.testing.assert_allclose(array[0], _expected(resize, color, normalize), rtol=1e-6, atol=1e-6)


@pytest.mark.tf
@pytest.mark.parametrize("normalize", ["0,1", "-1,1", "imagenet", "raw"])
@pytest.mark.parametrize("color", ["rgb", "bgr"])
@pytest.mark.parametrize("resize", list(CASES))
def test_runtime_prepare_matches_the_reference(resize, color, normalize, images, tfl_float32, tfl_uint8):
    """The runtime's side: float input (normalised pixels) and uint8 input (the 256-entry lookup table)."""
    from edgeq.runtime import Model

    pp = _preprocess(resize, color, normalize)
    expected = _expected(resize, color, normalize)
    np.testing.assert_allclose(Model(tfl_float32, preprocess=pp).prepare(images[resize])[0][0], expected,
                               rtol=1e-6, atol=1e-6)
    model = Model(tfl_uint8, preprocess=pp)
    spec = model.inputs[0]
    quantized = np.clip(np.round(expected / spec.scale) + spec.zero_point, 0, 255)
    got = model.prepare(images[resize])[0][0].astype(np.int64)
    assert np.abs(got - quantized).max() <= 1  # float64 here vs float32 there may round a tie the other way
    assert np.mean(got == quantized) > 0.99
