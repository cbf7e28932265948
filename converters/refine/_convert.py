"""``convert(..., refine=True)``: refine the converted model against a float32 conversion of the same source."""

from __future__ import annotations

import dataclasses
from typing import Any

from edgeq.errors import UsageError

from edgeq.converters.refine._refine import RefineReport, refine

#: modes whose weights ``--refine`` can re-round
MODES = ("int8", "uint8", "int8-weights", "int4-weights")


def check_options(mode: str, data: Any) -> None:
    """Refuse ``--refine`` where it cannot work, before anything is converted.

    Raises:
        UsageError: a mode without integer weights, or no representative data.
    """
    if mode not in MODES:
        raise UsageError(f"--refine works with --mode {', '.join(MODES)}. Received: --mode {mode}")
    if data is None:
        raise UsageError("--refine needs --data: it refines the weights against the float model on those samples")


def refine_conversion(tf: Any, source: Any, spec: Any, tflite: bytes, reference: bytes | None, samples: Any,
                      seed: int) -> tuple[bytes, RefineReport]:
    """Refine ``tflite`` on the calibration samples; ``reference`` is the float32 model (converted here when ``None``)."""
    if reference is None:
        from edgeq.converters.convert import _run_converter
        from edgeq.converters.modes import get_mode

        reference = _run_converter(tf, source, get_mode("float32"), "float32", None)
    return refine(tflite, reference, samples.calibration, seed=seed)


def with_plain(report: RefineReport, plain: Any) -> RefineReport:
    """The report with the plain (unrefined) model's verification, for the side-by-side table."""
    return dataclasses.replace(report, plain=plain)
