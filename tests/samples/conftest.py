"""Fixtures of the camera sample tests: videos written with OpenCV (real encode/decode) and tiny real models.

* ``fashion_clip``: frames made from the bundled sample's labelled eval images, upscaled, as a Motion JPEG
  ``.avi``, with the true label of each frame.
* ``detect_clip``: frames whose top-left quadrant is bright and the rest dark.
* ``tiny_models`` (needs TensorFlow): two detection models with the TFLite SSD post-processed output
  signature (boxes ``[1, 3, 4]``, classes ``[1, 3]``, scores ``[1, 3]``, count ``[1]``): detection ``i``
  is class ``i`` in quadrant ``i`` (top-left, top-right, bottom-left), scored by the quadrant's mean
  brightness. ``detect`` ends in the real ``TFLite_Detection_PostProcess`` custom op, made the way the
  TF Object Detection API's TFLite export makes it (a composite function the converter turns into the op;
  LiteRT runs it), so its detections come out sorted by score. ``detect_swapped`` computes the same
  outputs with plain ops under neutral names that list scores first (as EfficientDet-Lite does). Also a
  classifier without labels, and a model whose one output (a ``[1, 4, 4, 2]`` feature map) fits neither app.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "fashion_mnist"
DETECT_SIZE = 64  # the detection models' input is DETECT_SIZE x DETECT_SIZE x 3 (float, no metadata)
CLIP_FPS = 10


def _write_video(path: Path, frames: list[np.ndarray], fps: float = CLIP_FPS) -> Path:
    """Write RGB frames as a Motion JPEG .avi with OpenCV."""
    import cv2

    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _read_video(path: Path) -> list[np.ndarray]:
    """Every frame of a video, RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


@pytest.fixture(scope="session")
def write_video() -> Any:
    """``write_video(path, rgb_frames, fps=10)``: a Motion JPEG .avi written with OpenCV."""
    return _write_video


@pytest.fixture(scope="session")
def read_video() -> Any:
    """``read_video(path)``: every frame of a video, RGB."""
    return _read_video


@pytest.fixture(scope="session")
def fashion_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """24 frames (112x112) of eval images, 2 or 3 per class, and the true label of each."""
    import cv2
    from PIL import Image

    labels = (SAMPLE / "labels.txt").read_text().splitlines()
    folders = sorted(p for p in (SAMPLE / "eval").iterdir() if p.is_dir())
    frames, truth = [], []
    for index, folder in enumerate(folders):
        for path in sorted(folder.glob("*.png"))[: 3 if index < 4 else 2]:
            gray = np.asarray(Image.open(path).convert("L"))
            frames.append(cv2.cvtColor(cv2.resize(gray, (112, 112), interpolation=cv2.INTER_CUBIC), cv2.COLOR_GRAY2RGB))
            truth.append(labels[index])
    path = _write_video(tmp_path_factory.mktemp("clips") / "fashion.avi", frames)
    return path, truth


@pytest.fixture(scope="session")
def detect_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 frames (128x96): the top-left quadrant at 200, the rest at 20."""
    frame = np.full((96, 128, 3), 20, np.uint8)
    frame[:48, :64] = 200
    return _write_video(tmp_path_factory.mktemp("clips") / "detect.avi", [frame] * 30)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``detect``, ``detect_swapped``, ``unlabelled`` and ``feature_map`` .tflite models (see the module docstring)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    root = tmp_path_factory.mktemp("camera-models")
    half = DETECT_SIZE // 2

    postprocess_op = " ".join([  # the op's attributes, as the Object Detection API writes them
        'name: "TFLite_Detection_PostProcess"', 'attr { key: "max_detections" value { i: 3 } }',
        'attr { key: "max_classes_per_detection" value { i: 1 } }', 'attr { key: "use_regular_nms" value { b: false } }',
        'attr { key: "nms_score_threshold" value { f: 0.000001 } }', 'attr { key: "nms_iou_threshold" value { f: 0.5 } }',
        'attr { key: "y_scale" value { f: 10.0 } }', 'attr { key: "x_scale" value { f: 10.0 } }',
        'attr { key: "h_scale" value { f: 5.0 } }', 'attr { key: "w_scale" value { f: 5.0 } }',
        'attr { key: "num_classes" value { i: 3 } }',
    ])

    @tf.function(experimental_implements=postprocess_op)
    def postprocess(box_encodings: Any, class_predictions: Any, anchors: Any) -> tuple[Any, ...]:
        # the body is a placeholder: the converter replaces the whole function by the custom op
        return tuple(tf.constant(0.0, name=n) for n in ("boxes", "classes", "scores", "num_detections"))

    def quadrant_scores(image: Any) -> Any:
        gray = tf.reduce_mean(image, axis=3)
        quadrants = [gray[:, :half, :half], gray[:, :half, half:], gray[:, half:, :half]]
        return tf.stack([tf.reduce_mean(q, axis=[1, 2]) for q in quadrants], axis=1)  # [1, 3]

    class SSD(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, DETECT_SIZE, DETECT_SIZE, 3], tf.float32, name="image")])
        def serve(self, image: Any) -> dict[str, Any]:
            scores = quadrant_scores(image)
            # anchor i (y centre, x centre, height, width) is quadrant i; zero box encodings keep the anchors
            anchors = tf.constant([[0.25, 0.25, 0.5, 0.5], [0.25, 0.75, 0.5, 0.5], [0.75, 0.25, 0.5, 0.5]])
            encodings = tf.zeros([1, 3, 4]) + 0.0 * scores[..., None]
            # class scores per anchor: column 0 is the background, anchor i scores class i
            predictions = tf.concat([1.0 - scores[..., None], tf.linalg.diag(scores)], axis=2)
            boxes, classes, detected, count = postprocess(encodings, predictions, anchors)
            return {"detection_boxes": boxes, "detection_classes": classes, "detection_scores": detected,
                    "num_detections": count}

    class Detector(tf.Module):
        def __init__(self, names: dict[str, str]) -> None:
            super().__init__()
            self.names = names

        @tf.function(input_signature=[tf.TensorSpec([1, DETECT_SIZE, DETECT_SIZE, 3], tf.float32, name="image")])
        def serve(self, image: Any) -> dict[str, Any]:
            scores = quadrant_scores(image)
            zero = 0.0 * scores  # keeps the constant outputs computed tensors, as in a real model
            boxes = tf.constant([[[0, 0, 0.5, 0.5], [0, 0.5, 0.5, 1], [0.5, 0, 1, 0.5]]], tf.float32) + zero[..., None]
            values = {"boxes": boxes, "classes": tf.constant([[0.0, 1.0, 2.0]]) + zero, "scores": scores,
                      "count": tf.reduce_sum(1.0 + zero, axis=1)}
            return {self.names[role]: value for role, value in values.items()}

    class Unlabelled(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 32, 32, 3], tf.float32, name="image")])
        def serve(self, image: Any) -> dict[str, Any]:
            means = tf.reduce_mean(image, axis=[1, 2])  # [1, 3]: class i wins when channel i is brightest
            return {"scores": tf.nn.softmax(10.0 * tf.concat([means, 0.0 * means[:, :1] + 0.5], axis=1))}

    class FeatureMap(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32, name="image")])
        def serve(self, image: Any) -> dict[str, Any]:
            return {"features": tf.nn.avg_pool2d(image[..., :2], 4, 4, "VALID")}

    modules = {
        "detect": SSD(),
        # signature outputs come out sorted by name: scores, boxes, count, classes
        "detect_swapped": Detector({"scores": "out_a", "boxes": "out_b", "count": "out_c", "classes": "out_d"}),
        "unlabelled": Unlabelled(),
        "feature_map": FeatureMap(),
    }
    paths = {}
    for name, module in modules.items():
        saved = root / f"{name}_saved_model"
        tf.saved_model.save(module, str(saved), signatures=module.serve)
        paths[name] = root / f"{name}.tflite"
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.allow_custom_ops = True  # TFLite_Detection_PostProcess
        paths[name].write_bytes(converter.convert())
    return paths


# ------------------------------------------------------------------------------------ a real desktop
BINARIES = ("Xvfb", "openbox", "wmctrl", "xdotool", "import", "xwininfo")
SCREEN = (1280, 800)
MISSING = [b for b in BINARIES if shutil.which(b) is None]
_MISSING_REASON = (f"needs {', '.join(MISSING)} (Debian: apt-get install xvfb openbox wmctrl xdotool imagemagick "
                   "x11-utils; .ci/run installs them)")


def _gui_opencv() -> None:
    import cv2

    if "NONE" in cv2.getBuildInformation().split("GUI:", 1)[1].splitlines()[0]:
        pytest.fail('the window tests need the full OpenCV build: pip install -e ".[convert,dev]" installs it')


def _start_xvfb(*extra: str) -> tuple[subprocess.Popen, str]:
    """An Xvfb (screen ``SCREEN``) on a free display number (Xvfb picks it: -displayfd); the server and ``:N``."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                               "-nolisten", "tcp", *extra], pass_fds=(write_end,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        number = pipe.readline().strip()
    assert number.isdigit(), "Xvfb did not start"
    return server, f":{number}"


@pytest.fixture(scope="session")
def start_xvfb() -> Any:
    """``start_xvfb(*options) -> (server, ":N")``: an Xvfb of ``SCREEN`` pixels; terminate the server when done."""
    if shutil.which("Xvfb") is None:
        pytest.skip("needs Xvfb (Debian: apt-get install xvfb; .ci/run installs it)")
    return _start_xvfb


@pytest.fixture(scope="module")
def desktop() -> Iterator[dict[str, str]]:
    """The environment of a running Xvfb screen with the openbox window manager."""
    if MISSING:
        pytest.skip(_MISSING_REASON)
    _gui_opencv()
    server, display = _start_xvfb()
    env = {**os.environ, "DISPLAY": display}
    env.pop("WAYLAND_DISPLAY", None)
    wm = subprocess.Popen(["openbox"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while subprocess.run(["wmctrl", "-m"], env=env, capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "openbox did not start"
            time.sleep(0.1)
        yield env
    finally:
        for process in (wm, server):
            process.terminate()
            process.wait(10)
