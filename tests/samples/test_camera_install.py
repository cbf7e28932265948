"""The README's camera install commands, for a laptop and for a headless board, into fresh venvs.

The extras are checked first from pyproject.toml (fast): each names one OpenCV build, 4.x, and no pair a user
or CI installs together brings two builds. The slow tests run the README's commands with the checkout's
wheel in place of ``edgeq``: numpy, LiteRT, Pillow and rich are lent from this test's environment (a
``.pth``, as in tests/test_wheel.py), so pip fetches only OpenCV (from the warm pip cache; 1–1.5 min in all on a busy 2-core VM).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

import pytest

from edgeq.devices._opencv import GUI_REQUIREMENT, HEADLESS_REQUIREMENT, OPENCV_DISTS
from support import REPO, SAMPLE_MODEL

EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _opencv(extra: str) -> set[str]:
    return {req for req in EXTRAS[extra] if re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0] in OPENCV_DISTS}


def test_each_camera_extra_names_one_opencv_build_pinned_to_4():
    assert _opencv("camera") == {GUI_REQUIREMENT} and GUI_REQUIREMENT == "opencv-python>=4.8,<5"
    assert _opencv("camera-headless") == {HEADLESS_REQUIREMENT} and HEADLESS_REQUIREMENT == "opencv-python-headless>=4.8,<5"
    assert _opencv("dev") == {GUI_REQUIREMENT}  # CI runs the window tests with the laptop's build
    assert not _opencv("convert")


def test_no_two_extras_but_the_two_camera_builds_bring_two_opencv_builds():
    for pair in itertools.combinations(EXTRAS, 2):
        builds = {re.split(r"[<>=]", req, maxsplit=1)[0] for extra in pair for req in _opencv(extra)}
        if "camera-headless" in pair and builds - {"opencv-python-headless"}:
            continue  # a board's build beside a laptop's: nobody installs these two together
        assert len(builds) <= 1, pair


def _readme_commands() -> dict[str, str]:
    """The install commands of the README's camera section, by extra."""
    section = (REPO / "README.md").read_text().split("### Camera apps", 1)[1].split("\n### ", 1)[0]
    return {m.group(1): m.group(0) for m in re.finditer(r'pip install "edgeq\[(camera[a-z-]*)\]"', section)}


def test_the_readme_gives_one_command_for_a_laptop_and_one_for_a_board():
    assert set(_readme_commands()) == {"camera", "camera-headless"}


# --------------------------------------------------------------------------------------------- slow
@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (path,) = dist.glob("edgeq-*.whl")
    return path


class Venv:
    """A fresh venv; the base dependencies are lent from this environment, without OpenCV and edgeq."""

    def __init__(self, root: Path) -> None:
        venv.create(root, with_pip=False)
        self.python = root / "bin" / "python"
        self.bin = root / "bin"
        lent = root / "lent"
        lent.mkdir()
        here = Path(sysconfig.get_paths()["purelib"])
        for entry in here.iterdir():
            if not entry.name.lower().startswith(("cv2", "opencv", "edgeq", "__editable__", "_edgeq")) \
                    and entry.suffix != ".pth":
                (lent / entry.name).symlink_to(entry)
        site = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
        Path(site, "lent.pth").write_text(f"{lent}\n")

    def shell(self, command: str, wheel: Path, **env: str) -> subprocess.CompletedProcess:
        """A README command, with ``edgeq`` the checkout's wheel and ``pip`` this venv's (``pip --python``)."""
        command = command.replace('"edgeq[', f'"{wheel}[').replace("pip ", f"{sys.executable} -m pip --python {self.python} ")
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "PIP_QUIET": "1", **env})
        assert proc.returncode == 0, (command, proc.stderr)
        return proc

    def opencv(self) -> dict[str, str]:
        code = "import json\nfrom edgeq.devices import installed_opencv\nprint(json.dumps(installed_opencv()))"
        return json.loads(subprocess.run([str(self.python), "-c", code], capture_output=True, text=True, check=True,
                                         cwd=self.bin).stdout)  # not the checkout, whose edgeq/ would shadow the wheel's

    def camera(self, env: dict[str, str], clip: Path, *options: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.bin / "edgeq"), "camera", str(SAMPLE_MODEL), "--source", str(clip),
                               "--max-frames", "3", "--fast", *options], capture_output=True, text=True, timeout=300,
                              env=env, cwd=self.bin)


@pytest.mark.slow
def test_laptop_install_opens_a_window_and_an_upgrade_keeps_one_build(tmp_path, wheel, desktop, fashion_clip):
    command = _readme_commands()["camera"]
    laptop = Venv(tmp_path / "laptop")
    laptop.shell(command, wheel)
    assert list(laptop.opencv()) == ["opencv-python"] and laptop.opencv()["opencv-python"].startswith("4.")
    shown = laptop.camera(desktop, fashion_clip[0])
    assert (shown.returncode, shown.stderr) == (0, "")  # a window, and no Qt font warnings (OpenCV 5 prints them)
    laptop.shell(command.replace("install", "install -U"), wheel)
    assert list(laptop.opencv()) == ["opencv-python"]


@pytest.mark.slow
def test_board_install_runs_headless_and_the_repair_gives_a_window(tmp_path, wheel, desktop, fashion_clip):
    board = Venv(tmp_path / "board")
    board.shell(_readme_commands()["camera-headless"], wheel)
    assert list(board.opencv()) == ["opencv-python-headless"]
    headless = board.camera(desktop, fashion_clip[0], "--headless")
    assert (headless.returncode, headless.stderr) == (0, ""), headless.stderr
    window = board.camera(desktop, fashion_clip[0])
    assert window.returncode == 2 and window.stderr.startswith("DependencyMissing: this OpenCV cannot open windows")
    # the user then installs the laptop extra on top: two builds, which the doctor's check names with the repair
    board.shell(_readme_commands()["camera"], wheel)
    assert sorted(board.opencv()) == ["opencv-python", "opencv-python-headless"]
    code = ("from edgeq.devices._doctor import _probe_opencv, check_opencv\nc = check_opencv(*_probe_opencv())\n"
            "print(c.status.value)\nprint(c.fix)")
    status, fix = subprocess.run([str(board.python), "-c", code], capture_output=True, text=True, env=desktop,
                                 check=True, cwd=board.bin).stdout.splitlines()
    assert status == "fail" and fix == window.stderr.split("for a window run ", 1)[1].split(", or run")[0]
    board.shell(fix, wheel)  # the exact repair the app and the doctor print
    assert list(board.opencv()) == ["opencv-python"]
    repaired = board.camera(desktop, fashion_clip[0])
    assert (repaired.returncode, repaired.stderr) == (0, "")
