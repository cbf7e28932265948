"""The ``edgeq`` metadata embedded in every model edgeq converts.

This module is the only place that defines its fields. The converter writes a
:class:`ModelMetadata` as JSON into the ``.tflite`` file's metadata entry named
``edgeq``; the runtime reads it back (without TensorFlow) to apply the same
preprocessing and labels; ``inspect``, ``eval`` and ``compare`` read the recipe.

Example of the JSON (``schema_version`` 1)::

    {"schema_version": 1, "edgeq_version": "0.1.0",
     "source": {"name": "model.keras", "sha256": "…", "format": "keras"},
     "labels": ["T-shirt/top", …],
     "preprocess": {"size": [28, 28], "resize": "stretch", "color": "grayscale",
                    "scale": 0.00392156862745098, "mean": [0.0], "std": [1.0]},
     "quant": {"mode": "int8", "input_type": "int8", "output_type": "int8",
               "calibration": {"samples": 200, "seed": 0, "method": "minmax",
                               "inputs": [{"name": "input", "min": 0.0, "max": 1.0}]},
               "keep_float": [], "target": null},
     "verification": {"agreement": 0.995, "sqnr_db": 31.2, …}}
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edgeq.errors import ModelError, UsageError

__all__ = ["METADATA_NAME", "SCHEMA_VERSION", "Preprocess", "QuantInfo", "ModelMetadata", "read_metadata"]

METADATA_NAME = "edgeq"
SCHEMA_VERSION = 1

RESIZE_MODES = ("stretch", "crop", "pad")
#: the largest ``Preprocess.size`` side: a bigger image would take gigabytes before the model sees it
MAX_SIDE = 8192
COLORS = ("rgb", "bgr", "grayscale")

#: named normalisations: pixel value p in [0, 255] becomes (p * scale - mean) / std
NORMALIZATIONS: dict[str, tuple[float, tuple[float, ...], tuple[float, ...]]] = {
    "0,1": (1 / 255, (0.0,), (1.0,)),
    "-1,1": (1 / 255, (0.5,), (0.5,)),
    "imagenet": (1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "raw": (1.0, (0.0,), (1.0,)),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _floats(values: Any, what: str) -> tuple[float, ...]:
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__iter__"):
        raise UsageError(f"{what} must be a list of numbers. Received: {values!r}")
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be numbers. Received: {values!r}") from None
    if not out or not all(math.isfinite(v) for v in out):
        raise UsageError(f"{what} must be one or more finite numbers. Received: {values!r}")
    return out


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a model input; applied identically at calibration and at inference.

    A pixel ``p`` (0–255) of the resized, colour-converted image becomes ``(p * scale - mean) / std``
    (per channel when ``mean``/``std`` have one value per channel).

    Args:
        size: ``(height, width)`` of the model input; ``None`` keeps the image size.
        resize: ``stretch`` (ignore aspect ratio), ``crop`` (centre crop to the aspect ratio, then
            resize) or ``pad`` (letterbox with black bars).
        color: ``rgb``, ``bgr`` or ``grayscale``.
        scale: multiplier applied to 0–255 pixel values before ``mean``/``std``.
        mean: value(s) subtracted after scaling, one or one per channel.
        std: divisor(s) applied after subtracting ``mean``, one or one per channel.
    """

    size: tuple[int, int] | None = None
    resize: str = "stretch"
    color: str = "rgb"
    scale: float = 1 / 255
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.size is not None:
            size = tuple(self.size) if isinstance(self.size, (tuple, list)) else ()
            if len(size) != 2 or not all(_is_int(v) and 1 <= v <= MAX_SIDE for v in size):
                raise UsageError(f"Preprocess size must be (height, width), integers from 1 to {MAX_SIDE}. "
                                 f"Received: size={self.size!r}")
            object.__setattr__(self, "size", tuple(int(v) for v in size))
        if not isinstance(self.resize, str) or self.resize not in RESIZE_MODES:
            raise UsageError(f"resize must be one of {', '.join(RESIZE_MODES)}. Received: resize={self.resize!r}")
        if not isinstance(self.color, str) or self.color not in COLORS:
            raise UsageError(f"color must be one of {', '.join(COLORS)}. Received: color={self.color!r}")
        object.__setattr__(self, "mean", _floats(self.mean, "mean"))
        object.__setattr__(self, "std", _floats(self.std, "std"))
        object.__setattr__(self, "scale", _floats([self.scale], "scale")[0])
        if any(s == 0 for s in self.std) or self.scale == 0:
            raise UsageError(f"std and scale must be non-zero. Received: std={self.std}, scale={self.scale}")
        channels = 1 if self.color == "grayscale" else 3
        for name in ("mean", "std"):
            if len(getattr(self, name)) not in (1, channels):
                raise UsageError(
                    f"{name} needs 1 or {channels} values for color={self.color}. Received: {name}={getattr(self, name)}"
                )

    @property
    def channels(self) -> int:
        return 1 if self.color == "grayscale" else 3

    @classmethod
    def from_normalize(cls, spec: str, **kwargs: Any) -> Preprocess:
        """Build from a ``--normalize`` value: ``0,1``, ``-1,1``, ``imagenet``, ``raw`` or ``MEAN/STD``.

        ``MEAN/STD`` takes comma-separated per-channel lists; when every value is at most 1 they
        apply to pixels scaled to 0–1 (``0.5/0.5``), otherwise to 0–255 pixels (``127.5/127.5``).
        """
        spec = spec.strip().lower()
        if spec in NORMALIZATIONS:
            scale, mean, std = NORMALIZATIONS[spec]
        elif "/" in spec:
            mean_s, _, std_s = spec.partition("/")
            mean = _floats(mean_s.split(","), "--normalize MEAN")
            std = _floats(std_s.split(","), "--normalize STD")
            scale = 1 / 255 if max(abs(v) for v in mean + std) <= 1 else 1.0
        else:
            raise UsageError(
                f"--normalize expects one of {', '.join(NORMALIZATIONS)} or MEAN/STD (e.g. 0.5/0.5). Received: {spec!r}"
            )
        return cls(scale=scale, mean=mean, std=std, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size) if self.size else None
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        _expect(d, dict, "preprocess")
        known = {f.name for f in fields(cls)}
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known})


@dataclass(frozen=True)
class QuantInfo:
    """The recipe a model was converted with.

    Args:
        mode: the quantization mode key (``int8``, ``uint8``, ``int16x8``, ``dynamic``, ``float16``, ``float32``…).
        input_type: dtype of the model inputs (``int8``, ``uint8``, ``int16``, ``float32``).
        output_type: dtype of the model outputs.
        calibration: sample count, seed, method and per-input min/max of the representative data.
        keep_float: layers or op types left in float.
        target: the board profile the conversion was aimed at, if any.
        accuracy_budget: the ``--max-drop`` budget and its outcome (metric, max_drop, reference, achieved,
            drop, met, samples, data, steps), when the layers kept in float were chosen by one.
        weights: weight-only modes (``int4-weights``, ``int8-weights``): bits, block size, and which op
            types' weights were stored in integers or kept float32, with the bytes of those weights.
    """

    mode: str
    input_type: str = "float32"
    output_type: str = "float32"
    calibration: dict[str, Any] | None = None
    keep_float: tuple[str, ...] = ()
    target: str | None = None
    accuracy_budget: dict[str, Any] | None = None
    weights: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["keep_float"] = list(self.keep_float)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantInfo:
        _expect(d, dict, "quant")
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for key in ("mode", "input_type", "output_type"):
            _expect(d.get(key, "float32"), str, f"quant.{key}")
        _expect(d.get("target"), (str, type(None)), "quant.target")
        for key in ("calibration", "accuracy_budget", "weights"):
            _expect(d.get(key), (dict, type(None)), f"quant.{key}")
        d["keep_float"] = tuple(_strings(d.get("keep_float") or [], "quant.keep_float"))
        if "mode" not in d:
            raise ModelError("quant.mode is missing")
        return cls(**d)


@dataclass(frozen=True)
class ModelMetadata:
    """Everything edgeq embeds in a converted model (see the module docstring for the JSON)."""

    quant: QuantInfo
    source: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    preprocess: Preprocess | None = None
    edgeq_version: str = ""
    verification: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if self.schema_version != SCHEMA_VERSION:
            raise ModelError(
                f"edgeq metadata schema {self.schema_version} is not supported (this edgeq reads "
                f"{SCHEMA_VERSION}); upgrade edgeq or re-convert the model"
            )
        object.__setattr__(self, "labels", tuple(str(v) for v in self.labels))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "edgeq_version": self.edgeq_version,
            "source": dict(self.source),
            "labels": list(self.labels),
            "preprocess": self.preprocess.to_dict() if self.preprocess else None,
            "quant": self.quant.to_dict(),
            "verification": self.verification,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMetadata:
        """Rebuild metadata from :meth:`to_dict` output, checking every field's type.

        Raises:
            ModelError: a field is missing or of the wrong type, or the schema version is not this edgeq's.
        """
        _expect(d, dict, "the metadata")
        version = d.get("schema_version")
        if not _is_int(version):
            raise ModelError(f"schema_version must be an integer. Received: {version!r}")
        pp = _expect(d.get("preprocess"), (dict, type(None)), "preprocess")
        verification = _expect(d.get("verification"), (dict, type(None)), "verification")
        for key in ("agreement", "sqnr_db"):
            _expect((verification or {}).get(key), (int, float, type(None)), f"verification.{key}")
        labels = _strings(d.get("labels") or [], "labels")
        if labels and labels[0].startswith("\ufeff"):  # a UTF-8 BOM read as text from a labels file
            labels[0] = labels[0][1:]
        return cls(
            schema_version=int(version),
            edgeq_version=_expect(d.get("edgeq_version", ""), str, "edgeq_version"),
            source=dict(_expect(d.get("source") or {}, dict, "source")),
            labels=tuple(labels),
            preprocess=Preprocess.from_dict(pp) if pp else None,
            quant=QuantInfo.from_dict(_expect(d.get("quant"), dict, "quant")),
            verification=verification,
        )

    @classmethod
    def from_json(cls, raw: bytes, name: str = "model") -> ModelMetadata:
        try:
            return cls.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError, UsageError, ModelError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ModelError(f"{name} has an unreadable edgeq metadata entry ({reason}); re-convert the model") from None


def _expect(value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is one of ``types`` (``True``/``False`` count as numbers only if ``bool`` is listed)."""
    types = types if isinstance(types, tuple) else (types,)
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        received = "null" if value is None else type(value).__name__
        raise ModelError(f"{what} must be {names}. Received: {received}")
    return value


def _strings(values: Any, what: str) -> list[str]:
    _expect(values, list, what)
    for v in values:
        _expect(v, str, f"each of {what}")
    return list(values)


def read_metadata(model: str | bytes | Any) -> ModelMetadata | None:
    """Read the ``edgeq`` metadata of a ``.tflite`` file or its bytes; ``None`` if it has none.

    Raises:
        ModelError: the file is not a valid TFLite model, or its ``edgeq`` entry is unreadable.
    """
    from edgeq._flatbuffer import parse
    from edgeq._io import read_model_bytes

    data, name = read_model_bytes(model)
    raw = parse(data, name).metadata.get(METADATA_NAME)
    return ModelMetadata.from_json(raw, name) if raw else None
