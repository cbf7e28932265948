"""The benchmark's verdicts (targets met / not met) and its Markdown report, from the results JSON."""

from __future__ import annotations

from typing import Any

from _common import MODES
from _models import MODELS

#: the issue's targets
CONVERT_OVERHEAD_MAX = 0.10
PREDICT_RATIO_MAX = 1.02  # MobileNetV2
PREDICT_EXTRA_US_MAX = 20.0  # the sample
IMAGE_RATIO_MAX = 1.00
#: a mode is "slower than float32" when its p50 exceeds float32's by more than this at every thread count
SLOWER = 1.05


def _f(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:{spec}}{suffix}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:+.1f} %"


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("**met**" if met else "**not met**")


def _pairs(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(p["model"], p["mode"]): p for p in results.get("conversion", {}).get("pairs", [])}


def slower_than_float(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Model/mode pairs whose p50 exceeds float32's by more than :data:`SLOWER` at every thread count."""
    out = []
    for model, per_threads in results.get("latency", {}).items():
        modes = {mode for lat in per_threads.values() for mode in lat["modes"]}
        for mode in sorted(modes, key=lambda m: MODES.index(m) if m in MODES else 99):
            ratios = [lat["modes"][mode]["ratio_to_float32"] for lat in per_threads.values() if mode in lat["modes"]]
            if mode != "float32" and ratios and all(r is not None and r > SLOWER for r in ratios):
                notes = _pairs(results).get((model, mode), {}).get("edgeq", {}).get("warnings", [])
                warned = any("slow" in note.lower() for note in notes)  # e.g. int16x8's "~50x slower than int8"
                out.append({"model": model, "mode": mode, "ratios": ratios, "convert_warns": warned})
    return out


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue with what was measured and whether it is met (``None``: informational)."""
    rows: list[dict[str, Any]] = []
    pairs = _pairs(results)
    timed = [p for p in pairs.values() if p.get("overhead") is not None]
    if timed:
        worst = max(timed, key=lambda p: p["overhead"])
        over = sorted(p["overhead"] for p in timed)
        rows.append({
            "id": "convert-overhead", "what": "edgeq.convert over the bare converter call, verification excluded",
            "target": f"≤ +{CONVERT_OVERHEAD_MAX:.0%}",
            "measured": f"median {_pct(over[len(over) // 2])}, worst {_pct(worst['overhead'])} "
                        f"({worst['model']} {worst['mode']}); {sum(o <= CONVERT_OVERHEAD_MAX for o in over)}/{len(over)} within"
                        + _aa_floor(timed),
            "met": all(o <= CONVERT_OVERHEAD_MAX for o in over),
        })
    cpu = sorted((p["cpu_overhead"], p) for p in timed if p.get("cpu_overhead") is not None)
    if cpu:
        worst_cpu = cpu[-1][1]
        rows.append({
            "id": "convert-overhead-cpu", "what": "the same in CPU time (all threads; a busy machine disturbs it less)",
            "target": f"≤ +{CONVERT_OVERHEAD_MAX:.0%}",
            "measured": f"median {_pct(cpu[(len(cpu) - 1) // 2][0])}, worst {_pct(cpu[-1][0])} ({worst_cpu['model']} "
                        f"{worst_cpu['mode']}); {sum(o <= CONVERT_OVERHEAD_MAX for o, _ in cpu)}/{len(cpu)} within"
                        + _aa_floor(timed, "cpu_aa"),
            "met": all(o <= CONVERT_OVERHEAD_MAX for o, _ in cpu),
        })
    for p in (pairs.get(("mnv2_224", "int8")),):
        if p and p.get("edgeq") and p.get("bare"):
            fp32 = pairs.get(("mnv2_224", "float32"), {})
            if fp32.get("edgeq") and fp32.get("bare"):
                ours = p["edgeq"]["bytes"] / fp32["edgeq"]["bytes"]
                bare = p["bare"]["bytes"] / fp32["bare"]["bytes"]
                rows.append({"id": "int8-size", "what": "MobileNetV2 224 int8 size / float32 (floor 0.25)",
                             "target": "≈ the converter's (~0.28)", "measured": f"{ours:.3f} (bare converter {bare:.3f})",
                             "met": ours <= bare + 0.01})
    for o in results.get("overhead", []):
        if o["model"] == "sample":
            rows.append({"id": f"predict-overhead-sample-{o['threads']}t",
                         "what": f"Model.predict − bare loop, sample int8, {o['threads']} thread(s)",
                         "target": f"≤ +{PREDICT_EXTRA_US_MAX:.0f} µs",
                         "measured": f"{o['predict_extra_us']:+.1f} µs (raw=True: {o['predict_raw_extra_us']:+.1f} µs; "
                                     f"bare {o['us']['bare']:.1f} µs)",
                         "met": o["predict_extra_us"] <= PREDICT_EXTRA_US_MAX})
        else:
            rows.append({"id": f"predict-overhead-{o['model']}-{o['threads']}t",
                         "what": f"Model.predict / bare loop, {o['model']} int8, {o['threads']} thread(s)",
                         "target": f"≤ {PREDICT_RATIO_MAX:.2f}",
                         "measured": f"{o['predict_over_bare']:.3f} (raw=True: {o['predict_raw_over_bare']:.3f}; "
                                     f"bare {o['us']['bare'] / 1e3:.2f} ms; A/A noise floor {o['a_a_ratio']:.3f})",
                         "met": o["predict_over_bare"] <= PREDICT_RATIO_MAX})
    img = results.get("image_path")
    if img:
        rows.append({"id": "image-path", "what": f"Model.prepare({img['image']}) → {img['tensor']} / Pillow+numpy baseline",
                     "target": "not slower (≤ 1.00)",
                     "measured": f"{img['edgeq_over_baseline']:.3f} ({img['ms']['edgeq']:.2f} vs {img['ms']['baseline']:.2f} ms; "
                                 f"identical tensors: {'yes' if img['identical'] else 'NO'})",
                     "met": img["edgeq_over_baseline"] <= IMAGE_RATIO_MAX and img["identical"]})
    cold = results.get("cold_start")
    if cold and cold.get("tensorflow_over_edgeq_runtime"):
        s = cold["seconds"]
        rows.append({"id": "cold-start", "what": "import tensorflow / import edgeq.runtime (and / edgeq run end to end)",
                     "target": "ratio (informational)",
                     "measured": f"{cold['tensorflow_over_edgeq_runtime']:.1f}x ({s['import tensorflow']:.2f} s vs "
                                 f"{s['import edgeq.runtime']:.3f} s); {cold['tensorflow_over_edgeq_run']:.1f}x vs "
                                 f"edgeq run {s['edgeq run (sample, 1 image)']:.3f} s", "met": None})
    slow = slower_than_float(results)
    if slow:
        models = set(results.get("latency", {}))
        by_mode: dict[str, list[dict[str, Any]]] = {}
        for s in slow:
            by_mode.setdefault(s["mode"], []).append(s)
        # slower on every model measured: a property of the mode on this CPU, which convert should warn about;
        # slower on some models only (e.g. int8 on a tiny CNN): the table flags it
        everywhere = {mode: rows_ for mode, rows_ in by_mode.items()
                      if len(models) > 1 and {r["model"] for r in rows_} == models}
        def ratios(s: dict[str, Any]) -> str:
            return "/".join(f"{r:.2f}x" for r in s["ratios"])

        measured = "; ".join(
            f"{mode} ({', '.join(s['model'] + ' ' + ratios(s) for s in rows_)}): "
            f"{'warns' if all(s['convert_warns'] for s in rows_) else 'no warning'}"
            for mode, rows_ in everywhere.items()
        )
        rows.append({"id": "slow-modes-warn",
                     "what": f"modes slower than float32 (> ×{SLOWER:.2f} at 1 and 2 threads) on every model: the table "
                             "flags them and `edgeq convert` warns",
                     "target": "flagged + convert warns", "measured": measured or "none",
                     "met": all(s["convert_warns"] for rows_ in everywhere.values() for s in rows_)})
        partial = [s for s in slow if s["mode"] not in everywhere]
        if partial:
            rows.append({"id": "slow-on-some-models", "what": "slower than float32 on some models only (flagged in the table)",
                         "target": "informational", "met": None,
                         "measured": "; ".join(f"{s['model']} {s['mode']} ({ratios(s)})" for s in partial)})
    fp = results.get("footprint")
    if fp and fp.get("convert_over_base"):
        rows.append({"id": "footprint", "what": "site-packages of edgeq[convert] / edgeq", "target": "ratio (informational)",
                     "measured": f"{fp['convert_over_base']:.1f}x ({fp['edgeq[convert]']['site_packages_mib']:.0f} vs "
                                 f"{fp['edgeq']['site_packages_mib']:.0f} MiB)", "met": None})
    if results.get("speed"):
        import _speed

        rows += _speed.targets(results["speed"])
    return rows


def _aa_floor(pairs: list[dict[str, Any]], key: str = "aa") -> str:
    """The largest A/A difference of the conversion pairs (two identical bare calls), when measured."""
    aa = [abs(p[key]) for p in pairs if p.get(key) is not None]
    return f"; A/A noise up to {max(aa) * 100:.1f} % ({len(pairs[0].get('rounds', []))} rounds, medians)" if aa else ""


def _model_table(results: dict[str, Any], model: str) -> list[str]:
    pairs = _pairs(results)
    latency = results.get("latency", {}).get(model, {})
    acc = results.get("accuracy", {}) if model == "sample" else {}
    threads = sorted(latency, key=int)
    head = ["mode", "size", "× fp32", "convert s (edgeq − verify)", "bare s", "overhead"]
    for t in threads:
        head += [f"p50 / p90 ms, {t}T", f"× fp32 {t}T"]
    if acc:
        head.append("top-1 (1000 images)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fp32 = pairs.get((model, "float32"), {})
    fp32_bytes = fp32.get("edgeq", {}).get("bytes") or fp32.get("bytes")
    modes = [m for m in MODES if (model, m) in pairs or any(m in latency[t]["modes"] for t in threads)]
    for mode in modes:
        p = pairs.get((model, mode), {})
        size = p.get("edgeq", {}).get("bytes") or p.get("bytes")
        row = [f"`{mode}`", _f(size / 1024 if size else None, ".1f", " KB"),
               _f(size / fp32_bytes if size and fp32_bytes else None, ".3f")]
        if p.get("cached"):
            row += ["cached", "—", "—"]
        elif p.get("edgeq_error") or p.get("bare_error"):
            row += [f"failed: {p.get('edgeq_error') or p.get('bare_error')}", "—", "—"]
        else:
            aa = f" (A/A {_pct(p['aa'])})" if p.get("aa") is not None else ""
            if p.get("cpu_overhead") is not None:
                aa += f"; CPU {_pct(p['cpu_overhead'])}"
                aa += f" (A/A {_pct(p['cpu_aa'])})" if p.get("cpu_aa") is not None else ""
            row += [_f(p.get("edgeq", {}).get("without_verify_s")), _f(p.get("bare", {}).get("seconds")),
                    _pct(p.get("overhead")) + aa]
        for t in threads:
            m = latency[t]["modes"].get(mode)
            if m is None:
                row += ["—", "—"]
                continue
            r = m["ratio_to_float32"]
            row += [f"{m['p50_ms']:.3f} / {m['p90_ms']:.3f} ({m['runs']} runs)",
                    _f(r, ".2f", "×") + (" **slower**" if r is not None and r > SLOWER and mode != "float32" else "")]
        if acc:
            a = acc.get(mode)
            row.append(_f(a["accuracy"] * 100 if a else None, ".1f", " %"))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown document: verdicts first, then one section per measurement."""
    h = results["host"]
    d = h.get("device", {})
    conv = results.get("conversion", {})
    out = [
        f"# edgeq benchmark — {results['date']} on `{h['host']}`",
        "",
        f"Command: `{results['command']}` ({results['duration_s'] / 60:.1f} min).  ",
        f"Machine: {d.get('cpu_part')}, {d.get('cores')} cores, {d.get('memory_mb')} MB, {d.get('os', {}).get('name')}; "
        f"Python {h['python']}, edgeq {h['edgeq']}, LiteRT {h['packages'].get('ai-edge-litert')}, numpy "
        f"{h['packages'].get('numpy')}, Pillow {h['packages'].get('pillow')}, TensorFlow "
        f"{conv.get('tensorflow') or h['packages'].get('tensorflow-cpu') or h['packages'].get('tensorflow')}, "
        f"Keras {conv.get('keras') or h['packages'].get('keras')}.  ",
        f"Load average (1/5/15 min) at start {results['load_average']['start']}, at end {results['load_average']['end']} "
        "(2 cores: anything above ~0.3 at the start means someone else was using the machine).  ",
        f"Cache: {results['cache_note']}",
        "",
        "## Targets",
        "",
        "| target | what | measured | verdict |",
        "|---|---|---|---|",
    ]
    for t in results.get("targets", []):
        out.append(f"| {t['target']} | {t['what']} | {t['measured']} | {_verdict(t['met'])} |")
    out += ["", "## Models × modes", "",
            "Size: the `.tflite` edgeq wrote (metadata included). Convert: `edgeq.convert` wall time minus its "
            "verification, and the bare `TFLiteConverter.from_saved_model(...).convert()` with the same settings and "
            "data, run back to back" + (f" in {conv['rounds']} rounds with the bare call repeated (A/A), medians"
                                        if conv.get("rounds", 1) > 1 else "") + ". Latency: `Model.predict` on a ready input tensor (outputs dequantized), modes "
            "interleaved, at 1 and 2 threads (T); `× fp32` is the p50 ratio to float32 at the same thread count, "
            f"flagged **slower** above ×{SLOWER:.2f} (below that it is within this machine's noise).", ""]
    for model in results.get("settings", {}).get("models", []):
        info = conv.get("models", {}).get(model, {})
        out += [f"### {MODELS[model].title}", "",
                f"Source `.keras` {info.get('keras_bytes', 0) / 1024:.1f} KB; {info.get('calibration_samples', '—')} "
                "calibration samples" + (" (the bundled calib/ PNGs)" if model == "sample" else " (seeded uniform [-1, 1])")
                + ".", ""]
        out += _model_table(results, model)
        if model == "sample" and conv.get("sample_keras"):
            k = conv["sample_keras"]
            out += ["", f"Float Keras model on the same images: {k['accuracy'] * 100:.1f} % top-1 "
                        f"({k['bytes'] / 1024:.1f} KB `.keras`)."]
        out.append("")
    kp = conv.get("keras_path") or []
    if kp:
        out += ["### Converting from `.keras` (int8)", "",
                "Bare: `keras.models.load_model` + `model.export` + the same converter call. edgeq: `edgeq.convert(model.keras, ...)`.",
                "", "| model | edgeq − verify s | (load / convert s) | bare s | overhead |", "|---|---|---|---|---|"]
        for p in kp:
            e = p.get("edgeq", {})
            sec = e.get("seconds", {})
            out.append(f"| {p['model']} | {_f(e.get('without_verify_s'))} | {_f(sec.get('load'))} / {_f(sec.get('convert'))} | "
                       f"{_f(p.get('bare', {}).get('seconds'))} | {_pct(p.get('overhead'))}"
                       + (f"; CPU {_pct(p['cpu_overhead'])}" if p.get("cpu_overhead") is not None else "") + " |")
        out.append("")
    if results.get("overhead"):
        out += ["## Runtime overhead", "",
                "Same interpreter, same ready int8 tensor; short blocks of calls interleaved. Times: medians of per-call "
                "means; ratio and extra: medians of the per-round paired ratio/difference (drift cancels).", "",
                "| model | threads | rounds | bare loop µs | predict µs | predict raw=True µs | predict / bare | "
                "raw / bare | extra µs (raw) | A/A: bare / bare |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for o in results["overhead"]:
            u = o["us"]
            out.append(f"| {o['model']} | {o['threads']} | {o['rounds']} | {u['bare']:.1f} | {u['predict']:.1f} | "
                       f"{u['predict_raw']:.1f} | {o['predict_over_bare']:.3f} | {o['predict_raw_over_bare']:.3f} | "
                       f"{o['predict_extra_us']:+.1f} ({o['predict_raw_extra_us']:+.1f}) | {o['a_a_ratio']:.3f} |")
        out += ["", "A/A times the bare loop against itself: its distance from 1.000 is what this run can resolve."]
        out.append("")
    img = results.get("image_path")
    if img:
        out += ["## Image path", "",
                f"`Model.prepare(photo.jpg)` ({img['image']} → {img['tensor']}, {img['model']} int8: decode, convert, "
                "resize, lookup-table quantization) against a hand-written Pillow + numpy pipeline (decode, convert, "
                f"resize bilinear, float normalise, quantize). Same tensor: {'yes' if img['identical'] else 'NO'}.", "",
                "| edgeq ms | baseline ms | edgeq / baseline |", "|---|---|---|",
                f"| {img['ms']['edgeq']:.3f} | {img['ms']['baseline']:.3f} | {img['edgeq_over_baseline']:.3f} |", ""]
    cold = results.get("cold_start")
    if cold:
        out += ["## Cold start", "", f"Fresh processes, interleaved, median of {cold['rounds']} rounds.", "",
                "| command | seconds |", "|---|---|"]
        out += [f"| `{name}` | {_f(value, '.3f')} |" for name, value in cold["seconds"].items()]
        out += [f"| `{name}` | {err['failed_rounds']} of {cold['rounds']} rounds failed (left out): {err['error']} |"
                for name, err in cold.get("errors", {}).items()]
        out.append("")
    be = results.get("backends")
    if be:
        out += ["## Backends", "",
                f"Bare interpreter loop in fresh processes, backends taking turns, medians of {be['rounds']} rounds. "
                "Same seeded int8 input; `output` compares the raw outputs' digests with LiteRT's. Peak RSS: the whole "
                "child (backend import + every model at every thread count).", ""]
        labels = list(next((b["models"] for b in be["backends"].values() if b.get("models")), {}))
        head = ["backend", "numpy", "import s", "peak RSS MiB"] + [f"{label} p50 ms {t}T" for label in labels
                                                                   for t in be["threads"].split(",")]
        out += ["| " + " | ".join(head) + " | output |", "|" + "---|" * (len(head) + 1)]
        ref = be["backends"].get("litert", {}).get("models", {})
        for name, b in be["backends"].items():
            if b.get("error") and not b.get("models"):
                out.append(f"| {name} | — | — | — | " + " | ".join("—" for _ in head[4:]) + f" | not usable: {b['error']} |")
                continue
            cells, same = [], []
            for label in labels:
                for t in be["threads"].split(","):
                    cell = b["models"].get(label, {}).get(t, {})
                    cells.append(_f(cell.get("p50_ms"), ".3f") if "error" not in cell else f"fails: {cell['error']}")
                    if "output_sha256" in cell:
                        same.append(cell["output_sha256"] == ref.get(label, {}).get(t, {}).get("output_sha256"))
            verdict = "identical" if same and all(same) else ("differs" if same else "—")
            out.append(f"| {name} | {b.get('numpy', '—')} | {_f(b.get('import_s'), '.2f')} | {_f(b.get('peak_rss_mib'), '.0f')} | "
                       + " | ".join(cells) + f" | {verdict} |")
        out.append("")
    fp = results.get("footprint")
    if fp:
        out += ["## Install footprint", "", f"Wheel `{fp['wheel']}` ({fp['wheel_kib']:.0f} KiB) built from this tree, "
                "installed into fresh venvs.", "", "| install | venv MiB | site-packages MiB | largest packages (MiB) |",
                "|---|---|---|---|"]
        for key in ("edgeq", "edgeq[convert]"):
            v = fp.get(key, {})
            if "error" in v:
                out.append(f"| `pip install {key}` | failed: {v['error']} | | |")
                continue
            largest = ", ".join(f"{x['package']} {x['mib']:.0f}" for x in v["largest"])
            out.append(f"| `pip install {key}`{' (cached venv)' if v['cached'] else ''} | {v['venv_mib']:.0f} | "
                       f"{v['site_packages_mib']:.0f} | {largest} |")
        out.append("")
    if results.get("speed"):
        import _speed

        out += _speed.markdown(results["speed"])
    if results.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(out)
