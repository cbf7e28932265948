"""Fine-tuning the fake-quantized model: the model file's compiled loss and optimizer when it has them,
defaults that fit the labels otherwise, and one progress bar per epoch.

Importing this module imports Keras (the ``[convert]`` extra).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeq import _lazy
from edgeq._native import quiet_native_output
from edgeq._progress import step
from edgeq.errors import DataError, UsageError

from edgeq.converters.qat_data import TrainingData

keras = _lazy.keras()
log = logging.getLogger(__name__)

#: Adam's learning rate when the model file has no compiled optimizer: small, as for any fine-tuning
DEFAULT_LEARNING_RATE = 1e-4


@dataclass(frozen=True)
class EpochStats:
    """One epoch of QAT fine-tuning: mean training loss, training accuracy (classifiers) and wall time."""

    epoch: int
    loss: float
    accuracy: float | None
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TrainingSetup:
    """The loss and optimizer QAT trains with, and where they came from (``compiled`` or ``default``)."""

    loss: Any
    optimizer: Any
    origin: str
    classifier: bool

    def describe(self) -> str:
        lr = self.optimizer.get_config()["learning_rate"]  # a schedule as its config (its value changes in training)
        if isinstance(lr, dict) and lr.get("class_name") == "CosineDecay":
            rate = f"{lr['config']['initial_learning_rate']:.3g}, cosine decay to 0"
        else:
            rate = lr.get("class_name", "schedule") if isinstance(lr, dict) else f"{float(np.asarray(lr)):.3g}"
        return f"{_name(self.loss)} + {type(self.optimizer).__name__} (lr {rate}) from the {self.origin} settings"


def _name(loss: Any) -> str:
    return loss if isinstance(loss, str) else getattr(loss, "name", type(loss).__name__)


def _compiled(path: str | os.PathLike) -> tuple[Any, Any]:
    """The loss and optimizer the model file was compiled with, or ``(None, None)``."""
    try:
        with quiet_native_output():
            model = keras.models.load_model(path, compile=True)
    except Exception as exc:  # noqa: BLE001 - a file whose compile config cannot be restored trains with defaults
        log.info("no usable compile config in %s (%s); QAT uses default loss and optimizer", path, exc)
        return None, None
    return getattr(model, "loss", None), getattr(model, "optimizer", None)


def _gives_probabilities(model: Any, x: Any) -> bool:
    out = np.asarray(model(x, training=False))
    return bool(out.ndim == 2 and (out >= 0).all() and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3))


def training_setup(model_path: str | os.PathLike, model: Any, data: TrainingData, learning_rate: float | None,
                   decay_epochs: int | None = None) -> TrainingSetup:
    """Pick the loss and optimizer: the compiled ones when the file has them, else defaults that fit the labels.

    The default loss is (sparse) categorical cross-entropy for classifiers, ``from_logits`` unless the
    model already outputs probabilities, and mean squared error otherwise; the default optimizer is Adam
    at ``DEFAULT_LEARNING_RATE``. ``learning_rate`` overrides the optimizer's rate either way.

    With ``decay_epochs``, a constant rate decays to 0 over that many epochs (cosine), so that coarse (int4)
    weights settle on their grid instead of still flipping between levels when training stops; kept constant
    when the number of steps per epoch is unknown.
    """
    loss, optimizer = _compiled(model_path) if os.path.isfile(model_path) else (None, None)
    origin = "compiled" if loss is not None and optimizer is not None else "default"
    first_x, first_y = next(iter(data.dataset.take(1)))
    out_shape = tuple(model.outputs[0].shape)
    classifier = data.sparse or (len(out_shape) == 2 and np.asarray(first_y).shape[-1] == out_shape[-1] > 1
                                 and np.allclose(np.asarray(first_y).sum(axis=-1), 1.0))
    if loss is None or optimizer is None:
        logits = not _gives_probabilities(model, first_x)
        if data.sparse:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
        elif classifier:
            loss = keras.losses.CategoricalCrossentropy(from_logits=logits)
        else:
            loss = keras.losses.MeanSquaredError()
        optimizer = keras.optimizers.Adam(learning_rate or DEFAULT_LEARNING_RATE)
    else:
        config = optimizer.get_config()  # a fresh optimizer: the QAT model has new variables
        if learning_rate is not None:
            config["learning_rate"] = learning_rate
        optimizer = type(optimizer).from_config(config)
    rate = optimizer.learning_rate
    if decay_epochs and data.steps and not callable(rate):
        config = optimizer.get_config()
        config["learning_rate"] = keras.optimizers.schedules.CosineDecay(float(np.asarray(rate)), data.steps * decay_epochs)
        optimizer = type(optimizer).from_config(config)
    return TrainingSetup(loss, optimizer, origin, classifier)


class _EpochProgress(keras.callbacks.Callback):
    """One progress task per epoch; collects :class:`EpochStats`."""

    def __init__(self, epochs: int, steps: int | None) -> None:
        super().__init__()
        self.epochs, self.steps = epochs, steps
        self.stats: list[EpochStats] = []
        self._stack = contextlib.ExitStack()
        self._advance: Any = None
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._advance = self._stack.enter_context(step(f"QAT epoch {epoch + 1}/{self.epochs}", self.steps))
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._advance(1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._stack.close()
        logs = logs or {}
        accuracy = logs.get("accuracy")
        self.stats.append(EpochStats(epoch + 1, float(logs.get("loss", math.nan)),
                                     None if accuracy is None else float(accuracy), time.perf_counter() - self._started))
        log.info("QAT epoch %d/%d: %s", epoch + 1, self.epochs, self.stats[-1])


def fine_tune(qat_model: Any, data: TrainingData, setup: TrainingSetup, epochs: int) -> list[EpochStats]:
    """Train ``qat_model`` for ``epochs`` epochs; returns the per-epoch statistics.

    Raises:
        DataError: the data does not fit the model or the loss (e.g. a label out of range later in a dataset).
        UsageError: the loss became NaN or infinite (lower the learning rate).
    """
    tf = _lazy.tensorflow()
    qat_model.compile(optimizer=setup.optimizer, loss=setup.loss, metrics=["accuracy"] if setup.classifier else None)
    progress = _EpochProgress(epochs, data.steps)
    try:
        with quiet_native_output():
            qat_model.fit(data.dataset, epochs=epochs, verbose=0, callbacks=[progress], shuffle=False)  # shuffled already
    except (ValueError, TypeError, tf.errors.InvalidArgumentError) as exc:
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise DataError(f"training failed on the data: {first[:300]}; check that the labels fit the model's output") from exc
    finally:
        progress._stack.close()
    if any(not math.isfinite(s.loss) for s in progress.stats):
        raise UsageError(f"QAT training diverged (loss {progress.stats[-1].loss}); lower --learning-rate "
                         f"(was {setup.describe()})")
    return progress.stats
