"""Keras models whose converted form is known exactly, so verification figures have known answers.

Each is one ``Dense`` layer (no bias) on a vector input ``x``:

* ``identity``: ``y = x @ I``. Converted to float32 and fed small integers, TFLite computes the same floats.
* ``scaled``: ``y = x @ ((1 + EPS) I)``. float16 has 10 fraction bits, so ``1 + 2**-12`` is stored as exactly
  1.0: the float16 model computes ``y = x``, an error of ``|x| * EPS`` on every value and an SQNR of
  ``20 log10((1 + EPS) / EPS)`` whatever the data.
* ``tie``: ``y = x @ diag(1, 1 + EPS)``. Where ``x0 == x1 > 0`` the float model picks class 1 and the float16
  model sees a tie (``argmax`` takes class 0); elsewhere both pick the larger input.
* ``clip``: ``y = x @ I`` on 4 inputs, for int8: calibrated on ``[0, 1)``, inputs above 1 clip to the same
  int8 value, so two out-of-range inputs tie whatever the body computes (even a float body).

``tests/conftest.py`` registers the ``known`` fixture for every test folder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

EPS = 2.0**-12
SCALED_SQNR_DB = 20 * math.log10((1 + EPS) / EPS)  # 72.2486 dB


def dense_model(path: Path, kernel: np.ndarray) -> Path:
    """Save ``y = x @ kernel`` (no bias) as a Keras 3 file."""
    import keras

    inp = keras.Input((kernel.shape[0],), name="x")
    model = keras.Model(inp, keras.layers.Dense(kernel.shape[1], name="scores")(inp))
    model.get_layer("scores").set_weights([kernel.astype(np.float32), np.zeros(kernel.shape[1], np.float32)])
    model.save(path)
    return path


def distinct_integers(n: int, width: int, seed: int) -> np.ndarray:
    """``n`` rows of ``width`` distinct integers in [1, 40] as float32: no ties, exact in float16."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(40)[:width] + 1 for _ in range(n)]).astype(np.float32)


def clipping_eval(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` (even) samples with two inputs in [2, 4) (out of the calibrated range) and two in [0, 0.5).

    The label is the larger input. In half the samples it comes first (an int8 tie still picks it), in the
    other half second (the tie picks the wrong one): int8 top-1 is exactly 50 % against 100 % for float.
    """
    rng = np.random.default_rng(seed)
    xs = rng.random((n, 4)).astype(np.float32) * 0.5
    ys = np.empty(n, dtype=np.int64)
    for i in range(n):
        a, b = sorted(rng.choice(4, 2, replace=False))
        low, high = sorted(rng.uniform(2, 4, 2))
        first_wins = i % 2 == 0
        xs[i, a], xs[i, b] = (high, low) if first_wins else (low, high)
        ys[i] = a if first_wins else b
    return xs, ys


@pytest.fixture(scope="session")
def known(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Models ``identity``/``scaled``/``tie``/``clip`` and data ``x4``, ``x2`` (5 of 20 tied), ``calib``, ``eval``."""
    root = tmp_path_factory.mktemp("known-models")
    np.save(root / "x4.npy", distinct_integers(20, 4, seed=0))
    pairs = distinct_integers(20, 2, seed=1)
    pairs[:5, 1] = pairs[:5, 0]  # 5 of 20 tied: 15 agree
    np.save(root / "x2.npy", pairs)
    np.save(root / "calib.npy", np.random.default_rng(2).random((40, 4)).astype(np.float32))
    xs, ys = clipping_eval(40, seed=3)
    np.savez(root / "eval.npz", x=xs, y=ys)
    np.save(root / "eval_x.npy", xs)
    return {
        "x4": root / "x4.npy", "x2": root / "x2.npy", "calib": root / "calib.npy", "eval": root / "eval.npz",
        "eval_x": root / "eval_x.npy",
        "identity": dense_model(root / "identity.keras", np.eye(4)),
        "scaled": dense_model(root / "scaled.keras", (1 + EPS) * np.eye(4)),
        "tie": dense_model(root / "tie.keras", np.diag([1.0, 1 + EPS])),
        "clip": dense_model(root / "clip.keras", np.eye(4)),
    }
