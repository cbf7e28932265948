"""What a Keras model does to its image input itself, and the normalisation edgeq feeds it because of that.

A model that starts with ``Rescaling(1/255)`` or an adapted ``Normalization`` expects the pixels it was
trained on; dividing them by 255 a second time gives a model that agrees with its int8 copy on garbage.
:func:`decide_normalization` reads the model's leading preprocessing layers (through nested models, past
inactive augmentation layers) and the ``keras.applications`` models whose ``preprocess_input`` is outside
the model, and returns the ``--normalize`` to use by default, with the reason embedded in the metadata.

The rule for the layers: compose their affine maps ``y = a * x + b`` per channel. When that map squeezes
the 0–255 pixel range into a span of at most :data:`PIXEL_SPAN_LIMIT`, the model was trained on raw pixels
(``raw``); otherwise it was trained on 0–1 inputs and normalises those (``0,1``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeq.errors import UsageError
from edgeq.metadata import Preprocess

#: the model's own layers map 0–255 to a span this small: they expect raw pixels
PIXEL_SPAN_LIMIT = 16.0
#: layers that do nothing at inference (augmentation) and may precede the preprocessing layers
_INACTIVE = re.compile(r"^Random[A-Z]\w*$|^Dropout$|^GaussianNoise$|^GaussianDropout$")
#: ``keras.applications`` models without preprocessing layers inside: model-name pattern → (normalize, bgr, convention)
APPLICATIONS: tuple[tuple[str, str, bool, str], ...] = (
    (r"^mobilenet(v2)?_[\d.]+_\d+$", "-1,1", False, "mobilenet.preprocess_input (mode 'tf')"),
    (r"^resnet\d+v2$", "-1,1", False, "resnet_v2.preprocess_input (mode 'tf')"),
    (r"^(inception_v3|inception_resnet_v2|xception|nasnet(mobile|large)?)$", "-1,1", False, "preprocess_input (mode 'tf')"),
    (r"^(resnet\d+|vgg1[69])$", "103.939,116.779,123.68/1,1,1", True, "preprocess_input (mode 'caffe': BGR, ImageNet means)"),
    (r"^densenet\d+$", "imagenet", False, "densenet.preprocess_input (mode 'torch')"),
)


@dataclass(frozen=True)
class ModelNormalization:
    """The normalisation the model expects at its image input, and why.

    Attributes:
        normalize: a ``--normalize`` value (``raw``, ``0,1``, ``-1,1``, ``imagenet`` or ``MEAN/STD``).
        bgr: the model expects BGR channel order.
        layers: the model's own preprocessing layers, as ``Rescaling(scale=0.00392, offset=0)``.
        reason: one sentence for the table and the metadata.
    """

    normalize: str
    bgr: bool
    layers: tuple[str, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layers"] = list(self.layers)
        return d


def _name(layer: Any) -> str:
    return type(layer).__name__


def _sublayers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if _name(layer) != "InputLayer"]


def _leading_layers(model: Any) -> tuple[list[Any], Any]:
    """The preprocessing layers the input meets first (nested models flattened), and the first nested application model."""
    found: list[Any] = []
    application = None
    queue = _sublayers(model)
    while queue:
        layer = queue.pop(0)
        kind = _name(layer)
        if hasattr(layer, "layers") and kind in ("Functional", "Sequential", "Model"):
            if application is None and _application(layer.name) is not None:
                application = layer
            queue = _sublayers(layer) + queue
            continue
        if kind in ("Rescaling", "Normalization"):
            found.append(layer)
        elif not (_INACTIVE.match(kind) or kind in ("Resizing", "CenterCrop")):
            break
    return found, application


def _application(name: str) -> tuple[str, bool, str] | None:
    for pattern, normalize, bgr, convention in APPLICATIONS:
        if re.match(pattern, name.lower()):
            return normalize, bgr, convention
    return None


def _affine(layer: Any, channels: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``(a, b, description)`` with ``y = a * x + b`` per channel for a Rescaling or Normalization layer."""
    if _name(layer) == "Rescaling":
        scale, offset = float(np.mean(layer.scale)), float(np.mean(layer.offset))
        return np.full(channels, scale), np.full(channels, offset), f"Rescaling(scale={scale:.4g}, offset={offset:.4g})"
    mean = np.asarray(getattr(layer, "mean", None) if getattr(layer, "mean", None) is not None else layer.adapt_mean,
                      dtype=np.float64).reshape(-1)
    variance = np.asarray(getattr(layer, "variance", None) if getattr(layer, "variance", None) is not None
                          else layer.adapt_variance, dtype=np.float64).reshape(-1)
    std = np.sqrt(np.maximum(variance, 1e-12))
    a, b = np.broadcast_to(1 / std, channels).copy(), np.broadcast_to(-mean / std, channels).copy()
    if getattr(layer, "invert", False):
        a, b = std * np.ones(channels), mean * np.ones(channels)
    text = ", ".join(f"{m:.4g}" for m in mean[:3])
    return a, b, f"Normalization(mean=[{text}], std=[{', '.join(f'{s:.4g}' for s in std[:3])}])"


def decide_normalization(keras_model: Any, channels: int) -> ModelNormalization | None:
    """The normalisation a Keras model expects because of its own input layers, or ``None`` when it does none.

    Args:
        keras_model: the loaded Keras model (``None`` for a bare SavedModel: nothing can be read).
        channels: channels of the image input.
    """
    if keras_model is None or not hasattr(keras_model, "layers"):
        return None
    layers, application = _leading_layers(keras_model)
    if layers:
        a, b = np.ones(channels), np.zeros(channels)
        described = []
        for layer in layers:
            la, lb, text = _affine(layer, channels)
            a, b = la * a, la * b + lb
            described.append(text)
        span = float(np.max(np.abs(a)) * 255)
        chain = " → ".join(described)
        if span <= PIXEL_SPAN_LIMIT:
            return ModelNormalization("raw", False, tuple(described),
                                      f"the model normalises its input itself ({chain}: 0–255 becomes a span of "
                                      f"{span:.3g}), so it is fed raw 0–255 pixels")
        return ModelNormalization("0,1", False, tuple(described),
                                  f"the model normalises its input itself ({chain}) from 0–1 values (0–255 would "
                                  f"become a span of {span:.3g}), so it is fed pixels / 255")
    if application is not None:
        normalize, bgr, convention = _application(application.name)  # type: ignore[misc]
        return ModelNormalization(normalize, bgr, (), f"the model contains keras.applications "
                                  f"{application.name!r}, which expects {convention}: --normalize {normalize}"
                                  f"{' --bgr' if bgr else ''}")
    return None


def check_explicit(decided: ModelNormalization | None, normalize: str | None, bgr: bool, force: bool) -> None:
    """Refuse an explicit ``--normalize`` (or ``--bgr``) that contradicts the model's own preprocessing (unless ``force``).

    Raises:
        UsageError: the two differ and ``force`` is false.
    """
    if decided is None or force:
        return
    if bgr and not decided.bgr:
        raise UsageError(f"--bgr contradicts the model: {decided.reason}; drop --bgr or add --force-normalize if you "
                         "mean it")
    if normalize is not None and not np.allclose(_pixel_map(decided.normalize), _pixel_map(normalize)):
        raise UsageError(f"--normalize {normalize} contradicts the model: {decided.reason}; drop --normalize (edgeq "
                         f"uses {decided.normalize}) or add --force-normalize if you mean it")


def _pixel_map(normalize: str) -> np.ndarray:
    """``(a, b)`` per channel with model value ``a * pixel + b``: two spellings of one normalisation compare equal."""
    pp = Preprocess.from_normalize(normalize)
    std, mean = np.broadcast_to(pp.std, 3), np.broadcast_to(pp.mean, 3)
    return np.stack([pp.scale / std, -mean / std])
