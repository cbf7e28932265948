"""``edgeq inspect``: what is inside a .tflite file, without running it."""

from __future__ import annotations

import argparse
from typing import Any

from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options
from edgeq._render.ui import UI

EXAMPLES = """examples:
  edgeq inspect model_int8.tflite
  edgeq inspect model_int8.tflite --json
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="show a .tflite model's tensors, ops, size and edgeq metadata",
        description="Read a .tflite file (no interpreter, no TensorFlow) and show its inputs/outputs with their "
        "quantization, op counts, size and the embedded edgeq metadata.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a .tflite file")
    add_json_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render import counts_table, human_bytes, key_value_table, tensors_table
    from edgeq.runtime import inspect_model

    checks.tflite_model(args.model)
    info = inspect_model(args.model)
    ui.json(info)
    if ui.json_mode:
        return 0
    meta = info["edgeq"]
    rows = [("model", info["model"]), ("size", human_bytes(info["size_bytes"])), ("sha256", info["sha256"][:16] + "…"),
            ("signatures", ", ".join(info["signatures"]) or "—")]
    if meta:
        q = meta["quant"]
        rows += [("mode", q["mode"]), ("input / output", f"{q['input_type']} / {q['output_type']}"),
                 ("source", f"{meta['source'].get('name')} ({meta['source'].get('format')})"),
                 ("labels", f"{len(meta['labels'])} ({', '.join(meta['labels'][:4])}{'…' if len(meta['labels']) > 4 else ''})"),
                 ("preprocess", _pp_text(meta["preprocess"])), ("edgeq version", meta["edgeq_version"])]
        if q.get("calibration"):
            rows.append(("calibration", f"{q['calibration'].get('samples', '?')} samples ({q['calibration'].get('method', '?')})"))
        if meta.get("verification"):
            v = meta["verification"]
            agree = "—" if v.get("agreement") is None else f"{v['agreement'] * 100:.1f} %"
            rows.append(("verified", f"agreement {agree}, SQNR {v.get('sqnr_db') or float('inf'):.1f} dB"))
    else:
        rows.append(("edgeq metadata", "none (not made by edgeq; the runtime uses default preprocessing)"))
    ui.print(key_value_table("Model", rows))
    for i, sg in enumerate(info["subgraphs"]):
        suffix = f" (subgraph {i}: {sg['name']})" if len(info["subgraphs"]) > 1 else ""
        ui.print(tensors_table("Inputs" + suffix, sg["inputs"]), tensors_table("Outputs" + suffix, sg["outputs"]))
    ui.print(counts_table("Operators", info["op_counts"]))
    return 0


def _pp_text(pp: dict[str, Any] | None) -> str:
    if not pp:
        return "—"
    size = "x".join(map(str, pp["size"])) if pp.get("size") else "any"
    return f"{size} {pp['resize']} {pp['color']}, (p*{pp['scale']:.4g} - {pp['mean']}) / {pp['std']}"
