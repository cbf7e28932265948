"""The ``edgeq`` metadata written in front of a converter's model: the same model as LiteRT's object API would write.

The fast path keeps the converter's bytes as they are and puts a new root table in front; these tests hold it
to the object-API rebuild (``_rebuild``) on real converter outputs: every buffer, every metadata entry, the
signatures, and the interpreter's outputs on the same input must match, and replacing an entry must work.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeq._flatbuffer import parse
from edgeq.converters.embed import _rebuild, embed_metadata
from edgeq.metadata import METADATA_NAME, ModelMetadata, QuantInfo, read_metadata
from edgeq.runtime import Model

pytestmark = pytest.mark.tf


def _object(model: bytes):  # type: ignore[no-untyped-def]
    from ai_edge_litert.tools import flatbuffer_utils

    return flatbuffer_utils.convert_bytearray_to_object(bytearray(model))


def _same_model(a: bytes, b: bytes) -> None:
    """Both files hold the same buffers, metadata entries, signatures, version and subgraphs."""
    x, y = _object(a), _object(b)
    assert x.version == y.version and len(x.subgraphs) == len(y.subgraphs)
    assert len(x.operatorCodes) == len(y.operatorCodes)
    assert len(x.buffers) == len(y.buffers)
    for i, (bx, by) in enumerate(zip(x.buffers, y.buffers)):
        dx = np.asarray(bx.data if bx.data is not None else [], dtype=np.uint8)
        dy = np.asarray(by.data if by.data is not None else [], dtype=np.uint8)
        assert np.array_equal(dx, dy), f"buffer {i} differs"
    assert [(m.name, m.buffer) for m in x.metadata] == [(m.name, m.buffer) for m in y.metadata]
    assert [s.signatureKey for s in x.signatureDefs or []] == [s.signatureKey for s in y.signatureDefs or []]


@pytest.mark.parametrize("which", ["tfl_float32", "tfl_uint8", "tfl_multi_io"])
def test_fast_embed_matches_the_object_api(which, request, tmp_path):
    source: Path = request.getfixturevalue(which)
    plain = source.read_bytes()
    assert METADATA_NAME not in parse(plain).metadata  # a converter's output, as convert gets it
    meta = ModelMetadata(QuantInfo("float32"), labels=("a", "b", "c"))
    fast = embed_metadata(plain, meta)
    assert fast.endswith(plain)  # the fast path: the converter's bytes untouched, behind a new root table
    slow = _rebuild(plain, meta.to_json())
    _same_model(fast, slow)
    assert parse(fast).metadata[METADATA_NAME] == meta.to_json()
    (tmp_path / "m.tflite").write_bytes(fast)
    assert read_metadata(tmp_path / "m.tflite").labels == ("a", "b", "c")

    converted, reference = Model(fast), Model(plain)
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in converted.inputs:
        shape = [d if d > 0 else 1 for d in spec.shape]
        feeds[spec.name] = (rng.integers(0, 255, shape).astype(spec.dtype) if np.issubdtype(spec.dtype, np.integer)
                            else rng.random(shape).astype(spec.dtype))
    got, want = converted.predict(feeds), reference.predict(feeds)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)


def test_embedding_again_replaces_the_entry(tfl_float32):
    first = embed_metadata(tfl_float32.read_bytes(), ModelMetadata(QuantInfo("float32"), labels=("x",)))
    second = embed_metadata(first, ModelMetadata(QuantInfo("int8"), labels=("y", "z")))
    names = [m.name for m in _object(second).metadata]
    assert names.count(METADATA_NAME.encode()) == 1
    entry = json.loads(parse(second).metadata[METADATA_NAME])
    assert entry["labels"] == ["y", "z"] and entry["quant"]["mode"] == "int8"
