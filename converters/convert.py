"""`convert`: Keras/SavedModel → TFLite in any mode, verified, with the edgeq metadata embedded."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgeq import _lazy
from edgeq._native import quiet_native_output
from edgeq._flatbuffer import parse
from edgeq._io import atomic_write, check_output_path
from edgeq._progress import step
from edgeq._version import __version__
from edgeq.errors import CheckFailed, ConversionError, DataError, ModelError, UsageError
from edgeq.metadata import ModelMetadata, QuantInfo
from edgeq.runtime.model import Model

from edgeq.converters.datasets import SampleSet, load_samples, load_verification
from edgeq.converters.model_preprocessing import ModelNormalization, check_explicit, decide_normalization
from edgeq.converters.embed import embed_metadata
from edgeq.converters.modes import ModeSpec, get_mode
from edgeq.converters.source import InputSpec, SourceModel, load_source
from edgeq.converters.sanity import MIN_SAMPLES, degenerate_outputs, float_outputs
from edgeq.converters.verify import Verification, describe_float_ops, float_ops, verify

log = logging.getLogger(__name__)

IO_CHOICES = ("float", "int8", "uint8", "int16")


@dataclass
class ConversionResult:
    """What :func:`convert` made and how close it is to the float model.

    Attributes:
        out: the written ``.tflite`` file.
        metadata: the embedded ``edgeq`` metadata.
        verification: float model vs converted model on held-back samples.
        warnings: things the user should know (slow mode, poor fit for the target, no held-out data).
        checks: what the sanity checks found (degenerate float predictions, images resized to fit);
            also in ``warnings``; ``strict`` turns them into a failure.
        seconds: time spent loading, converting and verifying (``checks``: the sanity checks' statistics
            on verification's float outputs, apart from ``verify``).
        fallback: what ``keep_float``/``calibration``/``max_drop`` did (a
            :class:`~edgeq.converters.fallback.FallbackReport`), or ``None``.
        refine: what ``--refine`` did (a :class:`~edgeq.converters.refine.RefineReport`), or ``None``.
        cpu_seconds: the same steps as ``seconds`` in CPU time of all threads (steadier than wall time on a
            busy machine).
    """

    out: Path
    metadata: ModelMetadata
    verification: Verification
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    fallback: Any = None
    checks: list[str] = field(default_factory=list)
    refine: Any = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def mode(self) -> str:
        return self.metadata.quant.mode

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "mode": self.mode, "verification": self.verification.to_dict(),
            "warnings": list(self.warnings), "checks": list(self.checks), "seconds": dict(self.seconds),
            "cpu_seconds": dict(self.cpu_seconds),
            "metadata": self.metadata.to_dict(),
            "fallback": self.fallback.to_dict() if self.fallback is not None else None,
            "refine": self.refine.to_dict() if self.refine is not None else None,
        }


def read_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names from a text file, one per line (blank lines skipped)."""
    try:
        labels = tuple(line.strip() for line in Path(path).read_text(encoding="utf-8-sig").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read labels file {path}: {exc}") from None
    if not labels:
        raise DataError(f"labels file {path} is empty; expected one class name per line")
    return labels


def _io_type(spec: ModeSpec, io: str | None) -> str:
    if io is None:
        return spec.io_type
    if io not in IO_CHOICES:
        raise UsageError(f"--io must be one of {', '.join(IO_CHOICES)}. Received: {io!r}")
    io_type = "float32" if io == "float" else io
    if io_type != "float32" and spec.io_type == "float32":
        raise UsageError(f"mode {spec.key.value} keeps float inputs/outputs; --io {io} needs a full-integer mode (int8, uint8, int16x8)")
    if spec.key.value == "int16x8" and io_type not in ("float32", "int16"):
        raise UsageError(f"mode int16x8 takes --io float or int16. Received: --io {io}")
    if spec.key.value != "int16x8" and io_type == "int16":
        raise UsageError(f"--io int16 needs --mode int16x8. Received: --mode {spec.key.value}")
    return io_type


#: the progress step of the float model's pass over the verification samples
_VERIFY_STEP = "Float model on the verification samples"
_FALLBACK_HINT = "try --mode int16x8 or --mode dynamic, or keep those layers in float"
_OP_PATTERN = re.compile(r"'(?:tf|tfl)\.(\w+)'|op: '?(\w+)'?|operation '(?:tf|tfl)\.(\w+)'")


def _conversion_error(exc: Exception, mode: str) -> ConversionError:
    text = str(exc)
    ops = sorted({next(g for g in m.groups() if g) for m in _OP_PATTERN.finditer(text)})
    if ops:
        hint = _FALLBACK_HINT if mode in ("int8", "uint8") else "try --mode dynamic or float16"
        return ConversionError(f"cannot convert to {mode}: op(s) {', '.join(ops)} have no {mode} kernel; {hint}")
    first = next((line.strip() for line in text.splitlines() if "error" in line.lower()), text.strip().splitlines()[0] if text.strip() else "")
    return ConversionError(f"the converter failed in mode {mode}: {first[:400]}")


def _preprocessing(source: SourceModel, normalize: str | None, bgr: bool, force: bool) -> tuple[str, bool, dict[str, Any]]:
    """The ``--normalize``/``--bgr`` to use for image data, and why (embedded in the metadata's ``source``)."""
    image = len(source.inputs) == 1 and source.inputs[0].is_image
    decided: ModelNormalization | None = None
    if image:
        decided = decide_normalization(source.keras_model, int(source.inputs[0].sample_shape[2]))  # type: ignore[arg-type]
    check_explicit(decided, normalize, bgr, force)
    if normalize is not None:
        why = "given with --normalize" + (f" (--force-normalize over the model's own: {decided.reason})"
                                          if decided is not None and force else "")
        return normalize, bgr, {"normalize": normalize, "bgr": bgr, "decided_by": "option", "reason": why}
    if decided is not None:
        return decided.normalize, bgr or decided.bgr, {"decided_by": "model", **decided.to_dict(),
                                                       "bgr": bgr or decided.bgr}
    return "0,1", bgr, {"normalize": "0,1", "bgr": bgr, "decided_by": "default",
                        "reason": "no preprocessing layers at the model input: pixels / 255 (the default)"}


def _representative(samples: SampleSet, inputs: Sequence[InputSpec]):  # type: ignore[no-untyped-def]
    def generator():  # type: ignore[no-untyped-def]
        with step("Calibrating", len(samples.calibration)) as advance:
            for sample in samples.calibration:
                yield {spec.name: array for spec, array in zip(inputs, sample)}
                advance(1)

    return generator


def _synthetic_samples(inputs: Sequence[InputSpec], count: int, seed: int) -> list[list[np.ndarray]]:
    """Uniform [0, 1) inputs for verifying data-free modes when no data is given."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(d or 1 for d in spec.shape) for spec in inputs]
    return [[rng.random(shape, dtype=np.float32) for shape in shapes] for _ in range(count)]


def convert(
    model: str | os.PathLike,
    data: Any = None,
    out: str | os.PathLike = "model.tflite",
    mode: str = "int8",
    io: str | None = None,
    samples: int | None = None,
    seed: int = 0,
    resize: str = "stretch",
    normalize: str | None = None,
    bgr: bool = False,
    labels: str | os.PathLike | Sequence[str] | None = None,
    force: bool = False,
    min_agreement: float | None = None,
    target: str | None = None,
    keep_float: str | Sequence[str] | None = None,
    calibration: str = "minmax",
    max_drop: float | None = None,
    eval_data: Any = None,
    max_drop_agreement: float | None = None,
    block_size: int | None = None,
    force_normalize: bool = False,
    strict: bool = False,
    holdout: int | None = None,
    verify_data: Any = None,
    refine: bool = False,
) -> ConversionResult:
    """Convert a Keras model to TFLite, verify it against the float model, and write it atomically.

    Args:
        model: a Keras 3 ``.keras`` file, a Keras 2 ``.h5`` file or a SavedModel folder.
        data: the representative dataset (see :func:`edgeq.converters.datasets.load_samples`);
            required by the full-integer modes, optional (used for verification) otherwise.
        out: the ``.tflite`` file to write.
        mode: ``int8`` (default), ``uint8``, ``int16x8``, ``dynamic``, ``float16`` or ``float32``.
        io: ``float`` keeps float inputs/outputs on a full-integer body; default: the mode's integer type.
        samples: calibration samples, drawn reproducibly with ``seed``; default 200, holding back at least a
            fifth of the data (up to 100 samples) for verification.
        resize, normalize, bgr: image preprocessing of image data; embedded for the runtime. ``normalize``
            ``None`` (default) uses what the model's own input layers expect (``raw`` 0–255 pixels after
            ``Rescaling(1/255)``, …; see docs/preprocessing.md), else ``0,1``.
        labels: class names, or a file with one per line; embedded for the runtime.
        force: overwrite ``out`` if it exists.
        min_agreement: fail (raise :class:`CheckFailed`, file kept) if top-1 agreement is lower.
        target: a board profile name the model is meant for; recorded, and checked for a poor fit.
        keep_float: layers to keep in float (int8/uint8): Keras layer names, tensor names as ``edgeq debug``
            prints them, or op types (``SOFTMAX``); a comma-separated string or a list.
        calibration: activation ranges from ``minmax`` (default), ``percentile:P`` or ``mse``.
        max_drop: accuracy budget in top-1 percentage points vs the Keras model on labelled ``eval_data``:
            the debugger's worst layers are kept in float one by one until the drop is within it.
        eval_data: labelled data for ``max_drop`` (class folders, labels CSV, ``.npz`` with ``x``/``y``), or
            unlabelled data for ``max_drop_agreement``.
        max_drop_agreement: budget in points of top-1 agreement with the Keras model (on ``eval_data``, or
            the held-back samples of ``data``).
        block_size: ``int4-weights`` only: one int4 scale per this many input values of fully connected /
            embedding weights (32, 64, 128 or 256); default one scale per output channel.
        force_normalize: accept a ``normalize`` that contradicts the model's own preprocessing layers.
        strict: fail (raise :class:`CheckFailed`, nothing written) when a sanity check warns.
        holdout: keep exactly this many samples of ``data`` apart from calibration, for verification.
        verify_data: verify on this data instead (labelled: class folders, labels CSV, ``.npz`` with ``x``/``y``,
            which adds float and converted top-1 accuracy; or unlabelled, any ``data`` source).
        refine: int8/uint8/int8-weights/int4-weights: re-round the weights (GPTQ) and correct the biases
            against the float model on the calibration data, keeping each step only where it lowers the
            error on held-back calibration samples (see :mod:`edgeq.converters.refine`).

    Returns:
        A :class:`ConversionResult`.

    Raises:
        UsageError, ModelError, DataError, ConversionError, DependencyMissing: bad input; nothing written.
        CheckFailed: ``min_agreement`` or the accuracy budget was not met; the model (the best found) was written.
    """
    spec = get_mode(mode)
    io_type = _io_type(spec, io)
    out = check_output_path(out, force, inputs=(model, data, labels))
    if spec.needs_data and data is None:
        raise UsageError(f"mode {spec.key.value} needs representative data; pass --data (an image folder, video, .npy/.npz or py:module:function)")
    if min_agreement is not None and not 0 <= min_agreement <= 1:
        raise UsageError(f"--min-agreement is a fraction between 0 and 1. Received: {min_agreement}")
    label_names = read_labels(labels) if isinstance(labels, (str, os.PathLike)) else tuple(labels or ())
    if block_size is not None and block_size not in spec.block_sizes:
        accepted = f"one of {', '.join(map(str, spec.block_sizes))}" if spec.block_sizes else "no --block-size"
        raise UsageError(f"mode {spec.key.value} takes {accepted}. Received: --block-size {block_size}")
    if spec.requires is not None:
        _lazy.import_optional(*spec.requires)
    if refine:
        from edgeq.converters import refine as refiner

        refiner.check_options(spec.key.value, data)
    selective = None
    if keep_float or str(calibration).strip().lower() != "minmax" or max_drop is not None or max_drop_agreement is not None:
        from edgeq.converters import fallback as selective  # the calibrate-then-quantize route, loaded when asked for

        method = selective.check_options(spec, data, keep_float, calibration, max_drop, eval_data, max_drop_agreement)
    notes = [spec.warning] if spec.warning else []
    notes += _target_warnings(target, spec.key.value)
    tf = _lazy.tensorflow()
    clock = _Clock()
    with tempfile.TemporaryDirectory(prefix="edgeq-convert-") as workdir:
        t0 = clock.now()
        with step("Loading the model"):
            source = load_source(model, workdir)
        notes += source.notes
        normalize, bgr, decision = _preprocessing(source, normalize, bgr, force_normalize)
        sample_set = (load_samples(data, source.inputs, samples, seed, resize, normalize, bgr, holdout)
                      if data is not None else None)
        if label_names:
            _check_labels(source, label_names)
        checks = list(sample_set.warnings) if sample_set is not None else []
        pp_args = {"resize": resize, "normalize": normalize, "bgr": bgr}
        held_back = (load_verification(verify_data, source.inputs, sample_set.preprocess if sample_set else None,
                                       pp_args, label_names, _classes(source)) if verify_data is not None else None)
        # is the float model plausible on --data? Judged on the float outputs verification computes anyway when it
        # verifies on enough samples of --data; otherwise on a float pass over the calibration samples, here
        shared_check = sample_set is not None and held_back is None and len(sample_set.verification) >= MIN_SAMPLES
        expected = None  # the float model's outputs on the verification samples
        if sample_set is not None and not shared_check:
            checks += degenerate_outputs(float_outputs(source, sample_set.calibration[:200]))
        elif sample_set is not None and strict:  # shared, but failing comes before converting: float pass first
            expected = float_outputs(source, sample_set.verification, _VERIFY_STEP)
            checks += degenerate_outputs(expected, _checked_samples(sample_set))
        if strict:
            _refuse(checks)
        clock.record("load", t0)
        t0 = clock.now()
        report = None
        if selective is not None:
            tflite, report = selective.selective_quantize(
                tf, source, spec, io_type, sample_set, method, keep_float, max_drop, eval_data, max_drop_agreement,
                label_names, pp_args)
        else:
            tflite = _run_converter(tf, source, spec, io_type, sample_set)
        weights = None
        reference = tflite if spec.postprocess is not None else None  # the float32 model, for --refine
        if spec.postprocess is not None:  # e.g. weight-only modes rewrite the float32 model's weights
            processed = spec.postprocess(tflite, {"block_size": block_size})
            tflite, weights = processed.model, processed.recipe
            notes += processed.notes
        clock.record("convert", t0)
        refinement = plain = None
        if refine:
            t0 = clock.now()
            plain = tflite
            tflite, refinement = refiner.refine_conversion(tf, source, spec, tflite, reference, sample_set, seed)
            clock.record("refine", t0)
    if spec.needs_data:
        # ops kept in float on purpose are allowed; any other float op means a missing integer kernel
        left = float_ops(parse(tflite)) if report is None else report.unexpected_float_ops(tflite)
        if left:  # the converter silently keeps ops without integer kernels in float
            raise ConversionError(describe_float_ops(parse(tflite), spec.key.value, list(left)))
    t0 = clock.now()
    with quiet_native_output():  # LiteRT's one-time "Created TensorFlow Lite XNNPACK delegate" line
        converted = Model(tflite, threads=None)
    if held_back is not None:
        separate = not (isinstance(data, (str, os.PathLike)) and Path(data).resolve() == Path(verify_data).resolve())
        checked, held, truth, where = held_back.samples, separate, held_back.labels, held_back.source
    elif sample_set is not None:
        checked, held, truth, where = sample_set.verification, sample_set.held_out, None, sample_set.source
    else:
        checked, held, truth, where = _synthetic_samples(source.inputs, 20, seed), False, None, ""
        notes.append("no --data given: verified on 20 random inputs in [0, 1); pass --data for a meaningful check")
    if expected is None:
        expected = float_outputs(source, checked, _VERIFY_STEP)
        if shared_check and sample_set is not None:  # only the statistics are extra: not verification time
            t1 = clock.now()
            checks += degenerate_outputs(expected, _checked_samples(sample_set))
            clock.record("checks", t1)
    verification = verify(source, converted, checked, held, truth, where, expected)
    if held_back is None and sample_set is not None and not sample_set.held_out:
        notes.append("too little data to hold samples back: verified on calibration samples; pass --holdout N "
                     "or --verify-data DIR")
    if verification.failed:
        notes.append(f"the converted model fails on {verification.failed} of {verification.samples + verification.failed} "
                     "verification samples (left out of the figures)")
    if refinement is not None and sample_set is not None:  # the plain model on the same samples, side by side
        plain_check = verify(source, Model(plain, threads=None), checked, held, truth, where, expected)
        refinement = refiner.with_plain(refinement, plain_check)
    clock.record("verify", t0, minus="checks")
    calibration = None
    if sample_set is not None and spec.needs_data:
        calibration = {"samples": len(sample_set.calibration), "seed": seed,
                       "method": report.calibration if report is not None else "minmax",
                       "source": sample_set.kind, "inputs": sample_set.input_ranges(source.inputs)}
        if report is not None and report.range_changes:
            calibration["ranges_changed"] = len(report.range_changes)
    if refinement is not None:  # what --refine kept, in the recipe of the model itself
        kept = [s.name for s in refinement.steps if s.kept]
        if calibration is not None:
            calibration["refine"] = kept
        elif weights is not None:
            weights = {**weights, "refine": kept}
    metadata = ModelMetadata(
        quant=QuantInfo(spec.key.value, _tensor_type(converted, "inputs"), _tensor_type(converted, "outputs"),
                        calibration=calibration, target=target,
                        keep_float=report.keep_float if report is not None else (),
                        accuracy_budget=report.budget if report is not None else None, weights=weights),
        source={**source.source_info(), **({"preprocessing": decision} if sample_set is not None
                                             and sample_set.preprocess is not None else {})},
        labels=label_names, preprocess=sample_set.preprocess if sample_set is not None else None,
        edgeq_version=__version__, verification=verification.to_dict(),
    )
    final = embed_metadata(tflite, metadata)
    atomic_write(out, final, force=force)
    # the embedded figures describe the model body; the result reports the file as written
    result = ConversionResult(out, metadata, dataclasses.replace(verification, size_after=len(final)),
                              checks + notes, clock.wall, report, checks, refinement, clock.cpu)
    if report is not None and not report.met:
        failure = CheckFailed(f"accuracy budget not met: {report.message}; {out} was written with that best result")
        failure.result = result  # type: ignore[attr-defined]
        raise failure
    if min_agreement is not None and verification.agreement is not None and verification.agreement < min_agreement:
        failure = CheckFailed(
            f"top-1 agreement {verification.agreement:.3f} is below --min-agreement {min_agreement}; "
            f"{out} was written anyway: try another mode or more representative data"
        )
        failure.result = result  # type: ignore[attr-defined]
        raise failure
    return result


class _Clock:
    """Wall and CPU seconds (all threads) per step of a conversion."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @staticmethod
    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def record(self, name: str, since: tuple[float, float], minus: str | None = None) -> None:
        """Record the step ``name`` begun at ``since``, less the step ``minus`` recorded inside it."""
        wall, cpu = time.perf_counter() - since[0], time.process_time() - since[1]
        self.wall[name] = wall - self.wall.get(minus, 0.0) if minus else wall
        self.cpu[name] = cpu - self.cpu.get(minus, 0.0) if minus else cpu


def _checked_samples(samples: SampleSet) -> str:
    """What the verification samples of ``--data`` are, for the sanity checks' messages."""
    return "held-back samples" if samples.held_out else "calibration samples"


def _refuse(checks: Sequence[str]) -> None:
    """``--strict``: fail on the first sanity check that warned, before anything is written."""
    if checks:
        more = f" ({len(checks) - 1} more)" if len(checks) > 1 else ""
        raise CheckFailed(f"--strict: {checks[0]}; nothing written{more}")


def _tensor_type(model: Model, which: str) -> str:
    return ",".join(sorted({np.dtype(s.dtype).name for s in getattr(model, which)}))


def _classes(source: SourceModel) -> int | None:
    """Classes of a single-output classifier, when the Keras model says."""
    shapes = [o.shape for o in source.keras_model.outputs] if source.keras_model is not None else []
    return int(shapes[0][-1]) if len(shapes) == 1 and shapes[0][-1] else None


def _check_labels(source: SourceModel, labels: Sequence[str]) -> None:
    shapes = [o.shape for o in source.keras_model.outputs] if source.keras_model is not None else []
    if len(shapes) == 1 and shapes[0][-1] not in (None, len(labels)):
        raise DataError(f"the labels file has {len(labels)} names but the model outputs {shapes[0][-1]} classes")


def _target_warnings(target: str | None, mode: str) -> list[str]:
    if target is None:
        return []
    from edgeq import devices

    profile = devices.profile_for(devices.current()) if target == "auto" else devices.get_profile(target)
    return list(devices.check_mode_fit(profile, mode))


def _run_converter(tf: Any, source: SourceModel, spec: ModeSpec, io_type: str, samples: SampleSet | None,
                   calibrate_only: bool = False) -> bytes:
    """Run the TFLite converter; ``calibrate_only`` stops after calibration (a float model carrying min/max)."""
    try:  # the first time TensorFlow restores a SavedModel given as such (edgeq reads only its signature)
        with quiet_native_output():
            converter = tf.lite.TFLiteConverter.from_saved_model(str(source.saved_model_dir))
    except Exception as exc:  # noqa: BLE001 - TF raises many types for a model it cannot restore
        raise ModelError(f"cannot load SavedModel {source.saved_model_dir}: {str(exc).strip().splitlines()[0][:300]}"
                         if str(exc).strip() else f"cannot load SavedModel {source.saved_model_dir}") from exc
    dataset = _representative(samples, source.inputs) if samples is not None else None
    spec.configure(converter, tf, io_type, dataset)
    if calibrate_only:  # the documented route to selective quantization: calibrate here, quantize with mlir_quantize
        converter._experimental_calibrate_only = True
    with step(f"Converting ({spec.key.value})"), warnings.catch_warnings(), quiet_native_output():
        warnings.filterwarnings("ignore", category=UserWarning, module="tensorflow")  # tf.lite.Interpreter deprecation
        try:
            return bytes(converter.convert())
        except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError, RuntimeError, ValueError…
            raise _conversion_error(exc, spec.key.value) from exc
