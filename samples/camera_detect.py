"""Detect objects in camera frames live with a TFLite SSD model; draws boxes, labels, inference time and FPS.

The model must have the standard post-processed SSD outputs (what TFLite_Detection_PostProcess
produces): boxes ``[1, N, 4]`` as ``ymin, xmin, ymax, xmax`` in 0–1, classes ``[1, N]``,
scores ``[1, N]`` and the detection count ``[1]``::

    python samples/camera_detect.py ssd_mobilenet.tflite --labels coco.txt                  # webcam 0
    python samples/camera_detect.py ssd_mobilenet.tflite --source picamera --threshold 0.6
    python samples/camera_detect.py ssd_mobilenet.tflite --source clip.mp4 --headless --output out.mp4

``edgeq camera MODEL`` runs this app for detection models. Capture runs in its own thread and drops
the frames the model is too slow for (see _camera_common.py).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

import edgeq
from edgeq.runtime import Model, load_image

import _camera_common as common

EXAMPLES = """examples:
  %(prog)s ssd_mobilenet_v1_quant.tflite --labels coco_labels.txt --label-offset 1 --normalize=-1,1
  %(prog)s detector.tflite --source picamera --threshold 0.6 --max-detections 5
  %(prog)s detector.tflite --source clip.mp4 --headless --output out.mp4 --profile det.json
"""

#: box colours (RGB), one per class index modulo the list
PALETTE = [(255, 56, 56), (72, 249, 10), (255, 178, 29), (0, 194, 255), (207, 210, 49), (255, 112, 31),
           (146, 204, 23), (61, 219, 134), (52, 69, 147), (255, 149, 200)]


@dataclass(frozen=True)
class Detection:
    """One detected object; ``box`` is ``(x0, y0, x1, y1)`` in frame pixels."""

    label: str
    class_index: int
    score: float
    box: tuple[int, int, int, int]


def parse_args(argv: Sequence[str] | None = None, prog: str | None = None) -> argparse.Namespace:
    parser = common.build_parser(prog, "Detect objects in camera frames live with a TFLite SSD model.", EXAMPLES)
    parser.add_argument("--threshold", type=float, default=0.5, metavar="S",
                        help="smallest score to show (default 0.5)")
    parser.add_argument("--max-detections", type=int, default=10, metavar="N",
                        help="most boxes to draw per frame, best first (default 10)")
    parser.add_argument("--label-offset", type=int, default=0, metavar="K",
                        help="add K to class indices before looking up labels (1 for label files that start "
                        "with a '???' background line)")
    return parser.parse_args(argv)


def frame_mapper(model: Model, width: int, height: int) -> Callable[[np.ndarray], tuple[int, int, int, int]]:
    """``box -> (x0, y0, x1, y1)``: undo the model's resize (stretch, crop or pad) for a ``width x height`` frame.

    A box is ``ymin, xmin, ymax, xmax`` in 0–1 of the model input.
    """
    in_h, in_w = model.inputs[0].shape[1:3]
    resize = model.preprocess.resize if model.preprocess else "stretch"
    if resize == "crop":  # the input saw the centre of the frame
        scale = max(in_w / width, in_h / height)
        seen_w, seen_h = min(width, round(in_w / scale)), min(height, round(in_h / scale))
        x_at, y_at, x_span, y_span = (width - seen_w) // 2, (height - seen_h) // 2, seen_w, seen_h
    elif resize == "pad":  # the input holds the whole frame between black bars
        scale = min(in_w / width, in_h / height)
        pad_x, pad_y = (in_w - max(1, round(width * scale))) // 2, (in_h - max(1, round(height * scale))) // 2
        x_at, y_at, x_span, y_span = -pad_x / scale, -pad_y / scale, in_w / scale, in_h / scale
    else:  # stretch: the input is the whole frame
        x_at, y_at, x_span, y_span = 0, 0, width, height

    def to_frame(box: np.ndarray) -> tuple[int, int, int, int]:
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        x0, x1 = (int(np.clip(x_at + v * x_span, 0, width - 1)) for v in (xmin, xmax))
        y0, y1 = (int(np.clip(y_at + v * y_span, 0, height - 1)) for v in (ymin, ymax))
        return x0, y0, x1, y1

    return to_frame


def _integral(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))


def run(args: argparse.Namespace, model: Model | None = None) -> common.Summary:
    """Run the app on ``args.model`` (or on ``model`` if given); returns the summary.

    Raises:
        edgeq.EdgeqError: bad input (see ``edgeq.errors``); the message says what was expected.
    """
    common.check_args(args)
    if not 0 <= args.threshold <= 1 or args.max_detections < 1:
        raise edgeq.UsageError(f"--threshold must be between 0 and 1 and --max-detections at least 1. Received: "
                               f"--threshold {args.threshold}, --max-detections {args.max_detections}")
    model = model or common.load_model(args)
    roles = common.ssd_outputs(model)
    if roles is None:
        raise edgeq.ModelError(f"{model.name} has outputs {common.describe_outputs(model)}; camera_detect expects "
                               f"{common.SSD_EXPECTED}; for classifiers use camera_classify.py")
    labels = model.labels
    notes = [] if labels else ["the model has no labels: showing class indices (pass --labels FILE)"]
    mappers: dict[tuple[int, int], Callable[[np.ndarray], tuple[int, int, int, int]]] = {}
    order_checked = False

    def analyse(frame: np.ndarray) -> list[Detection]:
        nonlocal order_checked
        out = model.predict(load_image(frame))  # the model's own preprocessing is applied
        boxes, classes, scores = out[roles["boxes"]][0], out[roles["classes"]][0], out[roles["scores"]][0]
        n = min(int(out[roles["count"]].reshape(-1)[0]), len(scores))
        if not order_checked and n:  # class indices are whole numbers; if the "scores" are, the two are swapped
            if _integral(scores[:n]) != _integral(classes[:n]):
                if _integral(scores[:n]):
                    roles["classes"], roles["scores"] = roles["scores"], roles["classes"]
                    classes, scores = scores, classes
                order_checked = True
        size = (frame.shape[1], frame.shape[0])
        if size not in mappers:
            mappers[size] = frame_mapper(model, *size)
        to_frame = mappers[size]
        kept = [i for i in np.argsort(-scores[:n], kind="stable") if scores[i] >= args.threshold][: args.max_detections]
        found = []
        for i in kept:
            index = int(round(float(classes[i])))
            at = index + args.label_offset
            label = labels[at] if 0 <= at < len(labels) else str(index)
            found.append(Detection(label, index, float(scores[i]), to_frame(boxes[i])))
        return found

    def draw(canvas: np.ndarray, detections: list[Detection]) -> None:
        for d in detections:
            common.draw_box(canvas, d.box, f"{d.label} {d.score:.2f}", PALETTE[d.class_index % len(PALETTE)])

    return common.run_loop(args, model, "camera_detect", analyse, draw,
                           tally=lambda detections: [d.label for d in detections], notes=notes)


if __name__ == "__main__":
    sys.exit(common.main(parse_args, run))
