"""Outputs on a full disk: one clean error (exit 2), nothing partial published, nothing half-written left.

A real tmpfs is filled up to its last few KiB (mounting needs root with CAP_SYS_ADMIN; without it the
tests skip, saying so). Covers the outputs whose writers are not plain ``atomic_write`` calls: the
camera's video (OpenCV's writer does not report a full disk) and ``--profile`` report, ``run
--save-outputs`` and the two pictures of ``compare``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.errors import UsageError

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


@pytest.fixture()
def nearly_full(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs with 24 KiB left (a ``filler`` file takes the rest)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root with CAP_SYS_ADMIN")
    try:
        stat = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 24 * 1024))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "filler")


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "XNNPACK delegate" not in ln]
    assert len(err) == 1 and "Traceback" not in err[0] and "Unexpected" not in err[0], err
    return err[0]


def test_video_cut_short_by_a_full_disk_is_not_published(nearly_full: Path) -> None:
    pytest.importorskip("cv2")
    from edgeq.runtime.capture import FrameWriter

    rng = np.random.default_rng(0)
    writer = FrameWriter(nearly_full / "out.avi", fps=10)
    for _ in range(40):  # noise compresses badly: ~100 KiB per Motion-JPEG frame, far more than is free
        writer.write(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8))
    with pytest.raises(UsageError, match="disk full"):
        writer.commit()
    assert left(nearly_full) == []


def test_video_that_fits_is_published_whole(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    from edgeq.runtime.capture import FrameWriter

    writer = FrameWriter(tmp_path / "out.avi", fps=10)
    for i in range(12):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    assert writer.commit() == tmp_path / "out.avi"
    cap = cv2.VideoCapture(str(tmp_path / "out.avi"))
    frames = 0
    while cap.grab():
        frames += 1
    assert frames == 12


def test_camera_profile_report_on_a_full_disk(nearly_full: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cv2 = pytest.importorskip("cv2")
    clip = tmp_path / "clip.avi"
    out = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(4):
        out.write(np.full((48, 64, 3), i * 40, np.uint8))
    out.release()
    (nearly_full / "filler2").write_bytes(b"\0" * (os.statvfs(nearly_full).f_bavail * os.statvfs(nearly_full).f_frsize))
    code = main(["camera", str(SAMPLE_MODEL), "--source", str(clip), "--headless", "--max-frames", "3",
                 "--profile", str(nearly_full / "p.json")])
    line = one_error_line(capsys)
    assert code == 2 and "p.json" in line, line
    assert left(nearly_full) == ["filler2"]


def test_save_outputs_on_a_full_disk(nearly_full: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "x.npy", np.zeros((1, 28, 28, 1), np.float32))
    (nearly_full / "filler2").write_bytes(b"\0" * (os.statvfs(nearly_full).f_bavail * os.statvfs(nearly_full).f_frsize))
    code = main(["run", str(SAMPLE_MODEL), str(tmp_path / "x.npy"), "--save-outputs", str(nearly_full)])
    line = one_error_line(capsys)
    assert code == 2 and "space" in line, line
    assert left(nearly_full) == ["filler2"], "a 0-byte or partial output was left"


def test_compare_pictures_both_or_neither(nearly_full: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgeq.runtime import Model
    from edgeq.runtime.report import report_from_timings

    report = tmp_path / "r.json"
    report.write_bytes(report_from_timings(Model(SAMPLE_MODEL, threads=1), list(np.linspace(1, 3, 200)), 4.0).to_json())
    sizes = tmp_path / "sizes"
    sizes.mkdir()
    assert main(["compare", str(report), "--html", str(sizes / "c.html"), "--png", str(sizes / "c.png")]) == 0
    capsys.readouterr()
    html, png = (sizes / "c.html").stat().st_size, (sizes / "c.png").stat().st_size
    assert png > 2 * 4096, "the PNG must be larger than the slack left after the page"
    free = os.statvfs(nearly_full).f_bavail * os.statvfs(nearly_full).f_frsize
    (nearly_full / "filler2").write_bytes(b"\0" * (free - (html // 4096 + 2) * 4096))  # room for the page only
    code = main(["compare", str(report), "--html", str(nearly_full / "c.html"), "--png", str(nearly_full / "c.png")])
    line = one_error_line(capsys)
    assert code == 2 and "c.png" in line, line
    assert left(nearly_full) == ["filler2"], "one picture was published without the other"
