"""samples/camera_classify.py, through ``edgeq camera`` and as a script, headless on real videos."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.runtime.report import compare, load_report
from support import REPO, SAMPLE_MODEL, error_line, run_cli


def _camera(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["camera", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_headless_run_writes_the_annotated_video_a_summary_and_a_profile(tmp_path, capsys, fashion_clip, read_video):
    clip, truth = fashion_clip
    out, report = tmp_path / "out.avi", tmp_path / "cam.json"
    code, stdout, stderr = _camera(capsys, SAMPLE_MODEL, "--source", clip, "--headless", "--output", out,
                                   "--profile", report, "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["app"] == "camera_classify" and summary["model"] == "model_int8.tflite"
    assert (summary["frames"], summary["dropped"]) == (len(truth), 0)
    assert 0 < summary["inference_mean_ms"] <= summary["frame_mean_ms"] and summary["inference_p90_ms"] > 0
    assert summary["fps"] > 0 and summary["output"] == str(out)
    # the top label of each frame, counted per label: most frames are classified as what they show
    seen, expected = Counter(summary["seen"]), Counter(truth)
    assert sum(seen.values()) == len(truth)
    assert sum((seen & expected).values()) >= 0.8 * len(truth), (seen, expected)

    written, source = read_video(out), read_video(clip)
    assert len(written) == len(source) == len(truth)
    for before, after in zip(source, written):
        changed = np.abs(before.astype(int) - after.astype(int)).max(axis=2) > 50
        assert changed[:40, :60].mean() > 0.08  # the labels (top-left) changed the frame
        assert changed[-14:, :60].mean() > 0.08  # the status line (bottom-left) too
        assert changed[50:90, 70:].mean() < 0.01  # elsewhere only codec noise (OpenCV 4: labels end at row 47)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left

    loaded = load_report(report)  # what edgeq compare reads
    result = loaded.results[0]
    assert loaded.model.name == "model_int8.tflite" and loaded.model.mode == "int8"
    assert len(result.timings_ms) == len(truth) - 1 and result.threads == summary["threads"]
    assert result.latency.mean_ms == pytest.approx(np.mean(result.timings_ms), abs=1e-3)
    assert result.latency.mean_ms == pytest.approx(summary["inference_mean_ms"], abs=1e-3)  # the same frames
    assert compare([report]).entries[0].metrics["p50_ms"] == result.latency.p50_ms
    code, stdout, stderr = _camera_compare(capsys, report)
    assert code == 0, stderr


def _camera_compare(capsys: pytest.CaptureFixture, report: Path) -> tuple[int, str, str]:
    code = main(["compare", str(report), "--json"])
    out, err = capsys.readouterr()
    assert json.loads(out)["entries"][0]["model"] == "model_int8.tflite"
    return code, out, err


def test_a_report_needs_timings():
    from edgeq.errors import DataError
    from edgeq.runtime import Model
    from edgeq.runtime.report import report_from_timings

    with pytest.raises(DataError, match="at least one finite timing"):
        report_from_timings(Model(SAMPLE_MODEL), [], first_ms=1.0)


def test_script_writes_frames_to_a_folder_and_prints_the_summary(tmp_path, fashion_clip):
    clip, _ = fashion_clip
    frames = tmp_path / "frames"
    proc = subprocess.run(
        [sys.executable, str(REPO / "samples" / "camera_classify.py"), str(SAMPLE_MODEL), "--source", str(clip),
         "--headless", "--max-frames", "5", "--output", str(frames), "--top", "2"],
        capture_output=True, text=True, timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")  # LiteRT's "INFO: Created … XNNPACK delegate" is kept out
    assert sorted(p.name for p in frames.iterdir()) == [f"frame_{i:06d}.jpg" for i in range(5)]
    assert "camera_classify: model_int8.tflite on fashion.avi" in proc.stdout
    assert "5 processed" in proc.stdout and f"output     {frames}" in proc.stdout


@pytest.mark.tf
def test_a_model_without_labels_shows_class_indices(capsys, tiny_models, fashion_clip):
    code, stdout, stderr = _camera(capsys, tiny_models["unlabelled"], "--source", fashion_clip[0], "--headless",
                                   "--max-frames", "4", "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert set(summary["seen"]) <= {"0", "1", "2", "3"} and sum(summary["seen"].values()) == 4
    assert summary["notes"] == ["the model has no labels: showing class indices (pass --labels FILE)"]


@pytest.mark.tf
def test_a_detection_model_is_refused_by_the_classify_app_saying_what_it_expects(tiny_models, fashion_clip):
    proc = subprocess.run(
        [sys.executable, str(REPO / "samples" / "camera_classify.py"), str(tiny_models["detect"]),
         "--source", str(fashion_clip[0]), "--headless"], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1  # no LiteRT "INFO: Created …" line before it
    line = proc.stderr.strip()
    assert line.startswith("ModelError: ") and "detection_boxes [1, 3, 4]" in line
    assert "camera_classify expects one output of shape [1, K]" in line and "camera_detect.py" in line


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("99", "DeviceError: cannot open camera 99; expected a camera at /dev/video99"),
        ("missing.mp4", "DataError: source not found: missing.mp4; expected a camera index (0), picamera"),
        ("bad.avi", "DataError: cannot decode video bad.avi"),
        ("picamera", "DependencyMissing: --source picamera needs picamera2"),
    ],
)
def test_bad_sources_fail_with_one_line(tmp_path, monkeypatch, capsys, source, expected):
    pytest.importorskip("cv2")
    if source == "picamera" and sys.modules.get("picamera2") is not None:
        pytest.skip("picamera2 is installed here")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    code, stdout, stderr = _camera(capsys, SAMPLE_MODEL, "--source", source, "--headless")
    assert code == 2 and stdout == ""
    assert stderr.strip().startswith(expected), stderr
    assert len(stderr.strip().splitlines()) == 1


def test_existing_output_is_refused_before_the_run(tmp_path, capsys, fashion_clip):
    out = tmp_path / "out.avi"
    out.write_bytes(b"keep me")
    code, _, stderr = _camera(capsys, SAMPLE_MODEL, "--source", fashion_clip[0], "--headless", "--output", out)
    assert code == 2 and "UsageError: output" in stderr and "exists; pass --force" in stderr
    assert out.read_bytes() == b"keep me"


def test_a_window_without_a_display_says_to_run_headless(monkeypatch, capsys, fashion_clip):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code, _, stderr = _camera(capsys, SAMPLE_MODEL, "--source", fashion_clip[0])
    assert code == 2 and stderr.startswith("UsageError: no display to open a window on") and "--headless" in stderr


def test_without_opencv_the_command_names_the_extra(fashion_clip):
    code = ("import sys\nsys.modules['cv2'] = None\nfrom edgeq.cli import main\n"
            f"sys.exit(main(['camera', {str(SAMPLE_MODEL)!r}, '--source', {str(fashion_clip[0])!r}, '--headless']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert error_line(proc).startswith("DependencyMissing: cv2 is not installed") and 'pip install "edgeq[camera]"' in proc.stderr


def test_the_command_runs_without_tensorflow_and_prints_the_summary(tmp_path, fashion_clip):
    report = tmp_path / "cam.json"
    proc = run_cli("camera", str(SAMPLE_MODEL), "--source", str(fashion_clip[0]), "--headless", "--max-frames", "3",
                   "--profile", str(report), block_tf=True)  # exits 97 if TensorFlow got imported
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # LiteRT's and OpenCV's own console output is kept out
    assert "frames     3 processed, 0 dropped" in proc.stdout and f"profile    {report}" in proc.stdout
    assert load_report(report).results[0].latency.runs == 2


def test_app_help_comes_through_the_command():
    proc = run_cli("camera", str(SAMPLE_MODEL), "--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: edgeq camera") and "--top K" in proc.stdout and "--source SOURCE" in proc.stdout
