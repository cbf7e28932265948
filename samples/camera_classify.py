"""Classify camera frames live with a .tflite model and show the top labels, inference time and FPS.

Run it with a webcam, a Raspberry Pi camera, a video file, a stream or a folder of images::

    python samples/camera_classify.py model_int8.tflite                      # webcam 0, in a window
    python samples/camera_classify.py model_int8.tflite --source picamera    # Raspberry Pi camera
    python samples/camera_classify.py model_int8.tflite --source clip.mp4 --headless --output out.mp4

``edgeq camera MODEL`` runs this app for classifiers. Preprocessing (size, colour, scaling) and labels
come from the model's embedded edgeq metadata; capture runs in its own thread and drops the frames the
model is too slow for (see _camera_common.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

import numpy as np

import edgeq
from edgeq.runtime import Model, load_image

import _camera_common as common

EXAMPLES = """examples:
  %(prog)s model_int8.tflite                                 # webcam 0 in a window (q quits)
  %(prog)s model_int8.tflite --source picamera --top 3       # Raspberry Pi camera
  %(prog)s model_int8.tflite --source clip.mp4 --headless --output out.mp4 --profile cam.json
  %(prog)s model_int8.tflite --source rtsp://192.168.1.20/stream --headless --max-frames 300
"""


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    parser = common.build_parser(prog, "Classify camera frames live with a .tflite model.", EXAMPLES)
    parser.add_argument("--top", type=int, default=3, metavar="K", help="labels to show (default 3)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, model: Model | None = None) -> common.Summary:
    """Run the app on ``args.model`` (or on ``model`` if given); returns the summary.

    Raises:
        edgeq.EdgeqError: bad input (see ``edgeq.errors``); the message says what was expected.
    """
    common.check_args(args)
    if args.top < 1:
        raise edgeq.UsageError(f"--top must be at least 1. Received: --top {args.top}")
    model = model or common.load_model(args)
    if common.classifier_output(model) is None:
        raise edgeq.ModelError(f"{model.name} has outputs {common.describe_outputs(model)}; camera_classify expects "
                               f"{common.CLASSIFIER_EXPECTED}; for SSD detection models use camera_detect.py")
    notes = [] if model.labels else ["the model has no labels: showing class indices (pass --labels FILE)"]

    def analyse(frame: np.ndarray) -> list[tuple[str, float]]:
        # a PIL image: Model applies the model's own preprocessing (resize, colour, scaling, quantization)
        return model.classify(load_image(frame), k=args.top)

    def draw(canvas: np.ndarray, ranked: list[tuple[str, float]]) -> None:
        lines = [(f"{label} {score:.2f}", common.GREEN if i == 0 else common.WHITE) for i, (label, score) in enumerate(ranked)]
        common.draw_lines(canvas, lines)

    return common.run_loop(args, model, "camera_classify", analyse, draw, tally=lambda ranked: [ranked[0][0]],
                           notes=notes)


if __name__ == "__main__":
    sys.exit(common.main(parse_args, run))
