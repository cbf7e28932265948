"""Warning when a quantization mode is a poor fit for the board a model is converted for."""

from __future__ import annotations

from edgeq.devices._profiles import BoardProfile


def check_mode_fit(profile: BoardProfile, mode: str) -> list[str]:
    """The warnings to show when converting with ``mode`` for a board of ``profile``.

    A mode rated ``good`` gives no warning; ``ok`` and ``poor`` give one that says why and,
    unless it already is the preferred mode, which mode to prefer. Mode names are not
    validated here (the converter's registry does that): a mode the profile does not rate
    gives no warning.

    Args:
        profile: the target board's profile, e.g. ``get_profile("pi4")``.
        mode: the quantization mode key (``int8``, ``int16x8``, ``float16``...).

    Returns:
        One-line warnings, empty when the mode fits.

    Example:
        >>> check_mode_fit(get_profile("rpi4"), "float16")  # doctest: +ELLIPSIS
        ['float16 is a poor fit for Raspberry Pi 4...']
    """
    note = profile.modes.get(mode)
    if note is None or note.rating == "good":
        return []
    fit = "a poor" if note.rating == "poor" else "only an ok"
    warning = f"{mode} is {fit} fit for {profile.name}: {note.reason}"
    if mode != profile.preferred_mode:
        warning += f" Prefer {profile.preferred_mode}: {profile.preferred_reason}"
    return [warning]
