"""Detecting the device edgeq runs on: board, CPU, memory, OS, Python, backend and camera."""

from __future__ import annotations

import importlib.util
import logging
import platform
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgeq.devices._files import read_key_values, read_text
from edgeq.devices._live import LiveState, kib_to_mb, read_live
from edgeq.devices._profiles import match_profile
from edgeq.devices._revision import PiRevision, decode_revision
from edgeq.devices._threads import identify, is_raspberry_pi

logger = logging.getLogger(__name__)

#: V4L2 node names that are codecs or ISPs, not cameras (Raspberry Pi boards have several)
_NOT_A_CAMERA = re.compile(r"codec|isp|pispbe|hevc|rpivid|decode|encode|mem2mem|embedded|metadata", re.IGNORECASE)


@dataclass(frozen=True)
class CameraInfo:
    """Which camera stack is present.

    Args:
        picamera2: whether this Python can import ``picamera2`` (the Raspberry Pi camera library).
        video_devices: the V4L2 nodes that look like cameras, e.g. ``"/dev/video0 (HD Webcam)"``;
            codec and ISP nodes, and a camera's secondary (metadata) nodes, are left out.
    """

    picamera2: bool
    video_devices: tuple[str, ...]

    @property
    def present(self) -> bool:
        """Whether any camera stack was found."""
        return self.picamera2 or bool(self.video_devices)

    def to_dict(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        return {"picamera2": self.picamera2, "video_devices": list(self.video_devices), "present": self.present}


@dataclass(frozen=True)
class BackendInfo:
    """The TFLite interpreter edgeq would use by default."""

    name: str
    version: str

    def to_dict(self) -> dict[str, str]:
        """The fields, JSON-ready."""
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class Device:
    """A detected device. Fields that could not be read are ``None`` ("unknown").

    ``python`` and ``backend`` always describe the running interpreter, even when the other
    fields were read from a recorded tree through ``detect(root=...)``.

    Args:
        board: the board's model string (``"Raspberry Pi 4 Model B Rev 1.4"``, a DMI product name on PCs).
        profile: the key of the matching board profile (``"rpi4"``); see :func:`profile_for`.
        soc: the system on chip (``"BCM2711"``).
        cpu_part: the core names (``"Cortex-A72"``; ``"Cortex-A55 + Cortex-A76"`` on big.LITTLE).
        arch: the architecture the Python runs as (``aarch64``, ``armv7l``, ``x86_64``).
        cores: logical CPUs.
        physical_cores: physical cores (fewer than ``cores`` with x86 hyper-threading).
        features: the ML-relevant CPU features (``asimddp`` = int8 dot product, ``asimdhp`` = fp16 arithmetic).
        memory_mb: RAM the kernel sees (``MemTotal``).
        revision: the decoded Raspberry Pi revision code.
        os_name: the OS's pretty name (``"Debian GNU/Linux 12 (bookworm)"``).
        os_id: the OS id (``debian``, ``raspbian``, ``ubuntu``).
        os_release: the OS version (``"12"``).
        kernel: the kernel release.
        python: the Python version.
        backend: the default interpreter backend, or ``None`` when none imports.
        camera: the camera stack found.
        recommended_threads: interpreter threads to use (the profile's value, else the physical cores).
        root: the folder that was read as ``/``.
    """

    board: str | None
    profile: str
    soc: str | None
    cpu_part: str | None
    arch: str | None
    cores: int | None
    physical_cores: int | None
    features: tuple[str, ...]
    memory_mb: int | None
    revision: PiRevision | None
    os_name: str | None
    os_id: str | None
    os_release: str | None
    kernel: str | None
    python: str
    backend: BackendInfo | None
    camera: CameraInfo
    recommended_threads: int
    root: str = field(default="/", repr=False, compare=False)

    @property
    def int8_dot_product(self) -> bool:
        """Whether the cores have int8 dot-product instructions (ARM ``asimddp``, x86 VNNI)."""
        return bool({"asimddp", "avx512_vnni", "avx_vnni"} & set(self.features))

    @property
    def fp16_arithmetic(self) -> bool:
        """Whether the cores compute in float16 natively (ARM ``asimdhp``, x86 AVX512-FP16)."""
        return bool({"asimdhp", "avx512_fp16"} & set(self.features))

    def live(self) -> LiveState:
        """Read the current temperature, clocks, free memory and throttling of this device."""
        return read_live(self.root)

    def to_dict(self) -> dict[str, Any]:
        """All fields and the derived feature flags, JSON-ready (``root`` is left out)."""
        return {
            "board": self.board,
            "profile": self.profile,
            "soc": self.soc,
            "cpu_part": self.cpu_part,
            "arch": self.arch,
            "cores": self.cores,
            "physical_cores": self.physical_cores,
            "features": list(self.features),
            "int8_dot_product": self.int8_dot_product,
            "fp16_arithmetic": self.fp16_arithmetic,
            "memory_mb": self.memory_mb,
            "revision": self.revision.to_dict() if self.revision else None,
            "os": {"name": self.os_name, "id": self.os_id, "release": self.os_release, "kernel": self.kernel},
            "python": self.python,
            "backend": self.backend.to_dict() if self.backend else None,
            "camera": self.camera.to_dict(),
            "recommended_threads": self.recommended_threads,
        }


def detect(root: str | Path = "/", machine: str | None = None) -> Device:
    """Detect the device whose ``/proc``, ``/sys``, ``/dev`` and ``/etc`` are below ``root``.

    Never raises for missing or odd files: what cannot be read is ``None``.

    Args:
        root: the folder to read as ``/``; tests pass recorded trees of real boards.
        machine: the architecture to report. Default: the running Python's for ``root="/"``
            (a 32-bit Python on a 64-bit kernel is ``armv7l``), else what ``proc/cpuinfo`` implies.

    Returns:
        The detected :class:`Device`.
    """
    root = str(root)
    cpu, board, revision, arch, profile = _board(root, machine)
    os_release = read_key_values(root, "etc/os-release", "=")
    physical = cpu.physical_cores
    return Device(
        board=board,
        profile=profile.key,
        soc=revision.processor if revision and not profile.soc else profile.soc,
        cpu_part=cpu.cpu_part,
        arch=arch,
        cores=cpu.logical_cores,
        physical_cores=physical,
        features=cpu.features,
        memory_mb=kib_to_mb(read_key_values(root, "proc/meminfo", ":").get("MemTotal")),
        revision=revision,
        os_name=os_release.get("PRETTY_NAME"),
        os_id=os_release.get("ID"),
        os_release=os_release.get("VERSION_ID"),
        kernel=read_text(root, "proc/sys/kernel/osrelease"),
        python=platform.python_version(),
        backend=_default_backend(),
        camera=_camera(root),
        recommended_threads=profile.threads_for(physical),
        root=root,
    )


def _board(root: str, machine: str | None) -> tuple[Any, str | None, PiRevision | None, str, Any]:
    """The CPU, board name, Pi revision, architecture and matching profile of the tree below ``root``."""
    cpu, model, board, arch = identify(root, machine)
    revision = decode_revision(cpu.revision) if is_raspberry_pi(cpu, model) else None
    return cpu, board, revision, arch, match_profile(board, arch)


@lru_cache(maxsize=1)
def current() -> Device:
    """The device edgeq runs on, detected once per process (``current.cache_clear()`` re-detects).

    This is what ``edgeq profile`` puts in its reports; the runtime's thread default reads the same board rules
    without the rest (:func:`edgeq.devices._threads.recommended_threads`).
    """
    return detect("/")


def _camera(root: str) -> CameraInfo:
    nodes = []
    for dev in sorted((Path(root) / "dev").glob("video*")):
        sysfs = f"sys/class/video4linux/{dev.name}"
        name = read_text(root, f"{sysfs}/name")
        secondary = read_text(root, f"{sysfs}/index") not in (None, "0")  # e.g. a webcam's metadata node
        if not secondary and not (name and _NOT_A_CAMERA.search(name)):
            nodes.append(f"/dev/{dev.name}" + (f" ({name})" if name else ""))
    try:
        picamera2 = importlib.util.find_spec("picamera2") is not None
    except (ImportError, ValueError):
        picamera2 = False
    return CameraInfo(picamera2=picamera2, video_devices=tuple(nodes))


def _default_backend() -> BackendInfo | None:
    from edgeq.errors import EdgeqError
    from edgeq.runtime.backend import get_backend

    try:
        backend = get_backend()
    except (EdgeqError, ImportError) as exc:
        logger.debug("no interpreter backend: %s", exc)
        return None
    return BackendInfo(backend.name, backend.version)
