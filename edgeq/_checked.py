"""Which model files have already passed :func:`edgeq._flatbuffer.parse`'s checks, keyed by their whole content.

Checking a model costs about as much as the interpreter's own load (10-25 ms for MobileNetV2 224 int8 in pure
Python on an x86 core); a file that passed once passes again, so later loads skip the checks and read tensors
lazily. The key is every byte of the file; proofs are filed under a hash of the checking code itself (a newer
edgeq may check more), so a changed byte anywhere, or a changed check, means a full check.

In this process the last ``_KEEP`` proven ``bytes`` objects are kept and compared byte for byte (a memcmp, ~10x
cheaper than hashing; it keeps those files alive after their models are gone). Across processes, the SHA-256 of a
file that passed is an empty marker file in ``$EDGEQ_CACHE_DIR`` (default: ``$XDG_CACHE_HOME/edgeq`` or
``~/.cache/edgeq``) under ``checked/<code hash>/``, written atomically; SHA-256 is hardware-accelerated on x86-64
and recent ARM cores. Only a model that passed is recorded; set ``EDGEQ_CACHE_DIR`` to an empty string to keep
proofs in memory only. A cache directory others can write to could vouch for a corrupt file: it must be the
user's own, like the rest of the home directory."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

_proven: set[bytes] = set()
#: the most recent proven model files (bytes, compared in full); a repeated load finds its file here without hashing
_recent: list[bytes] = []
_KEEP = 2
#: the modules whose checks a proof stands for
_CHECKING_CODE = ("_flatbuffer.py", "_model_checks.py", "_tflite_names.py")


def key(data: memoryview) -> bytes:
    """The cache key of a model's bytes: SHA-256 of the whole content."""
    return hashlib.sha256(data).digest()


def seen(data: bytes | bytearray | memoryview) -> bool:
    """Whether these exact bytes passed the checks in this process (compared in full, no hashing)."""
    return isinstance(data, bytes) and any(data is b or (len(data) == len(b) and data == b) for b in _recent)


def keep(data: bytes | bytearray | memoryview) -> None:
    """Keep a proven model's bytes for :func:`seen` (immutable ``bytes`` only)."""
    if isinstance(data, bytes) and not seen(data):
        _recent.insert(0, data)
        del _recent[_KEEP:]


def _folder() -> Path | None:
    """Where proofs are filed; ``None`` (memory only) when disabled or when the checking code cannot be read."""
    root = os.environ.get("EDGEQ_CACHE_DIR")
    if root is None:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "edgeq")
    code = _code_id() if root else None
    return Path(root, "checked", code) if code else None


@lru_cache(maxsize=None)
def _code_id() -> str | None:
    """A short hash of the checking code's source (read once per process); ``None`` if it is not readable."""
    h = hashlib.sha256()
    try:
        for name in _CHECKING_CODE:
            h.update(Path(__file__).with_name(name).read_bytes())
    except OSError:  # e.g. an install without sources: no proof could tell an old check from a new one
        return None
    return h.hexdigest()[:16]


def proven(digest: bytes) -> bool:
    """Whether a model with this key passed the checks before (in this process or, recorded, in an earlier one)."""
    if digest in _proven:
        return True
    folder = _folder()
    if folder is not None and (folder / digest.hex()).is_file():
        _proven.add(digest)
        return True
    return False


def remember(digest: bytes) -> None:
    """Record that a model with this key passed; a cache folder that cannot be written is skipped silently."""
    _proven.add(digest)
    folder = _folder()
    if folder is None:
        return
    marker = folder / digest.hex()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{digest.hex()}.{os.getpid()}.tmp"
        tmp.touch()
        os.replace(tmp, marker)  # atomic: a marker exists only once complete (it is empty anyway)
    except OSError:
        pass
