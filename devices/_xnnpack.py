"""Checking that the interpreter really applies XNNPACK, its default CPU delegate.

LiteRT and tflite-runtime apply XNNPACK on their own (no option needed) when they can identify
the CPU. The honest test is to build an interpreter and look: on a tiny float32 model, a
delegated graph has a ``DELEGATE`` node after ``allocate_tensors()``.
"""

from __future__ import annotations

import base64
from typing import Any

#: float32 ``y = x + x`` on shape [1, 4]: ``tf.function`` converted by ``TFLiteConverter`` (TF 2.21), 656 bytes
_ADD_MODEL = base64.b64decode(
    "HAAAAFRGTDMUACAAHAAYABQAEAAMAAAACAAEABQAAAAcAAAAHAAAAHQAAAAkAQAANAEAAEwCAAADAAAAAAAAAAIAAAA0"
    "AAAABAAAANz///8EAAAABAAAABMAAABDT05WRVJTSU9OX01FVEFEQVRBAAgADAAIAAQACAAAAAMAAAAEAAAAEwAAAG1p"
    "bl9ydW50aW1lX3ZlcnNpb24ABQAAAKwAAACkAAAAnAAAAHwAAAAEAAAAkv///wQAAABgAAAAEAAAAAAAAAAIAA4ACAAE"
    "AAgAAAAQAAAAJAAAAAAABgAIAAQABgAAAAQAAAAAAAAADAAYABQAEAAMAAQADAAAAH5yXCIk9EkcAwAAAAIAAAAEAAAA"
    "BgAAADIuMjEuMAAAAAAGAAgABAAGAAAABAAAABAAAAAxLjUuMAAAAAAAAAAAAAAAvP7//8D+///E/v//DwAAAE1MSVIg"
    "Q29udmVydGVkLgABAAAAFAAAAAAADgAYABQAEAAMAAgABAAOAAAAFAAAABwAAABcAAAAYAAAAGQAAAAEAAAAbWFpbgAA"
    "AAABAAAAFAAAAAAADgAUAAAAEAAMAAsABAAOAAAAEAAAAAAAAAsMAAAAEAAAAET///8BAAAAAQAAAAIAAAAAAAAAAAAA"
    "AAEAAAABAAAAAQAAAAAAAAACAAAAWAAAAAQAAADG////AAAAARAAAAAQAAAAAgAAABgAAACQ////CAAAAElkZW50aXR5"
    "AAAAAAIAAAABAAAABAAAAAAAFgAYABQAAAAQAAwACAAAAAAAAAAHABYAAAAAAAABEAAAABAAAAABAAAAEAAAAOD///8B"
    "AAAAeAAAAAIAAAABAAAABAAAAAEAAAAIAAAABAAEAAQAAAA="
)


def xnnpack_applied(interpreter_class: Any) -> bool:
    """Whether an interpreter built with default options delegates a float32 ADD to XNNPACK.

    Args:
        interpreter_class: the backend's ``Interpreter`` (LiteRT's, tflite-runtime's or ``tf.lite``'s).

    Returns:
        ``True`` when the graph gained a ``DELEGATE`` node, the mark of the default XNNPACK delegate.

    Raises:
        Exception: whatever the interpreter raises; the doctor reports it.
    """
    interpreter = interpreter_class(model_content=_ADD_MODEL, num_threads=1)
    interpreter.allocate_tensors()
    return any(op.get("op_name") == "DELEGATE" for op in interpreter._get_ops_details())
