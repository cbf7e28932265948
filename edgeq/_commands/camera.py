"""``edgeq camera``: the sample camera apps (samples/camera_classify.py, samples/camera_detect.py) as a command.

The apps are plain scripts users copy from, so they stay the single implementation: this command
picks the one that fits the model's outputs, hands it the options, and renders its summary. The
scripts ship in the wheel as ``edgeq/_samples``; in a source checkout they are read from ``samples/``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from edgeq._commands import _checks as checks
from edgeq._render.ui import UI
from edgeq.errors import DataError

EXAMPLES = """examples:
  edgeq camera model_int8.tflite                                  # webcam 0 in a window (q quits)
  edgeq camera model_int8.tflite --source picamera --top 3        # Raspberry Pi camera (picamera2)
  edgeq camera model_int8.tflite --source clip.mp4 --headless --output out.mp4 --profile cam.json
  edgeq camera ssd_mobilenet.tflite --source rtsp://cam.local/stream --labels coco.txt --threshold 0.6
  edgeq camera model_int8.tflite --help                           # every option of the app for this model

Options after MODEL go to the app: --source, --headless, --output, --max-frames, --duration, --realtime,
--fast, --profile, --json, --threads, --labels, --normalize; --top (classifiers); --threshold, --max-detections,
--label-offset (detectors). In a window, q, Esc or the close button quits; a video file plays at its frame rate
(--fast: flat out). Needs OpenCV: pip install "edgeq[camera]" (a headless board: "edgeq[camera-headless]").
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "camera", help="classify or detect objects live from a camera, stream, video or image folder",
        description="Run a .tflite model on live frames: a webcam, a Raspberry Pi camera, a stream URL, a video file "
        "or a folder of images. Classifiers (one [1, K] output) get the top labels, SSD detectors (boxes, classes, "
        "scores, count) get boxes; every frame shows the inference time and FPS. Capture runs in its own thread and "
        "drops the frames the model is too slow for. It runs the camera app that fits the model, camera_classify.py or "
        "camera_detect.py: plain scripts on the public API, installed inside the edgeq package (edgeq/_samples/ in "
        "site-packages; samples/ in a source checkout), to copy as a starting point.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a .tflite classifier or SSD detection model")
    p.add_argument("options", nargs=argparse.REMAINDER, metavar="OPTION", help="options of the camera app (see below)")
    p.set_defaults(func=run)


def parse(parser: argparse.ArgumentParser, tokens: list[str]) -> argparse.Namespace:
    """Find MODEL among the app's options (``--source X MODEL`` works too) and pass the rest on in order.

    The model is the first token that is neither an option nor an option's value; every option of the apps
    takes a value except the flags of the shared parser (``--headless``, ``--json``, …).
    """
    flags = {opt for a in _load_sample("_camera_common").build_parser(None, "", "")._actions
             if a.option_strings and a.nargs == 0 for opt in a.option_strings}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("-") or token == "-":
            return parser.parse_args([token, *tokens[:i], *tokens[i + 1:]])
        i += 1 if token in flags or "=" in token else 2
    return parser.parse_args(tokens)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render import safe_text

    from edgeq._lazy import import_optional
    from edgeq.cli import join_dash_values
    from edgeq._native import quiet_native_output
    from edgeq.runtime import Model
    from edgeq.runtime.capture import CAMERA_HINT

    checks.tflite_model(args.model)
    import_optional("cv2", CAMERA_HINT)
    common = _load_sample("_camera_common")
    with quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
        task = common.task_of(Model(args.model, threads=1))
    app = _load_sample(f"camera_{task}")
    options = join_dash_values(common.build_parser(None, "", ""), args.options)  # --normalize -1,1
    app_args = app.parse_args([args.model, *options], prog="edgeq camera")
    common.check_args(app_args)
    with quiet_native_output():
        model = common.load_model(app_args)
    summary = app.run(app_args, model)
    ui.json_mode = bool(app_args.json)  # the app's own --json (edgeq camera passes every option on)
    ui.json(summary.to_dict())
    ui.print(safe_text(summary.text(), lines=True))  # labels may hold markup or terminal escapes
    return 0


def _samples_dir() -> Path:
    """The camera apps: ``edgeq/_samples`` in an installed wheel, ``samples/`` in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_samples", here.parent / "samples"):
        if (candidate / "camera_classify.py").is_file():
            return candidate
    raise DataError("the camera sample apps are missing (expected samples/camera_classify.py); reinstall edgeq")


def _load_sample(name: str) -> ModuleType:
    """Import a sample script by path under its own name (the apps import ``_camera_common`` that way)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _samples_dir() / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
