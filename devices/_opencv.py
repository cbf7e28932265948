"""Which OpenCV is installed: the pip builds present, whether cv2 can draw windows, and the one-line repair.

The pip builds (``opencv-python``, ``opencv-python-headless`` and their ``-contrib`` variants) all install
the same ``cv2`` package. Two of them installed together overwrite each other's files, and removing one
then deletes files the other needs (``cv2`` without ``VideoCapture``), so the repair removes every build
and installs one: the full build for windows (``edgeq[camera]``), the headless one for boards and
servers (``edgeq[camera-headless]``). Never imports ``cv2`` itself: callers pass what they read from it.
"""

from __future__ import annotations

from collections.abc import Iterable

#: the pip distributions that provide ``cv2``
OPENCV_DISTS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless")
#: what the ``[camera]`` and ``[camera-headless]`` extras install (keep in step with pyproject.toml)
GUI_REQUIREMENT = "opencv-python>=4.8,<5"
HEADLESS_REQUIREMENT = "opencv-python-headless>=4.8,<5"
#: the OpenCV major version edgeq's extras pin
OPENCV_MAJOR = 4


def installed_opencv() -> dict[str, str]:
    """``{distribution: version}`` of the OpenCV pip builds installed in this environment."""
    from importlib import metadata  # here: it imports email, zipfile and csv, tens of ms of every CLI start

    found = {}
    for dist in OPENCV_DISTS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


def gui_backend(build_information: str) -> str | None:
    """The GUI toolkit of an OpenCV build (``QT5``, ``GTK3``, ``COCOA``, ``WIN32UI``…), ``None`` for a headless build.

    Args:
        build_information: ``cv2.getBuildInformation()``.
    """
    _, found, rest = build_information.partition("GUI:")
    if not found:
        return None
    value = rest.splitlines()[0].strip()
    return None if not value or value.upper() == "NONE" else value.split()[0]


def opencv_fix(gui: bool, installed: Iterable[str] = ()) -> str:
    """The command that leaves exactly one OpenCV build: the full one (``gui``) or the headless one.

    Args:
        gui: whether windows are wanted.
        installed: the builds present now (:func:`installed_opencv`); the two main builds are always removed.
    """
    main = ["opencv-python", "opencv-python-headless"]
    remove = main + sorted(set(installed) - set(main))
    return f"pip uninstall -y {' '.join(remove)} && pip install \"{GUI_REQUIREMENT if gui else HEADLESS_REQUIREMENT}\""
