"""Second moments of a layer's input patches, from the float model and the quantized model side by side.

For a layer ``y = W p + b`` (``p`` an input patch: a window of a convolution's input, or a fully connected
layer's input row), with ``a = [p, 1]``, three moment matrices over the same positions of the same samples
describe every error the refinement weighs:

* ``qq = E[a_q a_qᵀ]``: the quantized model's inputs (GPTQ's Hessian);
* ``fq = E[a_f a_qᵀ]``: float inputs against quantized ones (what the quantized layer should reproduce);
* ``ff = E[a_f a_fᵀ]``: float inputs (the constant of the error).

The output error of parameters ``u = [W_q, b_q]`` against the float ``v = [W, b]`` is then
``v ff vᵀ - 2 v fq uᵀ + u qq uᵀ`` per position, and the mean pre-activation shift is ``v fq[:, -1] - u qq[:, -1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeq.converters.refine._layers import Layer

#: patch rows drawn per sample and layer (moments need hundreds of rows, not every pixel)
ROWS_PER_SAMPLE = 384
#: rows gathered before they are multiplied into the moments
FLUSH_ROWS = 4096


def _pad(size: int, k: int, stride: int, dilation: int, same: bool) -> tuple[int, int, int]:
    span = (k - 1) * dilation + 1
    if same:
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2, total - total // 2
    return (size - span) // stride + 1, 0, 0


def patches(layer: Layer, x: np.ndarray) -> np.ndarray:
    """The input windows each output position sees.

    Returns:
        ``[rows, K]`` (conv, K = kh*kw*in, in the weights' order; FC, K = inputs) or ``[rows, kh*kw, channels]``
        (depthwise).
    """
    if layer.kind == "FULLY_CONNECTED":
        return x.reshape(-1, layer.shape[-1])
    kh, kw = layer.shape[1], layer.shape[2]
    sh, sw, dh, dw, same = layer.window
    oh, top, bottom = _pad(x.shape[1], kh, sh, dh, same)
    ow, left, right = _pad(x.shape[2], kw, sw, dw, same)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    cols = [xp[:, i * dh : i * dh + (oh - 1) * sh + 1 : sh, j * dw : j * dw + (ow - 1) * sw + 1 : sw, :]
            for i in range(kh) for j in range(kw)]
    stacked = np.stack(cols, axis=3)  # [N, oh, ow, kh*kw, C]
    if layer.kind == "DEPTHWISE_CONV_2D":
        return stacked.reshape(-1, kh * kw, x.shape[-1])
    return stacked.reshape(-1, kh * kw * x.shape[-1])


def _augment(p: np.ndarray) -> np.ndarray:
    ones_shape = (p.shape[0], 1) + p.shape[2:]
    return np.concatenate([p, np.ones(ones_shape, p.dtype)], axis=1)


class Moments:
    """Running ``qq``, ``fq``, ``ff`` of one layer (per input channel for depthwise: ``[C, K+1, K+1]``)."""

    def __init__(self, layer: Layer, seed: int) -> None:
        self.layer = layer
        self.rng = np.random.default_rng(seed)
        self.n = 0
        self.qq: Any = 0.0
        self.fq: Any = 0.0
        self.ff: Any = 0.0
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending = 0

    def add(self, x_float: np.ndarray, x_quant: np.ndarray) -> None:
        pf, pq = patches(self.layer, x_float), patches(self.layer, x_quant)
        if pf.shape[0] > ROWS_PER_SAMPLE:
            rows = self.rng.choice(pf.shape[0], ROWS_PER_SAMPLE, replace=False)
            pf, pq = pf[rows], pq[rows]
        self._rows.append((pf, pq))
        self._pending += pf.shape[0]
        if self._pending >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        af = _augment(np.concatenate([f for f, _ in self._rows]).astype(np.float64))
        aq = _augment(np.concatenate([q for _, q in self._rows]).astype(np.float64))
        self._rows, self._pending = [], 0
        if self.layer.kind == "DEPTHWISE_CONV_2D":
            af, aq = af.transpose(2, 0, 1), aq.transpose(2, 0, 1)  # [C, rows, K+1]
            product = lambda a, b: np.swapaxes(a, 1, 2) @ b  # noqa: E731
        else:
            product = lambda a, b: a.T @ b  # noqa: E731
        for name, (a, b) in (("qq", (aq, aq)), ("fq", (af, aq)), ("ff", (af, af))):
            setattr(self, name, getattr(self, name) + product(a, b))
        self.n += af.shape[-2]

    def normalised(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(qq, fq, ff)`` as means, batched ``[B, K+1, K+1]`` (B = 1, or the depthwise output channels)."""
        self._flush()
        qq, fq, ff = (np.asarray(m) / max(self.n, 1) for m in (self.qq, self.fq, self.ff))
        if self.layer.kind != "DEPTHWISE_CONV_2D":
            return qq[None], fq[None], ff[None]
        multiplier = self.layer.channels // qq.shape[0]
        source = np.arange(self.layer.channels) // multiplier  # output channel o reads input channel o // m
        return qq[source], fq[source], ff[source]


def output_error(u: np.ndarray, v: np.ndarray, moments: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Mean squared pre-activation error of parameters ``u`` vs float ``v`` (both ``[B, O, K+1]``)."""
    qq, fq, ff = moments
    total = np.sum((v @ ff) * v) - 2 * np.sum((v @ fq) * u) + np.sum((u @ qq) * u)
    return float(total)
