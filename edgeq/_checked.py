"""Which model files have already passed :func:`edgeq._flatbuffer.parse`'s checks, and what it read of them.

Checking a model costs about as much as the interpreter's own load (pure Python); a file that passed once passes
again, so later loads skip the checks. A proof holds what a load reads eagerly (the *summary*: signatures, each
subgraph's inputs and outputs with their tensors, where the tables and the metadata are), so a proven model is
neither checked nor parsed again: its other tables are read on first use. Proofs are filed under an id of the
checking code (a newer edgeq may check more), so a changed check means a full check. A model is known to have
passed by, cheapest first:

* **this process**: the last ``_KEEP`` proven models are kept with what :func:`parse` made of them; the same unchanged
  file (same stamp, below) or the same bytes (compared in full, a memcmp) gets that result back.
* **its file's stamp** (files read by :func:`edgeq._io.read_model_bytes`): boot, device, inode, size, mtime and ctime,
  taken with ``stat`` on the path before opening it and ``fstat`` on the open file after reading it (they differ
  if the path was pointed at another file in between). Every write sets a file's ctime to the current
  time, and only the clock can set it back (``os.utime`` restores mtime, not ctime), so an unchanged stamp means
  unchanged bytes, given three conditions; without them the file has no stamp and its content decides:

  - its ctime is at least ``RACY_NS`` old when it is read (git's "racily clean" rule): a second write within the
    timestamp tick of the first (1 s on some file systems) would leave ctime as it was;
  - its file system is local and keeps a true ctime (``STAMPED_FILE_SYSTEMS``, read from /proc/self/mountinfo):
    network file systems take times from the server's clock and cache them; FAT and exFAT have no ctime;
  - the machine has not restarted (``/proc/sys/kernel/random/boot_id``): device numbers are handed out at boot, and
    a disk can be changed while the machine is off.

  A stamp cannot see: writes through a shared ``mmap`` (the kernel stamps the first write to a clean page, not every
  write), a clock set back to within a tick of the file's ctime, or storage that rots under an unchanged inode.
* **its content**: the SHA-256 of every byte (hardware-accelerated on x86-64 and recent ARM cores; 4-7 ms for 4 MB
  here): bytes given directly and files without a stamp. A file with a stamp is not hashed: hashing a large file
  costs about as much as checking it, so a copy, or a file whose stamp changed, is checked again in full.

Across processes a proof is a marker file in ``$EDGEQ_CACHE_DIR`` (default: ``$XDG_CACHE_HOME/edgeq`` or
``~/.cache/edgeq``) under ``checked/<code id>/``, named by the stamp or the content's hash and holding the summary
behind its CRC-32, written atomically; a damaged one counts as no proof. The code id is the size and modification
time (ns) of the checking modules: what decides whether Python reuses their compiled bytecode, and new on every
install or edit; folders that gained no proof for ``PRUNE_DAYS`` are removed when a new one starts. Only a model that
passed is recorded; set ``EDGEQ_CACHE_DIR`` (read once per process) to an empty string to keep proofs in memory only.
A cache directory others can write to could vouch for a corrupt file: it must be the user's own, like the rest of the
home directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import zlib
from functools import lru_cache
from typing import Any

#: a file's stamp: (boot id, st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns)
Stamp = tuple

#: a file's ctime must be this much older than the moment it is read for its stamp to count (git's racy-clean rule)
RACY_NS = 2_000_000_000
#: file systems (Linux names, /proc/self/mountinfo) that are local and set ctime on every change
STAMPED_FILE_SYSTEMS = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs", "zfs"})
#: how long (seconds) the table of mounted file systems is trusted before it is read again (media come and go)
_MOUNTS_TTL = 5.0
#: the modules whose checks a proof stands for
_CHECKING_CODE = ("_flatbuffer.py", "_model_checks.py", "_tflite_names.py")
_KEEP = 2
#: proofs filed by checking code whose folder has not changed for this many days are removed (see :func:`_prune`)
PRUNE_DAYS = 30

#: the last proven models: (bytes, stamp or None, parsed model, summary), most recent first
_recent: list[tuple[bytes, Stamp | None, Any, bytes]] = []
#: proofs found or made in this process: key -> summary
_proofs: dict[str, bytes] = {}
#: files read but not parsed yet: [(bytes, stamp)], at most ``_KEEP`` (see :func:`note_read`)
_stamped: list[tuple[bytes, Stamp]] = []
_lock = threading.Lock()
#: [the proofs' folder] once :func:`_folder` has read it
_where: list[str | None] = []
#: (when read, {device number: file system type, None: /proc/self/mountinfo's bytes})
_mounts: tuple[float, dict[int | None, Any]] = (-_MOUNTS_TTL, {})


def content_key(data: memoryview) -> str:
    """The key of a model known by its bytes: SHA-256 of the whole content (hex)."""
    return hashlib.sha256(data).hexdigest()


def stamp_key(stamp: Stamp) -> str:
    """The key of a model known by its file's stamp."""
    return "s%s-%x-%x-%x-%x-%x" % stamp


def note_read(data: bytes, before: os.stat_result, after: os.stat_result, started_ns: int) -> None:
    """Remember the stamp of the file ``data`` was just read from, if it has one (see the module docstring).

    Args:
        data: every byte read from the file.
        before: ``os.stat`` of the path before opening it.
        after: ``os.fstat`` of the open file after reading it.
        started_ns: ``time.time_ns()`` taken before ``before``.
    """
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


def _read_small(path: str, limit: int = 1 << 16) -> bytes:
    """A small file's bytes (a /proc file, a marker) in as few system calls as Python allows."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = [os.read(fd, limit)]
        while len(parts[-1]) == limit:
            parts.append(os.read(fd, limit))
    finally:
        os.close(fd)
    return b"".join(parts)


@lru_cache(maxsize=None)
def _boot_id() -> str | None:
    """This boot's id (Linux); ``None`` elsewhere, which turns stamps off."""
    try:
        return _read_small("/proc/sys/kernel/random/boot_id", 64).strip().decode() or None
    except (OSError, UnicodeDecodeError):
        return None


def _file_system(dev: int) -> str | None:
    """The type of the mounted file system with device number ``dev`` (``ext4``), ``None`` if not found."""
    global _mounts
    read_at, table = _mounts
    now = time.monotonic()
    if now - read_at > _MOUNTS_TTL:
        try:
            lines = _read_small("/proc/self/mountinfo")
        except OSError:
            lines = b""
        table = {}
        _mounts = (now, table)
        table[None] = lines
    found = table.get(dev, False)
    if found is False:
        found = table[dev] = _mounted_type(table[None], dev)
    return found


def _mounted_type(mountinfo: bytes, dev: int) -> str | None:
    """The file system type of device ``dev`` in /proc/self/mountinfo's bytes."""
    # a line: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"; fields hold no
    # spaces (the kernel writes them as \040), so the device is the 3rd field of the line it starts
    wanted = b" %d:%d " % (os.major(dev), os.minor(dev))
    at = mountinfo.find(wanted)
    while at >= 0:
        line = mountinfo.rfind(b"\n", 0, at) + 1
        if mountinfo.count(b" ", line, at) == 1:
            fs = mountinfo.find(b" - ", at)
            return mountinfo[fs + 3 : mountinfo.find(b" ", fs + 3)].decode("ascii", "replace") if fs >= 0 else None
        at = mountinfo.find(wanted, at + 1)
    return None


def recall(data: bytes | bytearray | memoryview, stamp: Stamp | None) -> Any | None:
    """What :func:`parse` made of a proven model read from the same unchanged file or equal to ``data``, if kept."""
    same_bytes = type(data) is bytes
    for kept, kept_stamp, model, summary in _recent:
        if stamp is not None and stamp == kept_stamp:
            return model
        if same_bytes and (kept is data or (len(kept) == len(data) and kept == data)):
            key = stamp_key(stamp) if stamp is not None else None
            if key is not None and key not in _proofs:  # the same bytes in another file: it passed too
                record(key, summary)
            return model
    return None


def keep(data: bytes | bytearray | memoryview, stamp: Stamp | None, model: Any, summary: bytes) -> None:
    """Keep a proven model and its summary for :func:`recall` (immutable ``bytes`` only)."""
    if type(data) is bytes:
        with _lock:
            _recent.insert(0, (data, stamp, model, summary))
            del _recent[_KEEP:]


def forget() -> None:
    """Forget every proof of this process (the markers on disk stay), as a new process starts."""
    with _lock:
        _recent.clear(), _stamped.clear(), _proofs.clear(), _where.clear()


def _folder() -> str | None:
    """Where proofs are filed; ``None`` (memory only) when disabled or when the checking code cannot be found.

    Read from the environment at the first proof a process looks up (:func:`forget` reads it again).
    """
    if not _where:
        root = os.environ.get("EDGEQ_CACHE_DIR")
        if root is None:
            root = _default_cache()
        code = _code_id() if root else None
        _where.append(f"{root}/checked/{code}" if code else None)
    return _where[0]


@lru_cache(maxsize=None)
def _default_cache() -> str:
    """``$XDG_CACHE_HOME/edgeq`` or ``~/.cache/edgeq``, as the process started."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgeq")


@lru_cache(maxsize=None)
def _code_id() -> str | None:
    """The checking modules' sizes and modification times, hashed (once per process); ``None`` without sources."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        infos = [os.stat(os.path.join(here, name)) for name in _CHECKING_CODE]
    except OSError:  # e.g. an install without sources: no proof could tell an old check from a new one
        return None
    seen = ":".join(f"{i.st_size}.{i.st_mtime_ns}" for i in infos)
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


def proof(key: str) -> bytes | None:
    """The summary of the model with this key if it passed the checks before (in this process or an earlier one)."""
    summary = _proofs.get(key)
    if summary is not None:
        return summary
    folder = _folder()
    if folder is None:
        return None
    try:
        marker = _read_small(f"{folder}/{key}")
    except OSError:
        return None
    summary = marker[4:]
    if zlib.crc32(summary) != int.from_bytes(marker[:4], "little") or len(marker) < 4:
        return None  # damaged: as if there were no proof
    _proofs[key] = summary
    return summary


def record(key: str, summary: bytes) -> None:
    """Record that the model with this key passed, with its summary; a cache that cannot be written is skipped."""
    _proofs[key] = summary
    folder = _folder()
    if folder is None:
        return
    tmp = os.path.join(folder, f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if not os.path.isdir(folder):
            os.makedirs(folder, exist_ok=True)
            _prune(os.path.dirname(folder))
        with open(tmp, "wb") as fh:
            fh.write(zlib.crc32(summary).to_bytes(4, "little") + summary)
        os.replace(tmp, os.path.join(folder, key))  # atomic: a marker exists only once complete
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _prune(checked: str) -> None:
    """Remove the folders of proofs that gained none for ``PRUNE_DAYS`` (every install or edit of edgeq starts one)."""
    import shutil  # rarely needed: not on a load's path

    cutoff = time.time() - PRUNE_DAYS * 86400
    with contextlib.suppress(OSError), os.scandir(checked) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
