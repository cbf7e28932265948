"""Representative datasets: image folders, videos, ``.npy``/``.npz`` arrays, ``py:module:function`` (runs code), tf.data.

Every source becomes a :class:`SampleSet`: a list of samples (one float32 array per model
input, batch dimension included) split reproducibly into calibration and verification parts.
Images go through :func:`edgeq.runtime.preprocess.image_to_array`, the code the runtime uses.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from edgeq._lazy import import_optional
from edgeq._progress import track
from edgeq.errors import DataError, EdgeqError
from edgeq.metadata import Preprocess
from edgeq.runtime.preprocess import IMAGE_EXTENSIONS, image_to_array

from edgeq.converters.source import InputSpec

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
#: samples kept apart from calibration for verification, at most
VERIFY_SAMPLES = 100
#: calibration samples when the caller does not say
DEFAULT_SAMPLES = 200

Sample = list[np.ndarray]


@dataclass(frozen=True)
class SampleSet:
    """Calibration samples, verification samples, and how they were made.

    ``warnings`` are what the data check found (images resized or colour-converted to fit the input).
    """

    calibration: list[Sample]
    verification: list[Sample]
    source: str
    kind: str
    held_out: bool
    preprocess: Preprocess | None = None
    warnings: tuple[str, ...] = ()

    def input_ranges(self, inputs: Sequence[InputSpec]) -> list[dict[str, Any]]:
        """Per-input min/max over the calibration samples (stored in the metadata)."""
        return [
            {
                "name": spec.name,
                "min": float(min(s[i].min() for s in self.calibration)),
                "max": float(max(s[i].max() for s in self.calibration)),
            }
            for i, spec in enumerate(inputs)
        ]


def _split_indices(count: int, samples: int | None, seed: int, holdout: int | None = None) -> tuple[list[int], list[int]]:
    """A reproducible shuffle into calibration and verification indices.

    ``holdout`` samples verify and up to ``samples`` of the rest calibrate. Without it, the first ``samples``
    calibrate and up to VERIFY_SAMPLES of the rest verify. ``samples=None`` means DEFAULT_SAMPLES with at least
    a fifth of the data (up to VERIFY_SAMPLES) held back: 200 images calibrate on 160 and verify on 40.
    """
    order = np.random.default_rng(seed).permutation(count).tolist()
    if samples is None:
        samples = DEFAULT_SAMPLES
        floor = min(VERIFY_SAMPLES, count // 5)
        if holdout is None and 0 < floor and count - samples < floor:
            holdout = floor
    if holdout is None:
        return sorted(order[:samples]), sorted(order[samples : samples + VERIFY_SAMPLES])
    if not 0 < holdout < count:
        raise DataError(f"--holdout {holdout} must be between 1 and the number of samples minus 1; the data has {count}")
    return sorted(order[holdout : holdout + samples]), sorted(order[:holdout])


def image_files(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursively), sorted; raises DataError when there are none."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images in {folder} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
    return files


def _to_samples(arrays: Sequence[Any], inputs: Sequence[InputSpec], where: str) -> list[Sample]:
    """Check one array per input (batched or not) against the inputs; split it into single samples."""
    if len(arrays) != len(inputs):
        raise DataError(f"{where} gives {len(arrays)} arrays per sample but the model has {len(inputs)} inputs")
    checked = []
    for array, spec in zip(arrays, inputs):
        array = np.asarray(array)
        if not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{where} has {array.dtype} data; expected numbers")
        if array.ndim == len(spec.sample_shape):
            array = array[None]
        want = spec.sample_shape
        if array.ndim != len(spec.shape) or any(w is not None and w != g for w, g in zip(want, array.shape[1:])):
            raise DataError(
                f"{where} has samples of shape {list(array.shape[1:] if array.ndim == len(spec.shape) else array.shape)}"
                f" but input {spec.name!r} expects {[w if w is not None else 'any' for w in want]}"
            )
        array = array.astype(np.float32)
        if not np.isfinite(array).all():
            raise DataError(f"{where} contains NaN or infinite values; clean the data first")
        checked.append(array)
    counts = {a.shape[0] for a in checked}
    if len(counts) != 1:
        raise DataError(f"{where} holds arrays with different sample counts {sorted(counts)}; they must match")
    return [[a[i : i + 1] for a in checked] for i in range(counts.pop())]


def _single_image_input(inputs: Sequence[InputSpec], what: str) -> InputSpec:
    if len(inputs) != 1:
        raise DataError(
            f"the model has {len(inputs)} inputs ({', '.join(s.name for s in inputs)}) but {what} gives one image per "
            "sample; pass a .npz with one array per input name, or a py:module:function"
        )
    spec = inputs[0]
    if not spec.is_image:
        raise DataError(
            f"{what} holds images but input {spec.name!r} has shape {list(spec.shape)}, not an image "
            "(height, width, 1 or 3 channels); pass a .npy/.npz of preprocessed arrays"
        )
    return spec


def image_preprocess(spec: InputSpec, resize: str = "stretch", normalize: str = "0,1", bgr: bool = False) -> Preprocess:
    """The preprocessing for an image input: size from the model, colour from its channels."""
    h, w, c = spec.sample_shape
    color = "grayscale" if c == 1 else ("bgr" if bgr else "rgb")
    return Preprocess.from_normalize(normalize, size=(int(h), int(w)), resize=resize, color=color)


_MODE_NAMES = {"L": "grayscale", "LA": "grayscale+alpha", "RGB": "RGB", "RGBA": "RGBA", "P": "palette",
               "CMYK": "CMYK", "1": "1-bit", "I;16": "16-bit grayscale", "I;16B": "16-bit grayscale",
               "I;16L": "16-bit grayscale", "I": "32-bit grayscale", "F": "float grayscale"}


def image_fit_warnings(files: Sequence[Path], pp: Preprocess) -> list[str]:
    """Say how images are changed to fit the input: "resized 28x28 grayscale → 96x96 RGB (200 of 200 images)"."""
    from PIL import Image

    target_mode = "grayscale" if pp.color == "grayscale" else "RGB"
    changed: dict[tuple[int, int, str], int] = {}
    for path in files:
        try:
            with Image.open(path) as img:  # reads the header only
                key = (img.width, img.height, _MODE_NAMES.get(img.mode, img.mode))
        except OSError:
            continue
        size_differs = pp.size is not None and (key[1], key[0]) != tuple(pp.size)
        # 16-bit/float grayscale is scaled to 8 bits (runtime.preprocess.to_8bit), not a different kind of image
        if size_differs or key[2].rpartition(" ")[2] != target_mode:
            changed[key] = changed.get(key, 0) + 1
    if not changed:
        return []
    (w, h, mode), count = max(changed.items(), key=lambda kv: kv[1])
    th, tw = pp.size if pp.size is not None else (h, w)
    verb = "resized" if (h, w) != (th, tw) else "converted"
    total = sum(changed.values())
    others = f"; {len(changed) - 1} other size/colour combination(s)" if len(changed) > 1 else ""
    return [f"data: {verb} {w}x{h} {mode} → {tw}x{th} {target_mode} ({total} of {len(files)} images{others}); "
            "check that the images are the kind the model was trained on"]


def _from_folder(folder: Path, inputs, samples, seed, pp_args, holdout=None) -> SampleSet:
    spec = _single_image_input(inputs, f"image folder {folder}")
    files = image_files(folder)
    pp = image_preprocess(spec, **pp_args)
    calib_idx, verify_idx = _split_indices(len(files), samples, seed, holdout)
    load = lambda idx, what: [[image_to_array(files[i], pp)[None]] for i in track(idx, what)]  # noqa: E731
    calibration = load(calib_idx, "Reading calibration images")
    verification = load(verify_idx, "Reading verification images")
    fit = image_fit_warnings([files[i] for i in calib_idx + verify_idx], pp)
    return _finish(calibration, verification, str(folder), "images", pp, fit)


def _from_video(path: Path, inputs, samples, seed, pp_args) -> SampleSet:
    spec = _single_image_input(inputs, f"video {path}")
    cv2 = import_optional("cv2", 'pip install "edgeq[camera]" (OpenCV, for video data; "edgeq[camera-headless]" on a server)')
    pp = image_preprocess(spec, **pp_args)
    cap = cv2.VideoCapture(str(path))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if not cap.isOpened() or count <= 0:
            raise DataError(f"cannot read video {path}: no decodable frames; give an .mp4/.avi that OpenCV can open")
        n = min(samples or DEFAULT_SAMPLES, count)
        calib = sorted(set(np.linspace(0, count - 1, n).round().astype(int).tolist()))
        spare = sorted(set(range(count)) - set(calib))
        verify = spare[:: max(1, len(spare) // VERIFY_SAMPLES)][:VERIFY_SAMPLES]
        wanted = {i: "c" for i in calib} | {i: "v" for i in verify}
        calibration, verification = [], []
        with_progress = track(range(max(wanted) + 1), "Decoding video frames")
        for i in with_progress:
            ok, frame = cap.read()
            if not ok:
                break
            if i in wanted:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                (calibration if wanted[i] == "c" else verification).append([image_to_array(rgb, pp)[None]])
    finally:
        cap.release()
    if not calibration:
        raise DataError(f"cannot read video {path}: no decodable frames")
    return _finish(calibration, verification, str(path), "video", pp)


def _from_arrays(arrays: list[np.ndarray], inputs, samples, seed, where: str, kind: str, holdout=None) -> SampleSet:
    per_sample = _to_samples(arrays, inputs, where)
    if not per_sample:
        raise DataError(f"{where} holds no samples")
    calib_idx, verify_idx = _split_indices(len(per_sample), samples, seed, holdout)
    return _finish([per_sample[i] for i in calib_idx], [per_sample[i] for i in verify_idx], where, kind, None)


def _from_npy(path: Path, inputs, samples, seed, holdout=None) -> SampleSet:
    if path.suffix.lower() == ".npy":
        from edgeq._io import load_npy

        loaded = load_npy(path)
    else:
        try:
            loaded = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"cannot read {path}: {exc or 'empty file'}") from None
    if isinstance(loaded, np.ndarray):
        arrays = [loaded]
    else:
        with loaded:
            keys = list(loaded.keys())
            names = [s.name for s in inputs]
            if all(n in keys for n in names):
                arrays = [loaded[n] for n in names]
            elif len(inputs) == 1 and ("x" in keys or len(keys) == 1):
                arrays = [loaded["x" if "x" in keys else keys[0]]]
            else:
                raise DataError(f"{path} holds arrays {keys}; expected one per input named {names} (or 'x' for one input)")
    if len(arrays) != len(inputs):
        raise DataError(f"{path} holds one array but the model has {len(inputs)} inputs; use a .npz keyed by input name")
    return _from_arrays(arrays, inputs, samples, seed, str(path), "arrays", holdout)


def _from_iterable(items: Iterable[Any], inputs, samples, seed, where: str, holdout=None) -> SampleSet:
    collected: list[Sample] = []
    limit = (samples or DEFAULT_SAMPLES) + (VERIFY_SAMPLES if holdout is None else holdout)
    for item in items:
        if hasattr(item, "numpy") and not isinstance(item, (tuple, list, dict)):
            item = item.numpy()
        if isinstance(item, dict):
            item = [item[s.name] for s in inputs]
        elif isinstance(item, (tuple, list)):
            item = list(item)
            if len(inputs) == 1 and len(item) == 2:  # (x, y) pairs as in a labelled tf.data pipeline
                item = item[:1]
        else:
            item = [item]
        collected.extend(_to_samples([a.numpy() if hasattr(a, "numpy") else a for a in item], inputs, where))
        if len(collected) >= limit:
            break
    if not collected:
        raise DataError(f"{where} yielded no samples")
    calib_idx, verify_idx = _split_indices(len(collected), samples, seed, holdout)
    return _finish([collected[i] for i in calib_idx], [collected[i] for i in verify_idx], where, "callable", None)


#: ``--data py:module:function`` imports ``module`` (the current folder first) and calls ``function``: it runs code
CODE_PREFIX = "py:"


def _from_callable(spec: str, inputs, samples, seed, holdout=None) -> SampleSet:
    module_name, _, func_name = spec[len(CODE_PREFIX):].partition(":")
    if not module_name or not func_name:
        raise DataError(f"--data {spec}: expected {CODE_PREFIX}module:function, e.g. {CODE_PREFIX}mydata:samples")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except (ImportError, AttributeError) as exc:
        raise DataError(f"cannot import {spec}: {exc}; expected {CODE_PREFIX}module:function importable from the "
                        "current folder") from None
    return _call_user_data(func, inputs, samples, seed, spec, holdout)


def _call_user_data(func: Callable[[], Any], inputs, samples, seed, where: str, holdout=None) -> SampleSet:
    """Collect the samples of a user's data function; an exception inside it is a DataError naming it."""
    try:
        return _from_iterable(func(), inputs, samples, seed, where, holdout)
    except EdgeqError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code may raise anything
        raise DataError(f"the data function {where} raised {type(exc).__name__}: {exc}; fix it and rerun") from exc


def _finish(calibration, verification, source, kind, pp, warnings=()) -> SampleSet:
    held_out = bool(verification)
    return SampleSet(calibration, verification or calibration[:VERIFY_SAMPLES], source, kind, held_out, pp,
                     tuple(warnings))


def load_samples(
    data: Any,
    inputs: Sequence[InputSpec],
    samples: int | None = 200,
    seed: int = 0,
    resize: str = "stretch",
    normalize: str = "0,1",
    bgr: bool = False,
    holdout: int | None = None,
) -> SampleSet:
    """Read a representative dataset for a model with the given inputs.

    Args:
        data: an image folder, a video, a ``.npy``/``.npz`` file, ``"py:module:function"`` (imports the module
            from the current folder and calls the function: this runs code), a
            ``tf.data.Dataset``, a callable returning an iterable, or an iterable of arrays.
        inputs: the model's inputs.
        samples: how many samples calibrate (the rest, up to 100, verify); ``None``: 200, holding back at
            least a fifth of the data (up to 100) for verification.
        seed: seed of the reproducible sampling.
        holdout: exactly this many samples verify, kept apart from calibration (not for videos).
        resize, normalize, bgr: image preprocessing (see :class:`~edgeq.metadata.Preprocess`).

    Raises:
        DataError: the data is missing, empty, undecodable, non-finite or does not fit the inputs.
    """
    if samples is not None and samples < 1:
        raise DataError(f"--samples must be at least 1. Received: {samples}")
    pp_args = {"resize": resize, "normalize": normalize, "bgr": bgr}
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        path = Path(text)
        if path.is_dir():
            return _from_folder(path, inputs, samples, seed, pp_args, holdout)
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix in (".npy", ".npz"):
                return _from_npy(path, inputs, samples, seed, holdout)
            if suffix in VIDEO_EXTENSIONS:
                return _from_video(path, inputs, samples, seed, pp_args)
            raise DataError(
                f"cannot use {path} as data: expected an image folder, a video ({', '.join(VIDEO_EXTENSIONS)}), "
                f".npy/.npz, or {CODE_PREFIX}module:function"
            )
        if text.startswith(CODE_PREFIX):
            return _from_callable(text, inputs, samples, seed, holdout)
        hint = f" (to run Python code, write --data {CODE_PREFIX}{text})" if ":" in text and not text.startswith(("/", ".")) else ""
        raise DataError(f"data not found: {text}; give an image folder, a video, a .npy/.npz file or "
                        f"{CODE_PREFIX}module:function{hint}")
    if callable(data):
        return _call_user_data(data, inputs, samples, seed, getattr(data, "__name__", "callable"), holdout)
    if isinstance(data, np.ndarray):
        return _from_arrays([data], inputs, samples, seed, "array", "arrays", holdout)
    if hasattr(data, "__iter__"):
        return _from_iterable(data, inputs, samples, seed, type(data).__name__, holdout)
    raise DataError(f"cannot use {type(data).__name__} as data; see edgeq convert --help for the accepted sources")


@dataclass(frozen=True)
class VerificationData:
    """Samples for verification only (``--verify-data``), with class indices when the data is labelled."""

    samples: list[Sample]
    labels: np.ndarray | None
    source: str


def _is_labelled(path: Path) -> bool:
    """Class sub-folders with images, a labels CSV, or an ``.npz`` holding ``x`` and ``y``."""
    if path.is_dir():
        if (path / "labels.csv").is_file():
            return True
        subfolders = [p for p in path.iterdir() if p.is_dir()]
        loose = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
        return len(subfolders) >= 2 and not loose
    if path.suffix.lower() == ".csv":
        return True
    if path.suffix.lower() == ".npz" and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as loaded:
                return {"x", "y"} <= set(loaded.keys())
        except (OSError, ValueError):
            return False
    return False


def load_verification(
    data: str | os.PathLike, inputs: Sequence[InputSpec], preprocess: Preprocess | None, pp_args: dict[str, Any],
    labels: Sequence[str] = (), classes: int | None = None, limit: int = 1000,
) -> VerificationData:
    """Read ``--verify-data``: labelled (class folders, labels CSV, ``.npz`` with ``x``/``y``) or not (any ``--data`` source).

    Args:
        data: the data.
        inputs: the model's inputs.
        preprocess: the image preprocessing the calibration data used (``None``: built from ``pp_args``).
        pp_args: ``resize``/``normalize``/``bgr`` for images (the values the calibration data used).
        labels: the model's class names, to map class folders onto class indices.
        classes: how many classes the model outputs, when known.
        limit: at most this many samples.

    Raises:
        DataError: the data is missing, empty, or does not fit the inputs.
    """
    path = Path(data)
    if not path.exists():
        raise DataError(f"--verify-data not found: {path}; give a folder (class sub-folders for accuracy), a video or .npy/.npz")
    if _is_labelled(path):
        from edgeq.runtime.evaluate import read_labelled

        labelled = read_labelled(path, labels, classes)
        if labelled.kind != "arrays":
            spec = _single_image_input(inputs, f"--verify-data {path}")
            preprocess = preprocess or image_preprocess(spec, **pp_args)
        count = min(len(labelled.items), limit)
        arrays = [a for a, _ in zip(labelled.arrays(preprocess), range(count))]
        samples = _to_samples([np.concatenate(arrays)], inputs, f"--verify-data {path}") if len(inputs) == 1 else []
        if len(inputs) != 1:
            raise DataError(f"labelled --verify-data works for single-input models; this one has {len(inputs)} inputs: "
                            "pass an .npz keyed by input name (unlabelled)")
        return VerificationData(samples, np.asarray(labelled.labels[:count]), labelled.source)
    loaded = load_samples(path, inputs, samples=limit, seed=0, **pp_args)
    everything = loaded.calibration + (loaded.verification if loaded.held_out else [])
    return VerificationData(everything[:limit], None, str(path))
