"""``edgeq qat``: quantization-aware training of a Keras 3 model, then a verified full-integer (or int4-weight) TFLite model."""

from __future__ import annotations

import argparse

from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options, add_normalize_options
from edgeq._render.ui import UI
from edgeq.errors import CheckFailed

EXAMPLES = """examples:
  edgeq qat model.keras --train labelled_images/ --epochs 2 --out model_qat.tflite
  edgeq qat model.keras --train train.npz --epochs 3 --learning-rate 1e-4 --out m.tflite --labels labels.txt
  edgeq qat model.keras --train labelled/ --data calib/ --samples 2000 --out m.tflite   # --data: optional
  edgeq qat model.keras --train train.npz --weights int4 --epochs 2 --out m_int4.tflite   # int4 weights, float activations
  edgeq eval model_qat.tflite --data eval/ --reference model_int8.tflite   # QAT vs post-training int8

Training data: class sub-folders of images, a labels CSV (image,label), or a .npz with x (preprocessed
inputs) and y (class indices or one-hot). Ranges come from training: no representative data is needed.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "qat", help="quantization-aware training (Keras 3), then a verified full-integer TFLite model",
        description="Fine-tune a Keras 3 model with fake quantization (BatchNorm folded, weights per channel for "
        "convolutions and per tensor for Dense, activation ranges learnt in training), then convert it to int8 "
        "with the trained ranges and verify it against the float model on held-back samples. With --weights int4: "
        "int4 weights fake-quantized as ai-edge-quantizer stores them, float activations, exported as "
        "convert --mode int4-weights.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help=".keras or .h5 file (Sequential or Functional)")
    p.add_argument("--train", required=True, metavar="DATA",
                   help="labelled training data: class sub-folders, a labels CSV, or .npz with x and y")
    p.add_argument("--out", required=True, help="the .tflite file to write")
    p.add_argument("--epochs", type=int, default=1, help="training epochs (default 1)")
    p.add_argument("--data", help="optional representative data (as for convert): fills any untrained range, verifies")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size (default 32)")
    p.add_argument("--learning-rate", type=float,
                   help="learning rate (default: the compiled optimizer's, else Adam at 1e-4)")
    p.add_argument("--samples", type=int, help="train on at most N labelled samples (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling, shuffling and training (default 0)")
    p.add_argument("--resize", default="stretch", help="stretch, crop or pad (image data; default stretch)")
    add_normalize_options(p)
    p.add_argument("--bgr", action="store_true", help="feed images as BGR instead of RGB")
    p.add_argument("--labels", help="class names, one per line: embedded, and matched with the data's class names")
    p.add_argument("--io", help="input/output type: int8 (default), uint8, or float around the integer body")
    p.add_argument("--weights", default="int8",
                   help="int8 (default): full-integer model; int4: train for int4 weights as convert --mode "
                   "int4-weights stores them (Conv2D/Dense per output channel; depthwise kernels stay float); "
                   "activations are not fake-quantized, they stay float (no --io); the learning rate decays to 0 over "
                   "the epochs (cosine)")
    p.add_argument("--min-agreement", type=float, help="fail (exit 1, file kept) if top-1 agreement is below this fraction")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    add_json_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render.qat import qat_table
    checks.keras_model(args.model)
    checks.labelled(args.train, "--train")
    if args.data is not None:
        checks.data(args.data)
    if args.labels is not None:
        checks.labels_file(args.labels)
    checks.preprocessing(args)
    checks.positive(args, "batch_size", "samples")  # --epochs: qat says why it needs at least 1
    checks.output(args.out, args.force)
    from edgeq._render import conversion_table
    from edgeq.converters.qat import qat

    failure = None
    with ui.progress():
        try:
            result = qat(
                args.model, args.train, args.out, epochs=args.epochs, data=args.data, batch_size=args.batch_size,
                learning_rate=args.learning_rate, samples=args.samples, seed=args.seed, resize=args.resize,
                normalize=args.normalize, bgr=args.bgr, labels=args.labels, io=args.io, force=args.force,
                min_agreement=args.min_agreement, weights=args.weights, force_normalize=args.force_normalize,
            )
        except CheckFailed as exc:
            failure, result = exc, exc.result  # type: ignore[attr-defined]
    ui.json(result.to_dict())
    if not ui.json_mode:
        ui.print(qat_table(result), conversion_table(result.conversion))
    for note in result.warnings:
        ui.warn(note)
    if failure is not None:
        raise failure
    return 0
