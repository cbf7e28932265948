"""``edgeq run``: images, folders, videos, arrays, ``--random``, ``--save-outputs``; and every kind of bad input.

Successful runs call ``edgeq.cli.main`` in-process. Bad input runs in a child process, so that a native
crash would show as a signal instead of killing the test run; each must exit 2 with one line on stderr.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.runtime import Model
from support import LABELS, error_line, run_cli


pytestmark = pytest.mark.tf


def run_json(capsys: pytest.CaptureFixture, *args: str) -> list[dict]:
    assert main(["run", *args, "--json"]) == 0
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """A 10-frame 32x24 MJPG .avi and its frames as OpenCV decodes them (RGB)."""
    import cv2

    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    assert writer.isOpened()
    for i in range(10):
        frame = np.zeros((24, 32, 3), np.uint8)
        frame[:, : 3 * (i + 1)] = (40 * (i % 3), 255 - 20 * i, 25 * i)
        writer.write(frame)
    writer.release()
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    assert len(frames) == 10
    return path, frames


# ------------------------------------------------------------------------------------ success
def test_run_image_json(edgeq_int8, photo, capsys):
    (record,) = run_json(capsys, str(edgeq_int8), str(photo), "--top", "3")
    model = Model(edgeq_int8)
    expected = model.predict(photo)["output_0"]
    assert record["input"] == str(photo)
    assert record["latency_ms"] > 0
    np.testing.assert_array_equal(np.asarray(record["outputs"]["output_0"], np.float32), expected)
    assert [(t["label"], t["score"]) for t in record["top"]] == [
        (label, pytest.approx(score)) for label, score in model.classify(photo, 3)
    ]
    assert all(t["label"] in LABELS for t in record["top"])


def test_run_image_table(edgeq_int8, photo, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # a long temp path in the title must not wrap inside "photo.jpg"
    assert main(["run", str(edgeq_int8), str(photo), "--top", "2", "--threads", "1"]) == 0
    captured = capsys.readouterr()
    label, score = Model(edgeq_int8).classify(photo, 1)[0]
    assert "photo.jpg" in captured.out and label in captured.out and f"{score:.4f}" in captured.out
    assert "1 thread(s)" in captured.err  # the status line goes to stderr


def test_run_folder(edgeq_int8, image_folder, capsys):
    records = run_json(capsys, str(edgeq_int8), str(image_folder))
    files = sorted(p for p in image_folder.rglob("*") if p.is_file())
    assert [r["input"] for r in records] == [str(f) for f in files]
    model = Model(edgeq_int8)
    for record in records[::7]:
        np.testing.assert_array_equal(np.asarray(record["outputs"]["output_0"], np.float32),
                                      model.predict(Path(record["input"]))["output_0"])


def test_run_video_every_third_frame(edgeq_int8, video, capsys):
    path, frames = video
    records = run_json(capsys, str(edgeq_int8), str(path), "--every", "3")
    assert [r["input"] for r in records] == ["clip.avi#0", "clip.avi#3", "clip.avi#6", "clip.avi#9"]
    model = Model(edgeq_int8)
    for record, index in zip(records, (0, 3, 6, 9)):
        np.testing.assert_array_equal(np.asarray(record["outputs"]["output_0"], np.float32),
                                      model.predict(frames[index])["output_0"])


def test_run_random(edgeq_int8, capsys):
    (record,) = run_json(capsys, str(edgeq_int8), "--random")
    assert record["input"] == "random"
    scores = np.asarray(record["outputs"]["output_0"])
    assert scores.shape == (1, len(LABELS)) and abs(scores.sum() - 1) < 0.05  # dequantized softmax


def test_run_random_on_multi_input_and_two_signature_models(tfl_multi_io, tfl_two_signatures, capsys):
    (record,) = run_json(capsys, str(tfl_multi_io), "--random")
    assert set(record["outputs"]) == {"output_0", "output_1"} and "top" not in record  # not a single-output classifier
    (record,) = run_json(capsys, str(tfl_two_signatures), "--random")
    assert set(record["outputs"]) == {"y"}  # the first signature


def test_run_npy_and_save_outputs(edgeq_int8, photo, tmp_path, capsys):
    model = Model(edgeq_int8)
    x = np.random.default_rng(3).random((1, 16, 16, 3), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = tmp_path / "outs"
    outs.mkdir()
    records = run_json(capsys, str(edgeq_int8), str(photo), str(tmp_path / "x.npy"), "--save-outputs", str(outs))
    assert [r["input"] for r in records] == [str(photo), str(tmp_path / "x.npy")]
    assert sorted(p.name for p in outs.iterdir()) == ["00000_output_0.npy", "00001_output_0.npy"]
    for i, source in enumerate((photo, x)):
        saved = np.load(outs / f"0000{i}_output_0.npy")
        raw = model.predict(source, raw=True)["output_0"]
        assert saved.dtype == np.int8  # raw outputs, as the model produced them
        np.testing.assert_array_equal(saved, raw)
        np.testing.assert_array_equal(model.dequantize({"output_0": saved})["output_0"],
                                      np.asarray(records[i]["outputs"]["output_0"], np.float32))


def test_run_uint8_npy_image_is_preprocessed(edgeq_int8, photo, tmp_path, capsys):
    from PIL import Image

    with Image.open(photo) as img:
        pixels = np.asarray(img.convert("RGB"))
    np.save(tmp_path / "pixels.npy", pixels)
    (record,) = run_json(capsys, str(edgeq_int8), str(tmp_path / "pixels.npy"))
    np.testing.assert_array_equal(np.asarray(record["outputs"]["output_0"], np.float32),
                                  Model(edgeq_int8).predict(photo)["output_0"])


# --------------------------------------------------------------------------------- bad input
def bad(*args: str, match: str, kind: str) -> str:
    """Run ``edgeq run ARGS`` in a child; it must exit 2 with one ``Kind: …`` line matching ``match``."""
    proc = run_cli("run", *args)
    line = error_line(proc)
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr}"
    assert line.startswith(f"{kind}: "), line
    assert re.search(match, line), f"{match!r} not in {line!r}"
    assert proc.stdout == ""
    return line


def test_missing_model(tmp_path):
    bad(str(tmp_path / "nope.tflite"), "--random", kind="ModelError", match=r"model file not found: .*nope\.tflite")


def test_not_a_tflite_file(tmp_path, photo):
    fake = tmp_path / "photo.tflite"
    fake.write_bytes(photo.read_bytes())
    bad(str(fake), "--random", kind="ModelError", match=r"is not a TFLite model: expected the identifier b'TFL3'")
    bad(str(tmp_path), "--random", kind="ModelError", match="is a folder, expected a .tflite file")


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.5, 0.97])
def test_truncated_model(edgeq_int8, tmp_path, fraction):
    data = edgeq_int8.read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: int(len(data) * fraction)])
    line = bad(str(cut), "--random", kind="ModelError", match="cut.tflite")
    assert "corrupt TFLite model" in line or "not a TFLite model" in line


def test_corrupt_offsets(edgeq_int8, tmp_path):
    data = bytearray(edgeq_int8.read_bytes())
    root = tmp_path / "root.tflite"
    root.write_bytes(b"\xf0\xff\xff\x7f" + data[4:])  # the root table offset points far past the end
    bad(str(root), "--random", kind="ModelError", match=r"corrupt TFLite model: model points outside the file")
    vtable = bytearray(data)
    at = int.from_bytes(data[:4], "little")
    vtable[at : at + 4] = (-(1 << 30)).to_bytes(4, "little", signed=True)  # the root's vtable offset
    (tmp_path / "vtable.tflite").write_bytes(vtable)
    bad(str(tmp_path / "vtable.tflite"), "--random", kind="ModelError", match="corrupt TFLite model: model vtable")


def test_op_the_backend_lacks(tfl_custom_op):
    bad(str(tfl_custom_op), "--random", kind="ModelError",
        match=r"cannot be loaded by litert: it uses ops this backend does not have \(EdgeqTestMissingOp\)")


@pytest.mark.parametrize("library", ["/nonexistent/libfoo.so", "libc.so.6"])
def test_delegate_that_fails(edgeq_int8, library):
    bad(str(edgeq_int8), "--random", "--delegate", library, kind="DeviceError", match=f"cannot load delegate '{library}'")


def test_input_shape_and_dtype_that_cannot_fit(edgeq_int8, tmp_path):
    np.save(tmp_path / "small.npy", np.zeros((1, 8, 8, 3), np.float32))
    bad(str(edgeq_int8), str(tmp_path / "small.npy"), kind="DataError",
        match=r"input 'image' expects shape \[-1, 16, 16, 3\] \(int8\); got \[1, 8, 8, 3\] \(float32\)")
    np.save(tmp_path / "complex.npy", np.zeros((1, 16, 16, 3), np.complex64))
    bad(str(edgeq_int8), str(tmp_path / "complex.npy"), kind="DataError",
        match=r"input 'image' expects int8 \(or float to quantize\); got complex64")
    np.save(tmp_path / "wide.npy", np.full((1, 16, 16, 3), 1000, np.int32))
    bad(str(edgeq_int8), str(tmp_path / "wide.npy"), kind="DataError",
        match=r"expects int8 values from -128 to 127; got int32 values from 1000 to 1000")


def test_multi_input_model_given_one_image(tfl_multi_io, photo):
    bad(str(tfl_multi_io), str(photo), kind="DataError",
        match=r"the model takes 2 inputs \(extra, image\); pass a list or a dict of 2")


def test_undecodable_image(edgeq_int8, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    bad(str(edgeq_int8), str(broken), kind="DataError",
        match=r"cannot decode image .*broken\.jpg.*give a JPEG, PNG, BMP or WebP file")


def test_missing_empty_and_unsupported_inputs(edgeq_int8, tmp_path):
    bad(str(edgeq_int8), str(tmp_path / "none.png"), kind="DataError", match="input not found: .*none.png")
    (tmp_path / "empty").mkdir()
    bad(str(edgeq_int8), str(tmp_path / "empty"), kind="DataError", match="no images in .*empty")
    (tmp_path / "notes.txt").write_text("hello")
    bad(str(edgeq_int8), str(tmp_path / "notes.txt"), kind="DataError",
        match=r"cannot run on .*notes\.txt: expected an image")
    (tmp_path / "clip.mp4").write_bytes(b"not a video")
    bad(str(edgeq_int8), str(tmp_path / "clip.mp4"), kind="DataError", match=r"video .*clip\.mp4")


def test_usage_errors(edgeq_int8, tmp_path):
    bad(str(edgeq_int8), kind="UsageError", match="give at least one INPUT")
    bad(str(edgeq_int8), "--random", "--top", "0", kind="UsageError", match="--top and --every must be at least 1")
    bad(str(edgeq_int8), "--random", "--save-outputs", str(tmp_path / "nowhere"), kind="UsageError",
        match="--save-outputs folder .*nowhere does not exist")
    bad(str(edgeq_int8), "--random", "--threads", "0", kind="UsageError", match="threads must be a positive integer")
    bad(str(edgeq_int8), "--random", "--backend", "onnx", kind="UsageError", match="unknown backend 'onnx'")


def test_run_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    assert "edgeq run model_int8.tflite clip.mp4 --every 10" in capsys.readouterr().out
