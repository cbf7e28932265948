"""Kinds of valid models real third-party files are made of: each loads and runs exactly as on bare LiteRT.

The models are built here (tests/model_kinds.py, LiteRT's flatbuffer object API): sparse weights, opcodes as
ai-edge-quantizer writes them, inputs of dynamic size, a stateful streaming model with an init subgraph.
Corruptions of the same models stay refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.errors import ModelError
from model_kinds import accumulator_model, fc_model, fc_weights, float_fc_with_signature, fully_convolutional_model

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


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


# ------------------------------------------------------------------------ dynamic sizes, batches, state
def bare_litert_resized(data: bytes, x: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, x.shape)
    it.allocate_tensors()
    it.set_tensor(index, x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_dynamic_sizes_load_and_resize_per_input():
    """The placeholder [1, 1, 1, 3] cannot be prepared: load without allocating, resize to each input's size."""
    from ai_edge_litert.interpreter import Interpreter

    data = fully_convolutional_model()
    with pytest.raises(RuntimeError):  # what Model() used to do at load time
        Interpreter(model_content=data).allocate_tensors()
    model = edgeq.load(data)
    assert model.dynamic
    rng = np.random.default_rng(3)
    for shape in [(1, 8, 8, 3), (2, 10, 6, 3), (1, 8, 8, 3), (1, 3, 3, 3)]:
        x = rng.random(shape, dtype=np.float32)
        got = model.predict(x)["y"]
        assert got.shape == (shape[0], shape[1] - 2, shape[2] - 2, 2)
        assert np.array_equal(got, bare_litert_resized(data, x))


def test_profile_of_a_dynamic_model_needs_an_input_shape(tmp_path, capsys):
    from edgeq.cli import main

    path = tmp_path / "fcn.tflite"
    path.write_bytes(fully_convolutional_model())
    assert main(["profile", str(path), "--runs", "3", "--no-memory", "--threads", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has inputs of dynamic size (x [-1, -1, -1, 3])" in err and "--input-shape" in err
    assert len(err.splitlines()) == 1
    assert main(["profile", str(path), "--input-shape", "1,12,12,3", "--runs", "3", "--no-memory", "--threads", "1",
                 "--ops", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["input"].startswith("random 1,12,12,3")
    (conv,) = report["results"][0]["ops"]["ops"]
    assert conv["op"] == "CONV_2D" and conv["not_timed"] is None and conv["ms"] >= 0  # cut at the real size
    assert main(["profile", str(path), "--input-shape", "1,12,12,4", "--runs", "3", "--no-memory"]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert main(["run", str(path), "--random"]) == 2
    assert "has inputs of dynamic size" in capsys.readouterr().err


def test_reset_restores_the_initial_state_like_a_fresh_load():
    """The init subgraph (CALL_ONCE) sets the state; LiteRT's reset_all_variables() does not run it again."""
    data = accumulator_model()
    xs = np.random.default_rng(4).random((5, 1, 4), dtype=np.float32)
    fresh = [edgeq.load(data).predict(x)["y"] for x in xs[:1]]
    model = edgeq.load(data)
    first = [model.predict(x)["y"] for x in xs]
    np.testing.assert_allclose(first[-1], [[1, 2, 3, 4]] + xs.sum(axis=0), rtol=1e-6)
    model.interpreter.reset_all_variables()
    assert not np.array_equal(model.predict(xs[0])["y"], fresh[0])  # why reset() cannot rely on it
    model.reset()
    again = [model.predict(x)["y"] for x in xs]
    for a, b in zip(first, again):
        assert np.array_equal(a, b)
    assert np.array_equal(again[0], fresh[0])


def test_npy_samples_of_a_fixed_batch_model_run_as_a_stream(tmp_path, capsys):
    """A stateful model fixing its batch at 1: N samples -> N results, one after another, in order."""
    from edgeq.cli import main

    path, npy = tmp_path / "acc.tflite", tmp_path / "x.npy"
    path.write_bytes(accumulator_model())
    xs = np.random.default_rng(5).random((3, 1, 4), dtype=np.float32).reshape(3, 4)
    np.save(npy, xs[:, None, :].reshape(3, 4))  # [3, 4]: 3 samples of the input's rank
    assert main(["run", str(path), str(npy), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["input"] for r in lines] == [f"{npy}[{i}]" for i in range(3)]
    assert all(r["batch"] == 1 for r in lines)
    expected = np.asarray([1, 2, 3, 4], np.float32) + np.cumsum(xs, axis=0)
    np.testing.assert_allclose([r["outputs"]["y"][0] for r in lines], expected, rtol=1e-6)


def test_npy_samples_of_a_batch_model_give_one_result_each_with_top_k_per_sample(tmp_path, capsys):
    from edgeq.cli import main

    sample = edgeq.load(SAMPLE)
    npy = tmp_path / "x.npy"
    xs = np.random.default_rng(6).random((4, 28, 28, 1), dtype=np.float32)
    np.save(npy, xs)
    assert main(["run", str(SAMPLE), str(npy), "--json", "--top", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 4 and all(r["batch"] == 4 for r in lines)
    for x, r in zip(xs, lines):
        alone = sample.predict(x)["output_0"]
        np.testing.assert_allclose(r["outputs"]["output_0"], alone, atol=1e-6)
        assert [t["label"] for t in r["top"]] == [label for label, _ in edgeq.runtime.top(alone, 3, sample.labels)]
        assert all(t["label"] in sample.labels for t in r["top"])


def test_per_op_profile_degrades_per_op_and_lists_every_subgraph():
    """Ops that cannot be timed alone say why; the control-flow subgraph's ops are listed; whole-model figures stay."""
    sparse = edgeq.profile(fc_model(sparse=True), threads=1, runs=3, warmup=0, ops=True, ops_rounds=2, memory=False)
    ops = sparse.results[0].ops
    by_op = {o.op: o for o in ops.ops}
    assert [o.op for o in ops.ops] == ["DENSIFY", "DEQUANTIZE", "FULLY_CONNECTED"]
    assert by_op["FULLY_CONNECTED"].not_timed is None and by_op["DEQUANTIZE"].not_timed is None
    densify = by_op["DENSIFY"]  # constant input only: XNNPACK expands it at load, its one-op model does not run
    assert densify.ms == densify.min_ms == 0 and "inputs are all constants" in densify.not_timed
    assert ops.whole_ms > 0 and sparse.results[0].latency.p50_ms > 0

    stateful = edgeq.profile(accumulator_model(), threads=1, runs=3, warmup=0, ops=True, ops_rounds=2, memory=False)
    listed = [(o.subgraph, o.op) for o in stateful.results[0].ops.ops]
    assert listed == [(0, "CALL_ONCE"), (0, "VAR_HANDLE"), (0, "READ_VARIABLE"), (0, "ADD"), (0, "ASSIGN_VARIABLE"),
                      (1, "VAR_HANDLE"), (1, "ASSIGN_VARIABLE")]
    inner = [o for o in stateful.results[0].ops.ops if o.subgraph == 1]
    assert all(o.not_timed == "runs inside subgraph 1, timed as part of #0 CALL_ONCE" for o in inner)


@pytest.mark.tf
def test_block_sparse_weights_written_by_the_converter(tmp_path):
    """TFLite's converter (EXPERIMENTAL_SPARSITY) stores pruned float Dense weights in 1x4 blocks, read by the kernel."""
    import keras
    import tensorflow as tf
    from ai_edge_litert.tools import flatbuffer_utils

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32), keras.layers.Dense(16)])
    rng = np.random.default_rng(0)
    for layer in model.layers:
        w, b = layer.get_weights()  # [in, out]: blocks of 4 along "in" (dimension 1 of TFLite's [out, in])
        layer.set_weights([w * (rng.random((w.shape[0] // 4, w.shape[1])) < 0.2).repeat(4, axis=0), b])
    model.export(str(tmp_path / "sm"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    data = converter.convert()
    sparse = [t for sg in parse(data).subgraphs for t in sg.tensors if t.sparsity is not None]
    assert sparse and all(t.sparsity.block_map == (1,) and t.sparsity.dims[2].dense_size == 4 for t in sparse)
    x = rng.random((1, 64), dtype=np.float32)
    assert np.array_equal(next(iter(edgeq.load(data, threads=1).predict(x).values())), bare_litert(data, x))

    tree = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    tensor = next(t for t in tree.subgraphs[0].tensors if t.sparsity is not None)
    indices = tensor.sparsity.dimMetadata[1].arrayIndices
    indices.values = list(indices.values)[:-1] + [64 // 4]  # one block past the blocked dimension (16 blocks)
    with pytest.raises(ModelError, match=r"sparse indices outside 0\.\.15"):
        parse(bytes(flatbuffer_utils.convert_object_to_bytearray(tree)), "m.tflite")
