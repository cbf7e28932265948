"""`qat`: quantization-aware training for Keras 3 models, then a full-integer TFLite model whose ranges come from training.

TF-MOT rejects Keras 3 models, so edgeq brings its own QAT:

1. :mod:`~edgeq.converters.qat_graph` plans every layer (fold BatchNorm, fuse ReLU, quantize
   Conv/Depthwise/Separable/Dense weights, track activation ranges) and names any layer it cannot
   fake-quantize before training starts;
2. :mod:`~edgeq.converters.qat_layers` rebuilds the model with fake-quantization ops;
3. :mod:`~edgeq.converters.qat_train` fine-tunes it (compiled loss/optimizer, or defaults);
4. the TFLite converter reads the int8 parameters from the fake-quantization ops, so no
   representative dataset is needed; when one is given it calibrates any tensor the graph leaves
   without a range and serves for verification;
5. the int8 model is verified like ``convert``'s, against the model as trained (which it must reproduce),
   and compared with the original float model; it is written atomically with the ``edgeq`` metadata
   (``quant.calibration.method == "qat"``).

With ``weights="int4"`` the model trains for ``convert --mode int4-weights`` instead: Conv2D and Dense weights
(pointwise kernels of separable convolutions included) are fake-quantized per output channel exactly as
ai-edge-quantizer stores int4 weights, depthwise kernels stay float as that mode leaves them, and activations are
not fake-quantized (the mode computes in float). The trained model is exported as float32 (the fake-quantized
weights fold into constants on the int4 grid), then stored in int4 by the same ai-edge-quantizer pass as
``convert``, which re-reads exactly the trained integers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgeq import _lazy
from edgeq._flatbuffer import parse
from edgeq._io import atomic_write, check_output_path
from edgeq._native import quiet_native_output
from edgeq._progress import step, track
from edgeq._version import __version__
from edgeq.errors import CheckFailed, ConversionError, ModelError, UsageError
from edgeq.metadata import ModelMetadata, QuantInfo
from edgeq.runtime.model import Model

from edgeq.converters.convert import ConversionResult, _preprocessing, read_labels
from edgeq.converters.datasets import load_samples
from edgeq.converters.embed import embed_metadata
from edgeq.converters.modes import PostProcessed
from edgeq.converters.qat_data import TrainingData, load_training_data
from edgeq.converters.qat_graph import check_plan, input_layer_names, plan_model
from edgeq.converters.source import SourceModel, load_source
from edgeq.converters.verify import Verification, float_ops, verify

log = logging.getLogger(__name__)

#: ``--io`` values of a QAT model
QAT_IO = ("int8", "uint8", "float")
#: ``--weights`` values -> the conversion mode the QAT model is exported in (its metadata ``quant.mode``)
QAT_WEIGHTS = {"int8": "int8", "int4": "int4-weights"}


@dataclass
class QatResult:
    """What :func:`qat` trained, converted and measured.

    Attributes:
        conversion: the written model, its metadata and its verification against the trained model.
        epochs: per-epoch training loss/accuracy (:class:`~edgeq.converters.qat_train.EpochStats`).
        training: how it trained: samples, batch size, loss/optimizer and where they came from.
        layers: the plan: what happened to each layer (``quantize``/``fold``/``fuse``/``range``/``keep``/``fixed``).
        ranges: every trained activation range, ``name -> (min, max)``; int8 scale = ``(max - min) / 255``
            (none with ``weights="int4"``: activations stay float).
        accuracy: top-1 of the float model and of the QAT model (``qat_int8`` or ``qat_int4``) on the held-out
            labelled samples (``None`` when no labelled samples were held out).
        original: the int8 model against the original float model (``conversion.verification`` compares it
            with the model as trained, fake quantization included, which it must reproduce).
        trained_model: the fine-tuned Keras model, fake quantization included (what the file reproduces);
            not in :meth:`to_dict`.
    """

    conversion: ConversionResult
    epochs: list[Any]
    training: dict[str, Any]
    layers: dict[str, Any]
    ranges: dict[str, tuple[float, float]]
    accuracy: dict[str, Any] | None = None
    original: Verification | None = None
    trained_model: Any = dataclasses.field(default=None, repr=False)

    @property
    def out(self) -> Any:
        return self.conversion.out

    @property
    def warnings(self) -> list[str]:
        return self.conversion.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.conversion.to_dict(), "epochs": [e.to_dict() for e in self.epochs], "training": dict(self.training),
            "layers": dict(self.layers), "ranges": {k: list(v) for k, v in self.ranges.items()}, "accuracy": self.accuracy,
            "original": self.original.to_dict() if self.original is not None else None,
        }


def qat(
    model: str | os.PathLike,
    train: Any,
    out: str | os.PathLike = "model_qat_int8.tflite",
    epochs: int = 1,
    data: Any = None,
    batch_size: int = 32,
    learning_rate: float | None = None,
    samples: int | None = None,
    seed: int = 0,
    resize: str = "stretch",
    normalize: str | None = None,
    bgr: bool = False,
    labels: str | os.PathLike | Sequence[str] | None = None,
    io: str | None = None,
    force: bool = False,
    min_agreement: float | None = None,
    weights: str = "int8",
    force_normalize: bool = False,
) -> QatResult:
    """Fine-tune a Keras model with fake quantization, then convert it to a full-integer TFLite model.

    The int8 scale and zero point of every tensor come from the ranges learnt in training
    (``scale = (max - min) / 255``); weights are quantized per channel (convolutions) or per tensor
    (Dense) exactly as trained. The result is verified as :func:`~edgeq.converters.convert` does, against
    the trained model, and compared with the original float model. Seeds Python, NumPy and TensorFlow with ``seed``.

    Args:
        model: a Keras 3 ``.keras`` or Keras 2 ``.h5`` file (Sequential or Functional).
        train: labelled training data: a class-folder tree, a labels CSV, a ``.npz`` with ``x``/``y``,
            or a ``tf.data.Dataset`` of ``(x, y)``.
        out: the ``.tflite`` file to write.
        epochs: training epochs (at least 1).
        data: optional representative data (any source ``convert`` takes): calibrates tensors the
            graph leaves without a trained range, and verifies the result.
        batch_size: training batch size.
        learning_rate: overrides the optimizer's rate (default: the compiled optimizer's, else Adam at 1e-4).
        samples: train on at most this many labelled samples (all by default).
        seed: seed of the sampling, shuffling and training.
        resize, normalize, bgr: image preprocessing of image data (training and ``data``); embedded for the runtime.
            ``normalize`` ``None`` (default) uses what the model's own input layers expect, as
            :func:`~edgeq.converters.convert` does (``raw`` 0–255 pixels after ``Rescaling(1/255)``, …).
        labels: class names, or a file with one per line; embedded, and used to map data class names.
        io: ``int8`` (default), ``uint8`` or ``float`` inputs/outputs around the integer body.
        force: overwrite ``out`` if it exists.
        min_agreement: fail (raise :class:`CheckFailed`, file kept) if the int8 model's top-1 agreement with the
            trained model (what the verification table shows) is lower.
        weights: ``int8`` (full integer model), or ``int4``: int4 Conv2D/Dense weights per output channel with float
            activations, as ``convert --mode int4-weights`` stores them (the ``[int4]`` extra); ``io`` must then be
            ``float`` or unset. The learning rate then decays to 0 over the epochs (cosine), so the weights settle
            on the coarse int4 grid.
        force_normalize: accept a ``normalize`` that contradicts the model's own preprocessing layers.

    Returns:
        A :class:`QatResult`.

    Raises:
        UsageError: a bad option (``epochs < 1``, unknown ``io``…) or training diverged.
        ModelError: the model is missing, not a Keras model, or has no trainable layer.
        DataError: the training data is missing, empty, or its labels do not fit the model's output.
        ConversionError: a layer cannot be fake-quantized (named), or an op would stay float.
        DependencyMissing: TensorFlow/Keras (the ``[convert]`` extra) is not installed; for ``weights="int4"``,
            ai-edge-quantizer (the ``[int4]`` extra).
        CheckFailed: ``min_agreement`` was not met; the model was written.
    """
    _check_options(epochs, batch_size, learning_rate, io, min_agreement, weights)
    if weights == "int4":
        from edgeq.converters.weight_only import quantizer_module

        quantizer_module()  # the [int4] extra, checked before any training
    out = check_output_path(out, force, inputs=(model, train, data, labels))
    label_names = read_labels(labels) if isinstance(labels, (str, os.PathLike)) else tuple(labels or ())
    keras = _lazy.keras()
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edgeq-qat-") as workdir:
        t0 = time.perf_counter()
        with step("Loading the model"):
            source = load_source(model, workdir)
        if source.keras_model is None:
            raise ModelError(f"QAT trains Keras models; {source.path} is a SavedModel. Pass the .keras or .h5 it was saved from")
        float_model = source.keras_model
        plan = plan_model(float_model)
        check_plan(plan, float_model)  # unsupported layers are named before any data is read or any training
        if len(float_model.outputs) != 1:
            raise ModelError(f"QAT trains models with one output; {source.name} has {len(float_model.outputs)}")
        output_shape = tuple(float_model.outputs[0].shape)
        normalize, bgr, decision = _preprocessing(source, normalize, bgr, force_normalize)
        training = load_training_data(train, source.inputs, output_shape, label_names, batch_size, samples, seed,
                                      resize, normalize, bgr)
        representative = load_samples(data, source.inputs, 200, seed, resize, normalize, bgr) if data is not None else None
        seconds["load"] = time.perf_counter() - t0

        from edgeq.converters.qat_graph import build_qat_model, trained_ranges
        from edgeq.converters.qat_train import fine_tune, training_setup

        t0 = time.perf_counter()
        keras.utils.set_random_seed(seed)
        qat_model = build_qat_model(float_model, plan)
        if weights == "int4":
            _weight_only_int4(qat_model)
        setup = training_setup(model, float_model, training, learning_rate, decay_epochs=epochs if weights == "int4" else None)
        epoch_stats = fine_tune(qat_model, training, setup, epochs)
        ranges = trained_ranges(qat_model) if weights == "int8" else {}
        seconds["train"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        stored = None
        if weights == "int4":
            stored = _convert_int4_weights(qat_model, workdir)
            tflite = stored.model
        else:
            tflite = _convert_trained(qat_model, workdir, io or "int8", representative, [s.name for s in source.inputs])
        seconds["convert"] = time.perf_counter() - t0
    left = float_ops(parse(tflite)) if weights == "int8" else []
    if left:
        raise ConversionError(f"the QAT model converted with op(s) {', '.join(left)} left in float; "
                              "use edgeq convert --mode int16x8 or dynamic for this model")

    t0 = time.perf_counter()
    converted = Model(tflite, threads=None)
    notes: list[str] = []
    if representative is not None:
        samples_used, held_out = representative.verification, representative.held_out
    elif len(training.held_out_x):
        samples_used, held_out = [[x[None]] for x in training.held_out_x], True
    else:
        batch = next(iter(training.dataset.take(1)))[0]
        samples_used, held_out = [[np.asarray(x)[None]] for x in np.asarray(batch)[:20]], False
        notes.append("verified on training samples (none held back); pass --data for a held-out check")
    # the int8 file must reproduce the model as trained (fake quantization included); how far training moved
    # it from the original float model is reported beside
    verification = verify(_trained_source(source, qat_model), converted, samples_used, held_out)
    original = verify(source, converted, samples_used, held_out)
    accuracy = _held_out_accuracy(source, converted, training, weights)
    seconds["verify"] = time.perf_counter() - t0

    input_ranges = [{"name": name, "min": ranges[name + "_range"][0], "max": ranges[name + "_range"][1]}
                    for name in input_layer_names(float_model) if name + "_range" in ranges]
    calibration = {
        "method": "qat", "epochs": epochs, "samples": training.samples, "seed": seed, "source": training.kind,
        "batch_size": batch_size, "representative_samples": len(representative.calibration) if representative else 0,
        "inputs": input_ranges,
    }
    preprocess = representative.preprocess if representative is not None and representative.preprocess else training.preprocess
    if stored is not None:
        notes.extend(stored.notes)
    metadata = ModelMetadata(
        quant=QuantInfo(QAT_WEIGHTS[weights], _tensor_type(converted, "inputs"), _tensor_type(converted, "outputs"),
                        calibration=calibration, weights=stored.recipe if stored is not None else None),
        source={**source.source_info(), **({"preprocessing": decision} if preprocess is not None else {})},
        labels=label_names, preprocess=preprocess, edgeq_version=__version__,
        verification=verification.to_dict(),
    )
    final = embed_metadata(tflite, metadata)
    atomic_write(out, final, force=force)
    conversion = ConversionResult(out, metadata, dataclasses.replace(verification, size_after=len(final)), notes, seconds)
    result = QatResult(
        conversion, epoch_stats,
        {"samples": training.samples, "held_out": int(len(training.held_out_x)), "batch_size": batch_size,
         "setup": setup.describe(), "source": training.source},
        plan.to_dict(), ranges, accuracy, original, qat_model,
    )
    if min_agreement is not None and verification.agreement is not None and verification.agreement < min_agreement:
        failure = CheckFailed(f"top-1 agreement {verification.agreement:.3f} with the trained model is below --min-agreement "
                              f"{min_agreement}; {out} was written anyway: pass --data to calibrate, or train longer")
        failure.result = result  # type: ignore[attr-defined]
        raise failure
    return result


def _check_options(epochs: int, batch_size: int, learning_rate: float | None, io: str | None, min_agreement: float | None,
                   weights: str) -> None:
    if weights not in QAT_WEIGHTS:
        raise UsageError(f"--weights must be one of {', '.join(QAT_WEIGHTS)}. Received: {weights!r}")
    if weights == "int4" and io not in (None, "float"):
        raise UsageError(f"--weights int4 keeps float activations (int4 weights only, as convert --mode int4-weights), so "
                         f"inputs and outputs are float; drop --io {io}, or use --weights int8 for an integer model")
    if not isinstance(epochs, int) or epochs < 1:
        raise UsageError(f"--epochs must be a whole number of at least 1 (QAT needs to train). Received: {epochs}")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1. Received: {batch_size}")
    if learning_rate is not None and not learning_rate > 0:
        raise UsageError(f"--learning-rate must be positive. Received: {learning_rate}")
    if io is not None and io not in QAT_IO:
        raise UsageError(f"--io must be one of {', '.join(QAT_IO)} for a QAT model. Received: {io!r}")
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise UsageError(f"--min-agreement is a fraction between 0 and 1. Received: {min_agreement}")


def _weight_only_int4(qat_model: Any) -> None:
    """Switch a built QAT model to int4 weight-only training: int4 weights, every activation range passes through."""
    from edgeq.converters.qat_layers import (QuantizedActivation, QuantizedAffine, QuantizedConv, QuantizedPReLU,
                                             RangeQuantizer)

    for layer in qat_model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, RangeQuantizer):
            layer.enabled = False
        elif isinstance(layer, (QuantizedActivation, QuantizedAffine, QuantizedPReLU)):
            layer.quantize = False
        elif isinstance(layer, QuantizedConv):
            layer.weight_bits = 4


def _int4_kernels(qat_model: Any) -> int:
    """How many weight tensors int4 QAT fake-quantizes (every Conv2D/Dense kernel, separable pointwise ones)."""
    from edgeq.converters.qat_layers import QuantizedConv

    return sum(1 for layer in qat_model._flatten_layers(include_self=False, recursive=True)
               if isinstance(layer, QuantizedConv) and layer.kind != "depthwise")


def _export(qat_model: Any, workdir: str) -> Any:
    """The trained model as a SavedModel, and a ``TFLiteConverter`` reading it."""
    tf = _lazy.tensorflow()
    export_dir = os.path.join(workdir, "qat_saved_model")
    with step("Exporting the trained model"), quiet_native_output():
        qat_model.export(export_dir, format="tf_saved_model", verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(export_dir)


def _run_converter(converter: Any, title: str) -> bytes:
    with step(title), warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")
        try:
            return bytes(converter.convert())
        except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError, RuntimeError, ValueError…
            first = next((line.strip() for line in str(exc).splitlines() if "error" in line.lower()), str(exc).strip()[:300])
            raise ConversionError(f"the converter failed on the trained QAT model: {first[:400]}") from exc


def _convert_int4_weights(qat_model: Any, workdir: str) -> PostProcessed:
    """The trained model → float32 TFLite (fake-quantized weights fold into constants) → int4 weights.

    Raises:
        ConversionError: the converter failed, or stored a different number of int4 weight tensors than QAT trained.
    """
    from edgeq.converters.weight_only import quantize_weights

    tflite = _run_converter(_export(qat_model, workdir), "Converting (QAT, float32)")
    with step("Storing int4 weights"):
        stored = quantize_weights(tflite, 4)
    trained, written = _int4_kernels(qat_model), sum(stored.recipe["quantized"].values())
    if written != trained:
        raise ConversionError(f"QAT trained {trained} int4 weight tensor(s) but the int4 export stored {written}; "
                              "use edgeq convert --mode int4-weights for this model")
    return stored


def _convert_trained(qat_model: Any, workdir: str, io: str, representative: Any, input_names: list[str]) -> bytes:
    """The trained model → full-integer TFLite; the converter takes the ranges from the fake-quant ops."""
    tf = _lazy.tensorflow()
    converter = _export(qat_model, workdir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if io != "float":
        converter.inference_input_type = getattr(tf, io)
        converter.inference_output_type = getattr(tf, io)
    if representative is not None:
        # TF demands int8-only ops to come with a representative dataset; without one, float_ops() checks instead
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        def dataset():  # type: ignore[no-untyped-def]
            for sample in track(representative.calibration, "Calibrating untrained ranges"):
                yield dict(zip(input_names, sample))

        converter.representative_dataset = dataset
    return _run_converter(converter, "Converting (QAT int8)")


def _trained_source(source: SourceModel, qat_model: Any) -> SourceModel:
    """The trained QAT model as a verification reference (sizes still refer to the original file)."""

    def predict(arrays: list[np.ndarray]) -> list[np.ndarray]:
        out = qat_model(arrays[0] if len(arrays) == 1 else arrays, training=False)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]

    return dataclasses.replace(source, predict_fn=predict, keras_model=qat_model)


def _held_out_accuracy(source: SourceModel, converted: Model, training: TrainingData, weights: str) -> dict[str, Any] | None:
    if not len(training.held_out_x) or not training.sparse:
        return None
    x, y = training.held_out_x, training.held_out_y
    float_pred = [int(np.argmax(source.predict([s[None]])[0])) for s in track(x, "Float accuracy")]
    qat_pred = [int(np.argmax(next(iter(converted.predict(s[None]).values())))) for s in track(x, f"QAT {weights} accuracy")]
    return {"samples": int(len(y)), "float": float(np.mean(np.asarray(float_pred) == y)),
            f"qat_{weights}": float(np.mean(np.asarray(qat_pred) == y))}


def _tensor_type(model: Model, which: str) -> str:
    return ",".join(sorted({np.dtype(s.dtype).name for s in getattr(model, which)}))


