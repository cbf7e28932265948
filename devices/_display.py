"""Can a window open here? A cheap probe of the X11 (or Wayland) display, without loading any GUI toolkit.

Qt aborts the whole process (exit 134, "no Qt platform plugin could be initialized") and GTK exits it
when the display named by ``DISPLAY`` does not answer, so the camera apps and ``edgeq doctor`` ask first:
:func:`display_problem` connects to the X server's socket and performs the X11 connection setup (with the
``MIT-MAGIC-COOKIE-1`` cookie from ``XAUTHORITY``), which is what a toolkit does first.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

_HEADLESS_HINT = "or run with --headless (and --output out.mp4 to keep the annotated video)"
_FAMILY_LOCAL, _FAMILY_WILD = 256, 65535
_COOKIE = b"MIT-MAGIC-COOKIE-1"


@dataclass(frozen=True)
class DisplayProbe:
    """What :func:`probe_display` found.

    Args:
        problem: why no window can open (one sentence with what to do), or ``None``.
        screen: ``(width, height)`` of the X11 screen in pixels, when known.
    """

    problem: str | None
    screen: tuple[int, int] | None = None


def probe_display(environ: Mapping[str, str] | None = None, wayland: bool = False, timeout: float = 5.0) -> DisplayProbe:
    """Whether a window can open on this machine's display, and the screen size.

    Args:
        environ: the environment to read ``DISPLAY``, ``WAYLAND_DISPLAY``, ``XAUTHORITY`` from (default ``os.environ``).
        wayland: the GUI toolkit can draw on Wayland itself (OpenCV built with GTK); OpenCV's pip wheels
            draw through Qt on X11 only, so for them ``WAYLAND_DISPLAY`` alone is not enough.
        timeout: seconds to wait for the display server.

    Returns:
        The :class:`DisplayProbe`; off Linux/BSD (macOS and Windows have their own window systems) it
        reports no problem and no screen size.
    """
    if sys.platform.startswith(("darwin", "win", "cygwin")):
        return DisplayProbe(None)
    env = os.environ if environ is None else environ
    display, wayland_display = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if wayland and wayland_display and not display:
        return DisplayProbe(_wayland_problem(env, wayland_display, timeout))
    if not display:
        if wayland_display:
            return DisplayProbe(f"WAYLAND_DISPLAY is set ({wayland_display}) but DISPLAY is not, and this OpenCV draws "
                                "its window through X11; enable Xwayland on the desktop (it sets DISPLAY, e.g. export "
                                "DISPLAY=:0), " + _HEADLESS_HINT)
        return DisplayProbe("no display to open a window on (DISPLAY is not set); run in a desktop session, "
                            + _HEADLESS_HINT)
    return probe_x11(display, env.get("XAUTHORITY") or str(Path.home() / ".Xauthority"), timeout)


def probe_x11(display: str, xauthority: str, timeout: float = 5.0) -> DisplayProbe:
    """Connect to the X server of ``display`` and perform the connection setup, as Xlib and xcb do.

    A connection the server closes unanswered is tried again until ``timeout``: an X server resetting after its
    last client left (Xvfb does so by default, so the probe's own connection triggers it) drops new ones meanwhile.
    """
    parsed = _parse_display(display)
    if parsed is None:
        return DisplayProbe(f"DISPLAY={display} is not a display name (expected :0, :1, host:0 …); " + _fix(display))
    host, number = parsed
    name, data = _cookie(xauthority, host, number)
    request = struct.pack("<cxHHHHxx", b"l", 11, 0, len(name), len(data)) + _pad(name) + _pad(data)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = _connect(host, number, max(deadline - time.monotonic(), 0.5))
        except OSError as exc:
            where = f"{host}:{6000 + int(number)}" if host else f"/tmp/.X11-unix/X{number}"
            return DisplayProbe(f"cannot open display {display}: no X server answers at {where} ({exc.strerror or exc}); "
                                + _fix(display))
        with sock:
            try:
                reply = _setup(sock, request)
            except OSError as exc:
                reply = exc
        if not isinstance(reply, _Unanswered) or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if isinstance(reply, OSError):
        return DisplayProbe(f"cannot open display {display}: the X server did not complete the connection ({reply}); "
                            + _fix(display))
    head, extra = reply
    if head[0] == 1:
        return DisplayProbe(None, _screen_size(extra))
    reason_length = head[1] if head[0] == 0 else len(extra)
    reason = extra[:reason_length].decode("latin-1", "replace").strip() or "no reason given"
    return DisplayProbe(f"the X server of display {display} refused the connection ({reason}); on the desktop allow it "
                        "with xhost +SI:localuser:$USER, or set XAUTHORITY to the session's cookie file, " + _HEADLESS_HINT)


def _screen_size(setup: bytes) -> tuple[int, int] | None:
    """The first screen's size from an accepted connection setup reply (after its 8-byte header)."""
    try:
        vendor_length = struct.unpack("<H", setup[16:18])[0]
        screen = 32 + vendor_length + (-vendor_length % 4) + 8 * setup[21]  # after the vendor and pixmap formats
        width, height = struct.unpack("<HH", setup[screen + 20:screen + 24])
    except (struct.error, IndexError):
        return None
    return (width, height) if width and height else None


def _wayland_problem(env: Mapping[str, str], wayland_display: str, timeout: float) -> str | None:
    path = os.path.join(env.get("XDG_RUNTIME_DIR", ""), wayland_display)  # an absolute WAYLAND_DISPLAY stays as it is
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
    except OSError as exc:
        return (f"cannot open Wayland display {wayland_display}: nothing answers at {path} ({exc.strerror or exc}); "
                "check WAYLAND_DISPLAY and XDG_RUNTIME_DIR, " + _HEADLESS_HINT)
    return None


def _fix(display: str) -> str:
    return (f"DISPLAY={display} may be left over from an earlier session: set it to the running desktop's display "
            "(echo $DISPLAY in a terminal there; over ssh use ssh -X), " + _HEADLESS_HINT)


def _parse_display(display: str) -> tuple[str, str] | None:
    """``"host:0.1"`` -> ``("host", "0")``; ``":0"``, ``"unix:0"`` -> ``("", "0")``."""
    host, sep, rest = display.rpartition(":")
    number = rest.split(".", 1)[0]
    if not sep or not number.isdigit():
        return None
    host = host.rstrip(":")  # DECnet "host::0" is not supported by modern servers; treat as host
    return ("" if host in ("", "unix") or host.startswith("/") else host), number


def _connect(host: str, number: str, timeout: float) -> socket.socket:
    """The socket Xlib/xcb would use: the abstract then the file-system Unix socket, or TCP port 6000+N."""
    if host:
        return socket.create_connection((host, 6000 + int(number)), timeout=timeout)
    error: OSError | None = None
    paths = ([f"\0/tmp/.X11-unix/X{number}"] if sys.platform.startswith("linux") else []) + [f"/tmp/.X11-unix/X{number}"]
    for path in paths:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    assert error is not None
    raise error


def _cookie(xauthority: str, host: str, number: str) -> tuple[bytes, bytes]:
    """The ``MIT-MAGIC-COOKIE-1`` for the display from the Xauthority file, else no authorization."""
    try:
        data = Path(xauthority).read_bytes()
    except OSError:
        return b"", b""
    local = socket.gethostname().encode()
    fallback: tuple[bytes, bytes] = (b"", b"")
    at = 0
    try:
        while at < len(data):
            family = struct.unpack(">H", data[at:at + 2])[0]
            at += 2
            fields = []
            for _ in range(4):
                length = struct.unpack(">H", data[at:at + 2])[0]
                fields.append(data[at + 2:at + 2 + length])
                at += 2 + length
            address, entry_number, name, cookie = fields
            if name != _COOKIE or entry_number not in (number.encode(), b""):
                continue
            if family == _FAMILY_WILD or (not host and family == _FAMILY_LOCAL and address == local):
                return name, cookie
            fallback = fallback if fallback[0] else (name, cookie)
    except struct.error:  # a truncated file: use what was read
        pass
    return fallback


class _Unanswered(ConnectionError):
    """The X server closed the connection before sending any byte of its reply."""


def _setup(sock: socket.socket, request: bytes) -> tuple[bytes, bytes]:
    """Send the connection setup ``request``; the reply's 8-byte header and the rest.

    Raises:
        _Unanswered: the server closed the connection without replying.
        OSError: the connection failed otherwise.
    """
    try:
        sock.sendall(request)
        head = _recv(sock, 8)
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise _Unanswered(str(exc)) from exc
    return head, _recv(sock, struct.unpack("<H", head[6:8])[0] * 4)


def _recv(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionResetError("connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)
