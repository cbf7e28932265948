"""``check_mode_fit``: the warnings ``edgeq convert --target`` shows."""

from __future__ import annotations

import pytest

from edgeq.devices import check_mode_fit, get_profile, known_profiles


def test_float16_is_not_accelerated_on_a72() -> None:
    (warning,) = check_mode_fit(get_profile("pi4"), "float16")
    assert warning.startswith("float16 is a poor fit for Raspberry Pi 4")
    assert "no float16 arithmetic" in warning and "Prefer int8" in warning


def test_int8_gains_less_without_dot_product() -> None:
    for board in ("pi3", "pi4", "zero2", "jetson-nano"):
        (warning,) = check_mode_fit(get_profile(board), "int8")
        assert "only an ok fit" in warning and "dot-product" in warning
        assert "Prefer" not in warning  # int8 is still the preferred mode there


def test_int8_with_dot_product_is_silent() -> None:
    for board in ("pi5", "orin", "rk3588"):
        assert check_mode_fit(get_profile(board), "int8") == []


@pytest.mark.parametrize("profile", known_profiles(), ids=lambda p: p.key)
def test_int16x8_is_slow_everywhere(profile) -> None:  # type: ignore[no-untyped-def]
    (warning,) = check_mode_fit(profile, "int16x8")
    assert "poor fit" in warning and "XNNPACK" in warning


def test_unrated_mode_gives_no_warning() -> None:
    assert check_mode_fit(get_profile("pi5"), "int4") == []
