"""Top-1 accuracy of a model on a labelled image folder (one sub-folder per class, sorted = class index)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgeq._progress import track
from edgeq.errors import DataError
from edgeq.runtime.preprocess import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class LabelledImages:
    """Image paths with their class index; ``classes`` are the folder names in index order."""

    paths: tuple[Path, ...]
    labels: np.ndarray
    classes: tuple[str, ...]


def labelled_folder(folder: str | os.PathLike) -> LabelledImages:
    """Read an ImageNet-style folder: ``folder/<class>/<image>``; class index = sorted folder order.

    Raises:
        DataError: the folder is missing or holds no class folders with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"labelled data folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        paths += files
        labels += [index] * len(files)
    if not paths:
        raise DataError(f"no labelled images in {root}: expected class sub-folders holding {', '.join(IMAGE_EXTENSIONS)} files")
    return LabelledImages(tuple(paths), np.asarray(labels), tuple(classes))


def top1_accuracy(predict: Callable[[Any], np.ndarray], items: Sequence[Any], labels: np.ndarray, what: str) -> float:
    """Share of ``items`` whose arg-max prediction equals the label."""
    correct = 0
    for item, label in zip(track(items, what), labels):
        correct += int(np.argmax(predict(item)) == label)
    return correct / len(labels)
