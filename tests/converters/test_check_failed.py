"""A check the user asked for that fails: exit 1, ``CheckFailed: …`` on stderr, and the model written anyway.

The models (``tests/known_models.py``) fall below the thresholds by construction: the float16 ``tie`` model
agrees with Keras on exactly 15 of 20 samples, and the int8 ``clip`` model scores exactly 50 % top-1 (and 50 %
agreement) on its eval data, because inputs out of the calibrated range clip to the same int8 value, which
no layer kept in float can undo. Each check also passes exactly at the threshold, so a wrong comparison fails.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.metadata import read_metadata
from edgeq.runtime import Model

pytestmark = pytest.mark.tf


def _convert(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    code = main(["convert", *args, "--json"])
    captured = capsys.readouterr()
    assert captured.out, f"exit {code}, no JSON; stderr: {captured.err}"
    return code, json.loads(captured.out), captured.err


def test_min_agreement_below_exits_1_and_keeps_the_file(known, tmp_path, capsys):
    out = tmp_path / "tie.tflite"
    code, report, err = _convert(capsys, str(known["tie"]), "--mode", "float16", "--data", str(known["x2"]),
                                 "--samples", "20", "--min-agreement", "0.8", "--out", str(out))
    assert code == 1
    assert f"CheckFailed: top-1 agreement 0.750 is below --min-agreement 0.8; {out} was written anyway" in err
    assert report["verification"]["agreement"] == 0.75  # the JSON report is still printed
    assert out.exists() and read_metadata(out).verification["agreement"] == 0.75
    x = np.load(known["x2"])[:1]
    assert [o.shape for o in Model(out).predict(x).values()] == [(1, 2)]  # a complete, loadable model


def test_min_agreement_at_the_threshold_passes(known, tmp_path, capsys):
    out = tmp_path / "tie.tflite"
    code, report, err = _convert(capsys, str(known["tie"]), "--mode", "float16", "--data", str(known["x2"]),
                                 "--samples", "20", "--min-agreement", "0.75", "--out", str(out))
    assert code == 0 and "CheckFailed" not in err and report["verification"]["agreement"] == 0.75


def test_max_drop_below_exits_1_and_keeps_the_best_model(known, tmp_path, capsys):
    out = tmp_path / "clip.tflite"
    code, report, err = _convert(capsys, str(known["clip"]), "--data", str(known["calib"]), "--max-drop", "10",
                                 "--eval-data", str(known["eval"]), "--out", str(out))
    assert code == 1
    assert "CheckFailed: accuracy budget not met: impossible budget: even the float body misses it" in err
    assert f"{out} was written with that best result" in err
    budget = read_metadata(out).quant.accuracy_budget
    assert budget["metric"] == "top1" and budget["met"] is False
    assert budget["reference"] == 1.0 and budget["achieved"] == 0.5 and budget["drop"] == pytest.approx(50)
    assert report["fallback"]["budget"] == budget
    steps = report["fallback"]["steps"]
    assert steps[-1]["label"] == "float body" and all(s["accuracy"] == 0.5 for s in steps)


def test_max_drop_at_the_threshold_passes(known, tmp_path, capsys):
    out = tmp_path / "clip.tflite"
    code, report, err = _convert(capsys, str(known["clip"]), "--data", str(known["calib"]), "--max-drop", "50",
                                 "--eval-data", str(known["eval"]), "--out", str(out))
    assert code == 0 and "CheckFailed" not in err
    assert report["fallback"]["budget"]["met"] is True and report["fallback"]["budget"]["drop"] == pytest.approx(50)


def test_max_drop_agreement_below_exits_1_and_keeps_the_best_model(known, tmp_path, capsys):
    out = tmp_path / "clip.tflite"
    code, report, err = _convert(capsys, str(known["clip"]), "--data", str(known["calib"]), "--max-drop-agreement",
                                 "49", "--eval-data", str(known["eval_x"]), "--out", str(out))
    assert code == 1
    assert "CheckFailed: accuracy budget not met: impossible budget" in err and str(out) in err
    budget = read_metadata(out).quant.accuracy_budget
    assert budget["metric"] == "agreement" and budget["met"] is False
    assert budget["achieved"] == 0.5 and budget["drop"] == pytest.approx(50) and budget["samples"] == 40
