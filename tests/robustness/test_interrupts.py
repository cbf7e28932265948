"""Ctrl-C (SIGINT) and SIGTERM sent to real ``edgeq`` processes in the middle of their work.

Each child runs with its own empty ``TMPDIR``; afterwards there must be no output file, no partial or
temporary file (in the output folder or the temp folder), exit status 130 (SIGINT) or 143 (SIGTERM)
and one line on stderr saying what happened (native libraries' own console lines aside).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
EXPECTED = {signal.SIGINT: (130, "Interrupted: stopped by Ctrl-C; no partial output was left behind"),
            signal.SIGTERM: (143, "Terminated: stopped by SIGTERM; no partial output was left behind")}


def caught_signals(pid: int) -> int:
    """The mask of signals the process has handlers for (``SigCgt`` in /proc/PID/status)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    return 0


def wait_for(condition, proc, timeout: float = 120.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the child ended early ({proc.returncode}) {what}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"timed out waiting {what}"
        time.sleep(0.05)


def handles_sigterm(proc) -> bool:  # type: ignore[no-untyped-def]
    """True once ``edgeq.cli.main`` has installed its SIGTERM handler (the command is about to run)."""
    return bool(caught_signals(proc.pid) & (1 << (signal.SIGTERM - 1)))


def edgeq_lines(stderr: str) -> list[str]:
    """stderr without the interpreter's own native INFO line."""
    return [ln for ln in stderr.splitlines() if ln.strip() and "TensorFlow Lite XNNPACK delegate" not in ln]


def assert_stopped_cleanly(proc, sig: int, *folders: Path) -> None:  # type: ignore[no-untyped-def]
    _, err = proc.communicate(timeout=120)
    code, message = EXPECTED[sig]
    assert proc.returncode == code, err[-3000:]
    assert edgeq_lines(err) == [message], err[-3000:]
    for folder in folders:
        assert sorted(p.name for p in folder.iterdir()) == [], f"left behind in {folder}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_profile(edgeq_child, tmp_path, sig):
    """``edgeq profile --duration 60 --json-out OUT`` stopped while timing: no report, exit 130/143."""
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    proc = edgeq_child(["profile", str(SAMPLE_MODEL), "--duration", "60", "--threads", "1", "--json-out",
                        str(out / "report.json")], tmp)
    wait_for(lambda: handles_sigterm(proc), proc, what="for the CLI to start")
    time.sleep(2.0)  # model loaded, timing runs
    proc.send_signal(sig)
    assert_stopped_cleanly(proc, sig, out, tmp)


SLOW_DATA = """
import time
from pathlib import Path
import numpy as np

def samples():
    rng = np.random.default_rng(0)
    for i in range(400):
        if i == 1:
            Path("first-sample-read").touch()  # the conversion is under way: the test may signal now
        time.sleep(0.05)
        yield rng.random((16, 16, 3), dtype=np.float32)
"""


@pytest.mark.tf
def test_convert(edgeq_child, tmp_path, keras_files):
    """``edgeq convert`` stopped while reading its data (SIGINT in one child, SIGTERM in another, concurrently)."""
    children = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        work = tmp_path / sig.name
        (work / "out").mkdir(parents=True)
        (work / "slowdata.py").write_text(SLOW_DATA)
        proc = edgeq_child(["convert", str(keras_files["keras"]), "--data", "py:slowdata:samples", "--samples", "300",
                            "--out", str(work / "out" / "m.tflite")], work / "tmp", cwd=work)
        children[sig] = (proc, work)
    for sig, (proc, work) in children.items():
        wait_for((work / "first-sample-read").exists, proc, what="for the conversion to read data")
        proc.send_signal(sig)
    for sig, (proc, work) in children.items():
        assert_stopped_cleanly(proc, sig, work / "out", work / "tmp")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_camera(edgeq_child, tmp_path, soak, sig):
    """``edgeq camera`` on a 10 s video read in real time, writing a video and a profile: stopped mid-run."""
    pytest.importorskip("cv2", reason='the camera apps need OpenCV (pip install "edgeq[camera]")')
    clip = soak.make_video(tmp_path / "clip.avi", frames=300, fps=30.0)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    out.mkdir()
    proc = edgeq_child(["camera", str(SAMPLE_MODEL), "--source", str(clip), "--headless", "--realtime", "--output",
                        str(out / "annotated.avi"), "--profile", str(out / "camera.json")], tmp)
    wait_for(lambda: any(out.iterdir()), proc, what="for the annotated video to start")  # its temporary file
    time.sleep(0.5)
    proc.send_signal(sig)
    assert_stopped_cleanly(proc, sig, out, tmp)
