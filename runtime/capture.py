"""Frames in and out for live apps: cameras, streams, video files and image folders.

* :func:`open_source` opens what a user names (``0``, ``picamera``, ``clip.mp4``, ``rtsp://…``, a folder)
  as a :class:`FrameSource` that yields RGB ``uint8`` frames.
* :class:`LatestFrameReader` reads a source in a background thread and hands out only the newest
  frame, so a slow model never makes a camera queue up frames: frames it could not take are dropped
  and counted. Memory stays at one pending frame however slow the consumer is.
* :class:`FrameWriter` writes annotated frames to a video file or a folder of JPEGs, atomically: the
  frames go to a temporary file that is renamed at :meth:`FrameWriter.commit`, so an interrupted run
  leaves nothing behind.

OpenCV (the ``[camera]`` extra) is imported when a source or writer is opened; ``picamera2`` only for
``picamera``. Never imports TensorFlow.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from edgeq.errors import DataError, DependencyMissing, DeviceError, EdgeqError, UsageError

__all__ = [
    "CAMERA_HINT", "VIDEO_CODECS", "Frame", "FrameSource", "open_source", "LatestFrameReader", "FrameWriter",
]

log = logging.getLogger(__name__)

#: what to install for OpenCV
CAMERA_HINT = 'pip install "edgeq[camera]" (on a board without a display: "edgeq[camera-headless]")'
#: output suffix -> FourCC of the codec OpenCV writes it with (all in the opencv-python wheels)
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}
_URL_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_PICAMERA = ("picamera", "picamera2")
_PICAMERA_HINT = ("picamera2 comes with Raspberry Pi OS: sudo apt install python3-picamera2; in a venv, create it "
                  "with python3 -m venv --system-site-packages so that it is visible")


def _cv2() -> ModuleType:
    from edgeq._lazy import import_optional

    return import_optional("cv2", CAMERA_HINT)


@dataclass(frozen=True)
class Frame:
    """One frame from a source.

    Args:
        image: ``H x W x 3`` RGB ``uint8`` pixels.
        index: its position in the source (0-based), counting frames that were dropped.
        captured_at: ``time.perf_counter()`` when it was read.
    """

    image: np.ndarray
    index: int
    captured_at: float


class FrameSource:
    """Frames from one place, as ``H x W x 3`` RGB ``uint8`` arrays; see :func:`open_source`.

    Attributes:
        name: what the user gave, for messages (``camera 0``, ``clip.mp4``).
        live: whether frames arrive in real time (camera, stream): a reader keeps only the newest.
        fps: the nominal frame rate, or ``None`` when unknown (image folders, some streams).
    """

    name: str = ""
    live: bool = False
    fps: float | None = None

    def read(self) -> np.ndarray | None:
        """The next frame, or ``None`` at the end of the source."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _OpenCVSource(FrameSource):
    """A webcam (index), a stream URL or a video file, through ``cv2.VideoCapture``."""

    def __init__(self, target: int | str, name: str, live: bool, size: tuple[int, int] | None) -> None:
        from edgeq._native import quiet_native_output

        cv2 = self._cv2 = _cv2()
        self.name, self.live = name, live
        with quiet_native_output():  # OpenCV/FFmpeg log failed attempts to stderr; the error below says it once
            self._cap = cv2.VideoCapture(target)
            if self._cap.isOpened() and size is not None:
                self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
                self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
            ok, first = self._cap.read() if self._cap.isOpened() else (False, None)
        if not ok:
            opened = self._cap.isOpened()
            self._cap.release()
            raise self._open_error(target, opened)
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and np.isfinite(fps) and 0 < fps < 1000 else None
        self._pending: np.ndarray | None = first

    def _open_error(self, target: int | str, opened: bool) -> EdgeqError:
        if isinstance(target, int):
            return DeviceError(
                f"cannot {'read from' if opened else 'open'} camera {target}; expected a camera at /dev/video{target} "
                "('edgeq devices' lists the cameras found). Give another index, --source picamera for a Raspberry Pi "
                "camera, or a video file"
            )
        if self.live:
            return DataError(f"cannot open stream {target}; check the URL, that the stream is up, and that this "
                             "OpenCV build has FFmpeg (the opencv-python wheels do)")
        what = "no decodable frames in" if opened else "cannot decode"
        return DataError(f"{what} video {target}; give a video OpenCV can read ({', '.join(VIDEO_CODECS)}, …)")

    def read(self) -> np.ndarray | None:
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            ok, frame = self._cap.read()
            if not ok:
                return None
        return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        self._cap.release()


class _PicameraSource(FrameSource):
    """A Raspberry Pi camera through ``picamera2`` (from the Raspberry Pi OS packages)."""

    def __init__(self, size: tuple[int, int] | None) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise DependencyMissing(f"--source picamera needs picamera2, which is not importable here; {_PICAMERA_HINT}") from None
        self.name, self.live, self.fps = "picamera", True, None
        try:
            self._camera = Picamera2()
            # "RGB888" is ordered [B, G, R] in memory (libcamera naming): the usual format for OpenCV
            config = self._camera.create_video_configuration(main={"size": tuple(size or (640, 480)), "format": "RGB888"})
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:  # noqa: BLE001 - picamera2 raises IndexError/RuntimeError/OSError without a camera
            raise DeviceError(f"cannot start the Raspberry Pi camera ({type(exc).__name__}: {exc}); check the cable "
                              "and that 'rpicam-hello' shows a picture") from exc

    def read(self) -> np.ndarray | None:
        return np.ascontiguousarray(self._camera.capture_array()[:, :, 2::-1])  # BGR(+X) -> RGB

    def close(self) -> None:
        self._camera.stop()
        self._camera.close()


class _FolderSource(FrameSource):
    """The images of a folder (recursively, sorted), one frame each."""

    def __init__(self, folder: Path) -> None:
        from edgeq.runtime.preprocess import IMAGE_EXTENSIONS

        self.name, self.live, self.fps = str(folder), False, None
        self._files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not self._files:
            raise DataError(f"no images in {folder} (looked recursively for {', '.join(IMAGE_EXTENSIONS)})")
        self._next = 0

    def read(self) -> np.ndarray | None:
        from edgeq.runtime.preprocess import load_image

        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        self._next += 1
        return np.asarray(load_image(path).convert("RGB"))


def open_source(source: str | int | os.PathLike, size: tuple[int, int] | None = None) -> FrameSource:
    """Open a camera, a stream, a video file or an image folder; the first frame is read to check it works.

    Args:
        source: a camera index (``0`` or ``"0"``), ``"picamera"`` (Raspberry Pi camera through picamera2),
            a stream URL (``rtsp://``, ``http(s)://``…), a video file, or a folder of images.
        size: ``(width, height)`` to ask a camera for (OpenCV cameras and picamera2; default: the
            camera's own for OpenCV, 640x480 for picamera2). Ignored for files and folders.

    Returns:
        The :class:`FrameSource`; close it (or use it as a context manager) when done.

    Raises:
        DependencyMissing: OpenCV (or picamera2 for ``picamera``) is not installed.
        DeviceError: the camera does not open or delivers no frame.
        DataError: the file or folder is missing or holds nothing decodable, or the stream does not open.
    """
    text = os.fspath(source) if isinstance(source, os.PathLike) else source
    if isinstance(text, int) or (isinstance(text, str) and text.strip().isdigit()):
        index = int(text)
        return _OpenCVSource(index, f"camera {index}", live=True, size=size)
    if text.lower() in _PICAMERA:
        return _PicameraSource(size)
    if text.lower().startswith(_URL_SCHEMES):
        return _OpenCVSource(text, text, live=True, size=None)
    path = Path(text)
    if path.is_dir():
        return _FolderSource(path)
    if not path.is_file():
        raise DataError(f"source not found: {text}; expected a camera index (0), picamera, a video file, a stream URL "
                        "(rtsp://, http://) or a folder of images")
    return _OpenCVSource(str(path), path.name, live=False, size=None)


class LatestFrameReader:
    """Reads a :class:`FrameSource` in a background thread; :meth:`get` returns the newest frame.

    With ``drop`` (the default for live sources), a frame that is not taken before the next one arrives
    is replaced and counted in :attr:`dropped`: a slow consumer sees fresh frames and memory holds at
    most one pending frame. Without it (files, folders) the thread waits until each frame is taken,
    so every frame is processed, still with one pending frame at most.

    Args:
        source: the source, which the reader now owns: :meth:`close` closes it.
        drop: keep only the newest frame (default: ``source.live``).
        realtime: deliver a file's frames at its own frame rate, as a camera would (implies ``drop``);
            useful to try a live pipeline on a recorded clip.
        timeout: seconds :meth:`get` waits for a frame before it raises.

    Attributes:
        captured: frames read from the source so far.
        dropped: frames replaced by a newer one before anyone took them.
    """

    def __init__(self, source: FrameSource, drop: bool | None = None, realtime: bool = False, timeout: float = 10.0) -> None:
        if realtime and not source.fps:
            source.close()
            raise UsageError(f"realtime reading needs the source's frame rate, and {source.name} does not give one")
        self.source = source
        self.drop = bool(source.live if drop is None else drop) or realtime
        self.realtime = realtime
        self.timeout = timeout
        self.captured = 0
        self.dropped = 0
        self._cond = threading.Condition()
        self._slot: Frame | None = None
        self._ended = False
        self._stopping = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"edgeq-capture({source.name})", daemon=True)

    def start(self) -> LatestFrameReader:
        """Start the capture thread (``with reader:`` does this)."""
        self._thread.start()
        return self

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            while not self._stopping:
                image = self.source.read()
                if image is None:
                    break
                now = time.perf_counter()
                if self.realtime:  # frame n is "captured" n / fps seconds after the first
                    due = started + self.captured / float(self.source.fps or 1)
                    if due > now:
                        time.sleep(due - now)
                        now = time.perf_counter()
                frame = Frame(image, self.captured, now)
                with self._cond:
                    while not self.drop and self._slot is not None and not self._stopping:
                        self._cond.wait(0.1)
                    if self._stopping:
                        break
                    if self._slot is not None:
                        self.dropped += 1
                    self._slot = frame
                    self.captured += 1
                    self._cond.notify_all()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer by get()
            self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def get(self) -> Frame | None:
        """The newest frame not taken yet, waiting for one if needed; ``None`` once the source has ended.

        Raises:
            DeviceError: no frame arrived within ``timeout`` seconds, or reading the source failed.
            DataError: reading a file failed.
        """
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while self._slot is None and not self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceError(f"no frame from {self.source.name} for {self.timeout:g} s; the camera or stream "
                                      "stopped delivering")
                self._cond.wait(min(left, 0.1))  # short waits keep Ctrl-C responsive
            frame, self._slot = self._slot, None
            self._cond.notify_all()
        if frame is None and self._error is not None:
            error = self._error
            if isinstance(error, EdgeqError):
                raise error
            raise DeviceError(f"reading {self.source.name} failed: {type(error).__name__}: {error}") from error
        return frame

    def close(self) -> None:
        """Stop the thread and close the source (waits up to 2 s for a read in progress)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(2.0)
        if self._thread.is_alive():  # stuck in a device read: releasing under it could crash the driver
            log.debug("capture thread of %s did not stop; leaving the source open", self.source.name)
            return
        self.source.close()

    def __enter__(self) -> LatestFrameReader:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _count_frames(cv2: Any, path: Path) -> int:
    """Frames OpenCV can read back from a video file (grabbed, not decoded)."""
    from edgeq._native import quiet_native_output

    with quiet_native_output():
        cap = cv2.VideoCapture(str(path))
        try:
            count = 0
            while cap.isOpened() and cap.grab():
                count += 1
            return count
        finally:
            cap.release()


class FrameWriter:
    """Frames to a video file or a new folder of JPEGs, all or nothing.

    Frames are written to a temporary file (or folder) next to ``path``; :meth:`commit` renames it to
    ``path``, :meth:`abort` (or leaving a ``with`` block without committing) deletes it.

    Args:
        path: ``.mp4``/``.m4v``/``.mov`` (MPEG-4 part 2), ``.avi`` (Motion JPEG) or ``.mkv`` (Xvid): a video;
            any other name: a folder that must not exist yet, filled with ``frame_000000.jpg``, ….
        fps: the video's frame rate.
        force: replace an existing video file.

    Raises:
        UsageError: the parent folder is missing, or ``path`` exists (a video without ``force``, or a folder).
    """

    def __init__(self, path: str | os.PathLike, fps: float, force: bool = False) -> None:
        from edgeq._io import check_output_path

        self.path = Path(path)
        self.video = self.path.suffix.lower() in VIDEO_CODECS
        if self.video:
            check_output_path(self.path, force)
        elif not self.path.parent.is_dir():
            raise UsageError(f"output folder {self.path.parent} does not exist; create it first")
        elif self.path.exists():
            raise UsageError(f"output {self.path} exists; frames go to a new folder (or give a video name: "
                             f"{', '.join(VIDEO_CODECS)})")
        if not fps > 0:
            raise UsageError(f"the output frame rate must be positive. Received: fps={fps!r}")
        self.fps = float(fps)
        self.force = force
        self.frames = 0
        self._cv2 = _cv2()
        self._tmp: Path | None = None
        self._writer: Any = None
        self._size: tuple[int, int] | None = None

    def _open(self, width: int, height: int) -> None:
        cv2 = self._cv2
        self._size = (width, height)
        if not self.video:
            self._tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent))
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".part{self.path.suffix}", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        codec = VIDEO_CODECS[self.path.suffix.lower()]
        from edgeq._native import quiet_native_output

        with quiet_native_output():
            self._writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*codec), self.fps, (width, height))
        if not self._writer.isOpened():
            self.abort()
            raise UsageError(f"this OpenCV cannot write {self.path.suffix} video ({codec}); use --output NAME.avi (Motion JPEG)")

    def write(self, image: np.ndarray) -> None:
        """Append an ``H x W x 3`` RGB ``uint8`` frame (resized to the first frame's size if it differs)."""
        cv2 = self._cv2
        if self._tmp is None:
            self._open(image.shape[1], image.shape[0])
        assert self._size is not None and self._tmp is not None
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if self._writer is not None:
            self._writer.write(bgr)
        elif not cv2.imwrite(str(self._tmp / f"frame_{self.frames:06d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise UsageError(f"cannot write frames into {self._tmp}; check free space and permissions")
        self.frames += 1

    def commit(self) -> Path | None:
        """Close the output and move it to ``path``; ``None`` (nothing written) when no frame was written.

        Raises:
            UsageError: ``path`` appeared meanwhile (and ``force`` is false), or the rename failed.
        """
        if self._tmp is None:
            return None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        tmp, self._tmp = self._tmp, None
        try:
            if not self.video:
                if self.path.exists():
                    raise UsageError(f"output {self.path} appeared while frames were written; nothing was replaced")
                os.chmod(tmp, 0o755)  # mkdtemp made it private
                os.rename(tmp, self.path)
            else:
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                readable = _count_frames(self._cv2, tmp)
                if readable < self.frames:  # OpenCV's writer does not report a full disk: check what it wrote
                    raise UsageError(f"the video for {self.path} holds {readable} of its {self.frames} frames (disk "
                                     "full?); nothing was written; check free space")
                os.chmod(tmp, 0o644)
                if self.force:
                    os.replace(tmp, self.path)
                else:
                    os.link(tmp, self.path)  # fails if another writer got there first
        except FileExistsError:
            raise UsageError(f"output {self.path} exists; pass --force to overwrite it") from None
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror}; check free space and permissions") from exc
        finally:
            _remove(tmp)
        return self.path

    def abort(self) -> None:
        """Discard everything written so far."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None

    def __enter__(self) -> FrameWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()  # after commit() there is nothing left to abort


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()
