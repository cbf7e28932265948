"""GPTQ: error-compensating rounding of a layer's weights, closed form from its inputs' second moments (numpy).

Rounding the weights one input column at a time, the error of each column is pushed onto the columns
not yet rounded through the inverse Hessian ``H⁻¹`` (``H = E[a aᵀ]`` of the layer inputs), so the
layer's *output* error stays small rather than each weight's (Frantar et al., 2022, "GPTQ"). Columns are
taken in decreasing ``diag(H)`` ("act order"). The scales stay as the converter chose them; the bias is
the last column, kept continuous (int32 or float32), so it absorbs the remaining mean error. A Hessian
estimated from fewer input rows than it has weights is shrunk towards its diagonal first (:func:`shrunk`).
"""

from __future__ import annotations

import numpy as np

#: dampening added to the Hessian's diagonal, as a share of its mean
DAMP = 0.01
BLOCK = 128
#: share of its diagonal mixed into a Hessian of fewer independent input rows than weights (a wide fully
#: connected layer on a few hundred samples): its null directions would let GPTQ fit the samples' noise
SHRINK = 0.5
#: a pivot of the Hessian's Cholesky factor below this share of its mean diagonal: a null direction
NULL_PIVOT = 1e-10


def _rank_deficient(h: np.ndarray) -> np.ndarray:
    """``[B]``: whether each Hessian has a null direction (fewer independent input rows than its size)."""
    mean_diag = np.maximum(np.mean(np.diagonal(h, axis1=-2, axis2=-1), axis=-1), 1e-12)
    jitter = NULL_PIVOT * 1e-2 * mean_diag[:, None, None] * np.eye(h.shape[-1])
    try:  # one batched factorisation; one at a time only when some Hessian is not even positive definite
        pivots = np.diagonal(np.linalg.cholesky(h + jitter), axis1=-2, axis2=-1) ** 2
        return pivots.min(axis=-1) < NULL_PIVOT * mean_diag
    except np.linalg.LinAlgError:
        pass
    deficient = np.ones(h.shape[0], bool)
    for i in range(h.shape[0]):
        try:
            pivots = np.diagonal(np.linalg.cholesky(h[i] + jitter[i])) ** 2
        except np.linalg.LinAlgError:
            continue
        deficient[i] = pivots.min() < NULL_PIVOT * mean_diag[i]
    return deficient


def shrunk(h: np.ndarray) -> np.ndarray:
    """``h`` with rank-deficient Hessians moved ``SHRINK`` of the way to their diagonal (Ledoit-Wolf style)."""
    deficient = _rank_deficient(h)
    if not deficient.any():
        return h
    diagonal = np.eye(h.shape[-1]) * np.diagonal(h, axis1=-2, axis2=-1)[:, None, :]
    return np.where(deficient[:, None, None], (1 - SHRINK) * h + SHRINK * diagonal, h)


def _inverse_cholesky(h: np.ndarray) -> np.ndarray:
    """Upper Cholesky factor ``U`` of ``H⁻¹`` (``H⁻¹ = UᵀU``), batched, with dampening."""
    k = h.shape[-1]
    eye = np.eye(k)
    mean_diag = np.maximum(np.mean(np.diagonal(h, axis1=-2, axis2=-1), axis=-1), 1e-12)
    h = h + DAMP * mean_diag[:, None, None] * eye
    for extra in (0.0, 0.1, 1.0):  # a singular H (e.g. constant inputs): dampen more
        try:
            inv = np.linalg.inv(h + extra * mean_diag[:, None, None] * eye)
            return np.swapaxes(np.linalg.cholesky(inv), -1, -2)
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("the layer's input moments are not positive definite")


def gptq(targets: list[np.ndarray], hessian: np.ndarray, scales: np.ndarray, qmin: int, qmax: int,
         bias_scale: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Round each of ``targets`` to integers of per-output-channel ``scales``, compensating errors.

    Args:
        targets: ``[B, O, K+1]`` float weights each, last column the bias (B: batch of independent problems,
            e.g. depthwise channels).
        hessian: ``[B, K+1, K+1]`` input moments ``E[a aᵀ]`` with ``a = [patch, 1]``.
        scales: ``[B, O]`` weight scales.
        qmin, qmax: the integer range of the weights.
        bias_scale: ``[B, O]`` scale of an integer bias, or ``None`` for a float bias.

    Returns:
        Per target ``(integers [B, O, K], bias [B, O])``: the bias in real units.
    """
    b, _, k1 = targets[0].shape
    k = k1 - 1
    h = hessian.astype(np.float64).copy()
    dead = np.diagonal(h, axis1=-2, axis2=-1)[:, :k] <= 0
    for i in range(b):  # inputs that are always 0: any weight works, use the plain rounding
        idx = np.flatnonzero(dead[i])
        h[i, idx, idx] = 1.0
    h = shrunk(h)
    order = np.argsort(-np.diagonal(h, axis1=-2, axis2=-1)[:, :k], axis=-1, kind="stable")
    perm = np.concatenate([order, np.full((b, 1), k)], axis=1)  # the bias stays last
    h = np.take_along_axis(np.take_along_axis(h, perm[:, :, None], axis=1), perm[:, None, :], axis=2)
    u = _inverse_cholesky(h)
    s = scales.astype(np.float64)[:, :, None]
    return [_round(np.take_along_axis(t.astype(np.float64), perm[:, None, :], axis=2), u, perm, s, qmin, qmax, bias_scale)
            for t in targets]


def _round(w: np.ndarray, u: np.ndarray, perm: np.ndarray, s: np.ndarray, qmin: int, qmax: int,
           bias_scale: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    k1 = w.shape[-1]
    k = k1 - 1
    quantized = np.zeros_like(w)
    for start in range(0, k1, BLOCK):
        end = min(start + BLOCK, k1)
        block = w[:, :, start:end].copy()
        errors = np.zeros_like(block)
        for j in range(end - start):
            col = start + j
            column = block[:, :, j]
            if col < k:
                q = np.clip(np.round(column / s[:, :, 0]), qmin, qmax) * s[:, :, 0]
            elif bias_scale is not None:
                q = np.round(column / bias_scale) * bias_scale
            else:
                q = column
            quantized[:, :, col] = q
            err = (column - q) / u[:, col, col][:, None]
            block[:, :, j:] -= err[:, :, None] * u[:, None, col, col:end]
            errors[:, :, j] = err
        if end < k1:
            w[:, :, end:] -= np.einsum("boj,bjl->bol", errors, u[:, start:end, end:])
    unperm = np.argsort(perm, axis=1)
    quantized = np.take_along_axis(quantized, unperm[:, None, :], axis=2)
    integers = np.round(quantized[:, :, :k] / s).astype(np.int64)
    return integers, quantized[:, :, k]


def least_squares_target(v: np.ndarray, qq: np.ndarray, fq: np.ndarray) -> np.ndarray:
    """The float parameters that best map the *quantized* inputs to the float outputs: ``v fq qq⁻¹``.

    Rounding towards this target (with ``qq`` as the Hessian) also compensates the error the layer's input
    already carries from earlier layers, not only its own rounding.
    """
    k = qq.shape[-1]
    mean_diag = np.maximum(np.mean(np.diagonal(qq, axis1=-2, axis2=-1), axis=-1), 1e-12)
    damped = qq + DAMP * mean_diag[:, None, None] * np.eye(k)
    # v fq qq⁻¹ = (qq⁻¹ fqᵀ vᵀ)ᵀ  (qq symmetric)
    return np.swapaxes(np.linalg.solve(damped, np.swapaxes(fq, -1, -2) @ np.swapaxes(v, -1, -2)), -1, -2)


#: candidate shrink factors of a weight-only layer's scales (1 = the quantizer's max/qmax)
CLIP_RATIOS = np.linspace(0.5, 1.0, 11)


def clipped_scales(v: np.ndarray, hessian: np.ndarray, scales: np.ndarray, qmin: int, qmax: int) -> np.ndarray:
    """Per output channel, the shrink of ``scales`` whose plain rounding has the least input-weighted error.

    Narrower scales clip the largest weights but round the rest finer; at 4 bits that usually wins. The error
    of each weight is weighted by its input's second moment (``diag(H)``).
    """
    w = v[:, :, :-1]
    d = np.diagonal(hessian, axis1=-2, axis2=-1)[:, None, :-1]
    best = np.full(scales.shape, np.inf)
    chosen = scales.astype(np.float64).copy()
    for ratio in CLIP_RATIOS:
        s = scales * ratio
        q = np.clip(np.round(w / s[:, :, None]), qmin, qmax) * s[:, :, None]
        err = np.sum(d * (w - q) ** 2, axis=-1)
        better = err < best
        best = np.where(better, err, best)
        chosen = np.where(better, s, chosen)
    return chosen
