"""Second moments of a layer's input patches, from the float model and the quantized model side by side.

For a layer ``y = W p + b`` (``p`` an input patch: a window of a convolution's input, or a fully connected
layer's input row), with ``a = [p, 1]`` and ``d = a_f - a_q`` the error the quantized input carries, three
moment matrices over the same positions of the same samples describe every error the refinement weighs:

* ``qq = E[a_q a_qᵀ]``: the quantized model's inputs (GPTQ's Hessian);
* ``dq = E[d a_qᵀ]``: the input error against the quantized inputs (``fq = E[a_f a_qᵀ] = qq + dq``);
* ``dd = E[d dᵀ]``: the input error (``ff = E[a_f a_fᵀ] = qq + dq + dqᵀ + dd``).

The output error of parameters ``u = v + e`` against the float ``v = [W, b]`` is then
``v dd vᵀ - 2 v dq eᵀ + e qq eᵀ`` per position: small terms, no difference of large ones, so the products
can be taken in float32. The mean pre-activation shift is ``v fq[:, -1] - u qq[:, -1]``; a step that only
moves biases needs just the means ``E[a_q]`` and ``E[d]`` (:class:`Moments` with ``full=False``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeq.converters.refine._layers import Layer

#: patch rows drawn per sample and layer (moments need hundreds of rows, not every pixel)
ROWS_PER_SAMPLE = 384
#: values (rows x window) gathered before they are multiplied into the moments
FLUSH_VALUES = 1 << 22


def _pad(size: int, k: int, stride: int, dilation: int, same: bool) -> tuple[int, int, int]:
    span = (k - 1) * dilation + 1
    if same:
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return out, total // 2, total - total // 2
    return (size - span) // stride + 1, 0, 0


def positions(layer: Layer, shape: tuple[int, ...]) -> int:
    """How many patches (output positions, or fully connected rows) a layer reads from an input of ``shape``."""
    if layer.kind == "FULLY_CONNECTED":
        return int(np.prod(shape)) // layer.shape[-1]
    sh, sw, dh, dw, same = layer.window
    return shape[0] * _pad(shape[1], layer.shape[1], sh, dh, same)[0] * _pad(shape[2], layer.shape[2], sw, dw, same)[0]


def patches(layer: Layer, x: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """The input windows the output positions see: all of them, or only ``rows`` (flat output positions).

    Only the windows asked for are gathered, so drawing a few hundred rows of a large feature map costs a few
    hundred windows, not the whole map.

    Returns:
        ``[rows, K]`` (conv, K = kh*kw*in, in the weights' order; FC, K = inputs) or ``[rows, kh*kw, channels]``
        (depthwise).
    """
    if layer.kind == "FULLY_CONNECTED":
        flat = x.reshape(-1, layer.shape[-1])
        return flat if rows is None else flat[rows]
    kh, kw = layer.shape[1], layer.shape[2]
    sh, sw, dh, dw, same = layer.window
    oh, top, bottom = _pad(x.shape[1], kh, sh, dh, same)
    ow, left, right = _pad(x.shape[2], kw, sw, dw, same)
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))) if top + bottom + left + right else x
    if rows is None:
        rows = np.arange(x.shape[0] * oh * ow)
    n, oy, ox = np.unravel_index(rows, (x.shape[0], oh, ow))
    iy = oy[:, None] * sh + np.arange(kh)[None, :] * dh  # [rows, kh]
    ix = ox[:, None] * sw + np.arange(kw)[None, :] * dw  # [rows, kw]
    windows = xp[n[:, None, None], iy[:, :, None], ix[:, None, :], :]  # [rows, kh, kw, C]
    if layer.kind == "DEPTHWISE_CONV_2D":
        return windows.reshape(len(rows), kh * kw, x.shape[-1])
    return windows.reshape(len(rows), kh * kw * x.shape[-1])


def draw(layer: Layer, shape: tuple[int, ...], rng: np.random.Generator, count: int = ROWS_PER_SAMPLE) -> np.ndarray | None:
    """``count`` distinct patch rows drawn at random, or ``None`` (all of them) when there are no more."""
    total = positions(layer, shape)
    return rng.choice(total, count, replace=False) if total > count else None


def sample_patches(layer: Layer, x: np.ndarray, rng: np.random.Generator, count: int = ROWS_PER_SAMPLE) -> np.ndarray:
    """At most ``count`` of the input windows of ``x``, drawn at random (see :func:`patches`)."""
    return patches(layer, x, draw(layer, x.shape, rng, count))


@dataclass(frozen=True)
class Stats:
    """A layer's input statistics as means, batched (B = 1, or the depthwise output channels).

    Attributes:
        mq, md: ``[B, K+1]`` means of ``a_q`` and of ``d = a_f - a_q``.
        qq, dq, dd: ``[B, K+1, K+1]`` second moments (``None`` for means-only statistics).
    """

    mq: np.ndarray
    md: np.ndarray
    qq: np.ndarray | None = None
    dq: np.ndarray | None = None
    dd: np.ndarray | None = None

    @property
    def full(self) -> bool:
        return self.qq is not None

    @property
    def fq(self) -> np.ndarray:
        """``E[a_f a_qᵀ]``."""
        return self.qq + self.dq


class Moments:
    """Running statistics of one layer (per input channel for depthwise: ``[C, K+1, K+1]``).

    Args:
        layer: the quantized layer (its kind, kernel and window).
        seed: the seed of the patch rows drawn per sample.
        full: second moments too; ``False``: only the means (enough for bias correction).
    """

    def __init__(self, layer: Layer, seed: int, full: bool = True) -> None:
        self.layer = layer
        self.full = full
        self.rng = np.random.default_rng(seed)
        self.n = 0
        self.sums: dict[str, Any] = {name: 0.0 for name in ("mq", "md", "qq", "dq", "dd")}
        self._rows: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending = 0

    def add(self, x_float: np.ndarray, x_quant: np.ndarray) -> None:
        """Add one sample: the layer's input in the float model and in the quantized model (same shape)."""
        rows = draw(self.layer, x_float.shape, self.rng)
        pf, pq = patches(self.layer, x_float, rows), patches(self.layer, x_quant, rows)
        self._rows.append((pf, pq))
        self._pending += pf.size
        if self._pending >= FLUSH_VALUES:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        q = np.concatenate([q for _, q in self._rows]).astype(np.float32, copy=False)
        d = np.concatenate([f for f, _ in self._rows]).astype(np.float32, copy=False) - q  # exact to float32
        self._rows, self._pending = [], 0
        self.n += q.shape[0]
        self.sums["mq"] = self.sums["mq"] + q.sum(axis=0, dtype=np.float64)
        self.sums["md"] = self.sums["md"] + d.sum(axis=0, dtype=np.float64)
        if not self.full:
            return
        for name, (a, b) in (("qq", (q, q)), ("dq", (d, q)), ("dd", (d, d))):
            if self.layer.kind == "DEPTHWISE_CONV_2D":  # per channel [K, K]: einsum beats a transposed copy
                product = np.einsum("rkc,rlc->ckl", a, b)
            else:
                product = a.T @ b
            self.sums[name] = self.sums[name] + product.astype(np.float64)

    def normalised(self) -> Stats:
        """The statistics as means, batched ``[B, ...]`` (B = 1, or the depthwise output channels)."""
        self._flush()
        n = max(self.n, 1)
        mq, md = (np.asarray(self.sums[name]) / n for name in ("mq", "md"))
        if self.layer.kind == "DEPTHWISE_CONV_2D":
            mq, md = mq.T, md.T  # [C, K]
        else:
            mq, md = mq[None], md[None]
        ones = np.ones(mq.shape[:-1] + (1,))
        moments: dict[str, np.ndarray] = {"mq": np.concatenate([mq, ones], -1), "md": np.concatenate([md, 0 * ones], -1)}
        if self.full:  # the moments of a = [p, 1]: the ones column holds the means
            b, k = mq.shape
            for name, right, bottom, corner in (("qq", mq, mq, 1.0), ("dq", md, 0.0, 0.0), ("dd", 0.0, 0.0, 0.0)):
                m = np.empty((b, k + 1, k + 1))
                np.divide(np.asarray(self.sums[name]).reshape(b, k, k), n, out=m[:, :k, :k])
                m[:, :k, k], m[:, k, :k], m[:, k, k] = right, bottom, corner
                moments[name] = m
        if self.layer.kind == "DEPTHWISE_CONV_2D":
            multiplier = self.layer.channels // mq.shape[0]
            source = np.arange(self.layer.channels) // multiplier  # output channel o reads input channel o // m
            moments = {name: m[source] for name, m in moments.items()}
        return Stats(**moments)


def error_changes(candidates: list[np.ndarray], current: np.ndarray, v: np.ndarray, stats: Stats) -> tuple[list[float], float]:
    """How much each of ``candidates`` changes the output error of ``current`` (negative: lower), and its scale.

    The output error of ``u = v + e`` (all ``[B, O, K+1]``) is ``v dd vᵀ - 2 v dq eᵀ + e qq eᵀ`` summed over the
    outputs: ``v dq`` is shared by all candidates, so each costs one product. With means-only statistics the
    candidates may differ from ``current`` in the bias only: moving it by ``δ`` changes the mean squared error
    by ``Σ δ² + 2 δ m`` exactly, ``m`` the mean error of ``current``.

    Returns:
        ``(changes, scale)``: the scale is the current error (full statistics) or its bias part ``Σ m²``, for a
        tolerance relative to it.
    """
    if stats.full:
        vdq = v @ stats.dq

        def error(u: np.ndarray) -> float:  # without the constant v dd vᵀ
            e = u - v
            return float(np.sum((e @ stats.qq) * e) - 2 * np.sum(vdq * e))

        base = error(current)
        return [error(u) - base for u in candidates], base + float(np.sum((v @ stats.dd) * v))
    m = np.einsum("bok,bk->bo", current - v, stats.mq) - np.einsum("bok,bk->bo", v, stats.md)
    changes = []
    for u in candidates:
        if not np.array_equal(u[:, :, :-1], current[:, :, :-1]):
            raise ValueError("means-only statistics judge bias changes only")
        delta = u[:, :, -1] - current[:, :, -1]
        changes.append(float(np.sum(delta * delta + 2 * delta * m)))
    return changes, float(np.sum(m * m))
