"""Keeping native libraries' console chatter (TensorFlow, the converter) out of edgeq's output."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import Iterator

log = logging.getLogger("edgeq.native")


@contextlib.contextmanager
def quiet_native_output() -> Iterator[None]:
    """Send what native code writes to file descriptors 1 and 2 into a log record (level DEBUG).

    TensorFlow and the TFLite converter print from C++ regardless of ``TF_CPP_MIN_LOG_LEVEL``;
    this keeps the CLI's stdout clean for ``--json``. Python-level writes are flushed first.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
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
                log.debug("native output:\n%s", text)
