"""``edgeq doctor``: checks of the install on this device, each ok / warn / fail with a fix.

Every ``check_*`` function takes its inputs as arguments (backend versions, numpy version,
live state...) and returns a :class:`Check`, so tests can feed faked failures. Only
:func:`run_doctor` gathers the real inputs.
"""

from __future__ import annotations

import enum
import functools
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from edgeq.devices._detect import CameraInfo, Device, current
from edgeq.devices._opencv import OPENCV_MAJOR, gui_backend, installed_opencv, opencv_fix
from edgeq.devices._live import LiveState, ThrottleState
from edgeq.devices._xnnpack import xnnpack_applied

if TYPE_CHECKING:  # the display probe (socket), threads and subprocess load when doctor runs, not on every CLI start
    from concurrent.futures import Future

    from edgeq.devices._display import DisplayProbe

#: the backends light enough for a board, in the order edgeq prefers them
LIGHT_BACKENDS = ("litert", "tflite-runtime")
_TENSORFLOW_DISTS = ("tensorflow", "tensorflow-cpu")
_HOT_C = 80.0
_LOW_MEMORY_MB = 256
_TOO_LITTLE_MEMORY_MB = 100
_LITERT_FIX = "pip install ai-edge-litert"
#: what the [convert] extra installs (keep in step with pyproject.toml)
_CONVERT_REQUIREMENTS = ('"tensorflow-cpu>=2.16,<2.22"' if sys.platform == "linux" and os.uname().machine == "x86_64"
                         else '"tensorflow>=2.16,<2.22"') + ' "keras>=3.3,<4"'
#: where Raspberry Pi OS installs picamera2 (apt: python3-picamera2)
_SYSTEM_PICAMERA2 = Path("/usr/lib/python3/dist-packages/picamera2")
_ARMV7_FIX = "pip install tflite-runtime 'numpy<2'"


class Status(str, enum.Enum):
    """The outcome of a check."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Check:
    """One doctor check.

    Args:
        name: a short name (``backend``, ``numpy``, ``xnnpack``...).
        status: ok, warn or fail.
        message: what was found.
        fix: what to do about a warn or fail, as a command where there is one.
    """

    name: str
    status: Status
    message: str
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {"name": self.name, "status": self.status.value, "message": self.message, "fix": self.fix}


@dataclass(frozen=True)
class BackendProbe:
    """What is known about one interpreter backend.

    Args:
        name: the backend name (``litert``, ``tflite-runtime``, ``tensorflow``).
        version: the installed version, or ``None`` when it is not installed.
        error: why an installed backend does not import; ``None`` when it imports (TensorFlow is
            never imported by the doctor, so its ``error`` is always ``None``).
    """

    name: str
    version: str | None
    error: str | None = None

    @property
    def usable(self) -> bool:
        """Installed and importable."""
        return self.version is not None and self.error is None


@dataclass(frozen=True)
class DoctorReport:
    """The checks run on a device."""

    device: Device
    checks: tuple[Check, ...]

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.status is Status.FAIL]

    def to_dict(self) -> dict[str, Any]:
        """The device, every check and the counts, JSON-ready."""
        counts = {s.value: sum(c.status is s for c in self.checks) for s in Status}
        return {"device": self.device.to_dict(), "checks": [c.to_dict() for c in self.checks], "counts": counts}


def check_backend(backends: Mapping[str, BackendProbe], arch: str | None) -> Check:
    """Is a light TFLite interpreter (LiteRT or tflite-runtime) installed and importable?"""
    fix = _ARMV7_FIX if arch == "armv7l" else _LITERT_FIX
    usable = [backends[n] for n in LIGHT_BACKENDS if n in backends and backends[n].usable]
    if usable:
        chosen = usable[0]
        message = f"{chosen.name} {chosen.version} imports; edgeq uses it by default"
        if chosen.name == "tflite-runtime" and arch != "armv7l":
            # measured (benchmarks/results): tflite-runtime 2.14 runs int8 ~20-25x slower than LiteRT on x86_64
            return Check("backend", Status.WARN, message + f", but on {arch or 'this CPU'} its int8 kernels are "
                         "much slower than LiteRT's (~20x measured on x86_64)", _LITERT_FIX)
        if chosen.name == "tflite-runtime":
            message += " (the only interpreter with armv7l wheels; its last release, 2.14, needs numpy 1.x)"
        return Check("backend", Status.OK, message)
    broken = [b for n in LIGHT_BACKENDS if (b := backends.get(n)) and b.version is not None]
    if broken:
        b = broken[0]
        return Check("backend", Status.FAIL, f"{b.name} {b.version} is installed but does not import: {b.error}",
                     "see the numpy check; else reinstall it: " + fix.replace("pip install", "pip install --force-reinstall"))
    tf = backends.get("tensorflow")
    if tf and tf.version:
        return Check("backend", Status.WARN,
                     f"only TensorFlow {tf.version} provides an interpreter: it works, but it is large and slow to import", fix)
    return Check("backend", Status.FAIL, "no TFLite interpreter is installed (neither ai-edge-litert nor tflite-runtime)", fix)


def check_numpy(numpy_version: str | None, backends: Mapping[str, BackendProbe]) -> Check:
    """Does the numpy version suit the backend in use (tflite-runtime is built against numpy 1.x)?"""
    if numpy_version is None:
        return Check("numpy", Status.FAIL, "numpy is not installed", "pip install numpy")
    major, minor = _major_minor(numpy_version)
    if (major, minor) < (1, 23):
        return Check("numpy", Status.FAIL, f"numpy {numpy_version} is older than the 1.23 edgeq needs",
                     "pip install -U 'numpy>=1.23'")
    litert = backends.get("litert")
    tflite_runtime = backends.get("tflite-runtime")
    if major >= 2 and tflite_runtime and tflite_runtime.version and not (litert and litert.usable):
        return Check("numpy", Status.FAIL,
                     f"numpy {numpy_version} is too new for tflite-runtime {tflite_runtime.version}, "
                     "which is built against numpy 1.x",
                     "pip install 'numpy<2'")
    user = "ai-edge-litert" if litert and litert.usable else "the installed backend"
    return Check("numpy", Status.OK, f"numpy {numpy_version} works with {user}")


def check_xnnpack(backend: str | None, applied: bool | None, error: str | None = None, arch: str | None = None) -> Check:
    """Does the interpreter apply XNNPACK, its fast default CPU delegate?

    Args:
        backend: the backend that was tested, or ``None`` when none imports.
        applied: whether a default interpreter delegated a float32 ADD model to XNNPACK.
        error: the interpreter's error on that model, if it failed.
        arch: the machine (``armv7l`` explains a tflite-runtime without XNNPACK).
    """
    if backend is None:
        return Check("xnnpack", Status.WARN, "not checked: no TFLite interpreter imports", "fix the backend check first")
    if error is not None:
        return Check("xnnpack", Status.FAIL, f"{backend} failed on a built-in 1-op float32 model: {error}",
                     "reinstall the backend: pip install --force-reinstall " + _dist(backend))
    if not applied and backend == "tflite-runtime" and arch == "armv7l":
        # tflite-runtime 2.14's armv7l wheel has no XNNPACK in it (no xnn_* symbols; its x86_64 wheel has ~1900)
        return Check("xnnpack", Status.WARN,
                     "tflite-runtime's armv7l wheel is built without XNNPACK: models run on TFLite's own built-in "
                     "kernels (NEON-optimised, via ruy/gemmlowp), not XNNPACK's",
                     "for XNNPACK, install the 64-bit Raspberry Pi OS: edgeq then uses LiteRT")
    if not applied:
        return Check("xnnpack", Status.WARN,
                     f"{backend} did not apply XNNPACK to a built-in float32 model, so CPU inference uses the slower "
                     "built-in kernels; this happens when the interpreter cannot identify the CPU (a container or chroot "
                     "without /sys/devices/system/cpu) or in builds without XNNPACK",
                     "run on the host OS with /sys mounted, or upgrade: pip install -U " + _dist(backend))
    return Check("xnnpack", Status.OK,
                 f"{backend} applies the XNNPACK delegate by default (seen on a built-in float32 model)")


def check_os(arch: str | None, os_name: str | None, python: str) -> Check:
    """Is this a 64-bit OS with interpreter wheels (32-bit Raspberry Pi OS has no LiteRT wheels)?"""
    where = f"{os_name or 'unknown OS'}, {arch or 'unknown architecture'}, Python {python}"
    if arch == "armv7l":
        return Check("os", Status.WARN,
                     f"32-bit OS ({where}): LiteRT has no armv7l wheels, so edgeq uses tflite-runtime, which needs "
                     "numpy<2 and Python <= 3.11",
                     f"{_ARMV7_FIX}  (or install the 64-bit OS to use LiteRT)")
    if arch not in ("aarch64", "x86_64"):
        return Check("os", Status.WARN, f"{where}: neither LiteRT nor tflite-runtime publishes wheels for this architecture",
                     "use a 64-bit OS (aarch64 or x86_64), or build tflite-runtime from source")
    return Check("os", Status.OK, where)


def check_camera(camera: CameraInfo, raspberry_pi: bool, picamera2_outside: bool = False) -> Check:
    """Is a camera stack present (picamera2, or a V4L2 camera at ``/dev/video*``)?

    Args:
        camera: what was found.
        raspberry_pi: whether this is a Raspberry Pi (the fix names picamera2).
        picamera2_outside: picamera2 is installed for the system Python, but this Python (a venv
            without ``--system-site-packages``) does not see it.
    """
    hidden = ("picamera2 is installed for the system Python but this venv does not see it: recreate the venv with "
              "python3 -m venv --system-site-packages, then reinstall edgeq in it")
    if camera.present:
        found = (["picamera2 imports"] if camera.picamera2 else []) + list(camera.video_devices)
        if picamera2_outside and not camera.picamera2:
            return Check("camera", Status.WARN, "; ".join(found) + "; picamera2 is not importable here", hidden)
        return Check("camera", Status.OK, "; ".join(found))
    if picamera2_outside:
        return Check("camera", Status.WARN, "no camera stack found: picamera2 is not importable here", hidden)
    if raspberry_pi:
        fix = ("connect a camera and sudo apt install python3-picamera2; in a venv, create it with "
               "python3 -m venv --system-site-packages so that picamera2 is visible")
    else:
        fix = "connect a USB camera (it appears as /dev/video*), or run models on image files"
    return Check("camera", Status.WARN, "no camera stack found (picamera2 not importable, no /dev/video* camera)", fix)


def check_opencv(installed: Mapping[str, str], import_error: str | None, gui: str | None, display: DisplayProbe,
                 window_error: str | None = None) -> Check:
    """Which OpenCV builds are installed, do they clash, and can this one open a window here?

    Args:
        installed: ``{distribution: version}`` of the OpenCV pip builds present (:func:`installed_opencv`).
        import_error: why ``import cv2`` or its ``VideoCapture`` failed, ``None`` when both work.
        gui: the build's GUI toolkit (:func:`gui_backend`), ``None`` for a headless build.
        display: the probe of this machine's display (:func:`probe_display`).
        window_error: why a test window failed to open (only tried when the display answers).
    """
    here = display.problem is None  # a display answers here
    names = ", ".join(f"{dist} {version}" for dist, version in sorted(installed.items()))
    wanted = "edgeq[camera]" if here else "edgeq[camera-headless]"
    if not installed and import_error:
        return Check("opencv", Status.WARN, "OpenCV is not installed: the camera apps (edgeq camera) and video files "
                     "as --data need it", f'pip install "{wanted}"')
    if len(installed) > 1:
        return Check("opencv", Status.FAIL, f"{len(installed)} OpenCV builds are installed ({names}); they install the "
                     "same cv2 files over each other, and removing one breaks the other", opencv_fix(here, installed))
    if import_error:
        return Check("opencv", Status.FAIL, f"OpenCV ({names or 'cv2'}) is broken: {import_error}",
                     opencv_fix(here, installed))
    version = next(iter(installed.values()), "")
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) != OPENCV_MAJOR:
        return Check("opencv", Status.WARN, f"{names}: edgeq's extras pin OpenCV {OPENCV_MAJOR}.x (OpenCV {major}'s "
                     "wheel prints Qt font warnings on every window)", opencv_fix(gui is not None, installed))
    if gui is None:
        if here:
            return Check("opencv", Status.WARN, f"{names or 'cv2'} is a headless build: it cannot open windows, "
                         "although a display answers here", opencv_fix(True, installed))
        return Check("opencv", Status.OK, f"{names or 'cv2'} (headless build: --headless runs; no windows)")
    if not here:
        status = Status.WARN if "DISPLAY is not set" not in (display.problem or "") else Status.OK
        return Check("opencv", status, f"{names or 'cv2'} ({gui}) can draw windows, but not here: {display.problem}",
                     None if status is Status.OK else "fix DISPLAY, or run the camera apps with --headless")
    if window_error:
        return Check("opencv", Status.FAIL, f"{names or 'cv2'} ({gui}) could not open a test window: {window_error}",
                     opencv_fix(True, installed).replace("pip install", "pip install --force-reinstall"))
    return Check("opencv", Status.OK, f"{names or 'cv2'} ({gui}) opened a test window on this display")


def check_convert(versions: Mapping[str, str | None], import_error: str | None) -> Check:
    """Do TensorFlow and Keras 3 (the ``[convert]`` extra) import, as ``edgeq convert`` needs?

    Args:
        versions: the installed versions of ``tensorflow`` (either distribution) and ``keras``, ``None`` if absent.
        import_error: the last line of the error ``import tensorflow, keras`` raised, ``None`` when it worked.
    """
    tf, keras = versions.get("tensorflow"), versions.get("keras")
    fix = f"pip install --force-reinstall {_CONVERT_REQUIREMENTS}"
    if tf is None and keras is None:
        return Check("convert", Status.OK, "TensorFlow is not installed: running and profiling models do not need it; "
                     'edgeq convert does (on a workstation: pip install "edgeq[convert]")')
    if tf is None or keras is None:
        missing = "TensorFlow" if tf is None else "Keras"
        return Check("convert", Status.FAIL, f"{missing} is missing, so edgeq convert cannot run",
                     fix.replace(" --force-reinstall", ""))
    if import_error:
        if "numpy" in import_error.lower():
            fix = f"pip install 'numpy>=1.26,<3' {_CONVERT_REQUIREMENTS}"
        return Check("convert", Status.FAIL,
                     f"TensorFlow {tf} / Keras {keras} are installed but do not import: {import_error}", fix)
    if not keras.startswith("3."):
        return Check("convert", Status.FAIL, f"Keras {keras} is installed; edgeq converts with Keras 3",
                     'pip install "keras>=3.3,<4"')
    return Check("convert", Status.OK, f"TensorFlow {tf} and Keras {keras} import: edgeq convert works here")


def check_memory(available_mb: int | None, total_mb: int | None) -> Check:
    """Is there enough free memory to load a model and the interpreter?"""
    if available_mb is None:
        return Check("memory", Status.WARN, "free memory unknown (no MemAvailable in /proc/meminfo)", None)
    message = f"{available_mb} MB available of {total_mb if total_mb is not None else '?'} MB"
    fix = "close other programs (or the desktop), or add swap"
    if available_mb < _TOO_LITTLE_MEMORY_MB:
        return Check("memory", Status.FAIL, message + ": too little to load most models", fix)
    if available_mb < _LOW_MEMORY_MB:
        return Check("memory", Status.WARN, message + ": only small models will fit", fix)
    return Check("memory", Status.OK, message)


def check_throttling(throttled: ThrottleState | None, temperature_c: float | None) -> Check:
    """Is the CPU throttled, under-volted or hot (Raspberry Pi ``vcgencmd get_throttled``)?"""
    temp = f"CPU at {temperature_c:.0f} C" if temperature_c is not None else "CPU temperature unknown"
    cooling = "add a heatsink or fan, and benchmark after the temperature settles"
    if throttled is None:
        if temperature_c is not None and temperature_c >= _HOT_C:
            return Check("throttling", Status.WARN, f"{temp}: close to the throttling point", cooling)
        return Check("throttling", Status.OK, f"no throttling flags on this device (no vcgencmd); {temp}")
    flags = ", ".join(throttled.active)
    if throttled.under_voltage:
        return Check("throttling", Status.FAIL, f"under-voltage now ({flags}; get_throttled={throttled.raw:#x}); {temp}",
                     "use the official power supply (5.1 V 3 A for a Pi 4, 5 V 5 A for a Pi 5) and a short cable")
    if throttled.throttled or throttled.freq_capped or throttled.soft_temp_limit:
        return Check("throttling", Status.WARN, f"the CPU is slowed down now ({flags}); {temp}", cooling)
    if throttled.raw:
        return Check("throttling", Status.WARN, f"throttling happened since boot ({flags}); {temp}",
                     cooling + "; check the power supply if under-voltage occurred")
    return Check("throttling", Status.OK, f"not throttled (get_throttled=0x0); {temp}")


def probe_backends() -> dict[str, BackendProbe]:
    """Probe LiteRT and tflite-runtime by importing them, and TensorFlow by its version only."""
    from edgeq.errors import DependencyMissing
    from edgeq.runtime.backend import get_backend

    probes = {}
    for name in LIGHT_BACKENDS:
        try:
            probes[name] = BackendProbe(name, get_backend(name).version)
        except DependencyMissing as exc:
            version = _installed(_dist(name))
            probes[name] = BackendProbe(name, version, str(exc.__cause__ or exc) if version else None)
    tf_version = next((v for d in _TENSORFLOW_DISTS if (v := _installed(d))), None)
    probes["tensorflow"] = BackendProbe("tensorflow", tf_version)
    return probes


def run_doctor(device: Device | None = None, live: LiveState | None = None) -> DoctorReport:
    """Run every check on this device.

    Args:
        device: the device to check; default :func:`current`.
        live: its live state; default ``device.live()``.

    Returns:
        The :class:`DoctorReport`; ``report.failed`` lists the checks that failed.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        convert = pool.submit(_probe_convert)  # importing TensorFlow takes seconds: meanwhile the other checks run
        return _run_checks(device or current(), live, convert)


def _run_checks(device: Device, live: LiveState | None, convert: Future) -> DoctorReport:
    live = live or device.live()
    backends = probe_backends()
    tested, applied, error = _probe_xnnpack(backends)
    picamera2_outside = _SYSTEM_PICAMERA2.is_dir() and not device.camera.picamera2 and sys.prefix != sys.base_prefix
    checks = (
        check_backend(backends, device.arch),
        check_numpy(_installed("numpy"), backends),
        check_xnnpack(tested, applied, error, device.arch),
        check_os(device.arch, device.os_name, device.python),
        check_camera(device.camera, device.revision is not None or (device.board or "").startswith("Raspberry Pi"),
                     picamera2_outside),
        check_opencv(*_probe_opencv()),
        check_convert(*convert.result()),
        check_memory(live.mem_available_mb, device.memory_mb),
        check_throttling(live.throttled, live.temperature_c),
    )
    return DoctorReport(device, checks)


def _probe_opencv() -> tuple[dict[str, str], str | None, str | None, DisplayProbe, str | None]:
    """The inputs of :func:`check_opencv`; a test window is opened in a child process (Qt may abort its process)."""
    from edgeq.devices._display import probe_display

    installed = installed_opencv()
    try:
        import cv2
    except Exception as exc:  # noqa: BLE001 - ImportError, or a missing shared library (OSError)
        return installed, f"import cv2 fails: {type(exc).__name__}: {exc}", None, probe_display(), None
    if not hasattr(cv2, "VideoCapture"):
        return installed, "cv2 has no VideoCapture (two builds were installed over each other)", None, probe_display(), None
    gui = gui_backend(cv2.getBuildInformation())
    display = probe_display(wayland=bool(gui) and gui.upper().startswith("GTK"))
    window_error = None
    if gui and display.problem is None:
        code = ("import cv2\ncv2.namedWindow('edgeq doctor', cv2.WINDOW_NORMAL)\ncv2.waitKey(50)\n"
                "cv2.destroyAllWindows()\ncv2.waitKey(1)")
        window_error = _child_error(code, 30)
    return installed, None, gui, display, window_error


@functools.lru_cache(maxsize=1)
def _probe_convert() -> tuple[dict[str, str | None], str | None]:
    """The inputs of :func:`check_convert`; TensorFlow is imported in a child process (edgeq.devices never imports it).

    Cached: the installed packages do not change while the process runs.
    """
    versions = {"tensorflow": next((v for d in _TENSORFLOW_DISTS if (v := _installed(d))), None),
                "keras": _installed("keras")}
    if versions["tensorflow"] is None or versions["keras"] is None:
        return versions, None
    return versions, _child_error("import tensorflow, keras", 120)


def _child_error(code: str, timeout: float) -> str | None:
    """Run Python ``code`` in a child process; the last line of its error output if it fails, else ``None``."""
    import subprocess

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return f"no answer within {timeout:g} s"
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    return (lines[-1] if lines else "no error message") + f" (exit status {proc.returncode})"


def _probe_xnnpack(backends: Mapping[str, BackendProbe]) -> tuple[str | None, bool | None, str | None]:
    from edgeq._native import quiet_native_output
    from edgeq.runtime.backend import get_backend

    name = next((n for n in LIGHT_BACKENDS if backends[n].usable), None)
    if name is None:
        return None, None, None
    try:
        with quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" from C++
            return name, xnnpack_applied(get_backend(name).Interpreter), None
    except Exception as exc:
        return name, None, f"{type(exc).__name__}: {exc}"


def _dist(backend: str) -> str:
    from edgeq.runtime.backend import BACKENDS

    return BACKENDS[backend][1] if backend in BACKENDS else backend


def _installed(dist: str) -> str | None:
    from importlib import metadata  # here: it imports email, zipfile and csv, tens of ms of every CLI start

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]] + [0, 0]
    return numbers[0], numbers[1]
