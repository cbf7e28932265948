"""Weight-only modes on a model with more than 256 KB of weights, where ai-edge-quantizer writes its buffers after
the flatbuffer (offset/size): edgeq's rewrites (operator codes, metadata, ``--refine``) must keep them."""

from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.runtime import Model

pytest.importorskip("ai_edge_quantizer", reason='the [int4] extra (pip install "edgeq[int4]"); [dev] installs it')
pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """A 1024 → 640 → 4 MLP (~660 000 weights: ~330 KB at 4 bits), its calibration data and held-back inputs."""
    import keras

    root = tmp_path_factory.mktemp("wide")
    keras.utils.set_random_seed(0)
    inp = keras.Input((1024,), name="x")
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Dense(640, activation="relu")(inp)))
    model.save(root / "m.keras")
    rng = np.random.default_rng(0)
    np.save(root / "calib.npy", rng.normal(size=(40, 1024)).astype(np.float32))
    held = rng.normal(size=(8, 1024)).astype(np.float32)
    return root, held, model.predict(held, verbose=0)


@pytest.mark.parametrize("mode, bits", [("int4-weights", 4), ("int8-weights", 8)])
def test_large_weight_only_models_keep_their_weights(wide, mode, bits):
    root, held, reference = wide
    out = root / f"{mode}.tflite"
    edgeq.convert(root / "m.keras", root / "calib.npy", out, mode=mode)
    data = out.read_bytes()
    assert len(data) > 1024 * 640 * bits / 8  # the weights are in the file (it was ~46 KB when they were dropped)
    parse(data)  # the model check: no buffer outside the file
    model = Model(out, threads=1)
    got = np.concatenate([next(iter(model.predict(held[i : i + 1]).values())) for i in range(len(held))])
    scale = np.abs(reference).mean()
    assert np.abs(got - reference).mean() < (0.1 if bits == 4 else 0.02) * scale
