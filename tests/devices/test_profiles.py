"""Board profiles are data: every file validates, names resolve, adding a board = adding a file."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from edgeq.devices import BOARDS_DIR, MODES, BoardProfile, detect, get_profile, known_profiles, load_profiles, match_profile
from edgeq.errors import UsageError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BOARD_FILES = sorted(BOARDS_DIR.glob("*.json"))


def test_issue_board_families_are_present() -> None:
    keys = {p.key for p in known_profiles()}
    assert {"rpi3", "rpi4", "rpi5", "rpi-zero2", "jetson-nano", "jetson-orin", "x86_64",
            "generic-aarch64", "generic-armv7l", "generic"} <= keys


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_every_board_file_validates_and_round_trips(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    profile = BoardProfile.from_dict(path.stem, data)
    assert set(MODES) <= set(profile.modes)
    assert profile.preferred_mode in profile.modes
    assert all(note.reason.endswith(".") for note in profile.modes.values())
    round_trip = profile.to_dict()
    assert round_trip.pop("key") == path.stem
    assert round_trip == json.loads(json.dumps(data))  # the file holds exactly what the dataclass holds
    if profile.match_arch:
        assert set(profile.match_arch) <= set(profile.runtime), "every matched architecture names its runtime wheel"


def test_load_profiles_loads_every_file() -> None:
    assert sorted(load_profiles()) == sorted(p.stem for p in BOARD_FILES)


def test_names_and_aliases_are_unique() -> None:
    names = [n.lower() for p in known_profiles() for n in (p.key, *p.aliases)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("name, key", [("rpi4", "rpi4"), ("pi4", "rpi4"), ("PI5", "rpi5"), ("cm4", "rpi4"),
                                       ("zero2w", "rpi-zero2"), ("orin", "jetson-orin"), ("x86", "x86_64")])
def test_get_profile_by_key_or_alias(name: str, key: str) -> None:
    assert get_profile(name).key == key


def test_get_profile_auto_is_this_device() -> None:
    assert get_profile("auto").key == detect("/").profile


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"unknown board 'pi9'; expected one of .*rpi4.*rpi5"):
        get_profile("pi9")


@pytest.mark.parametrize("board", sorted(p.name for p in FIXTURES.iterdir()))
def test_each_fixture_matches_at_most_one_specific_profile(board: str) -> None:
    device = detect(FIXTURES / board)
    specific = [p.key for p in known_profiles() if p.specificity == 2 and p.matches(device.board, device.arch)]
    assert len(specific) <= 1, specific


@pytest.mark.parametrize(
    "model, arch, key",
    [("Raspberry Pi 4 Model B Rev 1.5", "aarch64", "rpi4"), ("Raspberry Pi 5 Model B Rev 1.0", "armv7l", "rpi5"),
     ("Raspberry Pi Compute Module 5 Rev 1.0", "aarch64", "rpi5"), ("Raspberry Pi 3 Model B Plus Rev 1.3", "aarch64", "rpi3"),
     ("Raspberry Pi Zero W Rev 1.1", "armv6l", "generic"), ("Radxa ROCK 5 Model B", "aarch64", "rk3588"),
     ("NVIDIA Jetson AGX Orin Developer Kit", "aarch64", "jetson-orin"), ("Pine64 RockPro64", "aarch64", "generic-aarch64"),
     (None, "armv7l", "generic-armv7l"), (None, "riscv64", "generic")],
)
def test_match_profile(model: str | None, arch: str, key: str) -> None:
    assert match_profile(model, arch).key == key


def test_adding_a_board_is_adding_a_file(tmp_path: Path) -> None:
    for path in BOARD_FILES:
        shutil.copy(path, tmp_path)
    new = json.loads((BOARDS_DIR / "rpi5.json").read_text())
    new.update(name="Banana Pi BPI-M7", aliases=["bpim7"], match={"model": "^Banana Pi BPI-M7", "arch": ["aarch64"]},
               runtime={"aarch64": new["runtime"]["aarch64"]})
    (tmp_path / "bananapi-m7.json").write_text(json.dumps(new))
    profiles = load_profiles(tmp_path)
    assert match_profile("Banana Pi BPI-M7", "aarch64", profiles).key == "bananapi-m7"
    assert match_profile("Raspberry Pi 5 Model B Rev 1.0", "aarch64", profiles).key == "rpi5"


def _rpi4() -> dict:
    return json.loads((BOARDS_DIR / "rpi4.json").read_text())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["modes"]["int8"].update(rating="great"), r"rating must be one of good, ok, poor\. Received: rating='great'"),
        (lambda d: d["modes"].pop("float16"), r"must rate every mode .* Received no note for: float16"),
        (lambda d: d.update(colour="red"), r"unknown fields: colour"),
        (lambda d: d.update(recommended_threads=0), r"recommended_threads must be a positive integer or null"),
        (lambda d: d["match"].update(model="(unclosed"), r"match\.model must be a valid regex"),
        (lambda d: d["match"].update(arch=["sparc"]), r"architectures must be among .* Received: sparc"),
        (lambda d: d["preferred_mode"].update(mode="int3"), r"preferred_mode must be a rated mode"),
        (lambda d: d.pop("name"), r"is malformed"),
    ],
)
def test_invalid_board_files_are_rejected_with_the_rule(tmp_path: Path, change, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _rpi4()
    change(data)
    (tmp_path / "broken.json").write_text(json.dumps(data))
    with pytest.raises(UsageError, match=re.compile(r"'broken'.*" + message)):
        load_profiles(tmp_path)


def test_unreadable_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"bad\.json must be readable JSON"):
        load_profiles(tmp_path)
