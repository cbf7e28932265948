"""edgeq.runtime.capture: the threaded latest-frame reader, sources and the all-or-nothing frame writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from edgeq.errors import DataError, UsageError
from edgeq.runtime import Model, load_image
from edgeq.runtime.capture import FrameWriter, LatestFrameReader, open_source
from support import REPO, SAMPLE_MODEL

pytest.importorskip("cv2")

WIDTH, HEIGHT = 320, 240
FRAME_BYTES = WIDTH * HEIGHT * 3


def _numbered_frames(count: int) -> list[np.ndarray]:
    """Frames whose brightness encodes their index (so the order can be checked after decoding)."""
    return [np.full((HEIGHT, WIDTH, 3), (i * 7) % 200 + 20, np.uint8) for i in range(count)]


def _drain(reader: LatestFrameReader, model: Model, delay: float) -> tuple[list[int], int]:
    """Consume every frame with a slow model: classify, then sleep; returns the indices seen and the traced peak."""
    taken = []
    while (frame := reader.get()) is not None:
        model.classify(load_image(frame.image))
        time.sleep(delay)
        taken.append(frame.index)
    return taken, tracemalloc.get_traced_memory()[1]


def test_a_slow_model_makes_a_live_reader_drop_frames_and_memory_stays_flat(tmp_path, write_video):
    video = write_video(tmp_path / "long.avi", _numbered_frames(300), fps=30)
    model = Model(SAMPLE_MODEL)
    tracemalloc.start()
    try:
        reader = LatestFrameReader(open_source(video), drop=True)  # as for a camera
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with reader:
            taken, peak = _drain(reader, model, delay=0.01)  # ~10 ms a frame; decoding takes ~1 ms
    finally:
        tracemalloc.stop()
    assert reader.captured == 300
    assert reader.dropped > 100 and len(taken) + reader.dropped == 300
    assert taken == sorted(taken) and taken[-1] == 299  # always the newest frame, the last one included
    # queued without bound, ~300 frames (69 MB) would be held; at most the pending frame and the one in use are
    assert peak - baseline < 6 * FRAME_BYTES, f"{(peak - baseline) / FRAME_BYTES:.1f} frames held"


def test_a_file_reader_waits_for_the_model_and_loses_no_frame(tmp_path, write_video):
    video = write_video(tmp_path / "short.avi", _numbered_frames(60))
    model = Model(SAMPLE_MODEL)
    tracemalloc.start()
    try:
        reader = LatestFrameReader(open_source(video))
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        with reader:
            taken, peak = _drain(reader, model, delay=0.005)
    finally:
        tracemalloc.stop()
    assert not reader.drop and taken == list(range(60)) and reader.dropped == 0
    assert peak - baseline < 6 * FRAME_BYTES


def test_realtime_reading_paces_a_file_at_its_frame_rate(tmp_path, write_video):
    video = write_video(tmp_path / "paced.avi", _numbered_frames(11), fps=50)
    started = time.perf_counter()
    with LatestFrameReader(open_source(video), realtime=True) as reader:
        taken = []
        while (frame := reader.get()) is not None:
            taken.append(frame.index)
    assert time.perf_counter() - started >= 0.19  # 10 intervals of 20 ms
    assert reader.drop and taken[-1] == 10 and len(taken) + reader.dropped == 11


def test_sources_give_rgb_frames_and_refuse_what_they_cannot_read(tmp_path, write_video):
    from PIL import Image

    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    frame[..., 0] = 220  # pure red, RGB
    with open_source(write_video(tmp_path / "red.avi", [frame])) as source:
        first = source.read()
        assert first.shape == (HEIGHT, WIDTH, 3) and first[..., 0].mean() > 200 and first[..., 2].mean() < 20
        assert source.read() is None and source.fps == pytest.approx(10) and not source.live
    folder = tmp_path / "images"
    folder.mkdir()
    for i, size in enumerate([(40, 30), (20, 50)]):
        Image.new("RGB", size, (0, 0, 200)).save(folder / f"{i}.png")
    with open_source(folder) as source:
        shapes = [source.read().shape, source.read().shape]
        assert shapes == [(30, 40, 3), (50, 20, 3)] and source.read() is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in"):
        open_source(tmp_path / "empty")
    with pytest.raises(UsageError, match="realtime reading needs the source's frame rate"):
        LatestFrameReader(open_source(folder), realtime=True)


def test_the_writer_is_all_or_nothing(tmp_path):
    frames = _numbered_frames(4)
    out = tmp_path / "clip.mp4"
    with FrameWriter(out, fps=10) as writer:
        for f in frames:
            writer.write(f)
        assert not out.exists() and len(list(tmp_path.iterdir())) == 1  # the temporary file
    assert list(tmp_path.iterdir()) == []  # left without commit: nothing remains
    with FrameWriter(out, fps=10) as writer:
        for f in frames:
            writer.write(f)
        assert writer.commit() == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]
    with pytest.raises(UsageError, match="exists; pass --force"):
        FrameWriter(out, fps=10)
    with FrameWriter(tmp_path / "frames", fps=10) as writer:
        writer.write(frames[0])
        writer.write(frames[1][:100, :50])  # another size: resized to the first frame's
        writer.commit()
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["frame_000000.jpg", "frame_000001.jpg"]
    with pytest.raises(UsageError, match="frames go to a new folder"):
        FrameWriter(tmp_path / "frames", fps=10)
    with pytest.raises(UsageError, match="does not exist; create it first"):
        FrameWriter(tmp_path / "missing" / "out.avi", fps=10)


def _start_camera_run(tmp_path, clip, argv_prefix: list[str]) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(
        [*argv_prefix, str(SAMPLE_MODEL), "--source", str(clip), "--realtime", "--headless",
         "--output", str(tmp_path / "out.avi")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


@pytest.mark.parametrize(
    ("how", "argv_prefix", "sig", "status"),
    [
        ("edgeq camera", [sys.executable, "-m", "edgeq", "camera"], signal.SIGTERM, 143),
        ("script", [sys.executable, str(REPO / "samples" / "camera_classify.py")], signal.SIGINT, 130),
    ],
)
def test_a_signal_mid_run_exits_cleanly_without_partial_output(tmp_path, write_video, how, argv_prefix, sig, status):
    clip = write_video(tmp_path / "clip.avi", _numbered_frames(100), fps=20)  # 5 s in realtime
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    proc = _start_camera_run(run_dir, clip, argv_prefix)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".out.avi.") for p in run_dir.iterdir()):  # frames are being written
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == status, stderr
    assert "no partial output was left behind" in stderr and "Traceback" not in stderr
    assert list(run_dir.iterdir()) == []
