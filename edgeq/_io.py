"""File helpers shared by every command: reading models, hashing, atomic writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from edgeq.errors import ModelError, UsageError


def read_model_bytes(model: str | os.PathLike | bytes | bytearray | Any) -> tuple[bytes, str]:
    """Return ``(bytes, display name)`` of a model given as a path or as bytes.

    Raises:
        ModelError: the path does not exist, is a folder, or cannot be read.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "model bytes"
    path = Path(model)
    if not path.exists():
        raise ModelError(f"model file not found: {path}; check the path")
    if path.is_dir():
        raise ModelError(f"{path} is a folder, expected a .tflite file")
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}") from exc


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of every file below a folder (sorted by relative path)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def check_output_path(out: str | os.PathLike, force: bool) -> Path:
    """Validate an output path before any work is done.

    Raises:
        UsageError: its folder is missing or not writable (permissions, a read-only file system), or it
            exists and ``force`` is false.
    """
    out = Path(out)
    if not out.parent.is_dir():
        raise UsageError(f"output folder {out.parent} does not exist; create it first")
    if out.is_dir():
        raise UsageError(f"output {out} is a folder; give a file path")
    if out.exists() and not force:
        raise UsageError(f"output {out} exists; pass --force (force=True) to overwrite it")
    if not os.access(out.parent, os.W_OK | os.X_OK):  # EROFS counts here even for root
        raise UsageError(f"output folder {out.parent} is not writable (read-only file system or permissions); "
                         "choose another --out")
    return out


def atomic_write(out: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``out`` so that readers see either nothing or the whole file.

    The bytes go to a temporary file in the same folder, are flushed to disk, then
    renamed over ``out`` (``force``) or hard-linked to it, which fails if another
    writer got there first. The temporary file is removed on any failure, Ctrl-C included.

    Raises:
        UsageError: ``out`` exists and ``force`` is false, or the folder is not writable / full.
    """
    import tempfile  # here, not at the top: it pulls shutil, bz2, lzma and random into every `import edgeq.runtime`

    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if force:
            os.replace(tmp, out)
        else:
            try:
                os.link(tmp, out)
            except FileExistsError:
                raise UsageError(f"output {out} exists; pass --force (force=True) to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}; check free space and permissions") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
