"""File helpers shared by every command: reading models, hashing, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from edgeq import _checked
from edgeq.errors import ModelError, UsageError

#: the longest file name (bytes) common file systems accept
NAME_MAX = 255
#: flatbuffers address at most 2 GiB; a larger "model" is not one
MAX_MODEL_BYTES = 2**31 - 1
TFLITE_IDENTIFIER = b"TFL3"


def read_model_bytes(model: str | os.PathLike | bytes | bytearray | Any) -> tuple[bytes, str]:
    """Return ``(bytes, display name)`` of a model given as a path or as bytes.

    A path must be a regular file (not a FIFO or a device, which could block or never end) no larger than
    :data:`MAX_MODEL_BYTES`, and its first 8 bytes must carry the TFLite identifier before the rest is read.

    Raises:
        ModelError: the path does not exist, is a folder or not a regular file, is too large, has no TFLite
            header, or cannot be read.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "model bytes"
    path = Path(model)
    started = time.time_ns()
    try:
        info = path.stat()  # before opening: a FIFO would block open(); also the stamp's "before" (see below)
    except FileNotFoundError:
        raise ModelError(f"model file not found: {path}; check the path") from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ModelError(f"{path} is a folder, expected a .tflite file")
    if not stat.S_ISREG(info.st_mode):
        raise ModelError(f"{path} is not a regular file (a pipe, socket or device); give a .tflite file")
    if info.st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{path} is {info.st_size} bytes, larger than any TFLite flatbuffer can be "
                         f"({MAX_MODEL_BYTES}); give a .tflite file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
                got = head[4:8] if len(head) >= 8 else b"(file too short)"
                raise ModelError(f"{path} is not a TFLite model: expected the identifier {TFLITE_IDENTIFIER!r} at "
                                 f"byte 4, got {got!r}; give a .tflite file made by a TFLite/LiteRT converter")
            fh.seek(0)
            data = fh.read(info.st_size + 1)  # one byte more shows a file that grew while being read
            after = os.fstat(fh.fileno())  # the file read: if the path named another one, or it changed, they differ
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > MAX_MODEL_BYTES:
        raise ModelError(f"{path} grew beyond {MAX_MODEL_BYTES} bytes while being read; give a .tflite file")
    _checked.note_read(data, info, after, started)  # an unchanged file need not be checked again
    return data, str(path)


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


def check_output_path(out: str | os.PathLike, force: bool, inputs: Iterable[Any] = ()) -> Path:
    """Validate an output path before any work is done.

    Args:
        out: the file to write.
        force: whether an existing file may be replaced.
        inputs: the command's input files (model, data, labels, reports): ``out`` may never be one of them.

    Raises:
        UsageError: its folder is missing or not writable (permissions, a read-only file system), its name is
            too long, it is a dangling symbolic link, it exists and ``force`` is false, or it is one of ``inputs``
            (even with ``force``).
    """
    out = Path(out)
    if len(os.fsencode(out.name)) > NAME_MAX:
        raise UsageError(f"output file name is {len(os.fsencode(out.name))} bytes long; file systems allow at most "
                         f"{NAME_MAX}; choose a shorter name")
    try:
        if out.is_symlink() and not out.exists():
            raise UsageError(f"output {out} is a symbolic link to {os.readlink(out)}, which does not exist; "
                             "remove the link or choose another path")
        for item in inputs:
            if isinstance(item, (str, os.PathLike)) and same_file(out, item):
                raise UsageError(f"output {out} is the input {item}; edgeq never overwrites its inputs, even with "
                                 "--force; choose another output path")
        if not out.parent.is_dir():
            raise UsageError(f"output folder {out.parent} does not exist; create it first")
        if out.is_dir():
            raise UsageError(f"output {out} is a folder; give a file path")
        if out.exists() and not force:
            raise UsageError(f"output {out} exists; pass --force (force=True) to overwrite it")
    except OSError as exc:
        raise UsageError(f"output {out} cannot be used: {exc.strerror}; choose another path") from None
    if not os.access(out.parent, os.W_OK | os.X_OK):  # EROFS counts here even for root
        raise UsageError(f"output folder {out.parent} is not writable (read-only file system or permissions); "
                         "choose another --out")
    return out


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same existing file (through links too), or resolve to the same path."""
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError):
        return False


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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name[:NAME_MAX - 32]}.", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror}; check free space and permissions") from exc
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


def load_npy(path: str | os.PathLike) -> Any:
    """Load a ``.npy`` array after checking that its header matches the file (no pickles, no huge claims).

    Raises:
        DataError: not a regular file, empty, not a ``.npy`` file, an object array, or a header that
            promises more data than the file holds.
    """
    import numpy as np

    from edgeq.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is not a regular file; expected a .npy array")
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise DataError(f"{path} is a .npy file of format version {version}, which edgeq does not read")
            offset = fh.tell()
            if dtype.hasobject:
                raise DataError(f"{path} holds Python objects (a pickle); expected a numeric .npy array")
            needed = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if needed > size - offset:
                raise DataError(f"{path} is truncated or corrupt: its header promises shape {tuple(shape)} "
                                f"({needed} bytes) but the file holds {size - offset} bytes of data")
            fh.seek(0)
            return np.lib.format.read_array(fh, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {path} as a .npy array ({exc or 'empty file'})") from None


@contextlib.contextmanager
def all_or_nothing() -> Iterator[list[Path]]:
    """Collect the outputs written inside the block; if it fails, remove them again (both files or neither).

    Only files created by this command are removed: with ``force``, a replaced file is lost either way.
    """
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
