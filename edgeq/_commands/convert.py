"""``edgeq convert``: Keras/SavedModel → verified TFLite."""

from __future__ import annotations

import argparse

from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options, add_normalize_options
from edgeq._render.ui import UI
from edgeq.errors import CheckFailed

EXAMPLES = """examples:
  edgeq convert model.keras --data calib_images/ --out model_int8.tflite
  edgeq convert model.h5 --data frames.npy --mode int16x8 --out model_16x8.tflite
  edgeq convert saved_model/ --data video.mp4 --normalize imagenet --labels labels.txt --out m.tflite
  edgeq convert model.keras --data mydata:samples --io float --min-agreement 0.98 --out m.tflite
  edgeq convert model.keras --data calib/ --keep-float conv3,SOFTMAX --out m.tflite      # layers/ops in float
  edgeq convert model.keras --data calib/ --max-drop 0.5 --eval-data eval/ --out m.tflite  # accuracy budget
  edgeq convert model.keras --data calib/ --calibration percentile:99.99 --out m.tflite
  edgeq convert model.keras --data calib/ --mode int4-weights --block-size 32 --out m_int4.tflite  # pip install "edgeq[int4]"
  edgeq convert model.keras --data calib/ --refine --out m.tflite        # GPTQ weight rounding + bias correction
"""

MODE_KEYS = ("int8", "uint8", "int16x8", "dynamic", "float16", "float32", "int8-weights", "int4-weights")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="convert a Keras model to (int8) TFLite and verify it",
        description="Convert a Keras 3 .keras, Keras 2 .h5 or SavedModel to TFLite, calibrated on a representative "
        "dataset, then verify it against the float model on held-back samples.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help=".keras file, .h5 file or SavedModel folder")
    p.add_argument("--data", help="representative data: image folder, video, .npy/.npz, or py:module:function (imports and runs that Python code)")
    p.add_argument("--out", required=True, help="the .tflite file to write")
    p.add_argument("--mode", default="int8", metavar="MODE", help=f"one of {', '.join(MODE_KEYS)} (default int8)")
    p.add_argument("--io", help="input/output type: float keeps float IO on an integer body (default: the mode's type)")
    p.add_argument("--samples", type=int, help="calibration samples (default 200, holding back at least a fifth of the "
                   "data to verify on)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample selection (default 0)")
    p.add_argument("--resize", default="stretch", help="stretch, crop or pad (image data; default stretch)")
    add_normalize_options(p)
    p.add_argument("--bgr", action="store_true", help="feed images as BGR instead of RGB")
    p.add_argument("--labels", help="class names, one per line, embedded in the model")
    p.add_argument("--target", help="board profile the model is for (e.g. pi4, pi5, or auto); warns on a poor fit")
    p.add_argument("--min-agreement", type=float, help="fail (exit 1, file kept) if top-1 agreement is below this fraction")
    p.add_argument("--keep-float", metavar="NAME[,NAME…]",
                   help="keep these in float: Keras layer names, tensor names from 'edgeq debug', or op types (SOFTMAX); "
                   "prints what each costs in size and latency")
    p.add_argument("--calibration", default="minmax", metavar="METHOD",
                   help="activation ranges: minmax (default), percentile:P (e.g. percentile:99.99) or mse")
    p.add_argument("--max-drop", type=float, metavar="P",
                   help="accuracy budget: at most P points of top-1 below the Keras model on --eval-data; keeps the "
                   "worst layers in float step by step until met (exit 1 if impossible, best result kept)")
    p.add_argument("--eval-data", metavar="LABELLED",
                   help="labelled data for --max-drop (and the top-1 column of --keep-float): class sub-folders, "
                   "a labels CSV or .npz with x and y")
    p.add_argument("--max-drop-agreement", type=float, metavar="P",
                   help="budget on unlabelled data: at most P points of top-1 disagreement with the Keras model "
                   "(on --eval-data, else the held-back samples of --data)")
    p.add_argument("--block-size", type=int, metavar="N",
                   help="--mode int4-weights: one scale per N input values of fully connected / embedding weights "
                   "(32, 64, 128 or 256; default: one per output channel)")
    p.add_argument("--holdout", type=int, metavar="N", help="keep N samples of --data apart from calibration to verify on")
    p.add_argument("--verify-data", metavar="DATA",
                   help="verify on this data instead: class sub-folders (adds float and int8 accuracy) or any --data source")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 1, nothing written) when a sanity check warns (degenerate float predictions, resized images)")
    p.add_argument("--refine", action="store_true",
                   help="int8, uint8, int8-weights, int4-weights: re-round the weights (GPTQ) and correct the biases "
                   "against the float model on --data; each step is kept only if it lowers the error on held-back "
                   "calibration samples; shows plain vs refined")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    add_json_options(p)
    p.set_defaults(func=run)


def check(args: argparse.Namespace) -> None:
    """Every path and option, before TensorFlow is imported (a typo costs a second, not a model load)."""
    checks.keras_model(args.model)
    if args.data is not None:
        checks.data(args.data)
    if args.eval_data is not None:  # --max-drop-agreement needs no labels: any data source will do
        checks.data(args.eval_data, "--eval-data") if args.max_drop_agreement is not None else checks.labelled(
            args.eval_data, "--eval-data")
    if args.labels is not None:
        checks.labels_file(args.labels)
    checks.output(args.out, args.force)
    checks.preprocessing(args)
    checks.positive(args, "samples", "block_size")
    checks.mode(args.mode)  # these two import edgeq.converters (not TensorFlow): ~0.4 s
    checks.calibration(args.calibration)


def run(args: argparse.Namespace, ui: UI) -> int:
    check(args)
    from edgeq._render import conversion_table
    from edgeq.converters import convert
    from edgeq.converters.modes import get_mode

    spec = get_mode(args.mode)
    if spec.warning:
        ui.warn(spec.warning)
    failure = None
    with ui.progress():
        try:
            result = convert(
                args.model, args.data, args.out, mode=args.mode, io=args.io, samples=args.samples, seed=args.seed,
                resize=args.resize, normalize=args.normalize, bgr=args.bgr, labels=args.labels, force=args.force,
                min_agreement=args.min_agreement, target=args.target, keep_float=args.keep_float,
                calibration=args.calibration, max_drop=args.max_drop, eval_data=args.eval_data,
                max_drop_agreement=args.max_drop_agreement, block_size=args.block_size, refine=args.refine,
                force_normalize=args.force_normalize, strict=args.strict, holdout=args.holdout,
                verify_data=args.verify_data,
            )
        except CheckFailed as exc:
            failure, result = exc, exc.result  # type: ignore[attr-defined]
    ui.json(result.to_dict())
    if not ui.json_mode:
        ui.print(conversion_table(result))
        if result.fallback is not None:
            from edgeq._render.accuracy import fallback_tables

            ui.print(*fallback_tables(result.fallback))
        if result.refine is not None:
            from edgeq._render.refine import refine_table

            ui.print(refine_table(result.refine, result.verification))
    for note in result.warnings:
        if note != spec.warning:
            ui.warn(note)
    if failure is not None:
        raise failure
    return 0
