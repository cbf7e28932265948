"""`edgeq.runtime.Model` on real models: edgeq-converted ones and ones straight from the TFLite converter.

Every result is checked against TensorFlow's own ``tf.lite.Interpreter`` (same quantized input ⇒ the
same raw output) and against the float Keras model (within a few quantization steps).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import DataError, DeviceError, InferenceError, ModelError, UsageError
from edgeq.runtime import Model, load
from edgeq.runtime.preprocess import dequantize, quantize
from support import LABELS, SIZE, multi_io_samples, rng_images, tflite_reference


pytestmark = pytest.mark.tf

#: how far a quantized output may be from the float Keras model, in steps of its output scale
STEPS = 4


def keras_out(model, x):  # type: ignore[no-untyped-def]
    out = model(x, training=False)
    return [np.asarray(o.numpy()) for o in out] if isinstance(out, (list, tuple)) else np.asarray(out.numpy())


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def litert_details(path: Path) -> tuple[list[dict], list[dict]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    return interpreter.get_input_details(), interpreter.get_output_details()


# ----------------------------------------------------------------------------- describing tensors
def test_inputs_and_outputs_describe_the_tensors(edgeq_int8):
    model = load(edgeq_int8)
    (spec,) = model.inputs
    (out,) = model.outputs
    ins, outs = litert_details(edgeq_int8)
    assert spec.name == "image" and out.name == "output_0"  # signature names, not serving_default_image:0
    assert spec.index == ins[0]["index"] and out.index == outs[0]["index"]
    assert spec.shape == (1, SIZE, SIZE, 3) and spec.shape_signature == (-1, SIZE, SIZE, 3)
    assert spec.dtype == np.int8 and out.dtype == np.int8
    assert (spec.scale, spec.zero_point) == pytest.approx(ins[0]["quantization"])
    assert (out.scale, out.zero_point) == pytest.approx(outs[0]["quantization"])
    assert spec.quantized and spec.is_image and out.quantized and not out.is_image
    described = model.describe()
    assert described["inputs"][0] == {
        "name": "image", "index": spec.index, "shape": [1, SIZE, SIZE, 3], "shape_signature": [-1, SIZE, SIZE, 3],
        "dtype": "int8", "scale": spec.scale, "zero_point": spec.zero_point,
    }
    assert described["metadata"]["labels"] == list(LABELS)
    assert described["signature"] == "serving_default"


def test_float_model_tensors_are_not_quantized(tfl_float32):
    model = Model(tfl_float32)
    assert model.metadata is None and model.labels == ()
    assert not model.inputs[0].quantized and model.inputs[0].dtype == np.float32
    assert (model.inputs[0].scale, model.inputs[0].zero_point) == (0.0, 0)


# --------------------------------------------------------------------- edgeq int8: quantization
def test_int8_matches_tflite_and_keras(edgeq_int8, keras_classifier):
    model = Model(edgeq_int8)
    spec, out = model.inputs[0], model.outputs[0]
    x = rng_images(6, seed=21)
    ref = keras_out(keras_classifier, x)
    for i, xi in enumerate(x):
        q = quantize(xi[None], spec.scale, spec.zero_point, np.int8)
        raw = model.predict(q, raw=True)["output_0"]
        np.testing.assert_array_equal(raw, tflite_reference(edgeq_int8, {"image": q})["output_0"])
        got = model.predict(xi)["output_0"]
        np.testing.assert_allclose(got, ref[i : i + 1], atol=STEPS * out.scale)
        assert got.argmax() == ref[i].argmax()


def test_float_input_is_quantized_and_int8_passes_through(edgeq_int8):
    model = Model(edgeq_int8)
    spec = model.inputs[0]
    x = rng_images(1, seed=22)
    (q,) = model.prepare(x)
    assert q.dtype == np.int8 and q.shape == (1, SIZE, SIZE, 3)
    np.testing.assert_array_equal(q, np.clip(np.round(x * (1 / np.float32(spec.scale))) + spec.zero_point, -128, 127))
    np.testing.assert_array_equal(model.prepare(q)[0], q)  # already int8: untouched
    np.testing.assert_array_equal(model.prepare(x[0])[0], q)  # the batch dimension is added
    np.testing.assert_array_equal(model.prepare(x.astype(np.float64))[0], q)
    assert_same(model.predict(q), model.predict(x))


def test_raw_outputs_and_dequantize(edgeq_int8):
    model = Model(edgeq_int8)
    out = model.outputs[0]
    x = rng_images(1, seed=23)
    raw = model.predict(x, raw=True)
    assert raw["output_0"].dtype == np.int8
    values = model.dequantize(raw)
    assert values["output_0"].dtype == np.float32
    np.testing.assert_array_equal(values["output_0"], model.predict(x)["output_0"])
    np.testing.assert_array_equal(values["output_0"], dequantize(raw["output_0"], out.scale, out.zero_point))
    np.testing.assert_array_equal(model(x)["output_0"], values["output_0"])  # __call__ is predict


def test_out_of_range_floats_are_clipped_not_wrapped(edgeq_int8):
    model = Model(edgeq_int8)
    x = np.full((1, SIZE, SIZE, 3), 50.0, np.float32)
    assert (model.prepare(x)[0] == 127).all()
    assert (model.prepare(-x)[0] == -128).all()


# -------------------------------------------------------------------------- kinds of image input
def test_path_pil_and_uint8_array_give_the_same_tensor(edgeq_int8, photo):
    from PIL import Image

    model = Model(edgeq_int8)
    by_path = model.prepare(photo)[0]
    assert by_path.shape == (1, SIZE, SIZE, 3) and by_path.dtype == np.int8
    with Image.open(photo) as img:
        pil = img.convert("RGB")
    pixels = np.asarray(pil)
    np.testing.assert_array_equal(model.prepare(str(photo))[0], by_path)
    np.testing.assert_array_equal(model.prepare(pil)[0], by_path)
    np.testing.assert_array_equal(model.prepare(pixels)[0], by_path)  # uint8 HxWx3 is an image
    np.testing.assert_array_equal(model.prepare(pixels[None])[0], by_path)  # and NxHxWx3 a batch of them
    assert_same(model.predict(photo), model.predict(pil))


def test_list_of_images_is_a_batch(edgeq_int8, photo, image_folder):
    from PIL import Image

    model = Model(edgeq_int8)
    files = sorted(image_folder.rglob("*.png"))[:2]
    with Image.open(files[1]) as img:
        batch = [photo, files[0], img.copy()]
    got = model.predict(batch)["output_0"]
    assert got.shape == (3, len(LABELS))
    for row, item in zip(got, batch):
        np.testing.assert_array_equal(row, model.predict(item)["output_0"][0])
    assert model.predict(photo)["output_0"].shape == (1, len(LABELS))  # back to a batch of one


def test_classify_uses_the_embedded_labels(edgeq_int8, photo):
    model = Model(edgeq_int8)
    assert model.labels == LABELS
    scores = model.predict(photo)["output_0"][0]
    ranked = model.classify(photo, k=2)
    assert len(ranked) == 2 and all(label in LABELS for label, _ in ranked)
    assert ranked[0] == (LABELS[int(scores.argmax())], pytest.approx(float(scores.max())))
    assert ranked[0][1] >= ranked[1][1]
    assert [label for label, _ in model.classify(photo, k=10)] == [LABELS[i] for i in np.argsort(-scores, kind="stable")]


def test_labels_argument_is_used_only_without_metadata(tfl_float32, edgeq_int8, photo):
    names = ("a", "b", "c", "d")
    assert Model(tfl_float32, labels=names).classify(photo, k=1)[0][0] in names
    assert Model(edgeq_int8, labels=names).labels == LABELS
    assert Model(tfl_float32).classify(photo, k=1)[0][0] in {"0", "1", "2", "3"}


# ------------------------------------------------------------------------ models from tf.lite
def test_float16_model_matches_tflite_and_keras(tfl_float16, keras_classifier):
    model = Model(tfl_float16)
    assert model.inputs[0].dtype == np.float32 and model.outputs[0].dtype == np.float32
    x = rng_images(3, seed=24)
    got = model.predict(x)["output_0"]  # the batch dimension is dynamic
    np.testing.assert_array_equal(got, tflite_reference(tfl_float16, {"image": x})["output_0"])
    np.testing.assert_allclose(got, keras_out(keras_classifier, x), atol=1e-3)


def test_uint8_model_quantizes_to_uint8(tfl_uint8, keras_classifier):
    model = Model(tfl_uint8)
    spec, out = model.inputs[0], model.outputs[0]
    assert spec.dtype == np.uint8 and out.dtype == np.uint8 and spec.quantized
    x = rng_images(4, seed=25)
    (q,) = model.prepare(x)
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(q, quantize(x, spec.scale, spec.zero_point, np.uint8))
    raw = model.predict(q, raw=True)["output_0"]
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw, tflite_reference(tfl_uint8, {"image": q})["output_0"])
    np.testing.assert_allclose(model.predict(x)["output_0"], keras_out(keras_classifier, x), atol=STEPS * out.scale)


def test_uint8_model_on_images_uses_default_preprocessing(tfl_uint8, photo):
    from PIL import Image

    from edgeq.runtime.preprocess import default_preprocess, image_to_array

    model = Model(tfl_uint8)
    spec = model.inputs[0]
    expected = quantize(image_to_array(photo, default_preprocess(spec.shape))[None], spec.scale, spec.zero_point, np.uint8)
    np.testing.assert_array_equal(model.prepare(photo)[0], expected)
    with Image.open(photo) as img:
        pixels = np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR))
    # a uint8 array already is the input's dtype: it is fed as is, not treated as pixels
    np.testing.assert_array_equal(model.prepare(pixels)[0], pixels[None])


def test_dynamic_batch_resizes_and_matches_keras(tfl_float32, keras_classifier):
    model = Model(tfl_float32)
    assert model.inputs[0].shape_signature[0] == -1
    x = rng_images(5, seed=26)
    ref = keras_out(keras_classifier, x)
    got = model.predict(x)["output_0"]
    assert got.shape == (5, len(LABELS))
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(model.predict(x[:2])["output_0"], ref[:2], atol=1e-5)
    np.testing.assert_allclose(model.predict(x[3])["output_0"], ref[3:4], atol=1e-5)  # and back to 1


def test_multi_input_multi_output(tfl_multi_io, multi_io_keras):
    model = Model(tfl_multi_io)
    assert sorted(s.name for s in model.inputs) == ["extra", "image"]
    assert [s.name for s in model.outputs] == ["output_0", "output_1"]
    assert [s.shape for s in model.outputs] == [(1, 3), (1, 2)]
    for feeds in multi_io_samples(3):  # calibration samples: inside the quantized ranges
        got = model.predict(feeds)
        ref = keras_out(multi_io_keras, [feeds["image"], feeds["extra"]])
        for spec, r in zip(model.outputs, ref):
            np.testing.assert_allclose(got[spec.name], r, atol=STEPS * spec.scale)
        quantized = {s.name: q for s, q in zip(model.inputs, model.prepare(feeds))}
        tfl = tflite_reference(tfl_multi_io, quantized)
        raw = model.predict(quantized, raw=True)
        for name in ("output_0", "output_1"):
            np.testing.assert_array_equal(raw[name], tfl[name])
        as_list = model.predict([feeds[s.name] for s in model.inputs])  # a list in model.inputs order
        assert_same(as_list, got)


def test_multi_input_batch_resizes_every_input(tfl_multi_io):
    model = Model(tfl_multi_io)
    samples = multi_io_samples(3, seed=28)
    batch = {k: np.concatenate([s[k] for s in samples]) for k in ("image", "extra")}
    got = model.predict(batch)
    assert got["output_0"].shape == (3, 3) and got["output_1"].shape == (3, 2)
    for i, feeds in enumerate(samples):
        one = model.predict(feeds)
        np.testing.assert_array_equal(got["output_0"][i], one["output_0"][0])
        np.testing.assert_array_equal(got["output_1"][i], one["output_1"][0])


def test_multi_input_errors_name_the_inputs(tfl_multi_io):
    model = Model(tfl_multi_io)
    feeds = multi_io_samples(1, seed=29)[0]
    with pytest.raises(DataError, match=r"missing inputs \['extra'\]"):
        model.predict({"image": feeds["image"]})
    with pytest.raises(DataError, match="takes 2 inputs"):
        model.predict(feeds["image"])


def test_two_signatures(tfl_two_signatures):
    model = Model(tfl_two_signatures)
    assert model.signature == "a"
    assert [s.name for s in model.inputs] == ["x"] and [s.name for s in model.outputs] == ["y"]
    x = np.array([[1, 2, 3, 4]], np.float32)
    np.testing.assert_array_equal(model.predict(x)["y"], x @ np.arange(12, dtype=np.float32).reshape(4, 3))
    np.testing.assert_array_equal(model.predict(x)["y"], tflite_reference(tfl_two_signatures, {"x": x}, "a")["y"])
    b = Model(tfl_two_signatures, signature="b")
    assert sorted(s.name for s in b.inputs) == ["u", "v"] and sorted(s.name for s in b.outputs) == ["p", "s"]
    u, v = np.array([[1.5, -2]], np.float32), np.array([[4, 3]], np.float32)
    got = b.predict({"u": u, "v": v})
    np.testing.assert_array_equal(got["s"], u + v)
    np.testing.assert_array_equal(got["p"], u * v)
    assert_same(got, tflite_reference(tfl_two_signatures, {"u": u, "v": v}, "b"))
    with pytest.raises(UsageError, match="no signature 'c'; it has: a, b"):
        Model(tfl_two_signatures, signature="c")


# -------------------------------------------------------------------------------- bad input
def test_missing_and_non_model_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Model(tmp_path / "nope.tflite")
    with pytest.raises(ModelError, match="is a folder"):
        Model(tmp_path)
    text = tmp_path / "model.tflite"
    text.write_text("this is not a flatbuffer at all")
    with pytest.raises(ModelError, match="not a TFLite model: expected the identifier b'TFL3'"):
        Model(text)
    with pytest.raises(ModelError, match="not a TFLite model"):
        Model(b"")


def test_truncated_model_is_a_model_error(edgeq_int8):
    data = edgeq_int8.read_bytes()
    for cut in (16, 100, len(data) // 3, len(data) // 2, len(data) - 200):
        with pytest.raises(ModelError):
            Model(data[:cut])


def test_custom_op_is_a_model_error_naming_the_op(tfl_custom_op):
    with pytest.raises(ModelError, match=r"ops this backend does not have \(EdgeqTestMissingOp\)") as info:
        Model(tfl_custom_op)
    assert isinstance(info.value.__cause__, (RuntimeError, ValueError))  # the interpreter's error is chained


@pytest.mark.parametrize("library", ["/nonexistent/libfoo.so", "libc.so.6"])
def test_delegate_that_fails_is_a_device_error(tfl_float32, library):
    with pytest.raises(DeviceError, match="cannot load delegate"):
        Model(tfl_float32, delegate=library)


def test_input_that_cannot_fit(edgeq_int8, tfl_float32, tfl_two_signatures):
    model = Model(edgeq_int8)
    with pytest.raises(DataError, match=r"expects shape \[-1, 16, 16, 3\] \(int8\); got \[1, 8, 8, 3\] \(float32\)"):
        model.predict(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(DataError, match=r"expects shape .*; got \[16, 16\]"):
        model.predict(np.zeros((16, 16), np.float32))
    with pytest.raises(DataError, match="expects int8 .*got complex64"):
        model.predict(np.zeros((1, 16, 16, 3), np.complex64))
    with pytest.raises(DataError, match="NaN or infinite"):
        model.predict(np.full((1, 16, 16, 3), np.nan, np.float32))
    with pytest.raises(DataError, match=r"expects int8 .*got int64 values from -1000 to 1000"):
        model.predict(np.linspace(-1000, 1000, 16 * 16 * 3).astype(np.int64).reshape(1, 16, 16, 3))
    with pytest.raises(DataError, match="expects float32 .*got <U"):
        Model(tfl_float32).predict(np.full((1, 16, 16, 3), "x"))
    with pytest.raises(DataError, match="not an image input"):
        Model(tfl_two_signatures).predict(Path("whatever.png"))


def test_undecodable_and_missing_images(edgeq_int8, tmp_path):
    model = Model(edgeq_int8)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then garbage")
    with pytest.raises(DataError, match=r"cannot decode image .*bad\.png"):
        model.predict(bad)
    with pytest.raises(DataError, match="image not found"):
        model.predict(tmp_path / "missing.jpg")
    with pytest.raises(DataError, match="expected an image array"):
        model.predict(np.zeros((1, 16, 16, 5), np.uint8))


def test_threads_and_backend_arguments(tfl_float32):
    with pytest.raises(UsageError, match="threads must be a positive integer"):
        Model(tfl_float32, threads=0)
    with pytest.raises(UsageError, match="unknown backend 'onnx'"):
        Model(tfl_float32, backend="onnx")
    model = Model(tfl_float32, threads=1, backend="litert")
    assert model.threads == 1 and model.backend.name == "litert"


def test_tensorflow_backend_gives_the_same_results(edgeq_int8, photo):
    litert = Model(edgeq_int8)
    with pytest.warns(UserWarning, match="deprecated"):  # tf.lite.Interpreter's notice
        tf_backend = Model(edgeq_int8, backend="tensorflow")
    assert tf_backend.backend.name == "tensorflow"
    np.testing.assert_array_equal(tf_backend.predict(photo, raw=True)["output_0"], litert.predict(photo, raw=True)["output_0"])


def test_inference_error_is_chained(tfl_float32, monkeypatch):
    model = Model(tfl_float32)

    def boom() -> None:
        raise RuntimeError("kernel failed")

    monkeypatch.setattr(model.interpreter, "invoke", boom)
    with pytest.raises(InferenceError, match="failed to run on litert: kernel failed") as info:
        model.predict(rng_images(1))
    assert isinstance(info.value.__cause__, RuntimeError)


CORRUPTOR = """
import sys
import numpy as np
from edgeq.errors import EdgeqError
from edgeq.runtime import Model
from edgeq.runtime.sources import random_input

data = open(sys.argv[1], "rb").read()
for seed in range(int(sys.argv[2])):
    rng = np.random.default_rng(seed)
    b = bytearray(data)
    kind = ("truncate", "flip", "header")[seed % 3]
    if kind == "truncate":
        b = b[: int(rng.integers(0, len(b)))]
    else:  # flip a few bytes anywhere, or in the first 2 KB where the tables and offsets are
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, len(b) if kind == "flip" else 2048))] = int(rng.integers(0, 256))
    print(seed, kind, end=" ", flush=True)  # the last line names the culprit if the process dies
    try:
        model = Model(bytes(b), threads=1)
        model.predict(random_input(model.inputs)[0])
        print("ok", flush=True)
    except EdgeqError as exc:
        print(type(exc).__name__, flush=True)
    except Exception as exc:
        print("BUG", type(exc).__name__, exc, flush=True)
"""


def test_corrupt_models_are_errors_never_crashes(edgeq_int8):
    """300 truncated or byte-flipped variants, in a child process so a native crash shows as a signal."""
    proc = subprocess.run([sys.executable, "-c", CORRUPTOR, str(edgeq_int8), "300"], capture_output=True, text=True,
                          timeout=300)
    last = proc.stdout.strip().splitlines()[-1:] or ["(nothing)"]
    assert proc.returncode == 0, f"crashed (exit {proc.returncode}) on variant {last[0]}; stderr: {proc.stderr[-1000:]}"
    results = [line.split() for line in proc.stdout.splitlines()]
    assert len(results) == 300
    bugs = [r for r in results if r[2] not in ("ok", "ModelError", "DataError", "InferenceError")]
    assert not bugs, bugs
    assert all(r[2] == "ModelError" for r in results if r[1] == "truncate")
