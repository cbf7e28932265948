"""``edgeq tune``: build every candidate conversion, measure them on this device, pick the best under constraints."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeq._commands.profile import _threads
from edgeq._commands._options import add_json_options, add_normalize_options
from edgeq._render.ui import UI
from edgeq.errors import CheckFailed, DataError, UsageError

EXAMPLES = """examples:
  edgeq tune model.keras --data calib/ --eval-data eval/ --max-drop 1 --out best.tflite
  edgeq tune model.keras --data calib/ --eval-data eval/ --max-size-kb 200 --prefer accuracy --html tune.html
  edgeq tune model.keras --data calib/ --candidates cands/           # workstation: build only, then copy cands/
  edgeq tune cands/ --eval-data eval/ --max-latency-ms 20 --out best.tflite   # on the device, no TensorFlow
  edgeq tune cands/ --eval-data eval/ --json-out pi4.json                     # a report per device …
  edgeq tune --merge pi4.json pi5.json --max-drop 1                           # … one pick for the fleet
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="find the best conversion for this device: measured, under constraints",
        description="Convert a Keras model every sensible way (float32, float16, dynamic, int8, uint8, int8 keeping "
        "the debugger's worst layers in float, int8/int4 weight-only when ai-edge-quantizer is installed), measure "
        "each at 1..N threads on this device (top-1 and agreement with the float32 candidate on labelled data, "
        "p50/p90 latency with candidates run round-robin, peak memory, file size), mark the Pareto front of "
        "accuracy, latency and size, and pick the best candidate that meets the constraints. Given a folder of "
        "candidates (made with --candidates) it only measures and picks, with the base install (no TensorFlow). "
        "Measurements are cached in the candidates folder, so a rerun is fast. Exit 1 when nothing meets the "
        "constraints, with the nearest candidates.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", nargs="?", help=".keras/.h5/SavedModel to convert, or a folder of candidate .tflite files")
    p.add_argument("--data", help="representative data for the integer candidates (as for 'edgeq convert')")
    p.add_argument("--eval-data", metavar="LABELLED",
                   help="labelled data: class sub-folders, a labels CSV or .npz with x and y")
    p.add_argument("--candidates", metavar="DIR",
                   help="write the candidate .tflite files to DIR and stop (measure them on the device later)")
    p.add_argument("--out", help="copy the picked candidate to this .tflite file")
    p.add_argument("--html", metavar="OUT.html",
                   help="also write a chart: accuracy vs latency, size as marker area, the front and the pick")
    p.add_argument("--force", action="store_true", help="overwrite --out/--html, and replace another build's candidates")
    constraints = p.add_argument_group("constraints and objective")
    constraints.add_argument("--max-drop", type=float, metavar="PTS", help="top-1 points below the float32 candidate")
    constraints.add_argument("--max-latency-ms", type=float, metavar="MS", help="p50 latency")
    constraints.add_argument("--max-size-kb", type=float, metavar="KB", help="file size")
    constraints.add_argument("--max-memory-mb", type=float, metavar="MB", help="peak memory (RSS increase)")
    constraints.add_argument("--prefer", default="latency", metavar="WHAT",
                             help="latency (default), size or accuracy: what the pick optimises")
    build = p.add_argument_group("building candidates (as for 'edgeq convert')")
    build.add_argument("--modes", metavar="NAME[,NAME…]",
                       help="candidates to build (default all but the refined ones): float32, float16, dynamic, int8, "
                       "uint8, int8-keepN, int8-weights, int4-weights, and on request int8-refine, int4-refine "
                       "(convert --refine: slower to build)")
    build.add_argument("--keep-layers", type=int, default=2, metavar="N",
                       help="int8 candidates keeping the debugger's worst 1..N layers in float (default 2; 0 = none)")
    build.add_argument("--samples", type=int, default=200, help="calibration samples (default 200)")
    build.add_argument("--seed", type=int, default=0, help="seed of the sample selection (default 0)")
    build.add_argument("--resize", default="stretch", help="stretch, crop or pad (image data; default stretch)")
    add_normalize_options(build)
    build.add_argument("--bgr", action="store_true", help="feed images as BGR instead of RGB")
    build.add_argument("--labels", help="class names, one per line, embedded in every candidate")
    build.add_argument("--calibration", default="minmax", metavar="METHOD",
                       help="minmax (default), percentile:P or mse")
    measure = p.add_argument_group("measuring")
    measure.add_argument("--threads", type=_threads, metavar="1,2,4",
                         help="thread counts (default 1..cores, at most 4)")
    measure.add_argument("--runs", type=int, default=30, metavar="N", help="timed runs per candidate and thread count (default 30)")
    measure.add_argument("--warmup", type=int, default=3, metavar="N", help="untimed runs before timing (default 3)")
    measure.add_argument("--eval-samples", type=int, metavar="N", help="evaluate at most N labelled samples (default all)")
    measure.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement (child processes)")
    measure.add_argument("--merge", nargs="+", metavar="REPORT",
                         help="pick one candidate for a fleet from --json reports of several devices (worst case of each)")
    add_json_options(p, "the result")
    p.set_defaults(func=run)


def _is_candidates_folder(path: Path) -> bool:
    return path.is_dir() and not (path / "saved_model.pb").exists() and any(path.glob("*.tflite"))


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._io import check_output_path
    from edgeq._render.tune import pick_lines, tune_table
    from edgeq.runtime.tune import PREFER, Constraints, check_options, install_pick, merge_reports, tune_folder

    limits = Constraints(args.max_drop, args.max_latency_ms, args.max_size_kb, args.max_memory_mb)
    if args.prefer not in PREFER:
        raise UsageError(f"--prefer must be one of {', '.join(PREFER)}. Received: {args.prefer!r}")
    if args.candidates and (args.out or args.html):
        raise UsageError("--candidates only builds (measure on the device later); drop --out/--html, or drop "
                         "--candidates to measure and pick here")
    out = check_output_path(args.out, args.force) if args.out else None
    chart = check_output_path(args.html, args.force) if args.html else None
    if args.merge:
        if args.model or out is not None:
            raise UsageError("--merge picks from reports only; drop MODEL and --out (copy the pick from the candidates folder)")
        result = merge_reports(args.merge, limits, args.prefer)
    else:
        if not args.model:
            raise UsageError("give a model (.keras/.h5/SavedModel) or a candidates folder; see 'edgeq tune --help'")
        folder = Path(args.model)
        if not folder.exists():
            raise UsageError(f"{folder} not found; give a .keras/.h5/SavedModel to convert or a folder of candidate "
                             ".tflite files (made with --candidates)")
        if not args.candidates:
            if not args.eval_data:
                raise UsageError("tune needs --eval-data LABELLED (class sub-folders, a labels CSV or .npz with x and y)")
            check_options(args.threads, args.runs, args.warmup, args.eval_samples)
            if not Path(args.eval_data).exists():
                raise DataError(f"labelled data not found: {args.eval_data}")
        if not _is_candidates_folder(folder):
            built = _build(args, ui)
            if args.candidates:
                return 0
            folder = built
        with ui.progress():
            result = tune_folder(folder, args.eval_data, limits, args.prefer, args.threads, args.runs, args.warmup,
                                 not args.no_memory, args.eval_samples)
    ui.json(result.to_dict())
    if not ui.json_mode:
        ui.print(tune_table(result))
    if chart is not None:
        from edgeq._io import atomic_write
        from edgeq._render.tune import render_html

        atomic_write(chart, render_html(result).encode(), force=args.force)
        ui.status(f"chart written to {chart}")
    for note in result.notes:
        ui.warn(note)
    for line in pick_lines(result):
        ui.status(line)
    if result.pick is None:
        raise CheckFailed(f"{result.why}; the nearest candidates are listed above")
    if out is not None:
        install_pick(result, out, args.force)
        ui.status(f"wrote {out} ({result.pick.candidate.name})")
    return 0


def _build(args: argparse.Namespace, ui: UI) -> Path:
    """Build (or reuse) the candidates of ``args.model``; returns their folder."""
    from edgeq._render import key_value_table
    from edgeq.converters.tune import build_candidates, candidate_names, default_work_folder

    names = candidate_names(args.keep_layers, [m.strip() for m in args.modes.split(",") if m.strip()] if args.modes else None)
    if args.max_drop is not None and "float32" not in names:
        raise UsageError("--max-drop is measured against the float32 candidate; add float32 to --modes")
    folder = Path(args.candidates) if args.candidates else default_work_folder(args.model)
    with ui.progress():
        built = build_candidates(args.model, args.data, folder, names, args.keep_layers,
                                 force=args.force or not args.candidates, samples=args.samples, seed=args.seed,
                                 resize=args.resize, normalize=args.normalize, force_normalize=args.force_normalize,
                                 bgr=args.bgr, labels=args.labels, calibration=args.calibration)
    for name, why in built.skipped.items():
        ui.warn(f"candidate {name} skipped: {why}")
    if args.candidates:
        ui.json(built.to_dict())
        if not ui.json_mode:
            rows = [(name, str(path) + (f" (keeps {', '.join(built.keep_float[name])} in float)"
                                        if name in built.keep_float else "")) for name, path in built.files.items()]
            ui.print(key_value_table(f"{len(built.files)} candidates{' (reused)' if built.reused else ''}", rows))
            ui.status(f"next, on the device: edgeq tune {folder} --eval-data LABELLED [constraints] --out best.tflite")
    return folder
