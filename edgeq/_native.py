"""Keeping native libraries' console chatter (TensorFlow, the converter) out of edgeq's output."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Iterator


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Send what native code writes to file descriptors 1 and 2 into a log record (level DEBUG).

    TensorFlow and the TFLite converter print from C++ regardless of ``TF_CPP_MIN_LOG_LEVEL``;
    this keeps the CLI's stdout clean for ``--json``. Python-level writes are flushed first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with _sink() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                _log_debug("native output:\n%s", text)


def _sink() -> IO[bytes]:
    """An anonymous file for the captured output: a memfd on Linux (``tempfile`` costs ~5 ms of a cold start)."""
    if hasattr(os, "memfd_create"):
        try:
            return os.fdopen(os.memfd_create("edgeq-native-output", os.MFD_CLOEXEC), "w+b")
        except OSError:  # e.g. a seccomp filter refusing memfd_create
            pass
    import tempfile

    return tempfile.TemporaryFile()


def _log_debug(message: str, *args: object) -> None:
    """Log at DEBUG on ``edgeq.native``, importing ``logging`` only when it is in use.

    Before anything imported ``logging`` no handler or level can have been set, so a DEBUG record would go
    nowhere: a run that does not log skips the import (~5 ms of a cold start on x86, several times that on a Pi).
    """
    if "logging" in sys.modules:
        import logging

        logging.getLogger("edgeq.native").debug(message, *args)
