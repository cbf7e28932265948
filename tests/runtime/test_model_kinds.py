"""Kinds of valid models real third-party files are made of: each loads and runs exactly as on bare LiteRT.

The models are built here (tests/model_kinds.py, LiteRT's flatbuffer object API): sparse weights, opcodes as
ai-edge-quantizer writes them. Corruptions of the same models stay refused.
"""

from __future__ import annotations

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.errors import ModelError
from model_kinds import fc_model, fc_weights, float_fc_with_signature


def bare_litert(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_sparse_weights_run_like_their_dense_original():
    x = np.random.default_rng(0).random((1, 8), dtype=np.float32)
    sparse, dense = fc_model(sparse=True), fc_model()
    got = edgeq.load(sparse).predict(x)["y"]
    assert np.array_equal(got, bare_litert(sparse, x))
    assert np.array_equal(got, edgeq.load(dense).predict(x)["y"])
    np.testing.assert_allclose(got, x @ fc_weights().astype(np.float32).T, rtol=1e-5)


def _sparsity_edit(change):  # type: ignore[no-untyped-def]
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(fc_model(sparse=True)))
    stored = model.subgraphs[0].tensors[1]
    change(stored.sparsity, model.buffers[stored.buffer])
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _set(attr, value):  # type: ignore[no-untyped-def]
    def change(sp, buffer):  # type: ignore[no-untyped-def]
        target, name = (sp, attr) if "." not in attr else (getattr(sp.dimMetadata[1], attr.split(".")[0]), "values")
        setattr(target, name, value(getattr(target, name)))
    return change


@pytest.mark.parametrize("change, needle", [
    (_set("arrayIndices.values", lambda v: v[:-1] + [8]), "sparse indices outside 0..7"),
    (_set("arrayIndices.values", lambda v: v[:-1] + [-1]), "sparse indices outside 0..7"),
    (_set("arraySegments.values", lambda v: v[:-1]), "sparse segments for 4 positions"),
    (_set("arraySegments.values", lambda v: [v[0], v[2], v[1]] + v[3:]), "ascending"),
    (_set("arraySegments.values", lambda v: v[:-1] + [v[-1] - 1]), "sparse segments"),
    (_set("traversalOrder", lambda v: [0, 0]), "traversal order [0, 0]"),
    (_set("blockMap", lambda v: [5]), "for a shape of rank 2 with 1 blocks"),
    (lambda sp, buf: setattr(sp.dimMetadata[0], "denseSize", 5), "dense sparsity dimension of 5, expected 4"),
    (lambda sp, buf: setattr(buf, "data", buf.data[:-2]), "stored FLOAT16 values"),
])
def test_corrupt_sparsity_is_refused(change, needle):
    with pytest.raises(ModelError, match="corrupt TFLite model") as info:
        parse(_sparsity_edit(change), "m.tflite")
    assert needle in str(info.value)


@pytest.mark.parametrize("recipe_name, zeroed_code", [
    ("weight_only_wi4_afp32", True), ("dynamic_wi8_afp32", False), ("static_wi8_ai8", False),
])
def test_models_written_by_ai_edge_quantizer_load(recipe_name, zeroed_code, capsys):
    """ai-edge-quantizer writes ``deprecated_builtin_code`` 0 next to the real ``builtin_code``, as the schema allows."""
    pytest.importorskip("ai_edge_quantizer")
    from ai_edge_litert.tools import flatbuffer_utils
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(bytearray(float_fc_with_signature()), getattr(recipe, recipe_name)())
    if q.need_calibration:
        feeds = [{"x": np.random.default_rng(i).random((1, 32), dtype=np.float32)} for i in range(4)]
        result = q.quantize(q.calibrate({"serving_default": feeds}))
    else:
        result = q.quantize()
    data = bytes(result.quantized_model)
    codes = flatbuffer_utils.read_model_from_bytearray(bytearray(data)).operatorCodes
    # what the old check refused: deprecated_builtin_code 0 next to the real code
    assert any(c.deprecatedBuiltinCode == 0 and c.builtinCode > 0 for c in codes) == zeroed_code
    model = edgeq.load(data)
    tensor = model.prepare(np.random.default_rng(9).random((1, 32), dtype=np.float32))[0]  # int8 for static
    assert np.array_equal(model.predict(tensor, raw=True)["y"], bare_litert(data, tensor))


def test_inconsistent_opcodes_stay_refused():
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(fc_model()))
    model.operatorCodes[0].deprecatedBuiltinCode = 3  # DEQUANTIZE (6) claiming to be EMBEDDING_LOOKUP
    with pytest.raises(ModelError, match="inconsistent builtin codes"):
        parse(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), "m.tflite")


def test_densify_into_another_shape_is_refused():
    """Found by the fuzzer: XNNPACK densifies at load time into DENSIFY's declared output shape (a SIGSEGV)."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(fc_model(sparse=True)))
    model.subgraphs[0].tensors[2].shape = [8]
    with pytest.raises(ModelError, match=r"operator 0 \(DENSIFY\).*into \[8\] FLOAT16"):
        parse(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), "m.tflite")
