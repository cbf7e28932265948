"""Decoding Raspberry Pi board revision codes (the ``Revision`` line of ``/proc/cpuinfo``).

New-style codes (bit 23 set) pack the fields as ``NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR``, per
https://www.raspberrypi.com/documentation/computers/raspberry-pi.html#raspberry-pi-revision-codes:
``MMM`` memory size, ``CCCC`` manufacturer, ``PPPP`` processor, ``TTTTTTTT`` board type and
``RRRR`` board revision. Older boards (Pi 1, Compute Module 1) use a table of fixed codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

_NEW_STYLE_FLAG = 1 << 23

BOARD_TYPES: dict[int, str] = {
    0x00: "A", 0x01: "B", 0x02: "A+", 0x03: "B+", 0x04: "2B", 0x05: "Alpha (early prototype)",
    0x06: "CM1", 0x08: "3B", 0x09: "Zero", 0x0A: "CM3", 0x0C: "Zero W", 0x0D: "3B+", 0x0E: "3A+",
    0x0F: "Internal use only", 0x10: "CM3+", 0x11: "4B", 0x12: "Zero 2 W", 0x13: "400", 0x14: "CM4",
    0x15: "CM4S", 0x16: "Internal use only", 0x17: "5", 0x18: "CM5", 0x19: "500", 0x1A: "CM5 Lite",
}
PROCESSORS: dict[int, str] = {0: "BCM2835", 1: "BCM2836", 2: "BCM2837", 3: "BCM2711", 4: "BCM2712"}
MANUFACTURERS: dict[int, str] = {
    0: "Sony UK", 1: "Egoman", 2: "Embest", 3: "Sony Japan", 4: "Embest", 5: "Stadium",
}
MEMORY_MB: dict[int, int] = {0: 256, 1: 512, 2: 1024, 3: 2048, 4: 4096, 5: 8192, 6: 16384}

#: old-style code -> (type, board revision, memory MB, manufacturer); all use the BCM2835
OLD_STYLE: dict[int, tuple[str, str, int, str]] = {
    0x0002: ("B", "1.0", 256, "Egoman"), 0x0003: ("B", "1.0", 256, "Egoman"),
    0x0004: ("B", "2.0", 256, "Sony UK"), 0x0005: ("B", "2.0", 256, "Qisda"),
    0x0006: ("B", "2.0", 256, "Egoman"), 0x0007: ("A", "2.0", 256, "Egoman"),
    0x0008: ("A", "2.0", 256, "Sony UK"), 0x0009: ("A", "2.0", 256, "Qisda"),
    0x000D: ("B", "2.0", 512, "Egoman"), 0x000E: ("B", "2.0", 512, "Sony UK"),
    0x000F: ("B", "2.0", 512, "Egoman"), 0x0010: ("B+", "1.2", 512, "Sony UK"),
    0x0011: ("CM1", "1.0", 512, "Sony UK"), 0x0012: ("A+", "1.1", 256, "Sony UK"),
    0x0013: ("B+", "1.2", 512, "Embest"), 0x0014: ("CM1", "1.0", 512, "Embest"),
    0x0015: ("A+", "1.1", 256, "Embest"),
}


@dataclass(frozen=True)
class PiRevision:
    """A decoded Raspberry Pi revision code.

    Args:
        code: the code as printed in ``/proc/cpuinfo`` (hex, e.g. ``"c03114"``).
        board_type: the model, as the documentation names it (``"4B"``, ``"Zero 2 W"``, ``"5"``).
        processor: the SoC the code names (``"BCM2711"``; the Zero 2 W's RP3A0 reports ``"BCM2837"``).
        memory_mb: the RAM fitted to the board (``None`` for a size code the documentation lacks).
        manufacturer: who built the board.
        board_revision: the PCB revision, e.g. ``"1.4"``.
        new_style: whether the code uses the bit-field layout (every board since the Pi 2).
    """

    code: str
    board_type: str
    processor: str
    memory_mb: int | None
    manufacturer: str
    board_revision: str
    new_style: bool

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


def decode_revision(code: str | int | None) -> PiRevision | None:
    """Decode a Raspberry Pi revision code.

    Args:
        code: the ``Revision`` value from ``/proc/cpuinfo`` (``"c03114"``, ``"0x902120"``) or its integer.

    Returns:
        The decoded revision, or ``None`` when ``code`` is not a Raspberry Pi revision code
        (boards from other makers print their own, or no, ``Revision`` line).
    """
    try:
        value = code if isinstance(code, int) else int(str(code).strip(), 16)
    except ValueError:
        return None
    text = f"{value:x}"
    if value & _NEW_STYLE_FLAG:
        return PiRevision(
            code=text,
            board_type=BOARD_TYPES.get((value >> 4) & 0xFF, f"unknown type {(value >> 4) & 0xFF:#x}"),
            processor=PROCESSORS.get((value >> 12) & 0xF, f"unknown processor {(value >> 12) & 0xF}"),
            memory_mb=MEMORY_MB.get((value >> 20) & 0x7),
            manufacturer=MANUFACTURERS.get((value >> 16) & 0xF, f"unknown manufacturer {(value >> 16) & 0xF}"),
            board_revision=f"1.{value & 0xF}",
            new_style=True,
        )
    old = OLD_STYLE.get(value & 0xFFFFFF)  # bit 24 marks a voided warranty on old boards
    if old is None:
        return None
    board_type, board_revision, memory_mb, manufacturer = old
    return PiRevision(text, board_type, "BCM2835", memory_mb, manufacturer, board_revision, False)
