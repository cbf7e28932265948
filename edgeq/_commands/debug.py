"""``edgeq debug``: rank a Keras model's layers by int8 quantization error and suggest what to keep in float."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options, add_normalize_options
from edgeq._render.ui import UI

EXAMPLES = """examples:
  edgeq debug model.keras --data calib_images/
  edgeq debug model.keras --data calib_images/ --calibration percentile:99.99 --csv layers.csv
  edgeq debug model.keras --data frames.npy --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "debug", help="rank layers by int8 quantization error (TFLite quantization debugger)",
        description="Calibrate the model as 'edgeq convert' would (same data, preprocessing and --calibration), run "
        "TFLite's quantization debugger on held-back samples, and rank the quantized ops by SQNR, worst first, with "
        "RMSE/scale, max abs error, the int8 range and the Keras layer each comes from. Suggests the layers to keep "
        "in float and the 'edgeq convert --keep-float' command that does it.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help=".keras file, .h5 file or SavedModel folder")
    p.add_argument("--data", required=True, help="representative data: image folder, video, .npy/.npz, or py:module:function (imports and runs that Python code)")
    p.add_argument("--mode", default="int8", help="int8 (default) or uint8")
    p.add_argument("--calibration", default="minmax", metavar="METHOD", help="minmax (default), percentile:P or mse")
    p.add_argument("--keep-float", metavar="NAME[,NAME…]", help="layers already kept in float (not ranked)")
    p.add_argument("--samples", type=int, default=200, help="calibration samples (default 200); up to 100 more are debugged")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample selection (default 0)")
    p.add_argument("--resize", default="stretch", help="stretch, crop or pad (image data; default stretch)")
    add_normalize_options(p)
    p.add_argument("--bgr", action="store_true", help="feed images as BGR instead of RGB")
    p.add_argument("--top", type=int, default=20, help="rows to print (default 20; 0 = all)")
    p.add_argument("--csv", metavar="OUT", help="also write every layer's row to this CSV file")
    p.add_argument("--force", action="store_true", help="overwrite the --csv file if it exists")
    add_json_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render.accuracy import debug_tables
    from edgeq._io import atomic_write, check_output_path
    from edgeq.errors import UsageError

    if args.top < 0:
        raise UsageError(f"--top must be 0 (all) or a positive number of rows. Received: {args.top}")
    checks.keras_model(args.model)
    checks.data(args.data)
    checks.preprocessing(args)
    checks.positive(args, "samples")
    csv_out = check_output_path(args.csv, args.force, inputs=(args.model, args.data)) if args.csv else None
    checks.mode(args.mode)  # these two import edgeq.converters (not TensorFlow)
    checks.calibration(args.calibration)
    from edgeq.converters.debug import debug

    with ui.progress():
        report = debug(args.model, args.data, samples=args.samples, seed=args.seed, resize=args.resize,
                       normalize=args.normalize, bgr=args.bgr, calibration=args.calibration, mode=args.mode,
                       keep_float=args.keep_float, force_normalize=args.force_normalize)
    if report.suggestions:
        report.command = convert_command(args, [r.name for r in report.suggestions])
    if csv_out is not None:
        atomic_write(csv_out, report.to_csv().encode(), force=args.force)
    ui.json(report.to_dict())
    if not ui.json_mode:
        ui.print(*debug_tables(report, args.top or None))
    for note in report.notes:
        ui.warn(note)
    if csv_out is not None:
        ui.status(f"wrote {len(report.layers)} rows to {csv_out}")
    return 0


def convert_command(args: argparse.Namespace, suggested: list[str]) -> str:
    """The ``edgeq convert`` command that repeats this debug run's settings and keeps ``suggested`` in float.

    Every option that changes the result (data, preprocessing, mode, calibration, sampling) is repeated, so the
    converted model is the one that was debugged; ``--out`` names a file that does not exist yet.
    """
    import shlex

    from edgeq.converters.fallback import split_names

    keep = ",".join(dict.fromkeys([*split_names(args.keep_float), *suggested]))
    parts = ["edgeq", "convert", args.model, "--data", args.data]
    defaults = {"mode": "int8", "samples": 200, "seed": 0, "resize": "stretch", "normalize": None, "calibration": "minmax"}
    for name, default in defaults.items():
        value = getattr(args, name)
        if str(value) != str(default):
            parts += [f"--{name}", str(value)]
    parts += [f"--{flag.replace('_', '-')}" for flag in ("force_normalize", "bgr") if getattr(args, flag)]
    parts += ["--keep-float", keep, "--out", _free_name(Path(args.model))]
    return " ".join(shlex.quote(p) for p in parts)


def _free_name(model: Path) -> str:
    """``model_int8.tflite`` beside the current folder, or ``model_int8_2.tflite``… if that exists."""
    stem = model.stem if model.suffix else model.name
    n, name = 1, f"{stem}_int8.tflite"
    while Path(name).exists():
        n += 1
        name = f"{stem}_int8_{n}.tflite"
    return name
