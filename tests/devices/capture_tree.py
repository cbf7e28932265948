"""Capture the files device detection reads from a live system into a fixture tree, with a SOURCE note.

Usage (on the board, or on any Linux machine; nothing is written outside NAME)::

    python3 tests/devices/capture_tree.py tests/devices/fixtures/NAME "where this ran (board, OS image)"

It copies, when present: ``/proc/cpuinfo``, ``/proc/meminfo``, ``/proc/device-tree/model``,
``/proc/sys/kernel/osrelease``, ``/etc/os-release``, the DMI vendor and product name, ``cpu0``'s cpufreq
files, the thermal zones' ``type`` and ``temp``, and the names of ``/dev/video*`` devices (empty files) with
their ``/sys/class/video4linux/*/name``. Serial numbers are blanked (``Serial : 0000…``) and no other file
is read, so a capture holds no identifiers beyond the hardware model.
"""

from __future__ import annotations

import datetime
import platform
import re
import sys
from pathlib import Path

FILES = ("proc/cpuinfo", "proc/meminfo", "proc/device-tree/model", "proc/sys/kernel/osrelease", "etc/os-release",
         "sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/product_name")
CPUFREQ = ("scaling_cur_freq", "scaling_min_freq", "scaling_max_freq", "cpuinfo_min_freq", "cpuinfo_max_freq",
           "scaling_governor")


def _copy(src: Path, dest: Path) -> bool:
    try:
        data = src.read_bytes()
    except OSError:
        return False
    if src.name == "cpuinfo":
        data = re.sub(rb"^(Serial\s*:\s*)\S+", lambda m: m.group(1) + b"0" * 16, data, flags=re.MULTILINE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return True


def capture(out: Path, where: str, root: Path = Path("/")) -> list[str]:
    """Copy the detection files below ``root`` into ``out``; returns the paths copied."""
    copied = [rel for rel in FILES if _copy(root / rel, out / rel)]
    freq = "sys/devices/system/cpu/cpu0/cpufreq"
    copied += [f"{freq}/{n}" for n in CPUFREQ if _copy(root / freq / n, out / freq / n)]
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        rel = zone.relative_to(root)
        copied += [f"{rel}/{n}" for n in ("type", "temp") if _copy(zone / n, out / rel / n)]
    for video in sorted((root / "dev").glob("video*")):
        (out / "dev").mkdir(parents=True, exist_ok=True)
        (out / "dev" / video.name).touch()
        name = f"sys/class/video4linux/{video.name}/name"
        copied += [f"dev/{video.name}"] + ([name] if _copy(root / name, out / name) else [])
    (out / "SOURCE").write_text(
        f"Captured by tests/devices/capture_tree.py on {datetime.date.today().isoformat()} "
        f"({platform.machine()}): {where}\nFiles: {', '.join(copied)}\n", encoding="utf-8")
    return copied


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.split("\n\n")[1])
    print("\n".join(capture(Path(sys.argv[1]), sys.argv[2])))
