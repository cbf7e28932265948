"""The state of the device right now: temperature, clock, governor, free memory, throttling."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeq.devices._files import read_int, read_key_values, read_text

_CPUFREQ = "sys/devices/system/cpu/cpu0/cpufreq"
_VCGENCMD_TIMEOUT_S = 2.0
#: thermal zone types that measure the CPU, best first (Raspberry Pi, Jetson, x86, Rockchip)
_CPU_ZONE_HINTS = ("cpu", "x86_pkg_temp", "soc")


@dataclass(frozen=True)
class ThrottleState:
    """The bits of ``vcgencmd get_throttled`` on a Raspberry Pi, decoded.

    Bits 0-3 describe now, bits 16-19 whether it happened since boot.

    Args:
        raw: the value ``vcgencmd`` printed (``0x50005`` means under-voltage and throttling now).
    """

    raw: int

    def _bit(self, n: int) -> bool:
        return bool(self.raw >> n & 1)

    @property
    def under_voltage(self) -> bool:
        """The supply is below 4.63 V now."""
        return self._bit(0)

    @property
    def freq_capped(self) -> bool:
        """The ARM clock is capped now."""
        return self._bit(1)

    @property
    def throttled(self) -> bool:
        """The ARM clock is throttled now."""
        return self._bit(2)

    @property
    def soft_temp_limit(self) -> bool:
        """The soft temperature limit is active now."""
        return self._bit(3)

    @property
    def under_voltage_occurred(self) -> bool:
        """Under-voltage happened since boot."""
        return self._bit(16)

    @property
    def freq_capped_occurred(self) -> bool:
        """Frequency capping happened since boot."""
        return self._bit(17)

    @property
    def throttled_occurred(self) -> bool:
        """Throttling happened since boot."""
        return self._bit(18)

    @property
    def soft_temp_limit_occurred(self) -> bool:
        """The soft temperature limit was reached since boot."""
        return self._bit(19)

    @property
    def active(self) -> list[str]:
        """The names of the flags that are set, for display."""
        return [name for name in _FLAG_NAMES if getattr(self, name)]

    def to_dict(self) -> dict[str, Any]:
        """The raw value in hex and each flag, JSON-ready."""
        return {"raw": hex(self.raw), **{name: getattr(self, name) for name in _FLAG_NAMES}}


_FLAG_NAMES = (
    "under_voltage", "freq_capped", "throttled", "soft_temp_limit",
    "under_voltage_occurred", "freq_capped_occurred", "throttled_occurred", "soft_temp_limit_occurred",
)


def decode_throttled(output: str | None) -> ThrottleState | None:
    """Decode the output of ``vcgencmd get_throttled`` (``"throttled=0x50005"``), or ``None``."""
    if not output:
        return None
    _, _, value = output.strip().rpartition("=")
    try:
        return ThrottleState(int(value, 16))
    except ValueError:
        return None


@dataclass(frozen=True)
class LiveState:
    """A snapshot of the device state; every field is ``None`` when unknown.

    Args:
        temperature_c: CPU temperature in degrees Celsius.
        freq_cur_mhz: current clock of CPU 0.
        freq_max_mhz: maximum clock of CPU 0.
        governor: the cpufreq governor (``ondemand``, ``performance``, ``schedutil``...).
        mem_available_mb: memory available to a new process (``MemAvailable``).
        throttled: the Raspberry Pi throttling flags, when ``vcgencmd`` is there.
    """

    temperature_c: float | None
    freq_cur_mhz: int | None
    freq_max_mhz: int | None
    governor: str | None
    mem_available_mb: int | None
    throttled: ThrottleState | None

    def to_dict(self) -> dict[str, Any]:
        """The fields, JSON-ready."""
        out = asdict(self)
        out["throttled"] = self.throttled.to_dict() if self.throttled else None
        return out


def read_live(root: str | Path = "/") -> LiveState:
    """Read the live state of the system below ``root``.

    ``vcgencmd`` is run (with a short timeout) only for the real system, ``root="/"``, and only
    when it is on ``PATH``.
    """
    meminfo = read_key_values(root, "proc/meminfo", ":")
    return LiveState(
        temperature_c=_temperature(root),
        freq_cur_mhz=_mhz(read_int(root, f"{_CPUFREQ}/scaling_cur_freq")),
        freq_max_mhz=_mhz(read_int(root, f"{_CPUFREQ}/cpuinfo_max_freq") or read_int(root, f"{_CPUFREQ}/scaling_max_freq")),
        governor=read_text(root, f"{_CPUFREQ}/scaling_governor"),
        mem_available_mb=kib_to_mb(meminfo.get("MemAvailable")),
        throttled=decode_throttled(_vcgencmd_throttled()) if Path(root) == Path("/") else None,
    )


def kib_to_mb(value: str | None) -> int | None:
    """``"3794304 kB"`` (a ``/proc/meminfo`` value) -> ``3705`` MiB, or ``None``."""
    try:
        return int(str(value).split()[0]) // 1024
    except (ValueError, IndexError):
        return None


def _mhz(khz: int | None) -> int | None:
    return round(khz / 1000) if khz else None


def _temperature(root: str | Path) -> float | None:
    zones = sorted((Path(root) / "sys/class/thermal").glob("thermal_zone*"), key=lambda p: p.name)

    def rank(zone: Path) -> int:
        kind = (read_text(zone, "type") or "").lower()
        return next((i for i, hint in enumerate(_CPU_ZONE_HINTS) if hint in kind), len(_CPU_ZONE_HINTS))

    for zone in sorted(zones, key=rank):
        millideg = read_int(zone, "temp")
        if millideg is not None:
            return round(millideg / 1000, 1)
    return None


def _vcgencmd_throttled() -> str | None:
    import shutil  # here: subprocess is ~4 ms of every start, and only a Pi's live state runs vcgencmd
    import subprocess

    binary = shutil.which("vcgencmd")
    if binary is None:
        return None
    try:
        done = subprocess.run(
            [binary, "get_throttled"], capture_output=True, text=True, timeout=_VCGENCMD_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None
