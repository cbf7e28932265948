"""``edgeq run``: run a .tflite model on images, videos or arrays."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

from edgeq._commands._hosts import add_host_options, run_on_boards, wants_hosts
from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options
from edgeq._render.ui import UI
from edgeq.errors import UsageError

EXAMPLES = """examples:
  edgeq run model_int8.tflite photo.jpg --top 3
  edgeq run model_int8.tflite images/                  # one row per image, then a count per class
  edgeq run model_int8.tflite images/ --csv predictions.csv
  edgeq run model_int8.tflite images/ --json > predictions.jsonl
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
    p.add_argument("--csv", metavar="FILE", help="also write one row per input (top labels and scores, latency) to FILE")
    add_json_options(p, "one JSON object per input (JSON lines)")
    add_host_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._io import all_or_nothing

    with all_or_nothing() as written:  # an input that fails removes the outputs saved before it
        return _run(args, ui, written)


def _run(args: argparse.Namespace, ui: UI, written: list[Path]) -> int:
    from edgeq._io import atomic_write, check_output_path
    from edgeq._progress import track
    from edgeq._render.ui import strict_json
    from edgeq.runtime import Model, top
    from edgeq.runtime.sources import expand_inputs, random_input

    if not args.inputs and not args.random:
        raise UsageError("give at least one INPUT (image, folder, video, .npy) or --random")
    if args.top < 1 or args.every < 1:
        raise UsageError(f"--top and --every must be at least 1. Received: --top {args.top}, --every {args.every}")
    if wants_hosts(args):
        return run_on_boards(args, ui)
    save_dir = Path(args.save_outputs) if args.save_outputs else None
    if save_dir is not None:
        _check_save_dir(save_dir, args.force)
    checks.tflite_model(args.model)
    if args.csv:
        checks.output(args.csv, args.force)
    model = Model(args.model, threads=args.threads, backend=args.backend, delegate=args.delegate)
    if args.random and model.dynamic:
        sizes = ", ".join(f"{s.name} {list(s.shape_signature)}" for s in model.inputs)
        raise UsageError(f"{model.name} has inputs of dynamic size ({sizes}); --random cannot choose one: give an "
                         "input file (e.g. a .npy array of the size to run)")
    items = [("random", random_input(model.inputs))] if args.random else expand_inputs(args.inputs, args.every)
    classifier = len(model.outputs) == 1 and len(model.outputs[0].shape) == 2 and model.outputs[0].shape[1] > 1
    records: list[dict] = []
    inferences = 0
    with ui.progress():
        for name, value in track(items, "Running the model", total=None):
            value = value[0] if isinstance(value, list) and len(model.inputs) == 1 else value
            if isinstance(value, np.ndarray):
                results = model.predict_each(value, raw=True)  # N samples -> N results (see EXAMPLES)
            else:
                results = [(model.predict(value, raw=True), 1, model.last_invoke_seconds)]
            for k, (raw, batch, seconds) in enumerate(results):
                inferences += k % batch == 0
                n = len(records)
                outputs = model.dequantize(raw)
                if save_dir is not None:
                    for key, arr in raw.items():
                        buf = io.BytesIO()
                        np.save(buf, arr, allow_pickle=False)
                        out = check_output_path(save_dir / f"{n:05d}_{_safe(key)}.npy", args.force, [args.model, *args.inputs])
                        written.append(atomic_write(out, buf.getvalue(), force=args.force))
                record: dict = {"input": name if len(results) == 1 else f"{name}[{k}]", "latency_ms": seconds * 1000,
                                "batch": batch, "outputs": outputs}
                if classifier:
                    record["top"] = top(next(iter(outputs.values())), args.top, model.labels)
                records.append(record)
    if ui.wants_json:
        ui.json_text("".join(strict_json(_jsonable(r)) + "\n" for r in records))
    if args.csv:
        atomic_write(args.csv, _csv(records, classifier, args.top).encode(), force=args.force)
    if not ui.json_mode:
        _print_tables(ui, records, classifier, args.inputs)
    if args.csv:
        ui.status(f"wrote {len(records)} row(s) to {args.csv}")
    latencies = [r["latency_ms"] for r in records]
    ui.status(f"{model.name}: {len(records)} input(s) in {inferences} inference(s), mean {sum(latencies) / len(latencies):.2f} "
              "ms per inference "
              f"({model.backend.name} {model.backend.version}, {model.threads} thread(s))")
    return 0


def _print_tables(ui: UI, records: list[dict], classifier: bool, inputs: list[str]) -> None:
    """One input: its top-k table (or its outputs); several: one row each, then a count per class."""
    from edgeq._render import outputs_table, predictions_table, run_summary_table, run_table  # rich: tables only

    if len(records) == 1:
        (r,) = records
        title = f"{_shown(r['input'], inputs)}  ({r['latency_ms']:.2f} ms)"
        ui.print(predictions_table(title, r["top"]) if classifier else outputs_table(title, r["outputs"]))
    else:
        ui.print(run_table([{**r, "input": _shown(r["input"], inputs)} for r in records], classifier))
        if classifier:
            ui.print(run_summary_table(records))


def _jsonable(record: dict) -> dict:
    """One JSON line: the input, its latency, every output (dequantized) and, for classifiers, the top labels."""
    out = {"input": record["input"], "latency_ms": record["latency_ms"], "batch": record["batch"],
           "outputs": {k: v.tolist() for k, v in record["outputs"].items()}}
    if "top" in record:
        out["top"] = [{"label": label, "score": score} for label, score in record["top"]]
    return out


def _csv(records: list[dict], classifier: bool, k: int) -> str:
    """One row per input (classifiers: the top-K labels and scores), or per input and output (min/max/mean)."""
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if classifier:
        k = min(k, max(len(r["top"]) for r in records))
        writer.writerow(["input", "latency_ms", *[f"{c}_{i}" for i in range(1, k + 1) for c in ("label", "score")]])
        for r in records:
            writer.writerow([r["input"], f"{r['latency_ms']:.4f}", *[v for label, score in r["top"] for v in (label, f"{score:.6f}")]])
    else:
        writer.writerow(["input", "latency_ms", "output", "shape", "min", "max", "mean"])
        for r in records:
            for name, arr in r["outputs"].items():
                writer.writerow([r["input"], f"{r['latency_ms']:.4f}", name, "x".join(map(str, arr.shape)),
                                 float(arr.min()), float(arr.max()), float(arr.mean())])
    return buffer.getvalue()


def _shown(name: str, inputs: list[str]) -> str:
    """An input's name as shown in tables: relative to the folder it was found in, when one was given."""
    for item in inputs:
        folder = Path(item)
        if folder.is_dir():
            try:
                return str(Path(name).relative_to(folder))
            except ValueError:
                continue
    return name


def _check_save_dir(save_dir: Path, force: bool) -> None:
    if not save_dir.is_dir():
        raise UsageError(f"--save-outputs folder {save_dir} does not exist; create it first")
    earlier = sorted(p.name for p in save_dir.glob("[0-9][0-9][0-9][0-9][0-9]_*.npy"))
    if earlier and not force:
        raise UsageError(f"--save-outputs folder {save_dir} already holds outputs ({earlier[0]}, …); pass --force "
                         "to replace them, or choose an empty folder")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
