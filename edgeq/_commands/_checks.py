"""Checks of paths and options that run before TensorFlow is imported or a model is loaded.

A misspelt path or option should cost the user a second, not the 5–15 s of importing TensorFlow and
loading a model. These checks only look at the file system and parse option values; the library
functions check the same things again (they are the API's contract), so nothing here is the only guard.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeq.errors import DataError, ModelError, UsageError

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
DATA_SUFFIXES = (".npy", ".npz")
# as edgeq.converters.datasets and edgeq.runtime.preprocess read them (tests/cli/test_fast_checks.py keeps them
# equal); repeated because importing those packages costs about a second, which is what these checks save
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_keras_model(path: Path) -> bool:
    """A Keras/SavedModel file or folder, recognised by its name or its first bytes (zip or HDF5)."""
    if path.is_dir():
        return (path / "saved_model.pb").is_file()
    if path.suffix.lower() in KERAS_SUFFIXES:
        return True
    if not path.is_file():  # a FIFO or a device: opening it could block; the model reader refuses it in one line
        return False
    try:
        with path.open("rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or head.startswith(b"\x89HDF\r\n\x1a\n")


def tflite_model(path: str) -> None:
    """A ``.tflite`` argument: it exists, and is not a Keras model someone forgot to convert."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model file not found: {path}; check the path (expected a .tflite file)")
    if is_keras_model(p):
        out = f"{p.stem if p.is_file() else p.name}_int8.tflite"
        raise ModelError(f"{path} is a Keras model, not TFLite: convert it first with "
                         f"edgeq convert {path} --data CALIB_IMAGES/ --out {out}")
    if p.is_dir():
        raise ModelError(f"{path} is a folder, expected a .tflite file")


def keras_model(path: str) -> None:
    """A model to convert: a .keras/.h5 file or a SavedModel folder that exists."""
    p = Path(path)
    if not p.exists():
        raise ModelError(f"model not found: {path}; expected a .keras file, a .h5 file or a SavedModel folder")
    if p.is_dir() and not (p / "saved_model.pb").is_file():
        raise ModelError(f"{path} is a folder without saved_model.pb; expected a SavedModel folder, a .keras or a .h5 file")
    if p.is_file() and p.suffix.lower() == ".tflite":
        raise ModelError(f"{path} is already a TFLite model; give the Keras model it came from (.keras, .h5, SavedModel)")


def _has_images(folder: Path) -> bool:
    return any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.rglob("*") if f.is_file())


def data(spec: str, option: str = "--data") -> None:
    """Representative data: an image folder with images, a video, .npy/.npz, or ``py:module:function`` (runs code)."""
    p = Path(spec)
    if p.is_dir():
        if not _has_images(p):
            raise DataError(f"{option} folder {spec} holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                            "give a folder of images, a video, a .npy/.npz file or py:module:function")
        return
    if p.is_file():
        if p.suffix.lower() not in DATA_SUFFIXES + VIDEO_SUFFIXES:
            raise DataError(f"cannot use {spec} as {option}: expected an image folder, a video "
                            f"({', '.join(VIDEO_SUFFIXES)}), .npy/.npz, or py:module:function")
        return
    if spec.startswith("py:"):
        return  # py:module:function, imported (from the current folder) when the data is read
    hint = f" (to run Python code, write {option} py:{spec})" if ":" in spec and not spec.startswith(("/", ".")) else ""
    raise DataError(f"{option} not found: {spec}; give an image folder, a video, a .npy/.npz file or "
                    f"py:module:function{hint}")


def labelled(spec: str, option: str = "--data") -> None:
    """Labelled data: class sub-folders of images, an ``image,label`` CSV (or a folder with labels.csv), or .npz."""
    p = Path(spec)
    if not p.exists():
        raise DataError(f"labelled data not found: {spec}")  # as edgeq.runtime.evaluate says it
    if p.is_dir() and not (p / "labels.csv").is_file() and not _has_images(p):
        raise DataError(f"{option} folder {spec} holds no images; expected class sub-folders of images or a labels.csv")
    if p.is_file() and p.suffix.lower() not in (".csv", ".npz"):
        raise DataError(f"cannot use {spec} as {option}: expected class sub-folders, a labels CSV or a .npz with x and y")


def labels_file(path: str) -> None:
    """``--labels``: a readable UTF-8 text file with at least one class name (as ``read_labels`` reads it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read labels file {path}: {exc}") from None
    if not text.strip():
        raise DataError(f"labels file {path} is empty; expected one class name per line")


def preprocessing(args: argparse.Namespace) -> None:
    """``--normalize`` and ``--resize`` parse, as the converter would parse them (no ``--normalize``: the model decides)."""
    from edgeq.metadata import Preprocess

    Preprocess.from_normalize(args.normalize or "0,1", resize=args.resize)


def calibration(spec: str) -> None:
    """``--calibration``: minmax, percentile:P or mse."""
    from edgeq.converters.calibration import Calibration

    Calibration.parse(spec)


def mode(key: str) -> None:
    """``--mode``: a registered quantization mode."""
    from edgeq.converters.modes import get_mode

    get_mode(key)


def output(path: str, force: bool) -> None:
    """An output file: its folder exists, and it does not unless ``--force``."""
    from edgeq._io import check_output_path

    check_output_path(path, force)


def positive(args: argparse.Namespace, *names: str) -> None:
    """Integer options that must be at least 1 when given."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < 1:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} must be at least 1. Received: {flag} {value}")
