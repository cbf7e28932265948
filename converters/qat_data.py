"""Training data for QAT: labelled images or ``.npz`` (read as ``edgeq eval`` reads them), or a ``tf.data.Dataset``.

Files become a shuffled ``tf.data.Dataset`` of ``(x, y)`` batches plus up to ``HELD_OUT`` samples kept
apart for verification and accuracy. A dataset passed from Python is used as it is (batched when its
elements are single samples); its labels are checked against the model's output on the first element.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeq._progress import track
from edgeq.errors import DataError, UsageError
from edgeq.metadata import Preprocess
from edgeq.runtime.evaluate import read_labelled

from edgeq.converters.datasets import image_preprocess
from edgeq.converters.source import InputSpec

#: labelled samples kept apart from training for verification and accuracy, at most
HELD_OUT = 100


@dataclass
class TrainingData:
    """What QAT trains on, and what it keeps back.

    Attributes:
        dataset: a ``tf.data.Dataset`` of ``(x, y)`` batches.
        samples: training samples per epoch (``None`` for a dataset given from Python).
        steps: batches per epoch (``None`` when unknown).
        held_out_x, held_out_y: labelled samples not trained on (empty when too few were given).
        sparse: labels are class indices (else one-hot or regression targets).
        source: where the data came from; ``kind``: ``images``, ``arrays`` or ``tf.data``.
        preprocess: the image preprocessing applied, for images.
    """

    dataset: Any
    samples: int | None
    steps: int | None
    held_out_x: np.ndarray
    held_out_y: np.ndarray
    sparse: bool
    source: str
    kind: str
    preprocess: Preprocess | None = None


def load_training_data(
    train: Any,
    inputs: Sequence[InputSpec],
    output_shape: Sequence[int | None],
    labels: Sequence[str] = (),
    batch_size: int = 32,
    samples: int | None = None,
    seed: int = 0,
    resize: str = "stretch",
    normalize: str = "0,1",
    bgr: bool = False,
) -> TrainingData:
    """Read QAT training data for a model with ``inputs`` and one output of ``output_shape``.

    Args:
        train: a class-folder tree, a labels CSV, a ``.npz`` with ``x``/``y``, or a ``tf.data.Dataset``
            of ``(x, y)`` pairs (batched or not).
        inputs, output_shape: the model's inputs and its output shape (batch first).
        labels: the model's class names, to map the data's class names onto.
        batch_size: training batch size (datasets already batched keep theirs).
        samples: use at most this many labelled samples (reproducibly drawn with ``seed``); all by default.
        resize, normalize, bgr: image preprocessing (see :class:`~edgeq.metadata.Preprocess`).

    Raises:
        DataError: the data is missing or empty, or its inputs or labels do not fit the model.
    """
    if samples is not None and samples < 2:
        raise UsageError(f"--samples must be at least 2 for training. Received: {samples}")
    if isinstance(train, (str, os.PathLike)):
        return _from_files(Path(train), inputs, output_shape, labels, batch_size, samples, seed,
                           {"resize": resize, "normalize": normalize, "bgr": bgr})
    tf = _tf()
    if isinstance(train, tf.data.Dataset):
        return _from_dataset(tf, train, inputs, output_shape, batch_size)
    raise DataError(
        f"cannot train on {type(train).__name__}: expected a labelled image folder, a labels CSV, a .npz with x and y, "
        "or a tf.data.Dataset of (x, y)"
    )


def _classes(output_shape: Sequence[int | None]) -> int:
    if len(output_shape) != 2 or not output_shape[1] or output_shape[1] < 2:
        raise DataError(
            f"labelled images and .npz files train classifiers, but the model outputs shape {list(output_shape)}, "
            "not (batch, classes); pass a tf.data.Dataset of (x, y) from Python instead"
        )
    return int(output_shape[1])


def _from_files(path: Path, inputs, output_shape, labels, batch_size, samples, seed, pp_args) -> TrainingData:
    classes = _classes(output_shape)
    if len(inputs) != 1:
        raise DataError(f"the model has {len(inputs)} inputs; labelled files feed one. Pass a tf.data.Dataset instead")
    labelled = read_labelled(path, labels, classes)
    order = np.random.default_rng(seed).permutation(len(labelled.items))
    if samples is not None:
        order = order[:samples]
    spec = inputs[0]
    pp = None
    if labelled.kind == "images":
        if not spec.is_image:
            raise DataError(f"{path} holds images but input {spec.name!r} has shape {list(spec.shape)}; pass a .npz of arrays")
        pp = image_preprocess(spec, **pp_args)
    picked = [labelled.items[i] for i in order]
    from edgeq.runtime.preprocess import image_to_array

    x = np.stack([
        image_to_array(item, pp) if pp is not None else np.asarray(item, np.float32).reshape(item.shape[1:])
        for item in track(picked, "Reading training data")
    ]).astype(np.float32)
    want = tuple(d for d in spec.sample_shape)
    if any(w is not None and w != g for w, g in zip(want, x.shape[1:])) or len(want) != x.ndim - 1:
        raise DataError(f"{path} has samples of shape {list(x.shape[1:])} but input {spec.name!r} expects "
                        f"{[w if w is not None else 'any' for w in want]}")
    y = labelled.labels[order].astype(np.int64)
    held = min(HELD_OUT, len(x) // 10)
    tf = _tf()
    train = tf.data.Dataset.from_tensor_slices((x[held:], y[held:]))
    train = train.shuffle(len(x) - held, seed=seed, reshuffle_each_iteration=True).batch(batch_size)
    steps = -(-(len(x) - held) // batch_size)
    return TrainingData(train, len(x) - held, steps, x[:held], y[:held], True, labelled.source, labelled.kind, pp)


def _from_dataset(tf: Any, dataset: Any, inputs, output_shape, batch_size) -> TrainingData:
    spec = dataset.element_spec
    if not isinstance(spec, tuple) or len(spec) != 2:
        raise DataError(f"a training dataset must yield (x, y) pairs; its elements are {spec}")
    x_spec, y_spec = spec
    rank = len(inputs[0].shape)
    x_rank = len(tf.nest.flatten(x_spec)[0].shape)
    if x_rank == rank - 1:
        dataset = dataset.batch(batch_size)
    elif x_rank != rank:
        raise DataError(f"the training dataset yields x of shape {tf.nest.flatten(x_spec)[0].shape} but input "
                        f"{inputs[0].name!r} expects {list(inputs[0].shape)} (with or without the batch dimension)")
    try:
        first_x, first_y = next(iter(dataset.take(1)))
    except StopIteration:
        raise DataError("the training dataset is empty") from None
    y = np.asarray(first_y)
    sparse = np.issubdtype(y.dtype, np.integer) and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1))
    _check_targets(y, sparse, output_shape)
    steps = int(dataset.cardinality())
    empty_x = np.zeros((0, *np.asarray(tf.nest.flatten(first_x)[0]).shape[1:]), np.float32)
    return TrainingData(dataset, None, steps if steps >= 0 else None, empty_x, np.zeros((0,), np.int64), sparse,
                        "tf.data.Dataset", "tf.data")


def _check_targets(y: np.ndarray, sparse: bool, output_shape: Sequence[int | None]) -> None:
    """Labels of the first batch against the model's output shape."""
    out = list(output_shape)
    if sparse:
        classes = out[-1] if len(out) == 2 else None
        if classes is None or classes < 2:
            raise DataError(f"the training labels are class indices but the model outputs shape {out}, not (batch, classes)")
        if y.min() < 0 or y.max() >= classes:
            raise DataError(f"the training labels go from {int(y.min())} to {int(y.max())} but the model outputs "
                            f"{classes} classes (0..{classes - 1}); check the labels or the model's last layer")
    elif list(y.shape[1:]) != [d for d in out[1:]]:
        raise DataError(f"the training targets have shape {list(y.shape[1:])} per sample but the model outputs "
                        f"{out[1:]}; use class indices or one-hot vectors of length {out[-1]}")


def _tf() -> Any:
    from edgeq import _lazy

    return _lazy.tensorflow()
