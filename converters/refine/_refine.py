"""The refinement steps and their bookkeeping: propose per layer, check on held-back samples, keep or undo."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgeq._lazy import import_optional
from edgeq._progress import step as progress_step

from edgeq.converters.refine import _layers, _ranges
from edgeq.converters.refine._gptq import clipped_scales, gptq, least_squares_target
from edgeq.converters.refine._layers import Layer
from edgeq.converters.refine._run import TensorReader, predict_all
from edgeq.converters.refine._stats import Moments, Stats, error_changes

log = logging.getLogger(__name__)

STEPS = ("activation ranges", "weight rounding", "bias correction")
#: samples the statistics are computed on, and samples held back to check every change, at most
MAX_FIT, MAX_CHECK = 192, 64
#: the least relative drop of the held-back mean |error| a step must bring to be kept: smaller gains on ~50
#: held-back samples did not carry over to new data in benchmarks/accuracy.py
MARGIN = 0.1
#: ... and it must be consistent: mean per-sample gain at least this many standard errors
MIN_T = 3.0
#: convolutions give hundreds of input windows per sample: fewer samples estimate their moments as well
MAX_FIT_CONV = 64
#: fewer calibration samples than this: refinement is skipped (nothing to hold back)
MIN_SAMPLES = 8
#: passes of the float and the quantized model over the samples per step, at most: the layers are refined in
#: as many blocks, in graph order, each block on statistics of the model with the blocks before it refined
#: (GPTQ's sequential compensation, at a cost that does not grow with the number of layers)
MAX_PASSES = 8
#: a proposal must lower its layer's held-back output error by more than this share to replace the current one
TOLERANCE = 1e-6
_HINT = "pip install ai-edge-litert"


@dataclass(frozen=True)
class StepResult:
    """One refinement step over all layers, judged on the held-back samples.

    Attributes:
        name: ``activation ranges``, ``weight rounding`` (GPTQ) or ``bias correction``.
        layers: layers (tensors, for ranges) the step changed, each one lowering its own held-back output error.
        error_before, error_after: mean |output error| vs the float model on the held-back samples.
        kept: whether the step lowered that error by at least ``MARGIN`` without raising the squared error
            (otherwise it was undone).
    """

    name: str
    layers: int
    error_before: float
    error_after: float
    kept: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "layers": self.layers, "error_before": self.error_before,
                "error_after": self.error_after, "kept": self.kept}


@dataclass(frozen=True)
class RefineReport:
    """What ``--refine`` did.

    Attributes:
        layers: weighted layers refined (matched to the float model), of ``candidates`` found.
        fit_samples, check_samples: calibration samples the statistics came from / held back to judge each change.
        steps: each step's outcome.
        seconds: time spent refining.
        skipped: why nothing was tried, or empty.
        plain: the verification of the plain (unrefined) model on the same samples as the refined one, when known.
    """

    layers: int
    candidates: int
    fit_samples: int
    check_samples: int
    steps: tuple[StepResult, ...]
    seconds: float
    skipped: str = ""
    plain: Any = None

    @property
    def error_plain(self) -> float | None:
        return self.steps[0].error_before if self.steps else None

    @property
    def error_refined(self) -> float | None:
        kept = [s.error_after for s in self.steps if s.kept]
        return kept[-1] if kept else self.error_plain

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.layers, "candidates": self.candidates, "fit_samples": self.fit_samples,
                "check_samples": self.check_samples, "steps": [s.to_dict() for s in self.steps],
                "seconds": self.seconds, "skipped": self.skipped,
                "error_plain": self.error_plain, "error_refined": self.error_refined,
                "plain": self.plain.to_dict() if self.plain is not None else None}

    def note(self) -> str:
        """One line for the user."""
        if self.skipped:
            return f"--refine did nothing: {self.skipped}"
        done = ", ".join(f"{s.name} ({s.layers} layers, {'kept' if s.kept else 'undone: no gain'})" for s in self.steps)
        return (f"--refine in {self.seconds:.1f} s: {done}; held-back mean |error| {self.error_plain:.4g} → "
                f"{self.error_refined:.4g} ({self.check_samples} calibration samples held back)")


@dataclass
class _Pair:
    layer: Layer
    reference: Layer
    v: np.ndarray  # float parameters [B, O, K+1]


def _better(after: tuple[float, float, np.ndarray], before: tuple[float, float, np.ndarray]) -> bool:
    """A step is kept when it lowers the mean |error| by ``MARGIN``, consistently over the samples (a paired
    t statistic of at least ``MIN_T``), without raising the squared error (the SQNR)."""
    gain = before[2] - after[2]
    spread = float(np.std(gain, ddof=1)) / np.sqrt(len(gain)) if len(gain) > 1 else 0.0
    consistent = float(np.mean(gain)) >= MIN_T * spread
    return bool(after[0] < before[0] * (1 - MARGIN) and after[1] <= before[1] and consistent)


def _mean_error(outputs: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    return float(np.mean(np.concatenate([np.abs(o - r) for o, r in zip(outputs, reference)])))


def blocks(count: int, passes: int) -> list[list[int]]:
    """``range(count)`` cut into at most ``passes`` consecutive blocks of equal size (the last may be shorter)."""
    size = max(1, -(-count // max(passes, 1)))
    return [list(range(start, min(start + size, count))) for start in range(0, count, size)]


class _Refiner:
    def __init__(self, quantized: bytes, reference: bytes, fit: list, check: list, seed: int) -> None:
        self.fb = import_optional("ai_edge_litert.tools.flatbuffer_utils", _HINT)
        self.model = self.fb.convert_bytearray_to_object(bytearray(quantized))
        self.reference_model = self.fb.convert_bytearray_to_object(bytearray(reference))
        self.bytes = quantized
        self.fit, self.check, self.seed = fit, check, seed
        self.float_reader = TensorReader(reference)
        self.reference_outputs = predict_all(reference, check)
        self._error: tuple[float, float, np.ndarray] | None = None  # the current model's, once measured
        candidates = _layers.find_layers(self.model, quantized=True)
        matched = _layers.match(self.model, candidates, self.reference_model,
                                _layers.find_layers(self.reference_model, quantized=False))
        self.candidates = len(candidates)
        self.pairs = [_Pair(layer, matched[layer.op], self._float_params(layer, matched[layer.op]))
                      for layer in candidates if layer.op in matched and layer.bias >= 0]

    # -------------------------------------------------------------------------- parameters
    def _float_params(self, layer: Layer, reference: Layer) -> np.ndarray:
        w = _layers.to_matrix(layer, _layers.read_weight(self.reference_model, reference).astype(np.float64))
        b = _layers.read_bias(self.reference_model, reference)
        b = np.zeros(w.shape[0] * w.shape[1]) if b is None else b.astype(np.float64)
        return np.concatenate([w, b.reshape(w.shape[0], w.shape[1], 1)], axis=2)

    def _scales(self, layer: Layer) -> np.ndarray:
        s = layer.scales.astype(np.float64)
        return s[:, None] if layer.kind == "DEPTHWISE_CONV_2D" else s[None, :]

    def _bias_scale(self, layer: Layer) -> np.ndarray | None:
        if not layer.integer_bias:
            return None
        q = self.model.subgraphs[0].tensors[layer.bias].quantization
        scale = np.broadcast_to(np.asarray(q.scale, np.float64), (layer.channels,))
        return scale[:, None] if layer.kind == "DEPTHWISE_CONV_2D" else scale[None, :]

    def _current(self, layer: Layer) -> np.ndarray:
        w = _layers.to_matrix(layer, _layers.read_weight(self.model, layer).astype(np.float64)) * self._scales(layer)[:, :, None]
        b = _layers.read_bias(self.model, layer).astype(np.float64)
        bias_scale = self._bias_scale(layer)
        b = b.reshape(w.shape[0], w.shape[1]) * (bias_scale if bias_scale is not None else 1.0)
        return np.concatenate([w, b[:, :, None]], axis=2)

    def _write(self, layer: Layer, integers: np.ndarray | None, bias: np.ndarray, scales: np.ndarray | None) -> None:
        if scales is not None:  # weight-only layers: the DEQUANTIZE reads the new per-channel scales
            layer.scales = (scales[:, 0] if layer.kind == "DEPTHWISE_CONV_2D" else scales[0]).astype(np.float32)
            self.model.subgraphs[0].tensors[layer.weight].quantization.scale = layer.scales.copy()
        if integers is not None:
            _layers.write_weight(self.model, layer, _layers.from_matrix(layer, integers))
        bias_scale = self._bias_scale(layer)
        if bias_scale is not None:
            info = np.iinfo(np.int32)
            bias = np.clip(np.round(bias / bias_scale), info.min, info.max)
        flat = bias[:, 0] if layer.kind == "DEPTHWISE_CONV_2D" else bias[0]
        _layers.write_bias(self.model, layer, flat)

    def _saved(self, layer: Layer) -> tuple[Any, Any, Any, Any]:
        buffers = self.model.buffers
        graph = self.model.subgraphs[0]
        return (np.array(buffers[graph.tensors[layer.weight].buffer].data, copy=True),
                np.array(buffers[graph.tensors[layer.bias].buffer].data, copy=True),
                layer.scales.copy(), graph.tensors[layer.weight].quantization.scale)

    def _restore(self, layer: Layer, saved: tuple[Any, Any, Any, Any]) -> None:
        graph = self.model.subgraphs[0]
        self.model.buffers[graph.tensors[layer.weight].buffer].data = saved[0]
        self.model.buffers[graph.tensors[layer.bias].buffer].data = saved[1]
        layer.scales = saved[2]
        graph.tensors[layer.weight].quantization.scale = saved[3]

    def _serialise(self) -> None:
        self.bytes = bytes(self.fb.convert_object_to_bytearray(self.model))
        self._error = None

    # -------------------------------------------------------------------------- statistics
    def _statistics(self, block: list[int], full: bool) -> dict[int, tuple[Stats, Stats]]:
        """One pass of the float and the current quantized model over the samples: the statistics of every
        layer of ``block`` (indices into ``pairs``) on the fit samples and on the held-back samples."""
        reader = TensorReader(self.bytes)
        limits = {i: len(self.fit) if self.pairs[i].layer.kind == "FULLY_CONNECTED" else MAX_FIT_CONV for i in block}
        n_fit = min(len(self.fit), max(limits.values()))
        fit = {i: Moments(self.pairs[i].layer, self.seed + i, full) for i in block}
        check = {i: Moments(self.pairs[i].layer, self.seed + 10_000 + i, full) for i in block}
        for j, sample in enumerate(self.fit[:n_fit] + self.check):
            self.float_reader.run(sample)
            reader.run(sample)
            inputs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
            for i in block:
                if j < n_fit and j >= limits[i]:
                    continue
                pair = self.pairs[i]
                key = (pair.reference.input, pair.layer.input)
                if key not in inputs:  # layers reading the same tensor share one read
                    inputs[key] = (self.float_reader.tensor(key[0], np.float32), reader.tensor(key[1], np.float32))
                (fit if j < n_fit else check)[i].add(*inputs[key])
        return {i: (fit[i].normalised(), check[i].normalised()) for i in block}

    def error(self) -> tuple[float, float, np.ndarray]:
        """Mean absolute and mean squared output error vs the float model on the held-back samples, and per sample
        (of the current model: measured once per change of it)."""
        if self._error is None:
            outputs = predict_all(self.bytes, self.check)
            squared = float(np.mean(np.concatenate([(o - r) ** 2 for o, r in zip(outputs, self.reference_outputs)])))
            per_sample = np.array([np.mean(np.abs(o - r)) for o, r in zip(outputs, self.reference_outputs)])
            self._error = (_mean_error(outputs, self.reference_outputs), squared, per_sample)
        return self._error

    # -------------------------------------------------------------------------------- steps
    def _propose(self, name: str, pair: _Pair, fit: Stats, current: np.ndarray) -> list[tuple[Any, Any, Any]]:
        """Candidate ``(integers or None, bias, scales or None)``; ``None``: unchanged."""
        layer = pair.layer
        if name == "bias correction":  # the mean of v a_f - current a_q, with E[a_f] = mq + md
            shift = np.einsum("bok,bk->bo", pair.v, fit.mq + fit.md) - np.einsum("bok,bk->bo", current, fit.mq)
            return [(None, current[:, :, -1] + shift, None)]
        qq, fq = fit.qq, fit.fq
        scales = np.broadcast_to(self._scales(layer), current.shape[:2])
        bias_scale = self._bias_scale(layer)
        bias_scale = None if bias_scale is None else np.broadcast_to(bias_scale, current.shape[:2])
        # weight-only layers may also narrow their scales (clipping the largest weights); full-integer biases
        # are tied to the weight scales, so those keep theirs
        options = [None] if layer.integer_bias else [None, clipped_scales(pair.v, qq, scales, layer.qmin, layer.qmax)]
        targets = [pair.v, least_squares_target(pair.v, qq, fq)]
        proposals = []
        for new_scales in options:
            try:
                rounded = gptq(targets, qq, scales if new_scales is None else new_scales, layer.qmin, layer.qmax, bias_scale)
            except np.linalg.LinAlgError:
                log.debug("refine: singular input moments for op %d", layer.op)
                continue
            proposals += [(integers, bias, new_scales) for integers, bias in rounded]
        return proposals

    def _params(self, pair: _Pair, integers: np.ndarray | None, bias: np.ndarray, scales: np.ndarray | None,
                current: np.ndarray) -> np.ndarray:
        if integers is None:
            w = current[:, :, :-1]
        else:
            w = integers * (self._scales(pair.layer) if scales is None else scales)[:, :, None]
        bias_scale = self._bias_scale(pair.layer)
        if bias_scale is not None:
            bias = np.round(bias / bias_scale) * bias_scale
        return np.concatenate([w, bias[:, :, None]], axis=2)

    def _range_saved(self, tensor: int, pairs: list[_Pair]) -> tuple[Any, ...]:
        graph = self.model.subgraphs[0]
        q = graph.tensors[tensor].quantization
        biases = [(np.array(self.model.buffers[graph.tensors[p.layer.bias].buffer].data, copy=True),
                   graph.tensors[p.layer.bias].quantization.scale) for p in pairs]
        return q.scale, q.zeroPoint, q.min, q.max, biases

    def _range_restore(self, tensor: int, pairs: list[_Pair], saved: tuple[Any, ...]) -> None:
        graph = self.model.subgraphs[0]
        q = graph.tensors[tensor].quantization
        q.scale, q.zeroPoint, q.min, q.max, biases = saved
        for p, (data, scale) in zip(pairs, biases):
            self.model.buffers[graph.tensors[p.layer.bias].buffer].data = data
            graph.tensors[p.layer.bias].quantization.scale = scale

    def run_range_step(self, name: str) -> StepResult:
        before = self.error()
        saved = []
        found = _ranges.candidates(self)
        passes = (min(len(self.fit), _ranges.MAX_SAMPLES) + min(len(self.check), _ranges.MAX_SAMPLES)) if found else 0
        with progress_step(f"Refining: {name}", passes + len(found)) as advance:
            fit = _ranges.gather(self, found, self.fit, self.seed, advance)
            check = _ranges.gather(self, found, self.check, self.seed + 1, advance)
            for (tensor, pairs), fit_windows, check_windows in zip(found, fit, check):
                best = _ranges.propose(self, tensor, pairs, fit_windows, check_windows)
                if best is not None:
                    saved.append((tensor, pairs, self._range_saved(tensor, pairs)))
                    _ranges.apply(self, tensor, pairs, *best)
                advance(1)
        if saved:
            self._serialise()
        after = self.error() if saved else before
        kept = _better(after, before)
        if not kept and saved:
            for tensor, pairs, backup in reversed(saved):
                self._range_restore(tensor, pairs, backup)
            self._serialise()  # the next step measures the restored model anew
        log.info("refine %s: %d tensors changed, held-back error %.5g -> %.5g", name, len(saved), before[0],
                 after[0])
        return StepResult(name, len(saved), before[0], after[0], kept)

    def run_step(self, name: str) -> StepResult:
        if name == "activation ranges":
            return self.run_range_step(name)
        before = self.error()
        saved = {}
        with progress_step(f"Refining: {name}", len(self.pairs)) as advance:
            for block in blocks(len(self.pairs), MAX_PASSES):
                stats = self._statistics(block, full=name != "bias correction")
                for i in block:
                    pair = self.pairs[i]
                    fit, check = stats[i]
                    current = self._current(pair.layer)
                    proposals = self._propose(name, pair, fit, current)
                    changes, scale = error_changes([self._params(pair, *p, current) for p in proposals], current,
                                                   pair.v, check)
                    best, best_change = None, 0.0
                    for proposal, change in zip(proposals, changes):
                        if change < best_change - TOLERANCE * (scale + best_change):
                            best, best_change = proposal, change
                    if best is not None:  # it lowers this layer's output error on the held-back samples
                        saved[i] = self._saved(pair.layer)
                        self._write(pair.layer, *best)
                    advance(1)
                if any(i in saved for i in block):
                    self._serialise()
        changed = len(saved)
        after = self.error() if changed else before
        kept = _better(after, before)
        if not kept and changed:
            for i, backup in saved.items():
                self._restore(self.pairs[i].layer, backup)
            self._serialise()  # the next step measures the restored model anew
        log.info("refine %s: %d layers changed, held-back error %.5g -> %.5g (%s)", name, changed, before[0], after[0],
                 "kept" if kept else "undone")
        return StepResult(name, changed, before[0], after[0], kept)


def refine(quantized: bytes, reference: bytes, samples: Sequence[Sequence[np.ndarray]], seed: int = 0,
           steps: Sequence[str] = STEPS) -> tuple[bytes, RefineReport]:
    """Refine a quantized model's weights and biases against its float version, never making it worse.

    Args:
        quantized: the quantized ``.tflite`` (full integer, or weight-only int8/int4).
        reference: the float32 ``.tflite`` made from the same model.
        samples: calibration samples (one array per input each, in the interpreter's input order); the last
            quarter (at most ``MAX_CHECK``) is held back to judge every change.
        seed: the seed of the patch positions drawn for the statistics.
        steps: the steps to run, in order (default: GPTQ weight rounding, then bias correction).

    Returns:
        The refined model (``quantized`` itself when nothing helped) and a :class:`RefineReport`.
    """
    started = time.perf_counter()
    samples = list(samples)
    if len(samples) < MIN_SAMPLES:
        report = RefineReport(0, 0, 0, 0, (), 0.0, f"needs at least {MIN_SAMPLES} calibration samples, got {len(samples)}")
        return quantized, report
    n_check = min(MAX_CHECK, max(2, len(samples) // 4))
    fit, check = samples[:-n_check][:MAX_FIT], samples[-n_check:]
    refiner = _Refiner(quantized, reference, fit, check, seed)
    if not refiner.pairs:
        report = RefineReport(0, refiner.candidates, len(fit), len(check), (), time.perf_counter() - started,
                              "no conv / depthwise / fully connected layer with quantized weights and a bias to refine")
        return quantized, report
    results = tuple(refiner.run_step(name) for name in steps)
    report = RefineReport(len(refiner.pairs), refiner.candidates, len(fit), len(check), results,
                          time.perf_counter() - started)
    return (refiner.bytes if any(r.kept for r in results) else quantized), report
