"""Describing a ``.tflite`` file without an interpreter (what ``edgeq inspect`` shows)."""

from __future__ import annotations

import os
from typing import Any

from edgeq._flatbuffer import parse
from edgeq._io import read_model_bytes, sha256_of
from edgeq.metadata import METADATA_NAME, ModelMetadata


def inspect_model(path: str | os.PathLike) -> dict[str, Any]:
    """Describe a .tflite file: size, sha256, subgraphs' inputs/outputs, op counts, edgeq metadata."""
    data, name = read_model_bytes(path)
    f = parse(data, name)
    raw = f.metadata.get(METADATA_NAME)

    def tensor(t: Any) -> dict[str, Any]:
        return {"name": t.name, "shape": list(t.shape), "shape_signature": list(t.shape_signature),
                "dtype": t.dtype.lower(), "scale": t.scales[0] if len(t.scales) == 1 else None,
                "zero_point": t.zero_points[0] if len(t.zero_points) == 1 else 0}

    return {
        "model": name, "size_bytes": len(data), "sha256": sha256_of(data),
        "subgraphs": [{"name": sg.name, "inputs": [tensor(sg.tensors[i]) for i in sg.inputs],
                       "outputs": [tensor(sg.tensors[i]) for i in sg.outputs], "operators": len(sg.operators)}
                      for sg in f.subgraphs],
        "signatures": [s.key for s in f.signatures],
        "op_counts": f.op_counts(),
        "metadata_entries": sorted(f.metadata),
        "edgeq": ModelMetadata.from_json(raw, name).to_dict() if raw else None,
    }
