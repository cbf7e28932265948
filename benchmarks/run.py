"""edgeq's performance table, measured side by side in one run.

    python benchmarks/run.py                 # the full run (~10 min on a 2-core x86 VM)
    python benchmarks/run.py --quick --out-dir /tmp/b   # a ~20 s smoke run (sample model, 2 modes)

Writes ``benchmarks/results/<date>-<host>.json`` and ``.md`` and prints the Markdown. Every comparison
is a ratio measured in this run (interleaved repeats, medians); see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import _backends
import _coldstart
import _footprint
import _report
import _runtime
import _speed
from _common import HERE, MODES, default_cache_dir, dist_version, host_info, load_average, log

SECTIONS = ("convert", "latency", "accuracy", "overhead", "image", "coldstart", "speed", "backends", "footprint")
QUICK_SKIPS = ("backends", "footprint")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke run: sample model, float32 + int8, tiny budgets, "
                   f"no {' / '.join(QUICK_SKIPS)}")
    p.add_argument("--models", help="comma-separated: sample, mnv2_224, mnv2_035_96 (default: all; --quick: sample)")
    p.add_argument("--modes", help=f"comma-separated (default: {','.join(MODES)}; --quick: float32,int8)")
    p.add_argument("--only", help=f"comma-separated sections to run: {', '.join(SECTIONS)}")
    p.add_argument("--skip", help="comma-separated sections to leave out")
    p.add_argument("--reuse-models", action="store_true",
                   help="use converted models cached by an earlier run (their conversion is then not timed)")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir(), help="default: %(default)s")
    p.add_argument("--out-dir", type=Path, default=HERE / "results", help="default: benchmarks/results")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every time budget (e.g. 2 for a quieter table)")
    return p.parse_args(argv)


def _sections(args: argparse.Namespace) -> list[str]:
    chosen = args.only.split(",") if args.only else [s for s in SECTIONS if not (args.quick and s in QUICK_SKIPS)]
    chosen = [s for s in chosen if s not in (args.skip.split(",") if args.skip else [])]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        sys.exit(f"unknown section(s) {', '.join(unknown)}; expected {', '.join(SECTIONS)}")
    return chosen


def _convert(plan: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Run the conversion child (it imports TensorFlow; this process never does)."""
    logs = cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgeq-bench-") as tmp:
        plan = {**plan, "work": tmp}
        plan_file, result_file = Path(tmp) / "plan.json", Path(tmp) / "result.json"
        plan_file.write_text(json.dumps(plan))
        log_file = logs / "convert.log"
        with open(log_file, "w") as sink:  # TensorFlow's chatter and the child's progress, live
            code = subprocess.run([sys.executable, str(HERE / "_convert.py"), str(plan_file), str(result_file)],
                                  stdout=sink, stderr=subprocess.STDOUT, timeout=3600,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}).returncode
        if code != 0 or not result_file.exists():
            tail = "\n".join(log_file.read_text().strip().splitlines()[-15:])
            raise SystemExit(f"the conversion child failed (exit {code}); log: {log_file}\n{tail}")
        return json.loads(result_file.read_text())


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    sections = _sections(args)
    models = args.models.split(",") if args.models else (["sample"] if args.quick else ["sample", "mnv2_224", "mnv2_035_96"])
    modes = args.modes.split(",") if args.modes else (["float32", "int8"] if args.quick else list(MODES))
    if "float32" not in modes:
        modes.insert(0, "float32")  # the baseline of every ratio
    from edgeq._version import __version__

    cache = args.cache_dir
    converted_dir = cache / "converted" / __version__
    scale = args.scale * (0.25 if args.quick else 1.0)
    command = shlex.join(["python", "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    results: dict[str, Any] = {
        "schema": "edgeq-bench/1", "date": date.today().isoformat(), "command": command,
        "host": host_info(), "settings": {"models": models, "modes": modes, "sections": sections, "quick": args.quick,
                                          "scale": args.scale, "reuse_models": args.reuse_models},
        "load_average": {"start": load_average()}, "notes": [],
    }
    log(f"sections: {', '.join(sections)}; models: {', '.join(models)}; modes: {', '.join(modes)}")

    if "convert" in sections:
        log("converting (a child process imports TensorFlow; this one never does)")
        tf_version = dist_version("tensorflow-cpu") or dist_version("tensorflow")
        plan = {"models": models, "modes": modes, "reuse": args.reuse_models, "keras_path": not args.quick,
                "rounds": 1 if args.quick else 3,  # timed rounds per model x mode (with an A/A pair when > 1)
                "models_dir": str(converted_dir),
                "sources_dir": str(cache / "sources" / f"tf{tf_version}-keras{dist_version('keras')}")}
        results["conversion"] = _convert(plan, cache)
    paths = {m: {mode: converted_dir / m / f"{mode}.tflite" for mode in modes
                 if (converted_dir / m / f"{mode}.tflite").exists()} for m in models}
    missing = [f"{m}/{mode}" for m in models for mode in modes if mode not in paths[m]]
    if missing:
        results["notes"].append(f"no converted model for {', '.join(missing)} (conversion failed or was not run)")
    models = [m for m in models if paths[m]]
    if not models:
        sys.exit(f"no converted models in {converted_dir}: run with the convert section first")

    if "latency" in sections:
        results["latency"] = {}
        for m in models:
            budget = {"sample": 2.0, "mnv2_035_96": 3.0, "mnv2_224": 8.0}[m] * scale
            results["latency"][m] = {}
            for threads in (1, 2):
                log(f"latency {m}, {threads} thread(s), {budget:.1f} s")
                block = 0.05 if m == "sample" else 0.1
                results["latency"][m][str(threads)] = _runtime.latency(paths[m], m, threads, budget, block)
        if "mnv2_224" in models and "int16x8" in paths["mnv2_224"]:
            runs = [results["latency"]["mnv2_224"][t]["modes"]["int16x8"]["runs"] for t in ("1", "2")]
            results["notes"].append(f"int16x8 on MobileNetV2 224 is timed on few runs ({runs[0]} at 1 thread, {runs[1]} at 2): "
                                    "rounds are capped by time and each of its runs takes hundreds of milliseconds")
    if "accuracy" in sections and "sample" in models:
        log("accuracy of the sample on 1000 labelled images")
        results["accuracy"] = _runtime.accuracy(paths["sample"])
    if "overhead" in sections:
        results["overhead"] = []
        for m in [m for m in ("sample", "mnv2_224") if m in models and "int8" in paths[m]]:
            for threads in (1, 2):
                log(f"runtime overhead {m}, {threads} thread(s)")
                budget = (2.0 if m == "sample" else 5.0) * scale
                results["overhead"].append(_runtime.overhead(paths[m]["int8"], m, threads, budget, 0.005))
    if "image" in sections:
        image_model = next((m for m in ("mnv2_224", "sample") if m in models and "int8" in paths[m]), None)
        if image_model:
            log(f"image path ({image_model} int8)")
            photo = _runtime.make_photo(cache / "photo-640x480.jpg")
            results["image_path"] = _runtime.image_path(paths[image_model]["int8"], image_model, photo, 4.0 * scale, 0.03)
    if "coldstart" in sections:
        rounds = 1 if args.quick else 5
        log(f"cold start, {rounds} round(s)")
        results["cold_start"] = _coldstart.cold_start(rounds, include_tensorflow=not args.quick)
    if "speed" in sections:
        int8 = {m: paths[m]["int8"] for m in ("sample", "mnv2_224") if m in models and "int8" in paths[m]}
        rounds = 3 if args.quick else 9
        log(f"speed rows of issue #18 ({', '.join(int8)} + the 64x64 CNN), {rounds} cold-start rounds")
        results["speed"] = _speed.speed(int8, converted_dir / "sample" / "int8.tflite" if "sample" in int8
                                        else HERE.parent / "samples" / "fashion_mnist" / "model_int8.tflite",
                                        rounds, 4.0 * scale)
    if "backends" in sections:
        int8 = {m: paths[m]["int8"] for m in ("sample", "mnv2_224") if m in models and "int8" in paths[m]}
        if int8:
            log("backends (LiteRT, tflite-runtime 2.14 side venv, TensorFlow Lite)")
            results["backends"] = _backends.backends(int8, cache, rounds=3, budget_s=0.75 * scale)
    if "footprint" in sections:
        log("install footprint (wheel + 2 venvs)")
        results["footprint"] = _footprint.footprint(cache)

    results["load_average"]["end"] = load_average()
    results["peak_rss_mib"] = {"measuring process": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                               "largest child": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    results["duration_s"] = time.perf_counter() - started
    results["cache_note"] = _cache_note(results, cache)
    results["targets"] = _report.targets(results)
    text = _report.markdown(results)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{results['date']}-{results['host']['host']}" + ("-quick" if args.quick else "")
    from edgeq._io import atomic_write

    atomic_write(args.out_dir / f"{stem}.json", (json.dumps(results, indent=1, default=str) + "\n").encode(), force=True)
    atomic_write(args.out_dir / f"{stem}.md", (text + "\n").encode(), force=True)
    print(text)
    log(f"wrote {args.out_dir / stem}.json and .md in {results['duration_s'] / 60:.1f} min")
    return 0


def _cache_note(results: dict[str, Any], cache: Path) -> str:
    """What this run took from the cache folder instead of making it."""
    conv = results.get("conversion")
    if not conv:
        parts = ["conversion not run: converted models taken from the cache"]
    else:
        cached = [f"{p['model']}/{p['mode']}" for p in conv["pairs"] if p.get("cached")]
        sources = [name for name, info in conv["models"].items() if not info["source_built"]]
        parts = [f"converted models {'from the cache (not timed): ' + ', '.join(cached) if cached else 'made in this run'}",
                 f"source models (.keras, SavedModel, data) {'from the cache: ' + ', '.join(sources) if sources else 'built in this run'}"]
    venvs = {"edgeq venv": results.get("footprint", {}).get("edgeq", {}),
             "edgeq[convert] venv": results.get("footprint", {}).get("edgeq[convert]", {}),
             "tflite-runtime venv": (results.get("backends", {}).get("side_venv") or {})}
    made = [name for name, v in venvs.items() if v and "cached" in v]
    if made:
        parts.append(", ".join(f"{name} {'from the cache' if venvs[name]['cached'] else 'made in this run'}" for name in made))
    return "; ".join(parts) + f" (`{cache}`)."


if __name__ == "__main__":
    sys.exit(main())
