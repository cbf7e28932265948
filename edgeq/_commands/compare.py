"""``edgeq compare``: profile reports side by side, as a table, a PNG and an HTML page."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone

from edgeq._commands._options import add_json_options
from edgeq._render.ui import UI
from edgeq.errors import UsageError

EXAMPLES = """examples:
  edgeq profile model_int8.tflite --json-out pi5.json      # on each device first
  edgeq compare pi4.json pi5.json
  edgeq compare fp32.json int8.json --baseline 2 --threads 1
  edgeq compare *.json --html compare.html --png compare.png
  edgeq compare pi4.json pi5.json --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare profile reports (devices × models × modes × threads)",
        description="Put reports written by 'edgeq profile --json-out FILE' side by side: p50/p99 latency, FPS, memory "
        "and size of each report and thread count, with the ratio to a baseline column; optionally draw them as a "
        "PNG and a self-contained HTML page.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("reports", nargs="+", metavar="REPORT.json", help="report files written by edgeq profile --json-out")
    p.add_argument("--baseline", type=int, default=1, metavar="N",
                   help="the row the ratios are taken against, counted from 1 in table order (default 1)")
    p.add_argument("--threads", type=int, action="append", metavar="N",
                   help="keep only this thread count (repeatable; default all)")
    p.add_argument("--html", metavar="OUT.html", help="also write a self-contained HTML page")
    p.add_argument("--png", metavar="OUT.png", help="also write a PNG chart")
    p.add_argument("--force", action="store_true", help="overwrite --html/--png outputs that exist")
    add_json_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render.compare import render_html, render_png, titles
    from edgeq._io import all_or_nothing, atomic_write, check_output_path, same_file
    from edgeq._render.profile import compare_table
    from edgeq.runtime.report import compare

    if args.baseline < 1:
        raise UsageError(f"--baseline counts rows from 1. Received: --baseline {args.baseline}")
    if args.threads and min(args.threads) < 1:
        raise UsageError(f"--threads must be positive. Received: --threads {min(args.threads)}")
    if args.html and args.png and same_file(args.html, args.png):
        raise UsageError(f"--html and --png name the same file ({args.html}); give two different paths")
    outputs = [(kind, check_output_path(path, args.force, inputs=args.reports))
               for kind, path in (("html", args.html), ("png", args.png)) if path]
    result = compare(args.reports, baseline=args.baseline - 1, threads=args.threads)
    pictures = []
    for kind, out in outputs:  # render everything first: a failure leaves no file
        if kind == "png":
            pictures.append((kind, out, render_png(result)))
        else:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            pictures.append((kind, out, render_html(result, title=titles(result.entries), generated=stamp).encode()))
    with all_or_nothing() as written:
        for kind, out, data in pictures:
            written.append(atomic_write(out, data, force=args.force))
    for kind, out, _ in pictures:
        ui.status(f"{kind.upper()} written to {out}")
    ui.json(result)
    if ui.json_mode:
        return 0
    ui.print(compare_table(result))
    for note in result.notes:
        ui.warn(note)
    return 0
