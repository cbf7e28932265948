"""``edgeq run``: run a .tflite model on images, videos or arrays."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

from edgeq._render.ui import UI
from edgeq.errors import UsageError

EXAMPLES = """examples:
  edgeq run model_int8.tflite photo.jpg --top 3
  edgeq run model_int8.tflite images/ --json
  edgeq run model_int8.tflite clip.mp4 --every 10
  edgeq run model_int8.tflite --random --threads 2
  edgeq run model_int8.tflite x.npy --save-outputs outs/
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
    p.add_argument("--force", action="store_true", help="replace .npy files an earlier --save-outputs left in DIR")
    p.add_argument("--json", action="store_true", help="print one JSON object per input (JSON lines)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._io import all_or_nothing

    with all_or_nothing() as written:  # an input that fails removes the outputs saved before it
        return _run(args, ui, written)


def _run(args: argparse.Namespace, ui: UI, written: list[Path]) -> int:
    from edgeq._io import atomic_write, check_output_path
    from edgeq._render.ui import json_text
    from edgeq._native import quiet_native_output
    from edgeq._render import outputs_table, predictions_table
    from edgeq.runtime import Model, top
    from edgeq.runtime.sources import expand_inputs, random_input

    if not args.inputs and not args.random:
        raise UsageError("give at least one INPUT (image, folder, video, .npy) or --random")
    if args.top < 1 or args.every < 1:
        raise UsageError(f"--top and --every must be at least 1. Received: --top {args.top}, --every {args.every}")
    save_dir = Path(args.save_outputs) if args.save_outputs else None
    if save_dir is not None:
        _check_save_dir(save_dir, args.force)
    with quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
        model = Model(args.model, threads=args.threads, backend=args.backend, delegate=args.delegate)
    items = [("random", random_input(model.inputs))] if args.random else expand_inputs(args.inputs, args.every)
    classifier = len(model.outputs) == 1 and len(model.outputs[0].shape) == 2 and model.outputs[0].shape[1] > 1
    latencies = []
    for n, (name, value) in enumerate(items):
        raw = model.predict(value[0] if isinstance(value, list) and len(model.inputs) == 1 else value, raw=True)
        ms = model.last_invoke_seconds * 1000
        latencies.append(ms)
        outputs = model.dequantize(raw)
        if save_dir is not None:
            for key, arr in raw.items():
                buf = io.BytesIO()
                np.save(buf, arr, allow_pickle=False)
                out = check_output_path(save_dir / f"{n:05d}_{_safe(key)}.npy", args.force, [args.model, *args.inputs])
                written.append(atomic_write(out, buf.getvalue(), force=args.force))
        ranked = top(next(iter(outputs.values())), args.top, model.labels) if classifier else None
        if ui.json_mode:
            record = {"input": name, "latency_ms": ms,
                      "outputs": {k: v.tolist() for k, v in outputs.items()}}
            if ranked is not None:
                record["top"] = [{"label": label, "score": score} for label, score in ranked]
            sys.stdout.write(json_text(record) + "\n")
        else:
            title = f"{name}  ({ms:.2f} ms)"
            ui.print(predictions_table(title, ranked) if ranked is not None else outputs_table(title, outputs))
    ui.status(f"{model.name}: {len(latencies)} input(s), mean {sum(latencies) / len(latencies):.2f} ms per inference "
              f"({model.backend.name} {model.backend.version}, {model.threads} thread(s))")
    return 0


def _check_save_dir(save_dir: Path, force: bool) -> None:
    if not save_dir.is_dir():
        raise UsageError(f"--save-outputs folder {save_dir} does not exist; create it first")
    earlier = sorted(p.name for p in save_dir.glob("[0-9][0-9][0-9][0-9][0-9]_*.npy"))
    if earlier and not force:
        raise UsageError(f"--save-outputs folder {save_dir} already holds outputs ({earlier[0]}, …); pass --force "
                         "to replace them, or choose an empty folder")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
