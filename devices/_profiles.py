"""Board profiles: what to expect from each board family, loaded from ``devices/boards/*.json``.

Each JSON file is one board family; its file name (without ``.json``) is the profile key.
Adding a board means adding a file: the loader globs the folder and validates every file
against :class:`BoardProfile`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

from edgeq.devices import _match
from edgeq.devices._match import BOARDS_DIR
from edgeq.errors import UsageError

if TYPE_CHECKING:
    from edgeq.devices._detect import Device

#: the quantization modes every profile rates (other mode keys may be rated too)
MODES: tuple[str, ...] = ("int8", "uint8", "int16x8", "dynamic", "float16", "float32")
#: how well a mode fits a board, best first
RATINGS: tuple[str, ...] = ("good", "ok", "poor")
#: architectures a profile may match or name a runtime wheel for
ARCHES: tuple[str, ...] = ("aarch64", "armv7l", "armv6l", "x86_64")


@dataclass(frozen=True)
class ModeNote:
    """How well one quantization mode fits a board.

    Args:
        rating: one of :data:`RATINGS`.
        reason: one sentence saying why.
    """

    rating: str
    reason: str

    def __post_init__(self) -> None:
        if self.rating not in RATINGS:
            raise UsageError(f"rating must be one of {', '.join(RATINGS)}. Received: rating={self.rating!r}")
        if not self.reason:
            raise UsageError("a mode note needs a reason. Received: reason=''")


@dataclass(frozen=True)
class RuntimeWheel:
    """Which interpreter wheel installs on one architecture of a board.

    Args:
        package: the distribution edgeq's base install pulls in (``ai-edge-litert``, ``tflite-runtime``),
            or ``None`` when no wheel exists.
        install: the command that installs a working runtime.
        note: anything the user must know (e.g. ``numpy<2``).
    """

    package: str | None
    install: str
    note: str = ""


@dataclass(frozen=True)
class BoardProfile:
    """What edgeq knows about a board family.

    Args:
        key: the profile key, the board file's name (``"rpi4"``).
        name: a human name (``"Raspberry Pi 4 Model B / 400 / Compute Module 4"``).
        aliases: other names accepted by :func:`get_profile` (``"pi4"``, ``"cm4"``).
        match_model: a regex searched in the device's model string; ``None`` matches any model.
        match_arch: the architectures this profile covers; empty covers any.
        soc: the system on chip, if the family has one.
        cpu: the CPU cores (``"4x Cortex-A72 @ 1.5-1.8 GHz"``).
        features: the CPU features the family's cores have (``asimddp``, ``asimdhp``...).
        recommended_threads: interpreter threads to use; ``None`` means the device's physical cores.
        preferred_mode: the quantization mode to prefer.
        preferred_reason: why that mode.
        modes: a :class:`ModeNote` for each mode in :data:`MODES` (and optionally others).
        runtime: a :class:`RuntimeWheel` for each architecture the board runs.
        caveats: known problems and how to avoid them.
    """

    key: str
    name: str
    aliases: tuple[str, ...]
    match_model: str | None
    match_arch: tuple[str, ...]
    soc: str | None
    cpu: str | None
    features: tuple[str, ...]
    recommended_threads: int | None
    preferred_mode: str
    preferred_reason: str
    modes: Mapping[str, ModeNote]
    runtime: Mapping[str, RuntimeWheel]
    caveats: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        where = f"board profile {self.key!r}"
        missing = [m for m in MODES if m not in self.modes]
        if missing:
            raise UsageError(f"{where} must rate every mode in {', '.join(MODES)}. Received no note for: {', '.join(missing)}")
        if self.preferred_mode not in self.modes:
            raise UsageError(f"{where}: preferred_mode must be a rated mode. Received: preferred_mode={self.preferred_mode!r}")
        if self.recommended_threads is not None and (
            not isinstance(self.recommended_threads, int) or self.recommended_threads < 1
        ):
            raise UsageError(
                f"{where}: recommended_threads must be a positive integer or null. "
                f"Received: recommended_threads={self.recommended_threads!r}"
            )
        bad_arch = sorted((set(self.match_arch) | set(self.runtime)) - set(ARCHES))
        if bad_arch:
            raise UsageError(f"{where}: architectures must be among {', '.join(ARCHES)}. Received: {', '.join(bad_arch)}")
        if self.match_model is not None:
            try:
                re.compile(self.match_model)
            except re.error as exc:
                raise UsageError(f"{where}: match.model must be a valid regex. Received: {self.match_model!r} ({exc})") from None

    @property
    def specificity(self) -> int:
        """2 for a profile matched by model string, 1 by architecture only, 0 for the catch-all."""
        return _match.specificity(self.match_model, self.match_arch)

    def matches(self, model: str | None, arch: str | None) -> bool:
        """Whether a device with this model string and architecture belongs to this family."""
        return _match.matches(self.match_model, self.match_arch, model, arch)

    def threads_for(self, physical_cores: int | None) -> int:
        """The interpreter threads to use on a device of this family with ``physical_cores`` cores."""
        return _match.threads_for(self.recommended_threads, physical_cores)

    def to_dict(self) -> dict[str, Any]:
        """The profile in the layout of its JSON file, plus its ``key``."""
        return {
            "key": self.key,
            "name": self.name,
            "aliases": list(self.aliases),
            "match": {"model": self.match_model, "arch": list(self.match_arch)},
            "soc": self.soc,
            "cpu": self.cpu,
            "features": list(self.features),
            "recommended_threads": self.recommended_threads,
            "preferred_mode": {"mode": self.preferred_mode, "why": self.preferred_reason},
            "modes": {mode: asdict(note) for mode, note in self.modes.items()},
            "runtime": {arch: asdict(wheel) for arch, wheel in self.runtime.items()},
            "caveats": list(self.caveats),
        }

    @classmethod
    def from_dict(cls, key: str, d: Mapping[str, Any]) -> BoardProfile:
        """Build a profile from the content of its JSON file.

        Raises:
            UsageError: a field is missing, unknown or invalid; the message names the profile.
        """
        known = {"name", "aliases", "match", "soc", "cpu", "features", "recommended_threads",
                 "preferred_mode", "modes", "runtime", "caveats"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UsageError(
                f"board profile {key!r} has unknown fields: {', '.join(unknown)}; expected only {', '.join(sorted(known))}"
            )
        try:
            match, preferred = d.get("match") or {}, d["preferred_mode"]
            return cls(
                key=key,
                name=str(d["name"]),
                aliases=tuple(d.get("aliases", ())),
                match_model=match.get("model"),
                match_arch=tuple(match.get("arch", ())),
                soc=d.get("soc"),
                cpu=d.get("cpu"),
                features=tuple(d.get("features", ())),
                recommended_threads=d.get("recommended_threads"),
                preferred_mode=preferred["mode"],
                preferred_reason=preferred["why"],
                modes={mode: ModeNote(**note) for mode, note in d["modes"].items()},
                runtime={arch: RuntimeWheel(**wheel) for arch, wheel in d.get("runtime", {}).items()},
                caveats=tuple(d.get("caveats", ())),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"board profile {key!r} is malformed ({type(exc).__name__}: {exc}); compare it with rpi4.json"
            ) from None
        except UsageError as exc:
            if str(exc).startswith("board profile"):
                raise
            raise UsageError(f"board profile {key!r}: {exc}") from None


def load_profiles(folder: str | Path | None = None) -> dict[str, BoardProfile]:
    """Load and validate every ``*.json`` board file in ``folder`` (default: the built-in boards).

    Returns:
        Profile key -> profile, sorted by key.

    Raises:
        UsageError: a file is not valid JSON or not a valid profile.
    """
    if folder is None:
        return dict(_builtin_profiles())
    profiles = {}
    for path in sorted(Path(folder).glob("*.json"), key=lambda p: p.stem):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"board file {path} must be readable JSON ({exc})") from None
        profiles[path.stem] = BoardProfile.from_dict(path.stem, data)
    return profiles


@lru_cache(maxsize=1)
def _builtin_profiles() -> dict[str, BoardProfile]:
    return load_profiles(BOARDS_DIR)


def known_profiles() -> list[BoardProfile]:
    """The built-in board profiles, sorted by key."""
    return list(_builtin_profiles().values())


def get_profile(name: str) -> BoardProfile:
    """The built-in profile with this key or alias (case-insensitive), e.g. ``"rpi4"`` or ``"pi4"``.

    ``"auto"`` gives the profile of the device edgeq runs on.

    Raises:
        UsageError: no profile has that name; the message lists the known ones.
    """
    wanted = name.strip().lower()
    if wanted == "auto":
        from edgeq.devices._detect import current

        return profile_for(current())
    for profile in known_profiles():
        if wanted == profile.key or wanted in (a.lower() for a in profile.aliases):
            return profile
    names = ", ".join(p.key for p in known_profiles())
    raise UsageError(f"unknown board {name!r}; expected one of {names} (or an alias from 'edgeq devices --list'), or auto")


def match_profile(model: str | None, arch: str | None, profiles: Mapping[str, BoardProfile] | None = None) -> BoardProfile:
    """The most specific profile matching a model string and architecture.

    Args:
        model: the board model string (device-tree ``model``, e.g. ``"Raspberry Pi 5 Model B Rev 1.0"``).
        arch: the architecture (``aarch64``, ``armv7l``, ``x86_64``...).
        profiles: the profiles to choose from; default: the built-in ones.

    Raises:
        UsageError: no profile matches, which happens only when the catch-all ``generic`` file is missing.
    """
    candidates = [p for p in (profiles or _builtin_profiles()).values() if p.matches(model, arch)]
    if not candidates:
        raise UsageError(f"no board profile matches model={model!r} arch={arch!r}; add a catch-all profile without match rules")
    return max(candidates, key=lambda p: p.specificity)


def profile_for(device: Device) -> BoardProfile:
    """The built-in profile of a :class:`~edgeq.devices.Device` (by its model string and architecture)."""
    return match_profile(device.board, device.arch)
