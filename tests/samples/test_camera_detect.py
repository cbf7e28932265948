"""samples/camera_detect.py on real videos with tiny models of the TFLite SSD output signature."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.metadata import Preprocess
from edgeq.runtime import Model
from support import REPO, SAMPLE_MODEL

pytestmark = pytest.mark.tf  # the detection models are built with TensorFlow


def _camera(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, dict, str]:
    code = main(["camera", *map(str, args), "--headless", "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else {}, err


def test_boxes_above_the_threshold_are_drawn_and_counted(tmp_path, capsys, tiny_models, detect_clip, read_video):
    assert Model(tiny_models["detect"]).file.op_counts()["TFLite_Detection_PostProcess"] == 1
    out = tmp_path / "boxes.mp4"
    labels = tmp_path / "labels.txt"
    labels.write_text("bright\nright\nbottom\n")
    code, summary, stderr = _camera(capsys, tiny_models["detect"], "--source", detect_clip, "--output", out,
                                    "--labels", labels, "--threshold", "0.5")
    assert code == 0, stderr
    assert summary["app"] == "camera_detect" and summary["frames"] == 30 and summary["dropped"] == 0
    assert summary["seen"] == {"bright": 30}  # only the bright quadrant scores above 0.5 (200/255)
    assert summary["notes"] == []

    written, source = read_video(out), read_video(detect_clip)
    assert len(written) == 30
    changed = np.abs(written[10].astype(int) - source[10].astype(int)).max(axis=2) > 60
    # the box of the top-left quadrant (frame 128x96: x 0..64, y 0..48): its right and bottom edges
    assert changed[20:40, 62:67].any(axis=1).all() and changed[46:51, 20:40].any(axis=0).all()
    assert changed[60:80, 80:120].mean() < 0.01  # the dark bottom-right quadrant is untouched


def test_a_low_threshold_keeps_every_box_and_unlabelled_classes_show_as_indices(capsys, tiny_models, detect_clip):
    code, summary, stderr = _camera(capsys, tiny_models["detect"], "--source", detect_clip, "--threshold", "0.05",
                                    "--max-frames", "6")
    assert code == 0, stderr
    assert summary["frames"] == 6 and summary["seen"] == {"0": 6, "1": 6, "2": 6}  # dark quadrants score 20/255
    assert summary["notes"] == ["the model has no labels: showing class indices (pass --labels FILE)"]
    code, summary, _ = _camera(capsys, tiny_models["detect"], "--source", detect_clip, "--threshold", "0.05",
                               "--max-frames", "6", "--max-detections", "2")
    assert sum(summary["seen"].values()) == 12 and summary["seen"]["0"] == 6  # the best 2 per frame


def test_scores_listed_before_classes_under_neutral_names_are_recognised(capsys, tiny_models, detect_clip):
    code, summary, stderr = _camera(capsys, tiny_models["detect_swapped"], "--source", detect_clip, "--max-frames", "5")
    assert code == 0, stderr
    assert summary["seen"] == {"0": 5}


def test_a_classifier_is_refused_by_the_detect_app_saying_what_it_expects(tiny_models, detect_clip):
    proc = subprocess.run(
        [sys.executable, str(REPO / "samples" / "camera_detect.py"), str(SAMPLE_MODEL), "--source", str(detect_clip),
         "--headless"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("ModelError: ") and "output_0 [1, 10]" in line
    assert "camera_detect expects the 4 TFLite SSD post-processed outputs: boxes [1, N, 4]" in line


def test_a_model_that_fits_neither_app_is_refused_by_the_command_naming_both_signatures(capsys, tiny_models, detect_clip):
    code = main(["camera", str(tiny_models["feature_map"]), "--source", str(detect_clip), "--headless"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("ModelError: ") and "has outputs features [1, 4, 4, 2]" in err
    assert "expected one output of shape [1, K] (K >= 2 class scores) (camera_classify)" in err
    assert "boxes [1, N, 4], classes [1, N], scores [1, N], count [1] (camera_detect)" in err


@pytest.mark.parametrize(
    ("resize", "box", "expected"),
    [
        ("stretch", (0.25, 0.5, 0.75, 1.0), (100, 25, 199, 75)),
        # 200x100 frame in a 64x64 input: scaled by 0.32 to 64x32, black bars of 16 rows above and below
        ("pad", (0.25, 0.0, 0.75, 1.0), (0, 0, 199, 99)),
        # the input saw the centre 100x100 of the frame
        ("crop", (0.0, 0.0, 1.0, 0.5), (50, 0, 100, 99)),
    ],
)
def test_boxes_map_back_to_the_frame_through_the_models_resize(tiny_models, resize, box, expected):
    from edgeq._commands.camera import _load_sample

    detect = _load_sample("camera_detect")
    model = Model(tiny_models["detect"], preprocess=Preprocess(resize=resize))
    assert detect.frame_mapper(model, 200, 100)(np.array(box)) == expected
