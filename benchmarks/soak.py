"""Soak the runtime: many inferences and a long camera run, sampling resident memory, Python objects and threads.

edgeq runs for days on unattended boards; a leak of a few hundred bytes per frame fills a Pi in a week.
Two sections, each in this (fresh) process:

``runtime``
    ``Model`` on the bundled sample, ``--inferences`` calls rotating through what users feed: a float
    array (quantized on the way in), an image as a uint8 array (lookup-table quantization), a PIL image,
    an image file path (decoded each time) through ``classify``, and a ready int8 tensor with
    ``raw=True``. Every ``--every`` calls: RSS (``VmRSS``), the number of objects the garbage
    collector tracks (after a collection) and the thread counts (Python's and the OS tasks').
``camera``
    ``samples/camera_classify.py`` (what ``edgeq camera`` runs) headless over a generated video of
    ``--frames`` frames (Motion JPEG, made from the sample's labelled images), writing an annotated
    output video and a profile report, twice; a background thread samples RSS while it runs. Threads
    must be back to where they were after each run.

Growth figures are the last sample minus the first one after the warm-up (the first ``--warmup``
calls, or the first run of the camera app). Targets: RSS growth < 1 MiB, tracked objects growth < 100,
no thread left behind. Prints a table, writes JSON (``--json``, default ``benchmarks/results/soak-…``),
exits 1 when a target is missed.

Usage::

    python benchmarks/soak.py                                   # 10,000 inferences, 2 x 3,000 camera frames
    python benchmarks/soak.py --inferences 2000 --frames 400 --json /tmp/soak.json
    python benchmarks/soak.py --skip camera                      # no OpenCV needed
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, Callable

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SAMPLE_DIR = REPO / "samples" / "fashion_mnist"
RSS_TARGET_BYTES = 1 << 20
OBJECTS_TARGET = 100


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this script needs Linux)")


def threads() -> dict[str, int]:
    return {"python": threading.active_count(), "os": len(os.listdir("/proc/self/task"))}


def sample(step: int) -> dict[str, int]:
    """One measurement (only ints: the garbage collector does not track it, so it does not count itself)."""
    gc.collect()
    t = threads()
    return {"step": step, "rss_bytes": rss_bytes(), "objects": len(gc.get_objects()), "threads_python": t["python"],
            "threads_os": t["os"]}


def growth(samples: list[dict[str, Any]], key: str) -> int:
    return samples[-1][key] - samples[0][key]


# ------------------------------------------------------------------------------------------ runtime
def _feeds(model: Any) -> list[Callable[[], Any]]:
    from PIL import Image

    images = sorted((SAMPLE_DIR / "eval").rglob("*.png"))[:50]
    pixels = [np.asarray(Image.open(p)) for p in images]
    pil = [Image.open(p).convert("L") for p in images]
    rng = np.random.default_rng(0)
    floats = [rng.random(model.inputs[0].shape, dtype=np.float32) for _ in range(8)]
    ready = model.prepare(floats[0])[0]
    counter = iter(range(10**12))

    def pick(pool: list[Any]) -> Any:
        return pool[next(counter) % len(pool)]

    return [
        lambda: model.predict(pick(floats)),
        lambda: model.predict(pick(pixels)),
        lambda: model.predict(pick(pil)),
        lambda: model.classify(pick(images), k=3),
        lambda: model.predict(ready, raw=True),
    ]


def soak_runtime(inferences: int, warmup: int, every: int, threads_n: int) -> dict[str, Any]:
    from edgeq.runtime import Model

    model = Model(SAMPLE_DIR / "model_int8.tflite", threads=threads_n)
    feeds = _feeds(model)
    before = threads()
    started = time.perf_counter()
    for i in range(warmup):
        feeds[i % len(feeds)]()
    samples = [sample(0)]
    for i in range(1, inferences + 1):
        feeds[i % len(feeds)]()
        if i % every == 0 or i == inferences:
            samples.append(sample(i))
    seconds = time.perf_counter() - started
    return {
        "model": model.name, "threads": threads_n, "warmup": warmup, "inferences": inferences, "every": every,
        "seconds": round(seconds, 2), "feeds": ["float array", "uint8 image array", "PIL image", "image path (classify)",
                                                "ready int8 tensor (raw)"],
        "rss_growth_bytes": growth(samples, "rss_bytes"),
        "rss_growth_second_half_bytes": growth(samples[len(samples) // 2 :], "rss_bytes"),
        "rss_peak_above_start_bytes": max(s["rss_bytes"] for s in samples) - samples[0]["rss_bytes"],
        "objects_growth": growth(samples, "objects"),
        "threads_before": before, "threads_after": threads(), "samples": samples,
    }


# ------------------------------------------------------------------------------------------- camera
def make_video(path: Path, frames: int, size: int = 96, fps: float = 30.0) -> Path:
    """``frames`` frames (the sample's eval images, upscaled, in turn) as a Motion JPEG .avi."""
    import cv2
    from PIL import Image

    images = sorted((SAMPLE_DIR / "eval").rglob("*.png"))[:100]
    tiles = [cv2.cvtColor(np.asarray(Image.open(p).convert("RGB").resize((size, size))), cv2.COLOR_RGB2BGR)
             for p in images]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write Motion JPEG video here")
    for i in range(frames):
        writer.write(tiles[i % len(tiles)])
    writer.release()
    return path


class _Sampler(threading.Thread):
    """RSS every ``period`` seconds while the camera app runs."""

    def __init__(self, period: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.period, self.values, self.stop = period, [], threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.period):
            self.values.append(rss_bytes())


def soak_camera(frames: int, runs: int, threads_n: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO / "samples"))
    import camera_classify

    results = []
    with tempfile.TemporaryDirectory(prefix="edgeq-soak-") as tmp:
        clip = make_video(Path(tmp) / "clip.avi", frames)
        for run in range(runs):
            out, report = Path(tmp) / f"out{run}.avi", Path(tmp) / f"cam{run}.json"
            args = camera_classify.parse_args([str(SAMPLE_DIR / "model_int8.tflite"), "--source", str(clip),
                                               "--headless", "--output", str(out), "--profile", str(report),
                                               "--threads", str(threads_n)])
            before = threads()
            start = sample(run)
            sampler = _Sampler(0.2)
            sampler.start()
            summary = camera_classify.run(args)
            sampler.stop.set()
            sampler.join()
            end = sample(run)
            results.append({
                "frames": summary.frames, "dropped": summary.dropped, "fps": summary.fps, "seconds": summary.seconds,
                "rss_start_bytes": start["rss_bytes"], "rss_end_bytes": end["rss_bytes"],
                "rss_max_while_running_bytes": max(sampler.values, default=end["rss_bytes"]),
                "objects_start": start["objects"], "objects_end": end["objects"],
                "threads_before": before, "threads_after": threads(), "output_bytes": out.stat().st_size,
            })
            out.unlink()
            report.unlink()
    first, last = results[0], results[-1]
    return {
        "app": "samples/camera_classify.py (headless, --output video, --profile)", "frames_per_run": frames,
        "runs": results,
        # growth between the end of the first run (warm) and the end of the last one
        "rss_growth_bytes": last["rss_end_bytes"] - first["rss_end_bytes"],
        "objects_growth": last["objects_end"] - first["objects_end"],
        "threads_leaked": max(r["threads_after"]["os"] - r["threads_before"]["os"] for r in results),
    }


# --------------------------------------------------------------------------------------------- main
def verdicts(report: dict[str, Any]) -> list[str]:
    """The targets a report misses (empty: all met)."""
    missed = []
    for name, section in report["sections"].items():
        if section["rss_growth_bytes"] >= RSS_TARGET_BYTES:
            missed.append(f"{name}: RSS grew {section['rss_growth_bytes']} bytes after warm-up (target < {RSS_TARGET_BYTES})")
        if section["objects_growth"] >= OBJECTS_TARGET:
            missed.append(f"{name}: {section['objects_growth']} more tracked objects (target < {OBJECTS_TARGET})")
    runtime = report["sections"].get("runtime")
    if runtime and runtime["threads_after"] != runtime["threads_before"]:
        missed.append(f"runtime: threads {runtime['threads_before']} -> {runtime['threads_after']}")
    camera = report["sections"].get("camera")
    if camera and camera["threads_leaked"] > 0:
        missed.append(f"camera: {camera['threads_leaked']} thread(s) left running after a run")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inferences", type=int, default=10_000, help="runtime calls after the warm-up (default 10000)")
    parser.add_argument("--warmup", type=int, default=500, help="runtime calls before the first sample (default 500)")
    parser.add_argument("--every", type=int, default=500, help="sample every N calls (default 500)")
    parser.add_argument("--frames", type=int, default=3000, help="frames of the generated video (default 3000)")
    parser.add_argument("--runs", type=int, default=2, help="camera app runs over the video (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    parser.add_argument("--skip", action="append", default=[], choices=["runtime", "camera"])
    parser.add_argument("--json", type=Path, help="where to write the results (default benchmarks/results/…)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    report: dict[str, Any] = {"what": "edgeq soak: memory, objects and threads over long runs",
                              "date": date.today().isoformat(), "host": socket.gethostname(),
                              "python": sys.version.split()[0], "sections": {}}
    if "runtime" not in args.skip:
        report["sections"]["runtime"] = soak_runtime(args.inferences, args.warmup, args.every, args.threads)
    if "camera" not in args.skip:
        report["sections"]["camera"] = soak_camera(args.frames, max(2, args.runs), args.threads)
    report["missed"] = verdicts(report)
    out = args.json or HERE / "results" / f"soak-{date.today()}-{socket.gethostname()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print("| section | work | RSS growth after warm-up | objects growth | threads |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in report["sections"].items():
        work = (f"{s['inferences']} inferences in {s['seconds']} s" if name == "runtime"
                else f"{len(s['runs'])} runs x {s['frames_per_run']} frames")
        thread_note = (f"{s['threads_before']['os']} -> {s['threads_after']['os']}" if name == "runtime"
                       else f"{s['threads_leaked']} leaked")
        print(f"| {name} | {work} | {s['rss_growth_bytes'] / 1024:+.0f} KiB | {s['objects_growth']:+d} | {thread_note} |")
    print("\n" + ("; ".join(report["missed"]) if report["missed"] else "all targets met") + f"; written to {out}")
    return 1 if report["missed"] else 0


if __name__ == "__main__":
    sys.exit(main())
