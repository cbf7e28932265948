"""The runtime's thread default, without full device detection (``Model`` asks for it on every load).

:func:`recommended_threads` reads what :func:`edgeq.devices.detect` reads to choose a board profile (``/proc/cpuinfo``,
the board's model string, the architecture) and only the ``match`` and ``recommended_threads`` fields of the board
files. It builds no device, live-state or profile objects: their modules cost ~15 ms of a start on an x86 core and
several times that on a Pi. ``detect`` identifies the board with the same :func:`identify`, so both agree (tests
compare them on every recorded board).
"""

from __future__ import annotations

import os
import struct
from functools import lru_cache
from pathlib import Path

from edgeq.devices._cpuinfo import CpuInfo, parse_cpuinfo
from edgeq.devices._files import read_text
from edgeq.devices._match import best, builtin_rules, threads_for


def python_machine() -> str:
    """The architecture the running Python is built for (``armv7l`` for a 32-bit Python on a 64-bit ARM kernel)."""
    machine = os.uname().machine  # what platform.machine() returns on Linux, without importing platform
    if machine in ("aarch64", "arm64") and struct.calcsize("P") == 4:
        return "armv7l"  # 32-bit Raspberry Pi OS on a 64-bit kernel: wheels must be armv7l
    return "aarch64" if machine == "arm64" else machine


def is_raspberry_pi(cpu: CpuInfo, model: str | None) -> bool:
    """Whether the model string or the ``Hardware`` line names a Raspberry Pi."""
    return (model or "").startswith("Raspberry Pi") or (cpu.hardware or "").startswith("BCM2")


def identify(root: str, machine: str | None) -> tuple[CpuInfo, str | None, str | None, str | None]:
    """The CPU, the device-tree (or cpuinfo) model string, the board name and the architecture of the tree below ``root``.

    The board name is the model string; without one, a Raspberry Pi's decoded revision, else the DMI vendor and product.
    """
    cpu = parse_cpuinfo(read_text(root, "proc/cpuinfo"))
    model = read_text(root, "proc/device-tree/model") or cpu.model
    arch = machine or (python_machine() if Path(root) == Path("/") else cpu.arch)
    return cpu, model, model or _board_without_model(root, cpu), arch


def _board_without_model(root: str, cpu: CpuInfo) -> str | None:
    if is_raspberry_pi(cpu, None):
        from edgeq.devices._revision import decode_revision  # a Pi kernel without device tree: rare

        revision = decode_revision(cpu.revision)
        if revision:
            return f"Raspberry Pi {revision.board_type}"
    vendor, product = read_text(root, "sys/class/dmi/id/sys_vendor"), read_text(root, "sys/class/dmi/id/product_name")
    return " ".join(p for p in (vendor, product) if p) or None


def recommended_threads(root: str = "/", machine: str | None = None) -> int:
    """``detect(root).recommended_threads``, from the CPU, the board and the board files' rules alone.

    Raises:
        LookupError: no board file matches (only when the catch-all ``generic.json`` is missing).
        OSError, ValueError: a board file is unreadable or malformed.
    """
    if root == "/" and machine is None:
        return _here()
    return _recommended(root, machine)


@lru_cache(maxsize=1)
def _here() -> int:
    return _recommended("/", None)


def _recommended(root: str, machine: str | None) -> int:
    cpu, _, board, arch = identify(root, machine)
    rule = best(builtin_rules(), board, arch)
    if rule is None:
        raise LookupError(f"no board profile matches model={board!r} arch={arch!r}")
    return threads_for(rule.recommended_threads, cpu.physical_cores)
