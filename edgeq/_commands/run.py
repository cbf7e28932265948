"""``edgeq run``: run a .tflite model on images, videos or arrays."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgeq._commands._hosts import add_host_options, run_on_boards, wants_hosts
from edgeq._ui import UI
from edgeq.errors import UsageError

EXAMPLES = """examples:
  edgeq run model_int8.tflite photo.jpg --top 3
  edgeq run model_int8.tflite images/ --json
  edgeq run model_int8.tflite clip.mp4 --every 10
  edgeq run model_int8.tflite --random --threads 2
  edgeq run model_int8.tflite x.npy --save-outputs outs/
  edgeq run model_int8.tflite photo.jpg --host pi@pi4.local --host pi@pi5.local   # on many boards over SSH

A .npy array with the input's rank holds N samples along its first axis: N results, one table / JSON line
each, in order, top-k per sample. They run as one batch, or one after another (a stream, keeping a stateful
model's state) when the model fixes its batch at 1.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run", help="run a .tflite model on images, folders, videos or .npy arrays",
        description="Run a .tflite model through the edgeq runtime (no TensorFlow): embedded preprocessing and labels "
        "are applied, inputs quantized and outputs dequantized.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a .tflite file")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files, image folders, videos or .npy arrays")
    p.add_argument("--random", action="store_true", help="run once on random input (a smoke test)")
    p.add_argument("--top", type=int, default=5, metavar="K", help="labels to show for classifiers (default 5)")
    p.add_argument("--every", type=int, default=1, metavar="N", help="use every N-th video frame (default 1)")
    p.add_argument("--threads", type=int, help="interpreter threads (default: the device's recommendation)")
    p.add_argument("--backend", help="litert, tflite-runtime or tensorflow (default: the first installed)")
    p.add_argument("--delegate", help="external delegate library to load (e.g. libedgetpu.so.1)")
    p.add_argument("--save-outputs", metavar="DIR", help="write each input's raw outputs as .npy files into DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object per input (JSON lines)")
    add_host_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._native import quiet_native_output
    from edgeq.runtime import Model
    from edgeq.runtime.sources import expand_inputs, random_input

    if not args.inputs and not args.random:
        raise UsageError("give at least one INPUT (image, folder, video, .npy) or --random")
    if args.top < 1 or args.every < 1:
        raise UsageError(f"--top and --every must be at least 1. Received: --top {args.top}, --every {args.every}")
    if wants_hosts(args):
        return run_on_boards(args, ui)
    save_dir = Path(args.save_outputs) if args.save_outputs else None
    if save_dir is not None and not save_dir.is_dir():
        raise UsageError(f"--save-outputs folder {save_dir} does not exist; create it first")
    with quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
        model = Model(args.model, threads=args.threads, backend=args.backend, delegate=args.delegate)
    if args.random and model.dynamic:
        sizes = ", ".join(f"{s.name} {list(s.shape_signature)}" for s in model.inputs)
        raise UsageError(f"{model.name} has inputs of dynamic size ({sizes}); --random cannot choose one: give an "
                         "input file (e.g. a .npy array of the size to run)")
    items = [("random", random_input(model.inputs))] if args.random else expand_inputs(args.inputs, args.every)
    classifier = len(model.outputs) == 1 and len(model.outputs[0].shape) == 2 and model.outputs[0].shape[1] > 1
    latencies = []
    n = 0
    for name, value in items:
        value = value[0] if isinstance(value, list) and len(model.inputs) == 1 else value
        if isinstance(value, np.ndarray):
            results = model.predict_each(value, raw=True)  # N samples -> N results (see EXAMPLES)
        else:
            results = [(model.predict(value, raw=True), 1, model.last_invoke_seconds)]
        for k, (raw, batch, seconds) in enumerate(results):
            if k % batch == 0:
                latencies.append(seconds * 1000)
            label = name if len(results) == 1 else f"{name}[{k}]"
            _show(ui, model, args.top, classifier, label, seconds * 1000, batch, raw, save_dir, n)
            n += 1
    ui.status(f"{model.name}: {n} input(s) in {len(latencies)} inference(s), mean {sum(latencies) / len(latencies):.2f} "
              "ms per inference "
              f"({model.backend.name} {model.backend.version}, {model.threads} thread(s))")
    return 0


def _show(ui: UI, model: Any, k: int, classifier: bool, name: str, ms: float, batch: int, raw: dict[str, np.ndarray],
          save_dir: Path | None, n: int) -> None:
    """Save, then print one sample's result: a JSON line or a table (top-k for classifiers)."""
    from edgeq.runtime import top

    outputs = model.dequantize(raw)
    if save_dir is not None:
        for key, arr in raw.items():
            np.save(save_dir / f"{n:05d}_{_safe(key)}.npy", arr)
    ranked = top(next(iter(outputs.values())), k, model.labels) if classifier else None
    if ui.json_mode:
        record = {"input": name, "latency_ms": ms, "batch": batch, "outputs": {key: v.tolist() for key, v in outputs.items()}}
        if ranked is not None:
            record["top"] = [{"label": label, "score": score} for label, score in ranked]
        sys.stdout.write(json.dumps(record) + "\n")
    else:
        from edgeq._render import outputs_table, predictions_table  # rich: only when a table is drawn

        title = f"{name}  ({ms:.2f} ms{f' for a batch of {batch}' if batch > 1 else ''})"
        ui.print(predictions_table(title, ranked) if ranked is not None else outputs_table(title, outputs))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
