"""``edgeq demo``: convert, verify, evaluate and time the bundled sample."""

from __future__ import annotations

import argparse

from edgeq._commands._options import add_json_options
from edgeq._render.ui import UI

EXAMPLES = """examples:
  edgeq demo
  edgeq demo --json
  edgeq demo --no-convert      # what a Raspberry Pi without TensorFlow does
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="convert, verify, evaluate and time the bundled Fashion-MNIST sample",
        description="The bundled sample end to end. With TensorFlow: Keras → int8, verification, float vs int8 "
        "accuracy on 1000 labelled images, runtime latency. Without: the committed int8 model through the runtime.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--no-convert", action="store_true", help="skip conversion even when TensorFlow is installed")
    p.add_argument("--threads", type=int, help="interpreter threads (default: the device's recommendation)")
    add_json_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from rich.text import Text

    from edgeq._render import demo_table
    from edgeq.demo import next_commands, run_demo

    with ui.progress():
        result = run_demo(threads=args.threads, convert=False if args.no_convert else None)
    ui.json(result.to_dict())
    if not ui.json_mode:
        ui.print(demo_table(result))
        lines = Text.assemble(("The sample: ", "bold"), result.sample, " (model.keras, calib/, eval/, labels.txt)\n",
                              ("Next, try:", "bold"))
        lines.append("".join(f"\n  {c}" for c in next_commands(result.sample)))
        ui.print(lines, soft_wrap=True)  # commands stay whole lines, to paste
    for note in result.notes:
        ui.warn(note)
    return 0
