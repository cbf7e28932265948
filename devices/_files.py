"""Reading `/proc`, `/sys` and `/etc` below a root folder, where a missing file means "unknown".

Every reader takes the root as its first argument so that tests can point it at a recorded
tree (``tests/devices/fixtures/<board>/``) instead of the running system.
"""

from __future__ import annotations

from pathlib import Path


def read_text(root: str | Path, relpath: str) -> str | None:
    """The text of ``root/relpath`` with device-tree NUL bytes and edge whitespace removed.

    Args:
        root: the folder that stands for ``/``.
        relpath: a path relative to the root, such as ``"proc/cpuinfo"``.

    Returns:
        The text, or ``None`` when the file is missing, unreadable or empty.
    """
    try:
        raw = (Path(root) / relpath).read_bytes()
    except OSError:
        return None
    text = raw.replace(b"\x00", b"").decode("utf-8", errors="replace").strip()
    return text or None


def read_int(root: str | Path, relpath: str) -> int | None:
    """The integer held by ``root/relpath`` (e.g. a sysfs counter), or ``None`` if unknown."""
    text = read_text(root, relpath)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def read_key_values(root: str | Path, relpath: str, sep: str) -> dict[str, str]:
    """The ``key<sep>value`` lines of a file such as ``etc/os-release`` or ``proc/meminfo``.

    Values lose surrounding whitespace and double quotes; a missing file gives ``{}``.
    """
    text = read_text(root, relpath) or ""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found and key.strip():
            out[key.strip()] = value.strip().strip('"')
    return out
