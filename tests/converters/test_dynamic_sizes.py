"""A fully convolutional Keras model (input ``(None, None, 3)``) converts on samples of several sizes: each sample
is calibrated and verified at its own size, and the int8 model runs at sizes it was never given."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.runtime import Model

pytestmark = pytest.mark.tf

SIZES = [(16, 20), (20, 22), (24, 24), (28, 20)]


def test_samples_of_several_sizes_convert_and_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, None, 3), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Conv2D(2, 1)(x))
    model.save(tmp_path / "fcn.keras")
    (tmp_path / "varsizes.py").write_text(
        "import numpy as np\n"
        "def samples():\n"
        "    rng = np.random.default_rng(1)\n"
        f"    return [rng.random((*{SIZES}[i % {len(SIZES)}], 3)).astype('float32') for i in range(60)]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "fcn_int8.tflite"
    assert main(["convert", str(tmp_path / "fcn.keras"), "--data", "py:varsizes:samples", "--out", str(out),
                 "--json"]) == 0
    verification = json.loads(capsys.readouterr().out)["verification"]
    assert verification["samples"] >= 10 and verification["sqnr_db"] > 30

    # the int8 model at two sizes, one of them never seen, against Keras on the same input
    converted = Model(out)
    rng = np.random.default_rng(2)
    for h, w in ((24, 24), (40, 12)):
        x = rng.random((1, h, w, 3)).astype("float32")
        got = next(iter(converted.predict(x).values()))
        want = np.asarray(model(x))
        assert got.shape == want.shape == (1, h, w, 2)
        assert np.abs(got - want).max() < 0.05 * np.abs(want).max()
