"""``edgeq doctor``: checks of the install on this device, each ok / warn / fail with a fix.

Every ``check_*`` function takes its inputs as arguments (backend versions, numpy version,
live state...) and returns a :class:`Check`, so tests can feed faked failures. Only
:func:`run_doctor` gathers the real inputs.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from importlib import metadata
from typing import Any
from collections.abc import Mapping

from edgeq.devices._detect import CameraInfo, Device, current
from edgeq.devices._live import LiveState, ThrottleState
from edgeq.devices._xnnpack import xnnpack_applied

#: the backends light enough for a board, in the order edgeq prefers them
LIGHT_BACKENDS = ("litert", "tflite-runtime")
_TENSORFLOW_DISTS = ("tensorflow", "tensorflow-cpu")
_HOT_C = 80.0
_LOW_MEMORY_MB = 256
_TOO_LITTLE_MEMORY_MB = 100
_LITERT_FIX = "pip install ai-edge-litert"
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


def check_camera(camera: CameraInfo, raspberry_pi: bool) -> Check:
    """Is a camera stack present (picamera2, or a V4L2 camera at ``/dev/video*``)?"""
    if camera.present:
        found = (["picamera2 imports"] if camera.picamera2 else []) + list(camera.video_devices)
        return Check("camera", Status.OK, "; ".join(found))
    if raspberry_pi:
        fix = ("connect a camera and sudo apt install python3-picamera2; in a venv, create it with "
               "python3 -m venv --system-site-packages so that picamera2 is visible")
    else:
        fix = "connect a USB camera (it appears as /dev/video*), or run models on image files"
    return Check("camera", Status.WARN, "no camera stack found (picamera2 not importable, no /dev/video* camera)", fix)


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
    device = device or current()
    live = live or device.live()
    backends = probe_backends()
    tested, applied, error = _probe_xnnpack(backends)
    checks = (
        check_backend(backends, device.arch),
        check_numpy(_installed("numpy"), backends),
        check_xnnpack(tested, applied, error, device.arch),
        check_os(device.arch, device.os_name, device.python),
        check_camera(device.camera, device.revision is not None or (device.board or "").startswith("Raspberry Pi")),
        check_memory(live.mem_available_mb, device.memory_mb),
        check_throttling(live.throttled, live.temperature_c),
    )
    return DoctorReport(device, checks)


def _probe_xnnpack(backends: Mapping[str, BackendProbe]) -> tuple[str | None, bool | None, str | None]:
    from edgeq.runtime.backend import get_backend

    name = next((n for n in LIGHT_BACKENDS if backends[n].usable), None)
    if name is None:
        return None, None, None
    try:
        return name, xnnpack_applied(get_backend(name).Interpreter), None
    except Exception as exc:
        return name, None, f"{type(exc).__name__}: {exc}"


def _dist(backend: str) -> str:
    from edgeq.runtime.backend import BACKENDS

    return BACKENDS[backend][1] if backend in BACKENDS else backend


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _major_minor(version: str) -> tuple[int, int]:
    numbers = [int(n) for n in re.findall(r"\d+", version)[:2]] + [0, 0]
    return numbers[0], numbers[1]
