"""Which model files have already passed :func:`edgeq._flatbuffer.parse`'s checks.

Checking a model costs about as much as the interpreter's own load (10-25 ms for MobileNetV2 224 int8 in pure
Python on an x86 core); a file that passed once passes again, so later loads skip the checks and read tensors
lazily. Proofs are filed under a hash of the checking code itself (a newer edgeq may check more), so a changed
check means a full check. A model is known to have passed by, cheapest first:

* **this process**: the last ``_KEEP`` proven models are kept with what :func:`parse` made of them; the same unchanged
  file (same stamp, below) or the same bytes (compared in full, a memcmp) gets that result back.
* **its file's stamp** (files of ``STAMP_MIN_BYTES`` or more, read by :func:`edgeq._io.read_model_bytes`):
  boot, device, inode, size, mtime and ctime, taken with ``fstat`` on the open file before and after reading it.
  Every write sets a file's ctime to the current time, and only the clock can set it back (``os.utime`` restores
  mtime, not ctime), so an unchanged stamp means unchanged bytes, given three conditions; without them the file has
  no stamp and its content decides:

  - its ctime is at least ``RACY_NS`` old when it is read (git's "racily clean" rule): a second write within the
    timestamp tick of the first (1 s on some file systems) would leave ctime as it was;
  - its file system is local and keeps a true ctime (``STAMPED_FILE_SYSTEMS``, read from /proc/self/mountinfo):
    network file systems take times from the server's clock and cache them; FAT and exFAT have no ctime;
  - the machine has not restarted (``/proc/sys/kernel/random/boot_id``): device numbers are handed out at boot, and
    a disk can be changed while the machine is off.

  A stamp cannot see: writes through a shared ``mmap`` (the kernel stamps the first write to a clean page, not every
  write), a clock set back to within a tick of the file's ctime, or storage that rots under an unchanged inode.
* **its content**: the SHA-256 of every byte (hardware-accelerated on x86-64 and recent ARM cores; 4-7 ms for 4 MB
  here): bytes given directly, small files (hashing them costs less than a stamp's first look-ups) and files
  without a stamp. A file with a stamp is not hashed: hashing a large file costs about as much as checking it, so a
  copy, or a file whose stamp changed, is checked again in full.

Across processes a proof is an empty marker file in ``$EDGEQ_CACHE_DIR`` (default: ``$XDG_CACHE_HOME/edgeq`` or
``~/.cache/edgeq``) under ``checked/<code hash>/``, named by the content's hash or ``s`` + the stamp's hash, written
atomically; finding one costs one ``stat``. Only a model that passed is recorded; set ``EDGEQ_CACHE_DIR`` to an empty
string to keep proofs in memory only. A cache directory others can write to could vouch for a corrupt file: it must
be the user's own, like the rest of the home directory.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from functools import lru_cache
from typing import Any

#: a file's stamp: (boot id, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)
Stamp = tuple

#: a file's ctime must be this much older than the moment it is read for its stamp to count (git's racy-clean rule)
RACY_NS = 2_000_000_000
#: smaller files are hashed: cheaper than the stamp's first look-ups in a process, and exact
STAMP_MIN_BYTES = 256 * 1024
#: file systems (Linux names, /proc/self/mountinfo) that are local and set ctime on every change
STAMPED_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs", "zfs"})
#: how long (seconds) the table of mounted file systems is trusted before it is read again (media come and go)
_MOUNTS_TTL = 5.0
#: the modules whose checks a proof stands for
_CHECKING_CODE = ("_flatbuffer.py", "_model_checks.py", "_tflite_names.py")
_KEEP = 2

#: the last proven models: (bytes, stamp or None, parsed model), most recent first
_recent: list[tuple[bytes, Stamp | None, Any]] = []
#: content hashes and stamps proven in this process
_proven: set[bytes] = set()
_proven_stamps: set[Stamp] = set()
#: files read but not parsed yet: [(bytes, stamp)], at most ``_KEEP`` (see :func:`note_read`)
_stamped: list[tuple[bytes, Stamp]] = []
_lock = threading.Lock()
_mounts: tuple[float, dict[str, str]] = (-_MOUNTS_TTL, {})


def key(data: memoryview) -> bytes:
    """The content key of a model's bytes: SHA-256 of the whole content."""
    return hashlib.sha256(data).digest()


def note_read(data: bytes, before: os.stat_result, after: os.stat_result, started_ns: int) -> None:
    """Remember the stamp of the file ``data`` was just read from, if it has one (see the module docstring).

    Args:
        data: every byte read from the file.
        before: ``os.fstat`` of the open file before reading it.
        after: ``os.fstat`` of the open file after reading it.
        started_ns: ``time.time_ns()`` taken before ``before``.
    """
    if len(data) < STAMP_MIN_BYTES:
        return
    stamp = _stamp(before, after, len(data), started_ns)
    if stamp is not None:
        with _lock:
            _stamped.insert(0, (data, stamp))
            del _stamped[_KEEP:]


def stamp_of(data: bytes | bytearray | memoryview) -> Stamp | None:
    """The stamp :func:`note_read` took for exactly this ``bytes`` object (then forgotten), else ``None``."""
    with _lock:
        for i, (read, stamp) in enumerate(_stamped):
            if read is data:
                del _stamped[i]
                return stamp
    return None


def _stamp(before: os.stat_result, after: os.stat_result, size: int, started_ns: int) -> Stamp | None:
    fields = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns)
    if (fields != (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns)
            or before.st_size != size or before.st_ctime_ns > started_ns - RACY_NS):
        return None  # changed while read, or changed too recently to tell a later change by its ctime
    boot = _boot_id()
    if boot is None or _file_system(before.st_dev) not in STAMPED_FILE_SYSTEMS:
        return None
    return (boot, *fields)


@lru_cache(maxsize=None)
def _boot_id() -> str | None:
    """This boot's id (Linux); ``None`` elsewhere, which turns stamps off."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _file_system(dev: int) -> str | None:
    """The type of the mounted file system with device number ``dev`` (``ext4``), ``None`` if not found."""
    global _mounts
    read_at, table = _mounts
    now = time.monotonic()
    if now - read_at > _MOUNTS_TTL:
        table = {}
        try:
            with open("/proc/self/mountinfo") as fh:
                for line in fh:  # "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
                    fields, _, rest = line.partition(" - ")
                    table.setdefault(fields.split(" ", 3)[2], rest.split(" ", 1)[0])
        except (OSError, IndexError):
            table = {}
        _mounts = (now, table)
    return table.get(f"{os.major(dev)}:{os.minor(dev)}")


def recall(data: bytes | bytearray | memoryview, stamp: Stamp | None) -> Any | None:
    """What :func:`parse` made of a proven model read from the same unchanged file or equal to ``data``, if kept."""
    same_bytes = type(data) is bytes
    for kept, kept_stamp, model in _recent:
        if stamp is not None and stamp == kept_stamp:
            return model
        if same_bytes and (kept is data or (len(kept) == len(data) and kept == data)):
            if stamp is not None and stamp not in _proven_stamps:  # the same bytes in another file: it passed too
                remember(None, stamp)
            return model
    return None


def keep(data: bytes | bytearray | memoryview, stamp: Stamp | None, model: Any) -> None:
    """Keep a proven model for :func:`recall` (immutable ``bytes`` only)."""
    if type(data) is bytes:
        with _lock:
            _recent.insert(0, (data, stamp, model))
            del _recent[_KEEP:]


def forget() -> None:
    """Forget every proof of this process (the markers on disk stay), as a new process starts."""
    with _lock:
        _recent.clear(), _stamped.clear(), _proven.clear(), _proven_stamps.clear()


def _folder() -> str | None:
    """Where proofs are filed; ``None`` (memory only) when disabled or when the checking code cannot be read."""
    root = os.environ.get("EDGEQ_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgeq")
    code = _code_id() if root else None
    return os.path.join(root, "checked", code) if code else None


@lru_cache(maxsize=None)
def _code_id() -> str | None:
    """A short hash of the checking code's source (read once per process); ``None`` if it is not readable."""
    h = hashlib.sha256()
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        for name in _CHECKING_CODE:
            with open(os.path.join(here, name), "rb") as fh:
                h.update(fh.read())
    except OSError:  # e.g. an install without sources: no proof could tell an old check from a new one
        return None
    return h.hexdigest()[:16]


def _stamp_name(stamp: Stamp) -> str:
    return "s" + hashlib.sha256(":".join(map(str, stamp)).encode()).hexdigest()


def _marked(name: str) -> bool:
    folder = _folder()
    if folder is None:
        return False
    try:
        os.stat(os.path.join(folder, name))
    except OSError:
        return False
    return True


def proven(digest: bytes) -> bool:
    """Whether a model with this content key passed the checks before (in this process or in an earlier one)."""
    if digest in _proven:
        return True
    if _marked(digest.hex()):
        _proven.add(digest)
        return True
    return False


def proven_stamp(stamp: Stamp) -> bool:
    """Whether the file with this stamp passed the checks before (in this process or in an earlier one)."""
    if stamp in _proven_stamps:
        return True
    if _marked(_stamp_name(stamp)):
        _proven_stamps.add(stamp)
        return True
    return False


def remember(digest: bytes | None, stamp: Stamp | None) -> None:
    """Record that a model with this content key and/or the file with this stamp passed."""
    if digest is not None:
        _proven.add(digest)
        _mark(digest.hex())
    if stamp is not None:
        _proven_stamps.add(stamp)
        _mark(_stamp_name(stamp))


def _mark(name: str) -> None:
    """Write the marker ``name``; a cache folder that cannot be written is skipped silently."""
    folder = _folder()
    if folder is None:
        return
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "wb"):
            pass
        os.replace(tmp, os.path.join(folder, name))  # atomic: a marker exists only once complete (it is empty)
    except OSError:
        pass
