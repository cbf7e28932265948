"""The doctor's OpenCV, TensorFlow/Keras and picamera2 checks, fed with the states users end up in, then for real."""

from __future__ import annotations

import sys

import pytest

from edgeq.devices import CameraInfo, DisplayProbe, Status, gui_backend, installed_opencv, opencv_fix
from edgeq.devices._doctor import _child_error, check_camera, check_convert, check_opencv

UP = DisplayProbe(None, (1920, 1080))
UNSET = DisplayProbe("no display to open a window on (DISPLAY is not set); run in a desktop session, or run with --headless")
STALE = DisplayProbe("cannot open display :98: no X server answers at /tmp/.X11-unix/X98 (No such file or directory); …")
GUI, HEADLESS = {"opencv-python": "4.14.0.94"}, {"opencv-python-headless": "4.14.0.94"}
REPAIR_GUI = 'pip uninstall -y opencv-python opencv-python-headless && pip install "opencv-python>=4.8,<5"'
REPAIR_HEADLESS = 'pip uninstall -y opencv-python opencv-python-headless && pip install "opencv-python-headless>=4.8,<5"'


def test_two_builds_clash_and_the_fix_keeps_the_one_that_fits_the_machine() -> None:
    both = {**GUI, **HEADLESS}
    laptop = check_opencv(both, None, "QT5", UP)
    assert laptop.status is Status.FAIL and laptop.message.startswith("2 OpenCV builds are installed")
    assert laptop.fix == REPAIR_GUI
    assert check_opencv(both, None, "QT5", UNSET).fix == REPAIR_HEADLESS  # a board without a display
    contrib = check_opencv({**GUI, "opencv-contrib-python": "4.10.0.84"}, None, "QT5", UP)
    assert contrib.fix == ('pip uninstall -y opencv-python opencv-python-headless opencv-contrib-python && '
                           'pip install "opencv-python>=4.8,<5"')


def test_cv2_left_without_videocapture_is_broken_with_the_repair() -> None:
    check = check_opencv(GUI, "cv2 has no VideoCapture (two builds were installed over each other)", None, UP)
    assert check.status is Status.FAIL and "no VideoCapture" in check.message and check.fix == REPAIR_GUI


def test_missing_opencv_names_the_extra_for_this_machine() -> None:
    assert check_opencv({}, "import cv2 fails: ModuleNotFoundError", None, UP).fix == 'pip install "edgeq[camera]"'
    board = check_opencv({}, "import cv2 fails: ModuleNotFoundError", None, UNSET)
    assert board.status is Status.WARN and board.fix == 'pip install "edgeq[camera-headless]"'


def test_headless_build_under_a_display_says_how_to_get_windows() -> None:
    check = check_opencv(HEADLESS, None, None, UP)
    assert check.status is Status.WARN and "cannot open windows" in check.message and check.fix == REPAIR_GUI
    assert check_opencv(HEADLESS, None, None, UNSET).status is Status.OK  # what a board should have


def test_opencv_5_warns_and_pins_4() -> None:
    check = check_opencv({"opencv-python": "5.0.0.93"}, None, "QT6", UP)
    assert check.status is Status.WARN and "pin OpenCV 4.x" in check.message and check.fix == REPAIR_GUI


def test_a_gui_build_reports_the_display_and_the_test_window() -> None:
    assert check_opencv(GUI, None, "QT5", UP).message == "opencv-python 4.14.0.94 (QT5) opened a test window on this display"
    assert check_opencv(GUI, None, "QT5", UNSET).status is Status.OK  # a server: no window expected
    stale = check_opencv(GUI, None, "QT5", STALE)
    assert stale.status is Status.WARN and "cannot open display :98" in stale.message
    qt_abort = 'qt.qpa.plugin: Could not load the Qt platform plugin "xcb" (exit status 134)'
    failed = check_opencv(GUI, None, "QT5", UP, qt_abort)
    assert failed.status is Status.FAIL and "Could not load the Qt platform plugin" in failed.message
    assert failed.fix == REPAIR_GUI.replace("pip install", "pip install --force-reinstall")


def test_gui_backend_reads_the_build_information() -> None:
    assert gui_backend("  GUI:                           QT5\n    QT:    YES (ver 5.15.16 )") == "QT5"
    assert gui_backend("  GUI:                           NONE\n") is None
    assert gui_backend("no GUI section") is None
    import cv2

    assert gui_backend(cv2.getBuildInformation()) is not None  # [dev] installs the full build


def test_opencv_fix_on_this_install_keeps_one_build() -> None:
    assert list(installed_opencv()) == ["opencv-python"]  # [convert,dev] installs one build, not two
    assert opencv_fix(True, installed_opencv()) == REPAIR_GUI


@pytest.mark.parametrize(
    "versions, error, status, words",
    [({"tensorflow": None, "keras": None}, None, Status.OK, "TensorFlow is not installed"),
     ({"tensorflow": "2.21.0", "keras": "3.15.1"}, None, Status.OK, "TensorFlow 2.21.0 and Keras 3.15.1 import"),
     ({"tensorflow": "2.21.0", "keras": None}, None, Status.FAIL, "Keras is missing"),
     ({"tensorflow": "2.21.0", "keras": "2.15.0"}, None, Status.FAIL, "edgeq converts with Keras 3"),
     ({"tensorflow": "2.21.0", "keras": "3.15.1"}, "ImportError: libcudart.so.12: cannot open shared object file",
      Status.FAIL, "do not import: ImportError: libcudart.so.12")],
)
def test_convert_check(versions: dict, error: str | None, status: Status, words: str) -> None:
    check = check_convert(versions, error)
    assert check.status is status and words in check.message
    assert (check.fix is None) is (status is Status.OK)


def test_a_numpy_clash_in_tensorflow_names_numpy_in_the_fix() -> None:
    check = check_convert({"tensorflow": "2.21.0", "keras": "3.15.1"},
                          "ImportError: numpy.core.multiarray failed to import")
    assert check.fix and check.fix.startswith("pip install 'numpy>=1.26,<3'")


def test_the_child_process_reports_the_real_import_error() -> None:
    error = _child_error("import edgeq_no_such_module", 60)
    assert error == "ModuleNotFoundError: No module named 'edgeq_no_such_module' (exit status 1)"
    assert _child_error("import json", 60) is None


def test_picamera2_hidden_from_a_venv_says_to_recreate_it() -> None:
    check = check_camera(CameraInfo(False, ()), raspberry_pi=True, picamera2_outside=True)
    assert check.status is Status.WARN and "--system-site-packages" in (check.fix or "")
    webcam = check_camera(CameraInfo(False, ("/dev/video0 (HD Webcam)",)), raspberry_pi=True, picamera2_outside=True)
    assert webcam.status is Status.WARN and webcam.message.startswith("/dev/video0 (HD Webcam)")


@pytest.mark.tf
@pytest.mark.skipif(sys.platform != "linux", reason="the X11 probe is for Linux")
def test_doctor_in_this_environment_reports_opencv_and_convert() -> None:
    from edgeq.devices import run_doctor

    checks = {c.name: c for c in run_doctor().checks}
    assert checks["opencv"].status in (Status.OK, Status.WARN) and "opencv-python 4." in checks["opencv"].message
    assert checks["convert"].status is Status.OK  # CI installs [convert]
