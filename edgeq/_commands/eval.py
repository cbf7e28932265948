"""``edgeq eval``: accuracy of a .tflite classifier on labelled data, optionally against a reference model."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options
from edgeq._render.ui import UI
from edgeq.errors import ModelError

EXAMPLES = """examples:
  edgeq eval model_int8.tflite --data eval/                                  # class sub-folders
  edgeq eval model_int8.tflite --data eval/ --reference model.keras          # drop, agreement, SQNR vs float
  edgeq eval model_int8.tflite --data labels.csv --reference other.tflite    # image,label rows
  edgeq eval model_int8.tflite --data test.npz --json                        # x (preprocessed) and y
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="accuracy of a .tflite classifier on labelled data (top-1/top-5, per class, confusion)",
        description="Run a .tflite classifier on labelled data with its embedded preprocessing and report top-1 and "
        "top-5 accuracy, per-class accuracy and the most confused classes. Data class names map to the model's "
        "classes through its embedded labels (0_tshirt_top matches T-shirt/top), an N_ index prefix, or sorted "
        "order. With --reference (a .keras/.h5/SavedModel, which needs TensorFlow, or another .tflite) it also "
        "reports the reference's accuracy, the drop in points, top-1 agreement and output SQNR.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a .tflite classifier")
    p.add_argument("--data", required=True, metavar="LABELLED",
                   help="class sub-folders, a labels CSV (image,label; or a folder with labels.csv) or .npz with x and y")
    p.add_argument("--reference", metavar="MODEL", help="a .keras/.h5/SavedModel or .tflite to compare with")
    p.add_argument("--threads", type=int, help="interpreter threads (default: the device's recommendation)")
    add_json_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render.accuracy import eval_tables
    from edgeq._native import quiet_native_output
    from edgeq.runtime import Model
    from edgeq.runtime.evaluate import evaluate

    checks.tflite_model(args.model)
    checks.labelled(args.data)
    if args.reference is not None and not Path(args.reference).exists():
        raise ModelError(f"--reference model not found: {args.reference}; expected a .keras/.h5/SavedModel or .tflite")
    with quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
        model = Model(args.model, threads=args.threads)
    with ui.progress():
        result = evaluate(model, args.data, reference=args.reference, threads=args.threads)
    ui.json(result.to_dict())
    if not ui.json_mode:
        ui.print(*eval_tables(result))
    for note in result.notes:
        ui.warn(note)
    return 0
