"""Expanding what a user points ``edgeq run`` at into named inputs: images, folders, videos, arrays."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from edgeq.errors import DataError, DependencyMissing
from edgeq.runtime.preprocess import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def random_input(specs: Sequence[Any], seed: int = 0, shapes: Sequence[Sequence[int]] | None = None) -> list[np.ndarray]:
    """Random tensors in each input's own dtype and range (a smoke-test input); ``shapes`` overrides the shapes."""
    rng = np.random.default_rng(seed)
    out = []
    for k, s in enumerate(specs):
        shape = tuple(max(1, d) for d in (shapes[k] if shapes is not None else s.shape))
        if np.issubdtype(s.dtype, np.integer):
            info = np.iinfo(s.dtype)
            out.append(rng.integers(info.min, int(info.max) + 1, size=shape, dtype=s.dtype))
        elif s.dtype == np.bool_:
            out.append(rng.integers(0, 2, size=shape).astype(np.bool_))
        else:
            out.append(rng.random(shape, dtype=np.float32).astype(s.dtype))
    return out


def video_frames(path: Path, every: int = 1) -> Iterator[tuple[str, np.ndarray]]:
    """Every ``every``-th frame of a video as an RGB uint8 array (needs OpenCV)."""
    try:
        import cv2
    except ImportError:
        raise DependencyMissing(f'reading video {path} needs OpenCV: pip install "edgeq[camera]" (on a server: "edgeq[camera-headless]")') from None
    from edgeq._native import quiet_native_output

    with quiet_native_output():  # FFmpeg prints e.g. "moov atom not found" on stderr for a broken file
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DataError(f"cannot open video {path}; give a file OpenCV can decode (.mp4, .avi, …)")
    try:
        index, produced = 0, 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if index % every == 0:
                produced += 1
                yield f"{path.name}#{index}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
        if produced == 0:
            raise DataError(f"cannot read video {path}: no decodable frames")
    finally:
        cap.release()


def expand_inputs(items: Sequence[str | os.PathLike], every: int = 1) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, value)`` for each image, each image in a folder, each video frame, each .npy array.

    Raises:
        DataError: a path is missing, a folder holds no images, or a file type is not supported.
    """
    for item in items:
        path = Path(item)
        if not path.exists():
            raise DataError(f"input not found: {path}")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not files:
                raise DataError(f"no images in {path} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
            yield from ((str(f), f) for f in files)
        elif path.suffix.lower() in IMAGE_EXTENSIONS:
            yield str(path), path
        elif path.suffix.lower() in VIDEO_EXTENSIONS:
            yield from video_frames(path, every)
        elif path.suffix.lower() == ".npy":
            from edgeq._io import load_npy

            yield str(path), load_npy(path)
        else:
            raise DataError(
                f"cannot run on {path}: expected an image ({', '.join(IMAGE_EXTENSIONS)}), a folder of images, "
                f"a video ({', '.join(VIDEO_EXTENSIONS)}) or a .npy array"
            )
