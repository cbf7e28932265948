"""Fixtures of the converter tests: the known-answer models of ``tests/known_models.py`` and their data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from known_models import EPS, clipping_eval, dense_model, distinct_integers


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
