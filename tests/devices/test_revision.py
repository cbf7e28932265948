"""Raspberry Pi revision codes, decoded per the Raspberry Pi documentation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeq.devices import decode_revision
from edgeq.devices._revision import BOARD_TYPES, MANUFACTURERS, MEMORY_MB, PROCESSORS


@pytest.mark.parametrize(
    "code, board_type, processor, memory_mb, manufacturer, board_revision",
    [
        ("a02082", "3B", "BCM2837", 1024, "Sony UK", "1.2"),
        ("a22082", "3B", "BCM2837", 1024, "Embest", "1.2"),
        ("a020d3", "3B+", "BCM2837", 1024, "Sony UK", "1.3"),
        ("9020e0", "3A+", "BCM2837", 512, "Sony UK", "1.0"),
        ("902120", "Zero 2 W", "BCM2837", 512, "Sony UK", "1.0"),
        ("a03111", "4B", "BCM2711", 1024, "Sony UK", "1.1"),
        ("b03115", "4B", "BCM2711", 2048, "Sony UK", "1.5"),
        ("c03114", "4B", "BCM2711", 4096, "Sony UK", "1.4"),
        ("d03114", "4B", "BCM2711", 8192, "Sony UK", "1.4"),
        ("c03130", "400", "BCM2711", 4096, "Sony UK", "1.0"),
        ("d03140", "CM4", "BCM2711", 8192, "Sony UK", "1.0"),
        ("c04170", "5", "BCM2712", 4096, "Sony UK", "1.0"),
        ("d04170", "5", "BCM2712", 8192, "Sony UK", "1.0"),
        ("e04171", "5", "BCM2712", 16384, "Sony UK", "1.1"),
        ("9000c1", "Zero W", "BCM2835", 512, "Sony UK", "1.1"),
        ("0x00c03114", "4B", "BCM2711", 4096, "Sony UK", "1.4"),
    ],
)
def test_new_style_codes(
    code: str, board_type: str, processor: str, memory_mb: int, manufacturer: str, board_revision: str
) -> None:
    rev = decode_revision(code)
    assert rev is not None and rev.new_style
    assert (rev.board_type, rev.processor, rev.memory_mb, rev.manufacturer, rev.board_revision) == (
        board_type, processor, memory_mb, manufacturer, board_revision)


@pytest.mark.parametrize(
    "code, board_type, memory_mb, manufacturer",
    [("0002", "B", 256, "Egoman"), ("000e", "B", 512, "Sony UK"), ("0010", "B+", 512, "Sony UK"),
     ("0013", "B+", 512, "Embest"), ("1000002", "B", 256, "Egoman")],  # bit 24: warranty voided
)
def test_old_style_codes(code: str, board_type: str, memory_mb: int, manufacturer: str) -> None:
    rev = decode_revision(code)
    assert rev is not None and not rev.new_style
    assert (rev.board_type, rev.processor, rev.memory_mb, rev.manufacturer) == (board_type, "BCM2835", memory_mb, manufacturer)


@pytest.mark.parametrize("code", [None, "", "zz", "0000", "0x1", "not a code"])
def test_non_codes_decode_to_none(code: str | None) -> None:
    assert decode_revision(code) is None


@given(
    memory=st.sampled_from(sorted(MEMORY_MB)),
    maker=st.sampled_from(sorted(MANUFACTURERS)),
    processor=st.sampled_from(sorted(PROCESSORS)),
    board=st.sampled_from(sorted(BOARD_TYPES)),
    pcb=st.integers(0, 15),
)
def test_new_style_fields_round_trip(memory: int, maker: int, processor: int, board: int, pcb: int) -> None:
    code = 1 << 23 | memory << 20 | maker << 16 | processor << 12 | board << 4 | pcb
    rev = decode_revision(f"{code:x}")
    assert rev is not None
    assert (rev.memory_mb, rev.manufacturer, rev.processor, rev.board_type, rev.board_revision) == (
        MEMORY_MB[memory], MANUFACTURERS[maker], PROCESSORS[processor], BOARD_TYPES[board], f"1.{pcb}")
    assert decode_revision(code) == rev
