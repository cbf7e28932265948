"""16-bit and float images are scaled to 0–255, not clipped to white or truncated to black."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeq.metadata import Preprocess
from edgeq.runtime.preprocess import image_to_array, load_image

PIXELS = np.arange(0, 256, 4, dtype=np.uint8).reshape(8, 8)  # 0, 4, …, 252: dark and bright values


@pytest.mark.parametrize("kind", ["png16", "tiff16", "tiff_float01"])
def test_high_bit_images_read_like_their_8bit_originals(kind, tmp_path):
    if kind == "png16":
        path = tmp_path / "a.png"
        Image.fromarray(PIXELS.astype(np.uint16) * 257).save(path)  # 0–255 → 0–65535
    elif kind == "tiff16":
        path = tmp_path / "a.tif"
        Image.fromarray(PIXELS.astype(np.uint16) * 257).save(path)
    else:
        path = tmp_path / "a.tif"
        Image.fromarray(PIXELS.astype(np.float32) / 255).save(path)
    assert Image.open(path).mode in ("I", "I;16", "F")  # really a high-bit file
    img = load_image(path)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), PIXELS)
    pp = Preprocess(size=(8, 8), color="grayscale")
    np.testing.assert_allclose(image_to_array(path, pp)[:, :, 0], PIXELS / 255, atol=1e-6)


def test_float_images_in_pixel_units_are_clipped_not_rescaled(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(PIXELS.astype(np.float32) + 10).save(path)  # 10–262: already 0–255 units
    np.testing.assert_array_equal(np.asarray(load_image(path)), np.minimum(PIXELS.astype(int) + 10, 255))


def test_16bit_image_using_only_the_low_byte_is_not_darkened(tmp_path):
    path = tmp_path / "low.png"
    Image.fromarray(PIXELS.astype(np.uint16)).save(path)  # a 16-bit file holding 8-bit values
    np.testing.assert_array_equal(np.asarray(load_image(path)), PIXELS)
