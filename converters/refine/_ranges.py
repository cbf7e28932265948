"""Activation-range search: narrow an int8 activation's range where that lowers the next layers' output error.

Min/max calibration lets one rare outlier set a whole tensor's int8 range; every typical value then rounds
coarsely. For an activation read only by refinable layers (conv / depthwise / fully connected with an int32
bias) and written by an op that requantizes freely (conv, depthwise, fully connected, add, sub, mul), any
range can be written into the file: the producer computes its multipliers from the tensor's scale when the
model loads, and the consumers' biases are rescaled to the new ``input_scale * weight_scale``.

Each candidate range is scored by the consumers' mean absolute output error when the float activation is quantized with
it, on the statistics samples; the best is kept if it also wins clearly (``MIN_GAIN``) on the held-back samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from edgeq.converters.refine import _layers
from edgeq.converters.refine._layers import Layer, op_name
from edgeq.converters.refine._stats import ROWS_PER_SAMPLE, sample_patches

if TYPE_CHECKING:
    from edgeq.converters.refine._refine import _Pair, _Refiner

#: producers whose kernels derive their output requantization from the output tensor's scale
FREE_PRODUCERS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "SUB", "MUL"}
#: candidate ranges: the observed [min, max] times these factors
SHRINK = np.geomspace(1.0, 1e-3, 31)
#: the least relative drop of the readers' held-back error for a new range: narrowing a range that min/max set
#: reasonably gains a little on the samples and loses it on new data that reaches further (clipping)
MIN_GAIN = 0.25
#: samples the search quantizes activations of (statistics / held back), at most
MAX_SAMPLES = 64
#: values (window rows x window size) per consuming layer the search quantizes, per sample set: enough rows to rank
#: 31 ranges, few enough that MobileNetV2-224's 960-channel depthwise windows do not cost minutes
SEARCH_VALUES = 1 << 21
#: the search scores every ``COARSE``-th candidate range, then those around the best of them
COARSE = 5


def candidates(refiner: _Refiner) -> list[tuple[int, list[_Pair]]]:
    """Activation tensors whose range can be rewritten, with the refinable layers that read them."""
    graph = refiner.model.subgraphs[0]
    readers: dict[int, list[int]] = {}
    producer: dict[int, Any] = {}
    for i, op in enumerate(graph.operators):
        for t in op.inputs:
            readers.setdefault(int(t), []).append(i)
        for t in op.outputs:
            producer[int(t)] = op
    by_input: dict[int, list[_Pair]] = {}
    for pair in refiner.pairs:
        if pair.layer.integer_bias:
            by_input.setdefault(pair.layer.input, []).append(pair)
    found = []
    outputs = {int(t) for t in graph.outputs} | {int(t) for t in graph.inputs}
    for tensor, pairs in by_input.items():
        q = graph.tensors[tensor].quantization
        if tensor in outputs or tensor not in producer or q is None or q.scale is None or len(q.scale) != 1:
            continue
        if op_name(refiner.model, producer[tensor]) not in FREE_PRODUCERS:
            continue
        if sorted(readers.get(tensor, [])) != sorted(p.layer.op for p in pairs):
            continue  # read by an op that cannot follow a new scale
        if any(graph.operators[p.layer.op].inputs[0] != tensor or list(graph.operators[p.layer.op].inputs).count(tensor) != 1
               for p in pairs):
            continue
        found.append((tensor, pairs))
    return found


def _quantize(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    scale, zero = _params(lo, hi)
    scale = x.dtype.type(scale)  # float32 windows stay float32 (twice as fast)
    return (np.clip(np.round(x / scale) + zero, -128, 127) - zero) * scale


def _params(lo: float, hi: float) -> tuple[float, int]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-12) / 255
    return scale, int(np.clip(np.round(-128 - lo / scale), -128, 127))


def _score(pairs: list[_Pair], currents: list[np.ndarray], windows: list[np.ndarray],
           ranges: list[tuple[float, float]]) -> np.ndarray:
    """Summed absolute output error of the consumers, per candidate range.

    Absolute, not squared: a squared error lets a handful of rare outliers outweigh the rounding of every
    typical value, which is the very failure this step is for; the model is judged by mean |error| too.
    ``windows`` holds, per consumer, its input patches (rows drawn per sample): quantizing is elementwise and
    keeps 0 (the padding) exact, so the patches of the quantization error are the error of the patches.
    """
    errors = np.zeros(len(ranges))
    for pair, current, p in zip(pairs, currents, windows):
        w = current[:, :, :-1].astype(p.dtype)
        for i, (lo, hi) in enumerate(ranges):
            d = p - _quantize(p, lo, hi)
            out = np.einsum("rkc,ck->rc", d, w[:, 0, :]) if pair.layer.kind == "DEPTHWISE_CONV_2D" else d @ w[0].T
            errors[i] += float(np.sum(np.abs(out)))
    return errors


def _window_size(layer: Layer) -> int:
    """Values in one input window of ``layer``, about: its weights' shape after the output channels (a depthwise
    multiplier above 1 overcounts, which only lowers the rows drawn)."""
    return int(np.prod(layer.shape[1:]))


def gather(refiner: _Refiner, found: list[tuple[int, list[_Pair]]], samples: list, seed: int,
           advance: Callable[[int], None] = lambda n: None) -> list[tuple[list[np.ndarray], float, float]]:
    """Per candidate tensor: per consumer its float input windows on up to ``MAX_SAMPLES`` samples (at most
    ``SEARCH_VALUES`` values, rows drawn evenly per sample), and the tensor's min and max — one float pass for all."""
    rng = np.random.default_rng(seed)
    samples = samples[:MAX_SAMPLES]
    if not found:
        return []
    rows = [[max(1, min(ROWS_PER_SAMPLE, SEARCH_VALUES // (len(samples) * _window_size(p.layer)))) for p in pairs]
            for _, pairs in found]
    windows: list[list[list[np.ndarray]]] = [[[] for _ in pairs] for _, pairs in found]
    limits = [[np.inf, -np.inf] for _ in found]
    for sample in samples:
        refiner.float_reader.run(sample)
        for t, (_, pairs) in enumerate(found):
            x = refiner.float_reader.tensor(pairs[0].reference.input, np.float32)
            limits[t] = [min(limits[t][0], float(x.min())), max(limits[t][1], float(x.max()))]
            for i, pair in enumerate(pairs):
                windows[t][i].append(sample_patches(pair.layer, x, rng, rows[t][i]))
        advance(1)
    return [([np.concatenate(w) for w in per_pair], lo, hi) for per_pair, (lo, hi) in zip(windows, limits)]


def propose(refiner: _Refiner, tensor: int, pairs: list[_Pair], fit: tuple[list[np.ndarray], float, float],
            check: tuple[list[np.ndarray], float, float]) -> tuple[float, float] | None:
    """The best range for ``tensor`` if it beats the current one on the held-back windows, else ``None``.

    Scores every ``COARSE``-th candidate range, then the candidates around the best of those.
    """
    q = refiner.model.subgraphs[0].tensors[tensor].quantization
    scale, zero = float(q.scale[0]), int(q.zeroPoint[0])
    current = ((-128 - zero) * scale, (127 - zero) * scale)
    fit_windows, lo, hi = fit
    ranges = [(lo * r, hi * r) for r in SHRINK]
    currents = [refiner._current(p.layer) for p in pairs]
    coarse = list(range(0, len(ranges), COARSE))
    scores = dict(zip(coarse, _score(pairs, currents, fit_windows, [ranges[i] for i in coarse])))
    middle = min(scores, key=scores.__getitem__)
    fine = [i for i in range(max(0, middle - COARSE + 1), min(len(ranges), middle + COARSE)) if i not in scores]
    scores.update(zip(fine, _score(pairs, currents, fit_windows, [ranges[i] for i in fine])))
    best = ranges[min(scores, key=scores.__getitem__)]
    held_back = _score(pairs, currents, check[0], [current, best])
    return best if held_back[1] < held_back[0] * (1 - MIN_GAIN) else None


def apply(refiner: _Refiner, tensor: int, pairs: list[_Pair], lo: float, hi: float) -> None:
    """Write the new range into ``tensor`` and rescale its readers' int32 biases to match."""
    graph = refiner.model.subgraphs[0]
    q = graph.tensors[tensor].quantization
    scale, zero = _params(lo, hi)
    q.scale = np.asarray([scale], np.float32)
    q.zeroPoint = np.asarray([zero], np.int64)
    if q.min is not None and q.max is not None:
        q.min, q.max = np.asarray([lo], np.float32), np.asarray([hi], np.float32)
    for pair in pairs:  # the kernels require bias scale == input scale * weight scale (float32)
        bias_q = graph.tensors[pair.layer.bias].quantization
        old_bias = np.asarray(bias_q.scale, np.float64)
        weight_scales = np.asarray(graph.tensors[pair.layer.weight].quantization.scale, np.float32)
        new_bias = np.broadcast_to(np.float32(scale) * weight_scales, old_bias.shape).astype(np.float32)
        values = _layers.read_bias(refiner.model, pair.layer).astype(np.float64) * old_bias / new_bias
        info = np.iinfo(np.int32)
        _layers.write_bias(refiner.model, pair.layer, np.clip(np.round(values), info.min, info.max))
        bias_q.scale = new_bias
