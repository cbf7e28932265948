"""The numpy pieces of ``--refine`` on synthetic layers: GPTQ rounding and the per-channel scale search.

Each is scored on inputs drawn afresh from the same distribution (not the rows its moments came from), by the
layer's output error against the float weights, and compared with what the converter would have stored.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.converters.refine._gptq import CLIP_RATIOS, clipped_scales, gptq


def _layer(seed: int, k: int = 48, out: int = 12, rows: int = 4000):
    """Heavy-tailed weights ``[1, out, k+1]`` (bias last), correlated inputs, their moments and fresh inputs."""
    rng = np.random.default_rng(seed)
    w = rng.laplace(size=(out, k)) * rng.uniform(0.2, 2.0, size=(out, 1))
    v = np.concatenate([w, rng.normal(size=(out, 1))], axis=1)[None]
    mix = rng.normal(size=(k, k)) / np.sqrt(k) + np.eye(k)

    def inputs(n: int) -> np.ndarray:
        return np.concatenate([np.maximum(rng.normal(size=(n, k)) @ mix, 0), np.ones((n, 1))], axis=1)

    fit = inputs(rows)
    return v, (fit.T @ fit / rows)[None], inputs(rows)


def _error(v: np.ndarray, integers: np.ndarray, bias: np.ndarray, scales: np.ndarray, x: np.ndarray) -> float:
    u = np.concatenate([integers * scales[:, :, None], bias[:, :, None]], axis=2)
    return float(np.mean((x @ (u - v)[0].T) ** 2))


def _converter_scales(v: np.ndarray, qmax: int) -> np.ndarray:
    return np.max(np.abs(v[:, :, :-1]), axis=-1) / qmax


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gptq_rounding_beats_plain_rounding_on_fresh_inputs(seed):
    v, h, fresh = _layer(seed)
    scales = _converter_scales(v, 7)
    (integers, bias), = gptq([v], h, scales, -8, 7, None)
    assert integers.min() >= -8 and integers.max() <= 7
    plain = np.clip(np.round(v[:, :, :-1] / scales[:, :, None]), -8, 7)
    assert _error(v, integers, bias, scales, fresh) < 0.75 * _error(v, plain, v[:, :, -1], scales, fresh)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clipped_scales_lower_the_int4_output_error_on_fresh_inputs(seed):
    v, h, fresh = _layer(seed)
    scales = _converter_scales(v, 7)
    chosen = clipped_scales(v, h, scales, -8, 7)
    ratios = chosen / scales
    assert np.all(ratios >= CLIP_RATIOS.min() - 1e-9) and np.all(ratios <= 1 + 1e-9)
    assert np.any(ratios < 1)  # heavy tails at 4 bits: some channel is better clipped
    (q_plain, b_plain), = gptq([v], h, scales, -8, 7, None)
    (q_clip, b_clip), = gptq([v], h, chosen, -8, 7, None)
    assert _error(v, q_clip, b_clip, chosen, fresh) < 0.9 * _error(v, q_plain, b_plain, scales, fresh)


def test_clipped_scales_keep_channels_where_clipping_only_hurts():
    """Weights spread evenly over the grid (e.g. already 4-bit values): no shrink can help, none is chosen."""
    rng = np.random.default_rng(0)
    w = rng.integers(-7, 8, size=(6, 32)).astype(np.float64)
    w[:, 0] = 7  # every channel reaches the top of the grid
    v = np.concatenate([w * 0.1, np.zeros((6, 1))], axis=1)[None]
    x = np.concatenate([rng.normal(size=(2000, 32)), np.ones((2000, 1))], axis=1)
    scales = _converter_scales(v, 7)
    np.testing.assert_allclose(clipped_scales(v, (x.T @ x / 2000)[None], scales, -8, 7), scales)


def test_only_hessians_of_fewer_rows_than_inputs_are_rank_deficient():
    from edgeq.converters.refine._gptq import _rank_deficient

    _, full, _ = _layer(0, k=48, rows=4000)
    _, wide, _ = _layer(0, k=300, rows=100)
    assert _rank_deficient(np.concatenate([full, full])).tolist() == [False, False]
    assert _rank_deficient(wide).tolist() == [True]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gptq_on_few_rows_of_a_wide_layer_gains_from_shrinking(seed, monkeypatch):
    """With fewer rows than weights, the raw Hessian lets GPTQ fit the rows' noise; fresh inputs show it."""
    from edgeq.converters.refine import _gptq

    v, h, fresh = _layer(seed, k=300, out=8, rows=100)
    scales = _converter_scales(v, 7)
    (q_shrunk, b_shrunk), = gptq([v], h, scales, -8, 7, None)
    monkeypatch.setattr(_gptq, "SHRINK", 0.0)
    (q_raw, b_raw), = gptq([v], h, scales, -8, 7, None)
    assert _error(v, q_shrunk, b_shrunk, scales, fresh) < 0.75 * _error(v, q_raw, b_raw, scales, fresh)
