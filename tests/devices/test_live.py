"""Decoding ``vcgencmd get_throttled``."""

from __future__ import annotations

import pytest

from edgeq.devices import ThrottleState, decode_throttled


def test_nothing_set() -> None:
    state = decode_throttled("throttled=0x0\n")
    assert state == ThrottleState(0)
    assert state.active == []
    assert state.to_dict()["raw"] == "0x0"


def test_under_voltage_and_throttling_now_and_since_boot() -> None:
    state = decode_throttled("throttled=0x50005")
    assert state is not None
    assert state.active == ["under_voltage", "throttled", "under_voltage_occurred", "throttled_occurred"]
    assert not state.freq_capped and not state.soft_temp_limit


@pytest.mark.parametrize(
    "raw, flag",
    [(0x1, "under_voltage"), (0x2, "freq_capped"), (0x4, "throttled"), (0x8, "soft_temp_limit"),
     (0x10000, "under_voltage_occurred"), (0x20000, "freq_capped_occurred"), (0x40000, "throttled_occurred"),
     (0x80000, "soft_temp_limit_occurred")],
)
def test_each_bit(raw: int, flag: str) -> None:
    state = decode_throttled(f"throttled={raw:#x}")
    assert state is not None and state.active == [flag]
    assert state.to_dict()[flag] is True


@pytest.mark.parametrize("output", [None, "", "error: VCHI not available", "throttled=zz"])
def test_unreadable_output_is_unknown(output: str | None) -> None:
    assert decode_throttled(output) is None
