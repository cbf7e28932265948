"""``edgeq profile``: latency, memory and per-op cost of a model on this device."""

from __future__ import annotations

import argparse

from edgeq._commands._hosts import add_host_options, profile_on_hosts, wants_hosts
from edgeq._commands import _checks as checks
from edgeq._commands._options import add_json_options
from edgeq._render.ui import UI
from edgeq.errors import UsageError

#: where an installed user reads the report's fields (docs/ is not in the wheel)
SCHEMA_HELP = "fields documented at https://github.com/edgeq/edgeq/blob/main/docs/report-schema.md"

EXAMPLES = """examples:
  edgeq profile model_int8.tflite                      # 1 thread and the recommended count
  edgeq profile model_int8.tflite --threads 1,2,4 --runs 200
  edgeq profile model_int8.tflite --duration 30 --json-out pi5.json
  edgeq profile model_int8.tflite --ops --top 15       # per-op times, XNNPACK coverage
  edgeq profile model_int8.tflite --input photo.jpg --json   # report as JSON on stdout
  edgeq profile melspectrogram.tflite --input-shape 1,1280   # an input of dynamic size [-1, -1]
  edgeq compare pi4.json pi5.json --html cmp.html      # then compare devices
  edgeq profile model_int8.tflite --host pi@pi4.local --host pi@pi5.local:2222   # many boards over SSH
"""


def _threads(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected thread counts like 1,2,4; got {text!r}") from None
    return values


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1,16000; got {text!r}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="measure latency, memory and per-op cost of a model on this device",
        description="Measure a .tflite model on this device with the edgeq runtime (no TensorFlow): load and first "
        "inference, steady-state latency percentiles and FPS per thread count, memory in a fresh child process, "
        "the device fingerprint and its temperature/throttling, and optionally the time of each op. Nothing on "
        "the system is changed (the CPU governor is only read).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="a .tflite file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--runs", type=int, metavar="N",
                       help="timed runs per thread count (default: at least 10, then until 5 s or 1000 runs)")
    group.add_argument("--duration", type=float, metavar="S", help="time runs for S seconds per thread count instead")
    p.add_argument("--warmup", type=int, default=5, metavar="N", help="untimed runs after the first (default 5)")
    p.add_argument("--threads", type=_threads, metavar="1,2,4",
                   help="thread counts to measure (default: 1 and the device's recommended count)")
    p.add_argument("--input", metavar="FILE", help="an image or .npy array to feed (default: random values)")
    p.add_argument("--input-shape", type=_shape, action="append", metavar="1,16000",
                   help="shape of the random input, once per input; needed when an input has a dynamic size")
    p.add_argument("--ops", action="store_true", help="also time each op (one-op models, same backend and threads)")
    p.add_argument("--ops-rounds", type=int, default=20, metavar="N", help="timed rounds of the per-op profile (default 20)")
    p.add_argument("--top", type=int, default=10, metavar="K", help="slowest ops to list with --ops (default 10)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory measurement in a child process")
    p.add_argument("--backend", help="litert, tflite-runtime or tensorflow (default: the first installed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    add_json_options(p, "the report (versioned JSON that edgeq compare reads)")
    add_host_options(p, charts=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ui: UI) -> int:
    from edgeq._render.profile import profile_view
    from edgeq.runtime.profile import profile

    checks.tflite_model(args.model)
    if args.top < 1:
        raise UsageError(f"--top must be at least 1. Received: --top {args.top}")
    if args.runs is not None and args.runs < 1:
        raise UsageError(f"--runs must be at least 1. Received: --runs {args.runs}")
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be a positive number of seconds. Received: --duration {args.duration}")
    if args.threads is not None and (not args.threads or min(args.threads) < 1):
        raise UsageError(f"--threads takes positive counts like 1,2,4. Received: --threads {','.join(map(str, args.threads))}")
    if wants_hosts(args):
        return profile_on_hosts(args, ui)
    with ui.progress():
        report = profile(
            args.model, threads=args.threads, runs=args.runs, duration=args.duration, warmup=args.warmup,
            input=args.input, ops=args.ops, ops_rounds=args.ops_rounds, memory=not args.no_memory,
            backend=args.backend, seed=args.seed, input_shape=args.input_shape,
        )
    ui.json_text(report.to_json(), "report", f" (schema_version {report.schema_version}; {SCHEMA_HELP})")
    ui.print(profile_view(report, top=args.top))
    return 0
