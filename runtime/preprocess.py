"""Image preprocessing: one implementation used for calibration and for inference.

The converter calls :func:`image_to_array` on the representative images and stores the
:class:`~edgeq.metadata.Preprocess` in the model; the runtime rebuilds the same object from
the metadata and calls the same function, so both sides produce identical arrays.
Pillow is imported only when an image is handled.
"""

from __future__ import annotations

import math
import os
import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeq.errors import DataError

if TYPE_CHECKING:
    from edgeq.metadata import Preprocess
    from PIL import Image

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def load_image(source: Any) -> Image.Image:
    """Open an image from a path, a PIL image or an ``HxW``/``HxWxC`` uint8 array (RGB order).

    Raises:
        DataError: the file is missing or cannot be decoded, or the array is not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, Image.Image):
        return to_8bit(source)
    if isinstance(source, np.ndarray):
        arr = source
        if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
            raise DataError(
                f"expected an image array of uint8 HxW or HxWx(1|3|4). Received: dtype={arr.dtype}, shape={arr.shape}"
            )
        return Image.fromarray(arr[:, :, 0] if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    path = os.fspath(source)
    try:
        with Image.open(path) as img:
            img.load()
            return to_8bit(img)
    except FileNotFoundError:
        raise DataError(f"image not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot decode image {path}: {exc}; give a JPEG, PNG, BMP or WebP file") from None


def to_8bit(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float images as 8-bit grayscale, scaled rather than clipped.

    Pillow's own conversion clips 16-bit values above 255 (white) and float values in 0–1 to 0 (black).
    16-bit (``I;16*``) and 32-bit integer images (how Pillow opens 16-bit PNGs) map 0–65535 to 0–255 when
    a value exceeds 255; float images (``F``) map 0–1 to 0–255 when every value is within 0–1, else clip to 0–255.
    """
    from PIL import Image

    if img.mode not in ("I", "F") and not img.mode.startswith("I;16"):
        return img
    values = np.asarray(img, dtype=np.float64)
    if img.mode == "F":
        finite = values[np.isfinite(values)]
        scale = 255.0 if finite.size and finite.min() >= 0 and finite.max() <= 1 else 1.0
    else:
        scale = 255 / 65535 if values.size and values.max() > 255 else 1.0
    pixels = np.clip(np.nan_to_num(values * scale), 0, 255)
    return Image.fromarray(np.round(pixels).astype(np.uint8))


def resize_pixels(img: Image.Image, pp: Preprocess) -> np.ndarray:
    """Colour-convert and resize an image as ``pp`` says; returns ``HxWxC`` uint8 pixels."""
    from PIL import Image

    mode = "L" if pp.color == "grayscale" else "RGB"
    if img.mode != mode:  # converting to its own mode would only copy the image
        img = img.convert(mode)
    if pp.size is not None:
        h, w = pp.size
        if pp.resize == "stretch":
            img = img.resize((w, h), Image.BILINEAR)
        elif pp.resize == "crop":
            sw, sh = img.size
            scale = max(w / sw, h / sh)
            cw, ch = min(sw, round(w / scale)), min(sh, round(h / scale))
            left, top = (sw - cw) // 2, (sh - ch) // 2
            img = img.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch))
        else:  # pad
            sw, sh = img.size
            scale = min(w / sw, h / sh)
            nw, nh = max(1, round(sw * scale)), max(1, round(sh * scale))
            canvas = Image.new(img.mode, (w, h))
            canvas.paste(img.resize((nw, nh), Image.BILINEAR), ((w - nw) // 2, (h - nh) // 2))
            img = canvas
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if pp.color == "bgr":
        arr = arr[:, :, ::-1]
    return arr


def normalize(pixels: np.ndarray, pp: Preprocess) -> np.ndarray:
    """Map 0–255 pixels to model values: ``(p * scale - mean) / std`` in float32."""
    mean = np.asarray(pp.mean, dtype=np.float32)
    std = np.asarray(pp.std, dtype=np.float32)
    return (pixels.astype(np.float32) * np.float32(pp.scale) - mean) / std


def image_to_array(source: Any, pp: Preprocess) -> np.ndarray:
    """Load, resize, colour-convert and normalise one image: ``HxWxC`` float32."""
    return normalize(resize_pixels(load_image(source), pp), pp)


def quantize_table(pp: Preprocess, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """A ``256 x C`` lookup table from pixel value to the quantized model input.

    Quantizing ``normalize(p)`` for each of the 256 pixel values once makes the
    per-frame work a table lookup; the result equals quantizing the float array.
    """
    values = np.arange(256, dtype=np.uint8).reshape(256, 1).repeat(pp.channels, axis=1)
    return quantize(normalize(values, pp), scale, zero_point, dtype)


def apply_table(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Quantize ``...xC`` uint8 pixels with a :func:`quantize_table`: ``out[..., c] = table[pixels[..., c], c]``.

    Equal to ``table[pixels, np.arange(C)]``, 3-6x faster: one ``take`` per channel, or a single one
    when every channel has the same table (one mean/std, the usual case).
    """
    columns = np.ascontiguousarray(table.T)
    if (columns == columns[:1]).all():
        return columns[0].take(pixels)
    out = np.empty(pixels.shape, dtype=table.dtype)
    for c, column in enumerate(columns):
        out[..., c] = column.take(pixels[..., c])
    return out


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: np.dtype) -> np.ndarray:
    """Affine-quantize floats: ``clip(round(x * (1 / scale)) + zero_point)`` to the range of ``dtype``.

    Multiplying by the float32 reciprocal and rounding half to even is what TFLite's QUANTIZE kernels
    do, so a value lands on the same integer here as inside a float-IO model.
    """
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, dtype=np.float32) * (np.float32(1) / np.float32(scale))) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


class FloatQuantizer:
    """:func:`quantize` for one model input, in a few in-place passes over a per-thread float32 scratch buffer.

    Multiply by the reciprocal, round half to even, add the zero point, then one min and one max reduction: only a
    value out of range costs a clip, and only an infinite or NaN min/max (which they carry) a finiteness check. The integer result is a new
    array each call (callers keep it); the scratch buffer is kept per thread, so concurrent calls never share it.
    Equal to :func:`quantize` element for element.
    """

    def __init__(self, scale: float, zero_point: int, dtype: np.dtype) -> None:
        info = np.iinfo(dtype)
        self.dtype = np.dtype(dtype)
        self.reciprocal = np.float32(1) / np.float32(scale)
        self.zero_point = np.float32(zero_point)
        self.low, self.high = np.float32(info.min), np.float32(info.max)
        self._local = threading.local()

    def __call__(self, x: np.ndarray) -> np.ndarray | None:
        """``x`` (a float array) quantized, or ``None`` when it holds NaN or infinite values."""
        scratch = getattr(self._local, "scratch", None)
        if scratch is None or scratch.shape != x.shape:
            scratch = self._local.scratch = np.empty(x.shape, np.float32)
        np.multiply(x, self.reciprocal, out=scratch, dtype=np.float32, casting="same_kind")
        np.rint(scratch, out=scratch)
        np.add(scratch, self.zero_point, out=scratch)
        low, high = np.minimum.reduce(scratch, None), np.maximum.reduce(scratch, None)
        if not (self.low <= low and high <= self.high):  # also when NaN
            if not (math.isfinite(low) and math.isfinite(high)) and not np.isfinite(x).all():
                return None  # (a finite x can overflow to inf times 1 / scale: clipped, as quantize() does)
            np.maximum(scratch, self.low, out=scratch)
            np.minimum(scratch, self.high, out=scratch)
        return scratch.astype(self.dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Inverse of :func:`quantize`: ``(q - zero_point) * scale`` in float32 (two passes, one new array)."""
    out = np.subtract(q, np.float32(zero_point), dtype=np.float32)
    return np.multiply(out, np.float32(scale), out=out)


def default_preprocess(shape: tuple[int, ...]) -> Preprocess | None:
    """The documented default for an NHWC image input without metadata: stretch, RGB or grayscale, 0–1."""
    if len(shape) != 4 or shape[3] not in (1, 3) or min(shape[1:3]) < 1:
        return None
    from edgeq.metadata import Preprocess  # loaded with the first model (see edgeq.runtime.model)

    return Preprocess(size=(shape[1], shape[2]), color="grayscale" if shape[3] == 1 else "rgb")
