"""Real Keras models from the registry convert, or fail with the truthful one-line reason (tests/zoo/corpus.py).

* inaSpeechSegmenter 0.6.8: three Keras 2.3 ``.hdf5`` CNNs that Keras 3 loads with an extra ``None`` input axis;
  edgeq takes the batch axis from the file's ``batch_input_shape`` and says so.
* basic-pitch 0.4.0: a TF 2 SavedModel written by an older Keras that TF 2.21 cannot restore as objects
  (``add_slot``); edgeq reads its serving signature only. Full int8 leaves NEG/SQUARE without integer kernels:
  the error names them (and the RESHAPEs that are float only because their input is); ``--keep-float`` converts.

Every converted model is compared with the float model per output, on held-back samples (tests/zoo/audio_data.py).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import edgeq
from edgeq.errors import ConversionError
from edgeq.runtime import Model

from zoo.audio_data import pitch_windows, segmenter_patches

pytestmark = [pytest.mark.zoo, pytest.mark.tf, pytest.mark.slow]

INA = {"keras_speech_music_noise_cnn.hdf5": (21, 3), "keras_speech_music_cnn.hdf5": (21, 2),
       "keras_male_female_cnn.hdf5": (24, 2)}


@pytest.mark.parametrize("name", sorted(INA))
def test_ina_segmenter_h5_converts_to_int8_on_the_right_batch_axis(name, zoo_files, tmp_path):
    [path] = zoo_files("inaSpeechSegmenter", f"inaSpeechSegmenter/{name}")
    mels, classes = INA[name]
    patches = segmenter_patches(60, mels, seed=len(name))
    np.save(tmp_path / "patches.npy", patches)  # N patches: N samples, not one
    out = tmp_path / "m.tflite"
    result = edgeq.convert(path, tmp_path / "patches.npy", out, samples=40)
    assert any("axis 0 as the batch" in w and f"(68, {mels})" in w for w in result.warnings), result.warnings
    v = result.verification
    assert v.held_out and v.samples == 20 and result.metadata.quant.calibration["samples"] == 40
    [stats] = v.outputs
    assert stats.name == "output_0" and stats.agreement is not None and stats.agreement >= 0.9
    assert stats.sqnr_db > 20, stats
    model = Model(out)
    assert tuple(model.inputs[0].shape_signature) == (-1, 68, mels)
    scores = model.predict(patches[:7])["output_0"]  # the runtime takes the same batch
    assert scores.shape == (7, classes) and np.allclose(scores.sum(axis=1), 1, atol=0.05)


def test_basic_pitch_saved_model_int8_dynamic_and_keep_float(zoo_files, tmp_path):
    [pb] = zoo_files("basic-pitch", "basic_pitch/saved_models/icassp_2022/nmp/saved_model.pb")
    np.save(tmp_path / "audio.npy", pitch_windows(16, seed=3))
    data = tmp_path / "audio.npy"
    with pytest.raises(ConversionError) as failed:
        edgeq.convert(pb.parent, data, tmp_path / "int8.tflite", samples=12)
    message = str(failed.value)
    assert "NEG×9, SQUARE×1 (no integer kernel" in message
    assert "RESHAPE×9 (float only because their input is)" in message and "RESHAPE×9 (no integer" not in message
    assert not (tmp_path / "int8.tflite").exists()

    dynamic = edgeq.convert(pb.parent, data, tmp_path / "dyn.tflite", mode="dynamic", samples=12)
    assert any("serving signature only" in w for w in dynamic.warnings)
    assert [o.name for o in dynamic.verification.outputs] == ["contour", "note", "onset"]
    assert all(o.sqnr_db > 10 for o in dynamic.verification.outputs), dynamic.verification.outputs

    kept = edgeq.convert(pb.parent, data, tmp_path / "kf.tflite", samples=12, keep_float="NEG,SQUARE,RESHAPE")
    v = kept.verification
    assert v.samples + v.failed == 4 and [o.name for o in v.outputs] == ["contour", "note", "onset"]
    assert all(math.isfinite(o.sqnr_db) and o.sqnr_db > 0 for o in v.outputs), v.outputs
    rows = {row.label: row for row in kept.fallback.steps}
    assert set(rows) >= {"full int8", "keep NEG, SQUARE, RESHAPE"}
    # candidates are scored on the same 4 held-back windows; one that crashes on some is scored, not fatal
    assert all(row.scored == 4 for row in rows.values())
    chosen = kept.fallback.steps[kept.fallback.chosen]
    assert chosen.failed == v.failed  # the written model fails where its row said it would
    for row in rows.values():
        assert row.failure_text == (f"fails on {row.failed} of 4 inputs" if row.failed else "")
