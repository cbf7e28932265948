"""The camera apps in a real window: Xvfb + openbox, quit with q, Esc or the close button, a screenshot.

Each test starts its apps as a user would (``python samples/camera_*.py`` or ``edgeq camera``) on a
generated video, waits for the window to be mapped, then acts through the X server: ``xdotool`` types
q or Esc into the focused window, ``wmctrl -c`` asks the window manager to close it (WM_DELETE_WINDOW,
what the title-bar button does). ``.ci/run`` installs the Debian packages (xvfb, openbox, wmctrl,
xdotool, imagemagick, x11-utils); elsewhere the tests that need them skip and say which are missing
(the ``desktop`` fixture, tests/samples/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path


import numpy as np
import pytest

from edgeq.devices import probe_display
from edgeq.runtime.report import load_report
from support import REPO, SAMPLE_MODEL

SCREEN = (1280, 800)  # the size of the conftest's Xvfb screen

@pytest.fixture(scope="module")
def shirt_clip(tmp_path_factory: pytest.TempPathFactory, write_video) -> tuple[Path, np.ndarray]:
    """One Fashion-MNIST test image (a T-shirt), 320x320, repeated for 30 s at 10 FPS; and that frame."""
    import cv2
    from PIL import Image

    path = sorted((REPO / "samples" / "fashion_mnist" / "eval").iterdir())[0].glob("*.png")
    gray = np.asarray(Image.open(sorted(path)[0]).convert("L"))
    frame = cv2.cvtColor(cv2.resize(gray, (320, 320), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB)
    clip = write_video(tmp_path_factory.mktemp("window") / "shirt.avi", [frame] * 300)
    return clip, frame


def _start(env: dict[str, str], *argv: str) -> subprocess.Popen:
    return subprocess.Popen([*argv], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _script(app: str) -> list[str]:
    return [sys.executable, str(REPO / "samples" / f"camera_{app}.py")]


def _window(env: dict[str, str], name: str, process: subprocess.Popen) -> str:
    """The id of the mapped window whose title contains ``name``, once it shows frames."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the app ended before its window showed: {process.communicate()}"
        found = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name], env=env,
                               capture_output=True, text=True).stdout.split()
        if found:
            time.sleep(1.0)  # a few frames in
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no window named {name!r} within 60 s")


def _geometry(env: dict[str, str], window: str) -> tuple[int, int, int, int]:
    """``(x, y, width, height)`` of the window's drawing area on the screen."""
    info = subprocess.run(["xwininfo", "-id", window], env=env, capture_output=True, text=True, check=True).stdout
    value = {key: int(re.search(rf"{key}:\s+(-?\d+)", info).group(1))
             for key in ("Absolute upper-left X", "Absolute upper-left Y", "Width", "Height")}
    return tuple(value.values())  # type: ignore[return-value]


def _finish(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=30)
    return process.returncode, stdout, stderr


def _quit(env: dict[str, str], window: str, how: str) -> None:
    if how == "close":  # the window manager's close: WM_DELETE_WINDOW, as the title-bar button sends
        subprocess.run(["wmctrl", "-i", "-c", window], env=env, check=True)
    else:
        subprocess.run(["xdotool", "windowactivate", "--sync", window, "key", {"q": "q", "esc": "Escape"}[how]],
                       env=env, check=True)


def _check_outputs(summary: dict, out: Path, report: Path, read_video) -> None:
    """The run stopped early and its video and profile are complete."""
    assert 0 < summary["frames"] < 300  # quit before the clip's end
    assert len(read_video(out)) == summary["frames"]
    assert load_report(report).results[0].latency.runs == summary["frames"] - 1
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


@pytest.mark.parametrize("how", ["q", "esc", "close"])
def test_classify_window_quits_with_q_esc_or_its_close_button_keeping_the_outputs(desktop, shirt_clip, tmp_path, how,
                                                                                  read_video):
    out, report = tmp_path / "out.avi", tmp_path / "cam.json"
    app = _start(desktop, *_script("classify"), str(SAMPLE_MODEL), "--source", str(shirt_clip[0]),
                 "--output", str(out), "--profile", str(report), "--json")
    _quit(desktop, _window(desktop, "camera_classify", app), how)
    code, stdout, stderr = _finish(app)
    assert (code, stderr) == (0, "")  # no traceback, no LiteRT INFO line
    summary = json.loads(stdout)
    assert summary["seen"] == {"T-shirt/top": summary["frames"]}
    _check_outputs(summary, out, report, read_video)


@pytest.mark.tf
def test_detect_window_closed_through_edgeq_camera_prints_the_summary(desktop, tiny_models, tmp_path, write_video,
                                                                       read_video):
    frame = np.full((96, 128, 3), 20, np.uint8)
    frame[:48, :64] = 200  # the top-left quadrant: class 0
    clip = write_video(tmp_path / "detect.avi", [frame] * 300)
    out, report = tmp_path / "out.avi", tmp_path / "det.json"
    app = _start(desktop, sys.executable, "-m", "edgeq", "camera", str(tiny_models["detect"]), "--source", str(clip),
                 "--output", str(out), "--profile", str(report), "--json")
    _quit(desktop, _window(desktop, "camera_detect", app), "close")
    code, stdout, stderr = _finish(app)
    assert (code, stderr) == (0, "")
    summary = json.loads(stdout)
    assert summary["app"] == "camera_detect" and summary["seen"] == {"0": summary["frames"]}
    _check_outputs(summary, out, report, read_video)


def test_the_window_shows_the_frame_at_its_size_with_the_overlay(desktop, shirt_clip, tmp_path):
    clip, frame = shirt_clip
    app = _start(desktop, *_script("classify"), str(SAMPLE_MODEL), "--source", str(clip))
    window = _window(desktop, "camera_classify", app)
    x, y, width, height = _geometry(desktop, window)
    shot = tmp_path / "screen.png"
    subprocess.run(["import", "-window", "root", str(shot)], env=desktop, check=True)
    _quit(desktop, window, "q")
    code, stdout, stderr = _finish(app)
    assert code == 0, stderr
    assert (width, height) == (320, 320)  # the frame's size, not OpenCV's default 400x300

    import cv2

    screen = cv2.cvtColor(cv2.imread(str(shot)), cv2.COLOR_BGR2RGB)
    shown = screen[y:y + height, x:x + width].astype(int)
    assert shown.std() > 20  # not blank
    diff = np.abs(shown - frame.astype(int)).max(axis=2)
    assert (diff[:40, :150] > 60).mean() > 0.3  # the labels darken the top-left corner and write on it
    assert (diff[-25:, :150] > 60).mean() > 0.2  # the status line, bottom-left
    assert (diff[60:260, 160:] > 30).mean() < 0.02  # elsewhere the frame itself
    if os.environ.get("EDGEQ_SCREENSHOT"):  # how docs/images/camera_window.jpg was made (README-camera.md)
        pad = 40  # with the title bar and frame of the window
        crop = screen[max(0, y - pad):y + height + 8, max(0, x - 8):x + width + 8]
        cv2.imwrite(os.environ["EDGEQ_SCREENSHOT"], cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])


def test_a_large_frame_gets_a_window_that_fits_the_screen(desktop, tmp_path, write_video):
    clip = write_video(tmp_path / "big.avi", [np.full((1000, 1600, 3), 90, np.uint8)] * 40)
    app = _start(desktop, *_script("classify"), str(SAMPLE_MODEL), "--source", str(clip))
    window = _window(desktop, "camera_classify", app)
    _, _, width, height = _geometry(desktop, window)
    subprocess.run(["xdotool", "windowsize", "--sync", window, "480", "300"], env=desktop, check=True, timeout=30)
    resized = _geometry(desktop, window)[2:]
    _quit(desktop, window, "close")
    assert _finish(app)[0] == 0
    assert width <= SCREEN[0] and height <= SCREEN[1] and width >= 0.6 * SCREEN[0]
    assert abs(width / height - 1.6) < 0.05  # the frame's aspect ratio
    assert resized == (480, 300)  # the user can resize it


def test_a_file_plays_at_its_frame_rate_in_a_window_and_flat_out_with_fast(desktop, fashion_clip):
    clip = str(fashion_clip[0])  # 24 frames at 10 FPS: 2.4 s
    times = {}
    for extra in ((), ("--fast",)):
        proc = subprocess.run([*_script("classify"), str(SAMPLE_MODEL), "--source", clip, "--json", *extra],
                              env=desktop, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["frames"] == 24
        times[extra] = summary["seconds"]
    assert 2.2 <= times[()] <= 4.0  # frame 23 is due 2.3 s after frame 0
    assert times[("--fast",)] < 0.5 * times[()]


@pytest.mark.parametrize("how", ["script", "command"])
def test_a_stale_display_exits_2_before_anything_is_written(tmp_path, fashion_clip, how):
    number = next(n for n in range(90, 200) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    out = tmp_path / "out.avi"
    env = {**os.environ, "DISPLAY": f":{number}"}
    app = _script("classify") if how == "script" else [sys.executable, "-m", "edgeq", "camera"]
    proc = subprocess.run([*app, str(SAMPLE_MODEL), "--source", str(fashion_clip[0]), "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert f"UsageError: cannot open display :{number}: no X server answers" in proc.stderr
    assert "--headless" in proc.stderr and list(tmp_path.iterdir()) == []


def test_wayland_without_x11_exits_2_saying_what_to_do(tmp_path, fashion_clip):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"} | {"WAYLAND_DISPLAY": "wayland-0"}
    proc = subprocess.run([*_script("classify"), str(SAMPLE_MODEL), "--source", str(fashion_clip[0]),
                           "--output", str(tmp_path / "out.avi")], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.startswith("UsageError: WAYLAND_DISPLAY is set (wayland-0) but DISPLAY is not")
    assert "Xwayland" in proc.stderr and list(tmp_path.iterdir()) == []


def test_doctor_opens_a_test_window_on_the_desktop_and_names_a_stale_display(desktop, monkeypatch):
    proc = subprocess.run([sys.executable, "-m", "edgeq", "doctor", "--json"], env=desktop, capture_output=True,
                          text=True, timeout=300)
    check = next(c for c in json.loads(proc.stdout)["checks"] if c["name"] == "opencv")
    assert check["status"] == "ok" and check["message"].endswith("opened a test window on this display"), check
    assert "XNNPACK delegate" not in proc.stderr  # LiteRT's INFO line is kept out

    from edgeq.devices._doctor import _probe_opencv, check_opencv

    monkeypatch.setenv("DISPLAY", ":197")
    check = check_opencv(*_probe_opencv())
    assert check.status.value == "warn" and "cannot open display :197" in check.message


def test_the_display_probe_needs_the_servers_cookie(tmp_path, start_xvfb):
    """An X server started with -auth refuses a client without its cookie, and accepts one with it."""
    if shutil.which("xauth") is None:
        pytest.skip("needs xauth (Debian: apt-get install xauth; .ci/run installs it)")
    cookie = os.urandom(16).hex()
    authority = tmp_path / "Xauthority"
    # the server loads every cookie of its -auth file; the client looks one up by display number
    subprocess.run(["xauth", "-f", str(authority), "add", ":0", "MIT-MAGIC-COOKIE-1", cookie], check=True,
                   capture_output=True)
    server, display = start_xvfb("-auth", str(authority))
    try:
        subprocess.run(["xauth", "-f", str(authority), "add", display, "MIT-MAGIC-COOKIE-1", cookie], check=True,
                       capture_output=True)
        accepted = probe_display({"DISPLAY": display, "XAUTHORITY": str(authority)}, timeout=30)
        assert accepted.screen == SCREEN, accepted
        refused = probe_display({"DISPLAY": display, "XAUTHORITY": str(tmp_path / "none")}, timeout=30)
        assert refused.problem and refused.problem.startswith(f"the X server of display {display} refused the connection")
        assert "xhost" in refused.problem
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="serves the display on a Linux abstract socket")
def test_the_display_probe_tries_again_when_the_server_drops_it_unanswered():
    """An X server resetting after its last client left (Xvfb does by default) closes new connections unanswered:
    the probe connects again and reports the server's real answer; a server that never answers is reported."""
    import socket
    import struct
    import threading

    from edgeq.devices._display import probe_x11

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    number = next(n for n in range(900, 1000) if _bound(listener, f"\0/tmp/.X11-unix/X{n}"))
    listener.listen(4)
    reason = b"no cookie, no entry"

    def serve(answer_after: int) -> None:
        for attempt in range(answer_after + 1):
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was shut down
                return
            with conn:
                if attempt == answer_after:  # the 12-byte setup request (no cookie), then a refusal
                    conn.recv(12, socket.MSG_WAITALL)
                    conn.sendall(struct.pack("<BBHHH", 0, len(reason), 11, 0, 5) + reason + b"\0")

    with listener:
        for dropped in (1, 3):
            thread = threading.Thread(target=serve, args=(dropped,), daemon=True)
            thread.start()
            probe = probe_x11(f":{number}", "/nonexistent", timeout=30)
            thread.join(10)
            assert probe.problem and probe.problem.startswith(
                f"the X server of display :{number} refused the connection (no cookie, no entry)"), probe
        thread = threading.Thread(target=serve, args=(10**6,), daemon=True)  # drops every connection
        thread.start()
        t0 = time.monotonic()
        probe = probe_x11(f":{number}", "/nonexistent", timeout=0.5)
        assert 0.5 <= time.monotonic() - t0 < 10
        assert probe.problem and probe.problem.startswith(
            f"cannot open display :{number}: the X server did not complete the connection"), probe
        listener.shutdown(socket.SHUT_RDWR)  # ends the server's accept()
        thread.join(10)
        assert not thread.is_alive()


def _bound(sock, address: str) -> bool:
    try:
        sock.bind(address)
    except OSError:
        return False
    return True
