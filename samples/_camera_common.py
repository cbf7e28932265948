"""What camera_classify.py and camera_detect.py share: options, the capture/inference loop, overlay, summary.

The loop (:func:`run_loop`)::

    capture thread --newest frame--> main thread: analyse (model) -> draw -> window and/or --output
    (drops frames the model                              |
     is too slow for, and counts them)                   +--> timings -> summary, --profile JSON

Built on the public edgeq API: :class:`edgeq.runtime.Model`, :mod:`edgeq.runtime.capture`
(sources, the threaded latest-frame reader, the all-or-nothing video writer),
:func:`edgeq.runtime.report.report_from_timings` (a profile report ``edgeq compare`` reads) and
:mod:`edgeq.devices` (can a window open here; which OpenCV is installed). One private helper,
``edgeq._native.quiet_native_output``, keeps LiteRT's C++ "INFO: Created … XNNPACK delegate" line off the console.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

import edgeq
from edgeq._native import quiet_native_output  # the one private name the apps use: LiteRT's console chatter
from edgeq.runtime import Model
from edgeq.runtime.capture import CAMERA_HINT, FrameWriter, LatestFrameReader, open_source
from edgeq.runtime.report import report_from_timings

try:
    import cv2
except Exception:  # missing or broken (e.g. built for another numpy): edgeq camera shows the import error
    cv2 = None

WHITE, GREEN = (255, 255, 255), (60, 220, 60)  # RGB: frames are RGB until they are shown or written
SSD_EXPECTED = "the 4 TFLite SSD post-processed outputs: boxes [1, N, 4], classes [1, N], scores [1, N], count [1]"
CLASSIFIER_EXPECTED = "one output of shape [1, K] (K >= 2 class scores)"


# ------------------------------------------------------------------------------------------- options
def build_parser(prog: str | None, description: str, examples: str) -> argparse.ArgumentParser:
    """The options both apps take; each app adds its own (``--top``, ``--threshold``)."""
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=examples,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a .tflite model")
    p.add_argument("--source", default="0",
                   help="camera index (default 0), picamera (Raspberry Pi camera), a video file, an rtsp:// or "
                   "http:// URL, or a folder of images")
    p.add_argument("--headless", action="store_true", help="no window: process, write --output if given, print a summary")
    p.add_argument("--output", metavar="PATH",
                   help="write the annotated frames: a video (.mp4, .avi, .mkv) or a new folder of JPEGs")
    p.add_argument("--output-fps", type=float, metavar="FPS",
                   help="frame rate of the --output video (default: the source's, else 15)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --output video or --profile file")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N processed frames")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--realtime", action="store_true",
                   help="read a video file at its own frame rate and drop the frames the model is too slow for, "
                   "as with a camera (default for files: process every frame)")
    p.add_argument("--fast", action="store_true",
                   help="show a video file as fast as the model goes (default in a window: at the file's frame rate)")
    p.add_argument("--camera-size", metavar="WxH", help="resolution to ask the camera for, e.g. 640x480")
    p.add_argument("--threads", type=int, metavar="N", help="interpreter threads (default: the device's recommendation)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line, for a model without embedded labels")
    p.add_argument("--normalize", metavar="SPEC",
                   help="pixel scaling for a model without edgeq metadata: 0,1 (the default), -1,1 (write "
                   "--normalize=-1,1), imagenet, raw or MEAN/STD")
    p.add_argument("--profile", metavar="OUT.json",
                   help="write the measured inference times as a profile report (edgeq compare OUT.json …)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def check_args(args: argparse.Namespace) -> None:
    """Refuse impossible options before anything is loaded or opened."""
    for name in ("max_frames", "duration", "output_fps", "threads"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise edgeq.UsageError(f"--{name.replace('_', '-')} must be positive. Received: {value}")
    if args.fast and args.realtime:
        raise edgeq.UsageError("--fast and --realtime contradict each other: --fast processes a file as fast as "
                               "possible, --realtime at its frame rate dropping frames; give one")
    for name in ("output", "profile"):  # never overwrite an input, even with --force
        out = getattr(args, name, None)
        for given in (args.model, args.source, getattr(args, "labels", None)):
            if out and given and os.path.exists(out) and os.path.exists(given) and os.path.samefile(out, given):
                raise edgeq.UsageError(f"--{name} {out} is the input {given}; choose another output path")
    if args.profile and os.path.exists(args.profile) and not args.force:
        raise edgeq.UsageError(f"--profile {args.profile} exists; pass --force to overwrite it")
    if args.profile and not os.path.isdir(os.path.dirname(os.path.abspath(args.profile))):
        raise edgeq.UsageError(f"the folder of --profile {args.profile} does not exist; create it first")


def camera_size(text: str | None) -> tuple[int, int] | None:
    """``"640x480"`` -> ``(640, 480)``."""
    if not text:
        return None
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise edgeq.UsageError(f"--camera-size takes WIDTHxHEIGHT, e.g. 640x480. Received: {text!r}")
    return int(width), int(height)


# --------------------------------------------------------------------------------------------- model
def load_model(args: argparse.Namespace) -> Model:
    """Load the model; ``--labels`` applies when it has no labels, ``--normalize`` when it has no edgeq metadata.

    LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" from C++ when an interpreter is created; it is
    kept out of the console (logged at DEBUG), as by the edgeq commands.
    """
    with quiet_native_output():
        model = Model(args.model, threads=args.threads)
    if len(model.inputs) != 1 or not model.inputs[0].is_image:
        shapes = ", ".join(f"{list(s.shape)} {s.dtype}" for s in model.inputs)
        raise edgeq.ModelError(f"{model.name} takes {shapes}; the camera apps expect one image input "
                               "[1, height, width, 1 or 3]")
    if not (args.labels and not model.labels) and not (args.normalize and model.preprocess is None):
        return model
    labels = None
    if args.labels:
        try:
            with open(args.labels, encoding="utf-8") as fh:
                labels = [line.strip() for line in fh if line.strip()]
        except OSError as exc:
            raise edgeq.DataError(f"cannot read --labels {args.labels}: {exc.strerror}") from None
    channels = model.inputs[0].shape[3]
    preprocess = edgeq.Preprocess.from_normalize(args.normalize or "0,1", color="grayscale" if channels == 1 else "rgb")
    with quiet_native_output():
        return Model(args.model, threads=args.threads, preprocess=preprocess, labels=labels)


def classifier_output(model: Model) -> Any:
    """The class-score output of a classifier (one output ``[1, K]``), else ``None``."""
    if len(model.outputs) == 1:
        shape = model.outputs[0].shape
        if len(shape) == 2 and shape[0] == 1 and shape[1] >= 2:
            return model.outputs[0]
    return None


def ssd_outputs(model: Model) -> dict[str, str] | None:
    """Output names of a TFLite SSD model by role (``boxes``, ``classes``, ``scores``, ``count``), else ``None``.

    The roles are told apart by shape; classes and scores (both ``[1, N]``) by name when the names say
    so, else in TFLite_Detection_PostProcess order (classes first). ``camera_detect`` swaps them if the
    values show otherwise (EfficientDet-Lite models list scores first).
    """
    if len(model.outputs) != 4:
        return None
    boxes = [s for s in model.outputs if len(s.shape) == 3 and s.shape[0] == 1 and s.shape[2] == 4]
    count = [s for s in model.outputs if int(np.prod(s.shape)) == 1]
    if len(boxes) != 1 or len(count) != 1:
        return None
    n = boxes[0].shape[1]
    pair = [s for s in model.outputs if s.shape == (1, n)]
    if len(pair) != 2:
        return None
    if "score" in pair[0].name.lower() or "class" in pair[1].name.lower():
        pair.reverse()
    return {"boxes": boxes[0].name, "classes": pair[0].name, "scores": pair[1].name, "count": count[0].name}


def task_of(model: Model) -> str:
    """``classify`` or ``detect``, from the model's outputs.

    Raises:
        ModelError: the outputs fit neither app.
    """
    if classifier_output(model) is not None:
        return "classify"
    if ssd_outputs(model) is not None:
        return "detect"
    raise edgeq.ModelError(f"{model.name} has outputs {describe_outputs(model)}; expected {CLASSIFIER_EXPECTED} "
                           f"(camera_classify) or {SSD_EXPECTED} (camera_detect)")


def describe_outputs(model: Model) -> str:
    return ", ".join(f"{s.name} {list(s.shape)}" for s in model.outputs)


# ------------------------------------------------------------------------------------------- overlay
def text_scale(image: np.ndarray) -> float:
    """An OpenCV font scale readable on this frame size."""
    return max(0.35, min(1.2, image.shape[0] / 600))


def draw_lines(canvas: np.ndarray, lines: Sequence[tuple[str, tuple[int, int, int]]], x: int = 0, y: int = 0) -> None:
    """Write ``(text, colour)`` lines on a darkened box whose top-left corner is ``(x, y)``."""
    scale = text_scale(canvas)
    thickness = max(1, round(scale * 1.6))
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness) for text, _ in lines]
    pad = max(3, round(6 * scale))
    line_h = max(h + base for (_, h), base in sizes) + pad
    width = max(w for (w, _), _ in sizes) + 2 * pad
    x1, y1 = min(canvas.shape[1], x + width), min(canvas.shape[0], y + line_h * len(lines) + pad)
    canvas[y:y1, x:x1] = (canvas[y:y1, x:x1] * 0.35).astype(np.uint8)  # darken, so any background stays readable
    for i, (text, colour) in enumerate(lines):
        baseline_y = y + pad + (i + 1) * line_h - pad - sizes[i][1]
        cv2.putText(canvas, text, (x + pad, baseline_y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def draw_status(canvas: np.ndarray, text: str) -> None:
    """The status line (inference ms, FPS, dropped frames) at the bottom-left corner."""
    scale = text_scale(canvas)
    (_, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, max(1, round(scale * 1.6)))
    draw_lines(canvas, [(text, WHITE)], 0, max(0, canvas.shape[0] - h - base - 2 * max(3, round(6 * scale))))


def draw_box(canvas: np.ndarray, box: tuple[int, int, int, int], text: str, colour: tuple[int, int, int]) -> None:
    """A rectangle ``(x0, y0, x1, y1)`` with ``text`` in its top-left corner."""
    x0, y0, x1, y1 = box
    cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, max(1, round(text_scale(canvas) * 2.5)))
    draw_lines(canvas, [(text, colour)], x0, y0)


# ------------------------------------------------------------------------------------------- window
class Window:
    """The preview window: sized to the frame (within the screen), resizable, closed by q, Esc or its close button.

    :meth:`screen_size` first checks that this OpenCV has GUI code and that the display answers (a bad
    ``DISPLAY`` would make Qt abort the process), and says what to do when not.
    """

    def __init__(self, title: str, screen: tuple[int, int] | None) -> None:
        self.title, self.screen, self.sized = title, screen, False
        # GUI_NORMAL: no Qt toolbar or status bar, so the window holds just the frame; KEEPRATIO: resizing keeps it
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    @staticmethod
    def screen_size() -> tuple[int, int] | None:
        """Check that a window can open here, before anything is opened; returns the screen size if known.

        Raises:
            DependencyMissing: this OpenCV is a headless build.
            UsageError: no display, or it does not answer.
        """
        from edgeq.devices import gui_backend, installed_opencv, opencv_fix, probe_display

        backend = gui_backend(cv2.getBuildInformation())
        if backend is None:
            raise edgeq.DependencyMissing(
                "this OpenCV cannot open windows (it is a headless build); for a window run "
                f"{opencv_fix(gui=True, installed=installed_opencv())}, or run with --headless")
        display = probe_display(wayland=backend.upper().startswith("GTK"))
        if display.problem:
            raise edgeq.UsageError(display.problem)
        return display.screen

    def show(self, canvas: np.ndarray, until: float = 0.0) -> bool:
        """Show a frame and handle keys until ``time.perf_counter()`` reaches ``until`` (at least once).

        Returns:
            ``False`` once the user pressed q or Esc or closed the window.
        """
        if not self.sized:  # the frame's size, scaled down to fit the screen; the user can resize it
            height, width = canvas.shape[:2]
            screen_w, screen_h = self.screen or (1280, 720)
            scale = min(1.0, 0.9 * screen_w / width, 0.85 * screen_h / height)
            cv2.resizeWindow(self.title, max(1, round(width * scale)), max(1, round(height * scale)))
            self.sized = True
        cv2.imshow(self.title, cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        while True:  # waitKey may return before its delay (window events), so wait until the time is reached
            key = cv2.waitKey(max(1, round((until - time.perf_counter()) * 1000))) & 0xFF
            if key in (ord("q"), 27) or not self.is_open():
                return False
            if time.perf_counter() >= until:
                return True

    def is_open(self) -> bool:
        """Whether the window is still up; closing it with its close button destroys it."""
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:  # OpenCV 4.x with Qt raises ("NULL guiReceiver") once the window is gone
            return False

    def close(self) -> None:
        cv2.destroyAllWindows()
        cv2.waitKey(1)  # lets the GUI toolkit process the close


# ------------------------------------------------------------------------------------------ summary
@dataclass
class Summary:
    """What a run did; ``text()`` for people, ``to_dict()`` for ``--json``.

    Times are milliseconds; the inference and whole-frame means leave out the first frame (one-time
    work such as weight packing and font loading), as ``edgeq profile`` does.
    """

    app: str
    model: str
    source: str
    backend: str
    threads: int
    frames: int
    dropped: int
    seconds: float
    fps: float
    inference_mean_ms: float
    inference_p90_ms: float
    frame_mean_ms: float
    seen: dict[str, int]
    output: str | None = None
    profile: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        seen = ", ".join(f"{label} {n}" for label, n in sorted(self.seen.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
        lines = [
            f"{self.app}: {self.model} on {self.source} ({self.backend}, {self.threads} thread(s))",
            f"  frames     {self.frames} processed, {self.dropped} dropped",
            f"  inference  mean {self.inference_mean_ms:.2f} ms, p90 {self.inference_p90_ms:.2f} ms "
            f"(whole frame: mean {self.frame_mean_ms:.2f} ms)",
            f"  speed      {self.fps:.1f} FPS over {self.seconds:.2f} s",
            f"  seen       {seen or 'nothing'}",
        ]
        if self.output:
            lines.append(f"  output     {self.output}")
        if self.profile:
            lines.append(f"  profile    {self.profile} (edgeq compare {self.profile})")
        lines += [f"  note       {note}" for note in self.notes]
        return "\n".join(lines)


def write_profile(path: str, model: Model, timings_ms: list[float], source: str, app: str, force: bool) -> None:
    """Write the timings as a profile report, atomically (temporary file, then rename)."""
    report = report_from_timings(
        model, timings_ms[1:] or timings_ms, first_ms=timings_ms[0], settings={"input": f"{app}: {source}"},
        notes=[f"timed by {app} on live frames: Model.predict's interpreter time per frame (set inputs, invoke, "
               "read outputs); preprocessing, drawing and capture are not included"],
    )
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(report.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if os.path.exists(path) and not force:
            raise edgeq.UsageError(f"--profile {path} exists; pass --force to overwrite it")
        os.replace(tmp, path)
    except OSError as exc:  # a full disk or a vanished folder: nothing half-written is left
        raise edgeq.UsageError(f"cannot write --profile {path}: {exc.strerror}; check free space and permissions") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------------------------- loop
def run_loop(
    args: argparse.Namespace,
    model: Model,
    app: str,
    analyse: Callable[[np.ndarray], Any],
    draw: Callable[[np.ndarray, Any], None],
    tally: Callable[[Any], Sequence[str]],
    notes: Sequence[str] = (),
) -> Summary:
    """Capture, analyse, draw and show/write frames until the source ends, a limit is reached or q is pressed.

    Args:
        args: the parsed options (:func:`build_parser`), checked by :func:`check_args`.
        model: the loaded model; ``analyse`` runs it once per frame.
        app: the app's name, for the summary and the profile report.
        analyse: ``RGB frame -> result`` (runs the model).
        draw: ``(canvas, result) -> None``: draws the result on a copy of the frame.
        tally: ``result -> labels`` to count in the summary's ``seen``.
        notes: lines to add to the summary.
    """
    if cv2 is None:
        raise edgeq.DependencyMissing(f"the camera apps need OpenCV; install it with: {CAMERA_HINT}")
    if not hasattr(cv2, "VideoCapture"):  # what is left after removing one of two OpenCV builds installed together
        from edgeq.devices import installed_opencv, opencv_fix

        fix = opencv_fix(not args.headless, installed_opencv())
        raise edgeq.DependencyMissing(f"this OpenCV is broken (cv2 has no VideoCapture: two OpenCV builds were "
                                      f"installed over each other); repair it: {fix}")
    title = f"{app}: {model.name} (q quits)"
    timings: list[float] = []
    frame_ms: list[float] = []
    seen: collections.Counter[str] = collections.Counter()
    fps, interval, previous = 0.0, 0.0, None
    screen = None if args.headless else Window.screen_size()
    with contextlib.ExitStack() as stack:  # on any exit: stop the capture, close the window, drop unfinished output
        source = open_source(args.source, size=camera_size(args.camera_size))
        reader = stack.enter_context(LatestFrameReader(source, realtime=args.realtime))
        writer = None
        if args.output:
            writer = stack.enter_context(FrameWriter(args.output, args.output_fps or source.fps or 15, args.force))
        window = None
        if not args.headless:
            window = Window(title, screen)
            stack.callback(window.close)
        # in a window, a file plays at its own frame rate, as in a video player (every frame, none dropped)
        pace = source.fps if window and not source.live and not args.realtime and not args.fast else None
        started = time.perf_counter()
        while True:
            frame = reader.get()
            if frame is None:
                break
            began = time.perf_counter()
            result = analyse(frame.image)
            timings.append(model.last_invoke_seconds * 1000)
            seen.update(tally(result))
            canvas = frame.image.copy()
            draw(canvas, result)
            if previous is not None:  # smoothed: an exponential moving average of the time between frames
                interval = began - previous if interval == 0 else 0.9 * interval + 0.1 * (began - previous)
                fps = 1.0 / max(interval, 1e-6)
            previous = began
            status = f"{timings[-1]:.1f} ms  " + (f"{fps:.1f} FPS" if fps else "-- FPS")
            draw_status(canvas, status + (f"  dropped {reader.dropped}" if reader.drop else ""))
            frame_ms.append((time.perf_counter() - began) * 1000)
            if writer is not None:
                writer.write(canvas)
            if window is not None:
                if not window.show(canvas, started + frame.index / pace if pace else 0.0):
                    break
            if len(timings) == args.max_frames or (args.duration and time.perf_counter() - started >= args.duration):
                break
        seconds = time.perf_counter() - started
        output = writer.commit() if writer is not None else None
    if args.profile:
        write_profile(args.profile, model, timings, source.name, app, args.force)
    steady, steady_frames = timings[1:] or timings, frame_ms[1:] or frame_ms
    return Summary(
        app=app, model=os.path.basename(model.name), source=source.name,
        backend=f"{model.backend.name} {model.backend.version}", threads=model.threads, frames=len(timings),
        dropped=reader.dropped, seconds=round(seconds, 3), fps=round(len(timings) / seconds, 2) if seconds > 0 else 0.0,
        inference_mean_ms=round(float(np.mean(steady)), 4), inference_p90_ms=round(float(np.percentile(steady, 90)), 4),
        frame_mean_ms=round(float(np.mean(steady_frames)), 4), seen=dict(seen),
        output=str(output) if output else None, profile=args.profile, notes=list(notes),
    )


# ------------------------------------------------------------------------------------------- script
class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that clean-up runs as for Ctrl-C."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
         run: Callable[[argparse.Namespace], Summary], argv: Sequence[str] | None = None) -> int:
    """Run an app as a script: errors as one line, exit 2 for bad input, 130 on Ctrl-C, 143 on SIGTERM."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        summary = run(args)
    except edgeq.EdgeqError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted: stopped by Ctrl-C; no partial output was left behind", file=sys.stderr)
        return 130
    except Terminated:
        print("Terminated: stopped by SIGTERM; no partial output was left behind", file=sys.stderr)
        return 143
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.text())
    return 0
