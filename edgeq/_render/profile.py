"""Pure functions that turn profile reports and comparisons into ``rich`` renderables (the CLI prints them)."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from edgeq._render.common import fmt, human_bytes
from edgeq._render.text import safe_markup, safe_str, safe_text
from edgeq.runtime.report import COMPARE_METRICS, CompareResult, OpProfile, ProfileReport, device_label


def _ms(v: float | None) -> str:
    if v is None:
        return "—"
    if v < 0.01:
        return f"{v:.4f}"
    return f"{v:.3f}" if v < 10 else f"{v:.2f}" if v < 100 else f"{v:.1f}"


def _temp(before: float | None, after: float | None) -> str:
    if before is None and after is None:
        return "—"
    return f"{fmt(before, 3)} → {fmt(after, 3)} °C"


def short_op_name(name: str, width: int = 40) -> str:
    """A readable layer name from a tensor name: the first of fused names (``a;b``), its last two path parts."""
    first = name.split(";")[0]
    short = "/".join(first.split("/")[-2:])
    return short if len(short) <= width else "…" + short[-(width - 1):]


def header_table(report: ProfileReport) -> Table:
    """Model, device, backend and input of a report."""
    m, d = report.model, report.device
    os_info = d.get("os") or {}
    features = d.get("features") or []
    table = Table(title="edgeq profile", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("model", f"{m.name} ({human_bytes(m.size_bytes)}, {m.mode} [{m.mode_source}], sha256 {m.sha256[:12]}…)"),
        ("device", device_label(d) + (f" — {d['soc']}" if d.get("soc") else "")),
        ("cpu", f"{d.get('cpu_part') or '?'}, {d.get('cores') or '?'} cores, {d.get('arch') or '?'}"
                + (f", features {' '.join(features[:8])}{' …' if len(features) > 8 else ''}" if features else "")),
        ("os / python", f"{os_info.get('name') or '?'} / Python {d.get('python') or '?'}"),
        ("backend", f"{report.backend.get('name')} {report.backend.get('version')}"),
        ("input", f"{report.settings.get('input')}, warm-up {report.settings.get('warmup')}"),
    ]
    lb, la = report.live_before or {}, report.live_after or {}
    if lb.get("freq_cur_mhz") or lb.get("governor"):
        rows.append(("cpu clock", f"{fmt(lb.get('freq_cur_mhz'))}/{fmt(lb.get('freq_max_mhz'))} MHz, "
                                  f"governor {lb.get('governor') or '?'}"))
    rows.append(("temperature", _temp(lb.get("temperature_c"), la.get("temperature_c"))))
    if lb.get("throttled") is not None or la.get("throttled") is not None:
        rows.append(("throttled", f"{(lb.get('throttled') or {}).get('raw', '?')} → {(la.get('throttled') or {}).get('raw', '?')}"))
    for key, value in rows:
        table.add_row(key, safe_text(value))
    return table


def latency_table(report: ProfileReport) -> Table:
    """One row per thread count: steady-state statistics and FPS."""
    table = Table(title="Steady-state latency (ms)", title_justify="left")
    for col in ("thr", "runs", "mean", "std", "min", "p50", "p90", "p99", "max", "FPS"):
        table.add_column(col, justify="right")
    for r in report.results:
        lat = r.latency
        table.add_row(str(r.threads), str(lat.runs), _ms(lat.mean_ms), _ms(lat.std_ms), _ms(lat.min_ms),
                      Text(_ms(lat.p50_ms), style="bold"), _ms(lat.p90_ms), _ms(lat.p99_ms), _ms(lat.max_ms),
                      Text(f"{lat.fps:.1f}", style="bold"))
    return table


def startup_table(report: ProfileReport) -> Table:
    """One row per thread count: load and first inference, memory, temperature."""
    table = Table(title="Start-up and memory", title_justify="left")
    for col in ("threads", "load ms", "first ms", "RSS +load", "RSS +peak", "peak RSS", "CPU temp"):
        table.add_column(col, justify="right")
    for r in report.results:
        mem = r.memory
        table.add_row(
            str(r.threads), _ms(r.load_ms), _ms(r.first_ms),
            human_bytes(mem.load_rss_delta_bytes) if mem else "—", human_bytes(mem.peak_rss_delta_bytes) if mem else "—",
            human_bytes(mem.peak_rss_bytes) if mem else "—", _temp(r.temperature_before_c, r.temperature_after_c),
        )
    table.caption = ("load (warm) = read + parse + interpreter and delegate init + allocate; RSS measured in a fresh "
                     "child process: +load after loading, +peak while running, over its baseline")
    return table


def ops_tables(ops: OpProfile, threads: int, top: int = 10) -> Group:
    """The slowest ops, time per op type, and the ops no delegate took."""
    top_table = Table(title=f"Slowest ops ({threads} thread(s))", title_justify="left")
    for col, just in (("#", "right"), ("op", "left"), ("dtype", "left"), ("output", "left"), ("ms", "right"),
                      ("share", "right"), ("XNNPACK", "center")):
        top_table.add_column(col, justify=just)
    total = ops.sum_ms or 1.0
    for o in ops.top(top):
        deleg = "?" if o.delegated is None else ("yes" if o.delegated else Text("no", style="red"))
        top_table.add_row(str(o.index), safe_text(o.op), safe_text(o.dtype), safe_text(short_op_name(o.output)), _ms(o.ms),
                          f"{o.ms / total * 100:.1f} %", deleg)
    type_table = Table(title="Time per op type", title_justify="left")
    for col in ("op", "count", "ms", "share"):
        type_table.add_column(col, justify="left" if col == "op" else "right")
    for row in ops.by_type():
        type_table.add_row(safe_text(row["op"]), str(row["count"]), _ms(row["ms"]), f"{row['share'] * 100:.1f} %")
    nd = ops.not_delegated()
    nd_text = ", ".join(f"{safe_str(k)}×{v}" for k, v in nd.items()) if nd else "none (every op was taken by a delegate)"
    if all(o.delegated is None for o in ops.ops):
        nd_text = "unknown (this backend does not expose its node list)"
    summary = Text.assemble(
        ("sum of ops / whole model: ", "bold"),
        (f"{ops.ratio:.2f}", "bold"), f" with medians ({_ms(ops.sum_ms)} / {_ms(ops.whole_ms)} ms), ",
        (f"{ops.ratio_min:.2f}", "bold"), f" with minimums ({_ms(ops.sum_min_ms)} / {_ms(ops.whole_min_ms)} ms; "
        f"less sensitive to other load on the CPU), over {ops.rounds} interleaved rounds; per-invoke overhead "
        f"{ops.overhead_ms * 1000:.1f} µs subtracted per op\n",
        ("not delegated: ", "bold"), nd_text,
        f"; the whole model has {ops.delegate_partitions} delegate partition(s)" if ops.delegate_partitions is not None else "",
    )
    untimed = ops.not_timed()
    if untimed:
        summary.append(f"\nnot timed alone ({len(untimed)} op(s), counted in the whole model only): ")
        summary.append("; ".join(f"{o.op} #{o.index}" + (f" of subgraph {o.subgraph}" if o.subgraph else "")
                                 + f" ({o.not_timed})" for o in untimed[:5])
                       + (f"; … {len(untimed) - 5} more" if len(untimed) > 5 else ""))
    return Group(top_table, type_table, summary)


def profile_view(report: ProfileReport, top: int = 10) -> Group:
    """Everything ``edgeq profile`` shows."""
    parts: list[Any] = [header_table(report), latency_table(report), startup_table(report)]
    for r in report.results:
        if r.ops is not None:
            parts.append(ops_tables(r.ops, r.threads, top))
    for note in report.notes:
        parts.append(safe_text(f"note: {note}", style="yellow", lines=True))
    return Group(*parts)


def _metric_text(key: str, value: float | None) -> str:
    if value is None:
        return "—"
    if key.endswith("_bytes"):
        return human_bytes(value)
    if key == "fps":
        return f"{value:.1f}"
    return _ms(value)


def compare_table(result: CompareResult) -> Table:
    """One row per report × thread count, each metric with its ratio to the baseline row.

    p50 and FPS are green or red only when the bootstrap interval of the p50 ratio says the difference is beyond
    the runs' noise (``verdict``); otherwise their ratio is dim with "≈". Size, which does not vary between runs,
    is coloured when it differs by more than 2 %; p99 and memory ratios (single noisy figures) stay dim.
    """
    devices = {e.device for e in result.entries}
    one_device = len(devices) == 1
    title = f"edgeq compare on {safe_markup(next(iter(devices)))}" if one_device else "edgeq compare"
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("model · mode · threads" if one_device else "device / model · mode · threads")
    for key, (label, unit, _) in COMPARE_METRICS.items():
        table.add_column(f"{label}" + (" ms" if unit == "ms" else ""), justify="right")
    for i, e in enumerate(result.entries):
        cells = [_compare_cell(key, e, i == result.baseline) for key in COMPARE_METRICS]
        marker = Text(str(i + 1) + ("*" if i == result.baseline else ""), style="bold" if i == result.baseline else "")
        parts: list[Any] = [] if one_device else [(safe_str(e.device), "bold"), "\n"]
        parts += [safe_str(f"{e.model} · {e.mode} · {e.threads} thr"), *(("\n", (safe_str(e.name), "dim")) if e.name else ())]
        entry = Text.assemble(*parts)
        table.add_row(marker, entry, *cells)
    table.caption = ("* baseline; n× = value / baseline's; p50 and FPS in green/red: faster/slower beyond the runs' "
                     "noise (95 % bootstrap interval of the p50 ratio, in --json), ≈: within it; FPS = 1000 / p50; "
                     "memory: peak RSS increase of a fresh process")
    table.caption_justify = "left"
    return table


def _compare_cell(key: str, e: Any, baseline: bool) -> Text:
    text = _metric_text(key, e.metrics.get(key))
    ratio = e.ratios.get(key)
    if baseline:
        return Text.assemble(text, "\n", ("base", "dim"))
    if ratio is None:
        return Text(text)
    if key in ("p50_ms", "fps"):
        style = {"faster": "green", "slower": "red"}.get(e.verdict or "", "dim")
        mark = "≈" if e.verdict in ("same", None) else ""
        return Text.assemble(text, "\n", (f"{mark}{ratio:.2f}×", style))
    style = "dim"
    if key == "size_bytes" and abs(ratio - 1) > 0.02:
        style = "green" if ratio < 1 else "red"
    return Text.assemble(text, "\n", (f"{ratio:.2f}×", style))
