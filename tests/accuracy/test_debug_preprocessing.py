"""``edgeq debug`` feeds a model what its own input layers expect, as ``edgeq convert`` does.

The model starts with ``Rescaling(1/255)``: it was trained on raw 0–255 pixels. Fed pixels / 255 (the old fixed
default), it sees near-black images, every layer's float-vs-int8 comparison is computed on them, and the ranking
and advice are about garbage. The first convolution's int8 range shows what was fed: calibrated on the right
pixels it spans what the Keras layer computes on them; on pixels / 255 it is about 255 times narrower.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.converters.debug import debug

pytestmark = pytest.mark.tf


def _conv_max(classifier) -> float:  # type: ignore[no-untyped-def]
    """The largest value the ``conv`` layer computes on the images fed as raw pixels (the right way)."""
    import keras

    model = keras.models.load_model(classifier.keras, compile=False)
    conv = keras.Model(model.inputs, model.get_layer("conv").output)
    return float(np.max(conv.predict(classifier.pixels, verbose=0)))


def _conv_range(layers) -> float:  # type: ignore[no-untyped-def]
    row = next(r for r in layers if r.op == "CONV_2D" and "conv" in (r.layer or "").split("+"))
    return row.range


def test_debug_feeds_raw_pixels_to_a_model_that_rescales_them(raw_pixel_classifier):
    report = debug(raw_pixel_classifier.keras, raw_pixel_classifier.images)
    right = _conv_max(raw_pixel_classifier)
    # calibrated on a part of the images: at most their maximum, and not far below it
    assert 0.5 * right <= _conv_range(report.layers) <= 1.01 * right, (_conv_range(report.layers), right)
    pp = report.preprocessing
    assert pp["decided_by"] == "model" and pp["normalize"] == "raw" and not pp["bgr"]
    assert "Rescaling(scale=0.003922" in pp["reason"] and "raw 0–255 pixels" in pp["reason"]
    assert report.to_dict()["preprocessing"] == pp


def test_cli_shows_the_decision_and_refuses_a_contradicting_normalize(raw_pixel_classifier, tmp_path, capsys,
                                                                      monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # the preprocessing line unwrapped
    args = ["debug", str(raw_pixel_classifier.keras), "--data", str(raw_pixel_classifier.images), "--samples", "30"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Preprocessing: --normalize raw (model): the model normalises its input itself (Rescaling(" in out

    csv = tmp_path / "layers.csv"
    assert main([*args, "--normalize", "0,1", "--csv", str(csv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("UsageError: --normalize 0,1 contradicts the model: the model normalises its input itself")
    assert "drop --normalize (edgeq uses raw) or add --force-normalize" in err and not csv.exists()

    assert main([*args, "--normalize", "0,1", "--force-normalize", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    pp = report["preprocessing"]
    assert pp["decided_by"] == "option" and pp["normalize"] == "0,1"
    assert "--force-normalize over the model's own: the model normalises its input itself" in pp["reason"]
    forced = next(r for r in report["layers"] if r["op"] == "CONV_2D" and "conv" in (r["layer"] or "").split("+"))
    assert forced["range"] < 0.02 * _conv_max(raw_pixel_classifier)  # pixels / 255 / 255 really were fed


def test_the_printed_command_repeats_an_explicit_normalize_only():
    """Pasted as printed, the convert command feeds what debug fed: a forced --normalize stays forced (else convert
    refuses it), and without --normalize convert decides from the model as debug did."""
    from edgeq._commands.debug import convert_command
    from edgeq.cli import parse_args

    forced = parse_args(["debug", "m.keras", "--data", "d/", "--normalize", "0,1", "--force-normalize", "--bgr"])
    assert convert_command(forced, ["conv"]).startswith(
        "edgeq convert m.keras --data d/ --normalize 0,1 --force-normalize --bgr --keep-float conv --out m_int8")
    decided = convert_command(parse_args(["debug", "m.keras", "--data", "d/"]), ["conv"])
    assert decided.startswith("edgeq convert m.keras --data d/ --keep-float conv --out m_int8")
