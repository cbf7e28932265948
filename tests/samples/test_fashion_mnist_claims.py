"""The bundled sample scores what the README says (within ``README_TOLERANCE_POINTS``), not just "well".

Labels come from the eval folders' names (``3_dress`` is class 3). The float model's inputs are made here with
Pillow and numpy (grayscale 28x28 PNGs, divided by 255), not with edgeq's preprocessing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support import README_TOLERANCE_POINTS, SAMPLE_EVAL, SAMPLE_MODEL, readme_sample_accuracy

pytestmark = pytest.mark.skipif(not SAMPLE_MODEL.exists(), reason=f"the bundled sample {SAMPLE_MODEL} is not built yet")


def _labelled() -> tuple[list[Path], np.ndarray]:
    files = sorted(SAMPLE_EVAL.rglob("*.png"))
    assert len(files) == 1000  # the README's figures are over 1000 images
    return files, np.array([int(p.parent.name.split("_")[0]) for p in files])


def test_readme_figures_are_read():
    claims = readme_sample_accuracy()
    assert 0.5 < claims["float"] <= 1 and 0.5 < claims["int8"] <= 1


def test_int8_model_scores_the_readme_accuracy():
    from edgeq.runtime import Model

    files, labels = _labelled()
    model = Model(SAMPLE_MODEL)
    (output,) = model.predict(files).values()
    accuracy = float(np.mean(output.argmax(axis=1) == labels))
    claimed = readme_sample_accuracy()["int8"]
    assert abs(accuracy - claimed) * 100 <= README_TOLERANCE_POINTS, (
        f"int8 top-1 {accuracy:.2%} on the 1000 eval images; README.md says {claimed:.2%}")


@pytest.mark.tf
def test_keras_model_scores_the_readme_accuracy():
    import keras
    from PIL import Image

    files, labels = _labelled()
    x = np.stack([np.asarray(Image.open(p).convert("L"), np.float32) / 255 for p in files])[..., None]
    model = keras.models.load_model(SAMPLE_MODEL.parent / "model.keras", compile=False)
    accuracy = float(np.mean(np.asarray(model.predict(x, verbose=0)).argmax(axis=1) == labels))
    claimed = readme_sample_accuracy()["float"]
    assert abs(accuracy - claimed) * 100 <= README_TOLERANCE_POINTS, (
        f"Keras top-1 {accuracy:.2%} on the 1000 eval images; README.md says {claimed:.2%}")
