"""Doctor checks fed with faked inputs (missing backend, numpy too new, throttling...), then for real."""

from __future__ import annotations

import json

import pytest

from edgeq.devices import BackendProbe, CameraInfo, Status, ThrottleState, detect, read_live, run_doctor
from edgeq.devices._doctor import (
    check_backend,
    check_camera,
    check_memory,
    check_numpy,
    check_os,
    check_throttling,
    check_xnnpack,
)

NOTHING = {"litert": BackendProbe("litert", None), "tflite-runtime": BackendProbe("tflite-runtime", None),
           "tensorflow": BackendProbe("tensorflow", None)}
LITERT = {**NOTHING, "litert": BackendProbe("litert", "2.3.0")}
TFLITE_RUNTIME = {**NOTHING, "tflite-runtime": BackendProbe("tflite-runtime", "2.14.0")}
TFLITE_RUNTIME_BROKEN = {**NOTHING, "tflite-runtime": BackendProbe(
    "tflite-runtime", "2.14.0", "A module that was compiled using NumPy 1.x cannot be run in NumPy 2.4.6")}


def test_missing_backend_fails_with_the_install_command() -> None:
    check = check_backend(NOTHING, "aarch64")
    assert check.status is Status.FAIL
    assert "no TFLite interpreter" in check.message
    assert check.fix == "pip install ai-edge-litert"


def test_missing_backend_on_32bit_os_names_tflite_runtime() -> None:
    assert check_backend(NOTHING, "armv7l").fix == "pip install tflite-runtime 'numpy<2'"


def test_installed_backend_that_does_not_import_fails_with_its_error() -> None:
    check = check_backend(TFLITE_RUNTIME_BROKEN, "armv7l")
    assert check.status is Status.FAIL
    assert "tflite-runtime 2.14.0 is installed but does not import: A module that was compiled using NumPy 1.x" in check.message
    assert check.fix and "numpy check" in check.fix


def test_tensorflow_alone_works_but_warns() -> None:
    check = check_backend({**NOTHING, "tensorflow": BackendProbe("tensorflow", "2.21.0")}, "x86_64")
    assert check.status is Status.WARN and "TensorFlow 2.21.0" in check.message


def test_litert_is_ok_and_preferred() -> None:
    both = {**LITERT, "tflite-runtime": BackendProbe("tflite-runtime", "2.14.0")}
    assert check_backend(both, "aarch64").message.startswith("litert 2.3.0 imports")


def test_numpy_too_new_for_tflite_runtime() -> None:
    for backends in (TFLITE_RUNTIME, TFLITE_RUNTIME_BROKEN):
        check = check_numpy("2.4.6", backends)
        assert check.status is Status.FAIL
        assert "numpy 2.4.6 is too new for tflite-runtime 2.14.0" in check.message
        assert check.fix == "pip install 'numpy<2'"


@pytest.mark.parametrize(
    "numpy, backends, status",
    [("1.26.4", TFLITE_RUNTIME, Status.OK), ("2.4.6", LITERT, Status.OK),
     ("2.4.6", {**LITERT, "tflite-runtime": BackendProbe("tflite-runtime", "2.14.0")}, Status.OK),  # LiteRT is used
     ("1.21.0", LITERT, Status.FAIL), (None, LITERT, Status.FAIL), ("2.0.0rc1", NOTHING, Status.OK)],
)
def test_numpy_versions(numpy: str | None, backends: dict, status: Status) -> None:
    assert check_numpy(numpy, backends).status is status


def test_xnnpack_outcomes() -> None:
    assert check_xnnpack("litert", True).status is Status.OK
    not_applied = check_xnnpack("litert", False)
    assert not_applied.status is Status.WARN and "/sys/devices/system/cpu" in not_applied.message
    assert "pip install -U ai-edge-litert" in (not_applied.fix or "")
    broken = check_xnnpack("tflite-runtime", None, "RuntimeError: boom")
    assert broken.status is Status.FAIL and broken.fix == "reinstall the backend: pip install --force-reinstall tflite-runtime"
    assert check_xnnpack(None, None).status is Status.WARN


def test_32bit_os_warns_with_the_tflite_runtime_fix() -> None:
    check = check_os("armv7l", "Raspbian GNU/Linux 11 (bullseye)", "3.9.2")
    assert check.status is Status.WARN
    assert check.message.startswith("32-bit OS (Raspbian GNU/Linux 11 (bullseye), armv7l, Python 3.9.2)")
    assert check.fix and check.fix.startswith("pip install tflite-runtime 'numpy<2'")
    assert check_os("aarch64", "Debian GNU/Linux 12 (bookworm)", "3.11.2").status is Status.OK
    assert check_os("armv6l", None, "3.11.2").status is Status.WARN


def test_camera() -> None:
    assert check_camera(CameraInfo(True, ()), raspberry_pi=True).status is Status.OK
    webcam = check_camera(CameraInfo(False, ("/dev/video0 (HD Webcam)",)), raspberry_pi=False)
    assert webcam.message == "/dev/video0 (HD Webcam)"
    on_pi = check_camera(CameraInfo(False, ()), raspberry_pi=True)
    assert on_pi.status is Status.WARN
    assert "python3-picamera2" in (on_pi.fix or "") and "--system-site-packages" in (on_pi.fix or "")
    assert "USB camera" in (check_camera(CameraInfo(False, ()), raspberry_pi=False).fix or "")


@pytest.mark.parametrize("available, status", [(None, Status.WARN), (50, Status.FAIL), (200, Status.WARN), (3000, Status.OK)])
def test_memory(available: int | None, status: Status) -> None:
    assert check_memory(available, 4096).status is status


@pytest.mark.parametrize(
    "raw, temperature, status, words",
    [(None, 45.0, Status.OK, "no throttling flags"), (None, 84.0, Status.WARN, "close to the throttling point"),
     (0x0, 50.0, Status.OK, "not throttled"), (0x50005, 70.0, Status.FAIL, "under-voltage now"),
     (0x80008, 81.0, Status.WARN, "slowed down now (soft_temp_limit"), (0x10000, 50.0, Status.WARN, "happened since boot")],
)
def test_throttling(raw: int | None, temperature: float, status: Status, words: str) -> None:
    check = check_throttling(None if raw is None else ThrottleState(raw), temperature)
    assert check.status is status and words in check.message
    assert (check.fix is None) is (status is Status.OK)


def test_doctor_on_a_recorded_zero2w_flags_low_memory(board_root) -> None:  # type: ignore[no-untyped-def]
    root = board_root("rpi-zero2w")
    report = run_doctor(detect(root), read_live(root))
    checks = {c.name: c for c in report.checks}
    assert list(checks) == ["backend", "numpy", "xnnpack", "os", "camera", "opencv", "convert", "memory", "throttling"]
    assert checks["memory"].status is Status.WARN and checks["memory"].message.startswith("235 MB available of 425 MB")
    assert "python3-picamera2" in (checks["camera"].fix or "")
    data = report.to_dict()
    assert sum(data["counts"].values()) == 9
    json.dumps(data)


def test_doctor_on_this_machine_has_a_working_backend() -> None:
    report = run_doctor()
    checks = {c.name: c for c in report.checks}
    assert checks["backend"].status is Status.OK
    assert checks["xnnpack"].status is Status.OK  # LiteRT applies XNNPACK on an x86 host


def test_backend_tflite_runtime_is_ok_on_armv7_and_warned_elsewhere() -> None:
    on_pi = check_backend(TFLITE_RUNTIME, "armv7l")
    assert on_pi.status is Status.OK and "tflite-runtime 2.14.0" in on_pi.message and "numpy 1.x" in on_pi.message
    on_x86 = check_backend(TFLITE_RUNTIME, "x86_64")
    assert on_x86.status is Status.WARN and "slower" in on_x86.message and on_x86.fix == "pip install ai-edge-litert"


def test_xnnpack_missing_from_tflite_runtime_on_armv7_is_explained() -> None:
    check = check_xnnpack("tflite-runtime", False, None, "armv7l")
    assert check.status is Status.WARN and "built without XNNPACK" in check.message and "64-bit" in check.fix
    assert "cannot identify the CPU" in check_xnnpack("tflite-runtime", False, None, "aarch64").message
