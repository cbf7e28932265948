"""``--host``/``--hosts``: run ``profile``, ``run`` and ``devices`` on many boards over SSH (see ``edgeq._fleet``).

Each command adds the options with :func:`add_host_options` and hands over to ``profile_on_hosts``,
``run_on_boards`` or ``devices_on_hosts`` when hosts are given. Options the user set are forwarded to the
remote edgeq as typed; local files they name are uploaded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence


from edgeq._render.text import safe_text
from edgeq._render.ui import UI
from edgeq.errors import DataError, ModelError, UsageError

if TYPE_CHECKING:  # rich loads when a table is drawn, not on every start
    from rich.table import Table

#: options of :func:`add_host_options`, never forwarded to the boards
HOST_DESTS = {"host", "hosts", "parallel", "timeout", "identity", "accept_new_host_keys", "remote_edgeq", "html", "png"}


def add_host_options(parser: argparse.ArgumentParser, charts: bool = False) -> None:
    """Add the ``--host``/``--hosts`` options (and ``--html``/``--png`` of the comparison when ``charts``)."""
    g = parser.add_argument_group(
        "many boards over SSH (pip install \"edgeq[fleet]\")",
        "The board's own edgeq runs the command on a copy of the model and inputs; one failing board is one "
        "FAILED line and exit 1." + (" With --host, --json-out DIR is a folder of one report per board (HOST.json)."
                                       if charts else ""))
    g.add_argument("--host", action="append", metavar="USER@HOST[:PORT]",
                   help="run on this board over SSH instead of here (repeatable; ~/.ssh/config names work)")
    g.add_argument("--hosts", action="append", metavar="FILE",
                   help="boards listed in FILE: one USER@HOST[:PORT] per line, or an Ansible INI inventory")
    g.add_argument("--parallel", type=int, default=8, metavar="N", help="boards worked on at once (default 8)")
    g.add_argument("--timeout", type=float, default=600.0, metavar="S",
                   help="seconds allowed per board, connection included (default 600)")
    g.add_argument("--identity", metavar="FILE", help="SSH private key to offer, besides the agent's and ~/.ssh/config's")
    g.add_argument("--accept-new-host-keys", action="store_true",
                   help="trust and record boards missing from ~/.ssh/known_hosts (changed keys are still refused)")
    g.add_argument("--remote-edgeq", metavar="CMD",
                   help="how to start edgeq on the boards (default: 'edgeq', else 'python3 -m edgeq')")
    if charts:
        g.add_argument("--html", metavar="OUT.html", help="with --host: also write the comparison as an HTML page")
        g.add_argument("--png", metavar="OUT.png", help="with --host: also write the comparison as a PNG chart")
    parser.set_defaults(host_parser=parser)


def wants_hosts(args: argparse.Namespace) -> bool:
    """Whether ``--host``/``--hosts`` was given."""
    return bool(args.host or args.hosts)


def _fleet(args: argparse.Namespace) -> tuple[list[Any], Any]:
    from edgeq._fleet import SSHSettings, asyncssh_module, gather_hosts

    if args.parallel < 1:
        raise UsageError(f"--parallel must be at least 1. Received: --parallel {args.parallel}")
    if not args.timeout > 0:
        raise UsageError(f"--timeout must be a positive number of seconds. Received: --timeout {args.timeout}")
    if args.identity and not Path(args.identity).expanduser().is_file():
        raise UsageError(f"--identity expects an SSH private key file. Received: {args.identity} (not a file)")
    hosts = gather_hosts(args.host, args.hosts)
    asyncssh_module()
    settings = SSHSettings(identity=args.identity, accept_new_host_keys=args.accept_new_host_keys,
                           connect_timeout=min(30.0, args.timeout))
    return hosts, settings


def forwarded(parser: argparse.ArgumentParser, args: argparse.Namespace, skip: Iterable[str],
              uploads: Iterable[str] = ()) -> list[Any]:
    """The optional arguments the user set (not at their default), as remote command-line words.

    Options in ``uploads`` that name an existing local file or folder become :class:`~edgeq._fleet.Upload`.
    """
    from edgeq._fleet import Upload

    skipped, upload = set(skip) | HOST_DESTS | {"help", "func", "json", "json_out", "csv"}, set(uploads)
    words: list[Any] = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in skipped or value is None or value == action.default:
            continue
        flag = max(action.option_strings, key=len)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreConstAction)):
            words.append(flag)
            continue
        for item in value if isinstance(action, argparse._AppendAction) else [value]:
            if isinstance(item, (list, tuple)):
                item = ",".join(map(str, item))
            local = action.dest in upload and Path(str(item)).exists()
            words += [flag, Upload(Path(str(item))) if local else str(item)]
    return words


def _model(path: str) -> Any:
    from edgeq._fleet import Upload

    if not Path(path).is_file():
        raise ModelError(f"expected a .tflite model file to copy to the boards. Received: {path} (not a file)")
    return Upload(Path(path))


def _report_failures(ui: UI, outcomes: Sequence[Any], what: str) -> int:
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        ui.error(f"FAILED {o.host.name}: {o.error}")
    good = len(outcomes) - len(failed)
    ui.status(f"{good} of {len(outcomes)} board(s) {what}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _parsed(outcomes: Sequence[Any], parse: Any) -> tuple[list[tuple[Any, Any]], list[Any]]:
    """``parse(outcome)`` for each good outcome; a host whose output cannot be read becomes a failure."""
    good, checked = [], []
    for o in outcomes:
        if o.ok:
            try:
                good.append((o, parse(o)))
            except (ValueError, KeyError, TypeError, DataError) as exc:
                o = dataclasses.replace(o, ok=False, error=f"unreadable output from the remote edgeq: {exc}")
        checked.append(o)
    return good, checked


# ------------------------------------------------------------------------------------------- profile
def profile_on_hosts(args: argparse.Namespace, ui: UI) -> int:
    """``edgeq profile MODEL --host …``: profile on every board, then compare the reports."""
    from datetime import datetime, timezone

    from edgeq._render.compare import render_html, render_png, titles
    from edgeq._fleet import RemoteCommand, run_on_hosts
    from edgeq._io import atomic_write, check_output_path
    from edgeq._render.profile import compare_table
    from edgeq.runtime.report import ProfileReport, compare

    hosts, settings = _fleet(args)
    charts = [(kind, check_output_path(path, args.force)) for kind, path in (("html", args.html), ("png", args.png)) if path]
    folder = Path(args.json_out) if args.json_out else None
    ui.json_out = None  # with --host, --json-out names a folder of reports, written below
    if folder is not None:
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"with --host, --json-out DIR is a folder for one report per board. Received: {folder} (a file)")
        for host in hosts:
            if (folder / _file_name(host.name)).exists() and not args.force:
                raise UsageError(f"{folder / _file_name(host.name)} exists; pass --force to overwrite it")
    remote = ["profile", _model(args.model), *forwarded(args.host_parser, args, {"model", "json_out", "force"}, uploads={"input"}),
              "--json"]
    with ui.progress():
        outcomes = run_on_hosts(hosts, RemoteCommand(tuple(remote), args.remote_edgeq), settings, args.parallel, args.timeout)

    def parse(o: Any) -> ProfileReport:
        report = ProfileReport.from_dict(json.loads(o.stdout), name=f"the report of {o.host.name}")
        return dataclasses.replace(report, host=o.host.name)

    good, outcomes = _parsed(outcomes, parse)
    reports = [r for _, r in good]
    if folder is not None and reports:
        folder.mkdir(parents=True, exist_ok=True)
        for report in reports:
            atomic_write(folder / _file_name(report.host), report.to_json(), force=args.force)
        ui.status(f"{len(reports)} report(s) written to {folder}/ (edgeq compare {folder}/*.json)")
    if ui.json_mode:
        ui.json({"reports": [r.to_dict() for r in reports], "hosts": [o.to_dict() for o in outcomes]})
    elif reports:
        result = compare(reports)
        ui.print(compare_table(result))
        for note in result.notes:
            ui.warn(note)
        for kind, out in charts:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            data = render_png(result) if kind == "png" else render_html(result, title=titles(result.entries), generated=stamp).encode()
            atomic_write(out, data, force=args.force)
            ui.status(f"{kind.upper()} written to {out}")
    return _report_failures(ui, outcomes, "profiled")


def _file_name(host: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", host).strip("._") + ".json"


# ------------------------------------------------------------------------------------------- devices
def devices_on_hosts(args: argparse.Namespace, ui: UI) -> int:
    """``edgeq devices --host …``: each board's device, live state and profile, one row per board."""
    from edgeq._fleet import RemoteCommand, run_on_hosts

    if args.list or args.root != "/":
        raise UsageError("--list and --root describe this machine; leave them out with --host")
    hosts, settings = _fleet(args)
    with ui.progress():
        outcomes = run_on_hosts(hosts, RemoteCommand(("devices", "--json"), args.remote_edgeq), settings,
                                args.parallel, args.timeout)
    good, outcomes = _parsed(outcomes, lambda o: {"host": o.host.name, **_object(json.loads(o.stdout))})
    if ui.json_mode:
        ui.json({"devices": [d for _, d in good], "hosts": [o.to_dict() for o in outcomes]})
    elif good:
        ui.print(devices_table([d for _, d in good]))
    return _report_failures(ui, outcomes, "answered")


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or "device" not in value:
        raise ValueError("expected the JSON object of 'edgeq devices --json'")
    return value


def devices_table(rows: Sequence[dict[str, Any]]) -> Table:
    """One row per board: what it is, how it is doing, and what edgeq recommends on it."""
    from rich.table import Table

    table = Table(title="Boards", title_justify="left")
    for column in ("host", "board", "cpu", "arch", "memory", "backend", "temp", "throttling", "prefer"):
        table.add_column(column)
    for row in rows:
        d, live, prof = row.get("device") or {}, row.get("live") or {}, row.get("profile") or {}
        backend = d.get("backend") or {}
        throttled = (live.get("throttled") or {}).get("active")
        cells = [
            row["host"], d.get("board"), f"{d.get('cpu_part') or '?'} x {d.get('cores') or '?'}", d.get("arch"),
            f"{d['memory_mb']} MB" if d.get("memory_mb") else None,
            f"{backend.get('name')} {backend.get('version')}" if backend else None,
            f"{live['temperature_c']} C" if live.get("temperature_c") is not None else None,
            (", ".join(throttled) or "none") if throttled is not None else None,
            (prof.get("preferred_mode") or {}).get("mode"),
        ]
        table.add_row(*(safe_text(c) if c is not None else "[dim]?[/]" for c in cells))
    return table


# ----------------------------------------------------------------------------------------------- run
def run_on_boards(args: argparse.Namespace, ui: UI) -> int:
    """``edgeq run MODEL INPUT --host …``: the same inputs through the model on every board."""
    from edgeq._fleet import RemoteCommand, Upload, run_on_hosts

    if args.save_outputs:
        raise UsageError("--save-outputs writes on this machine; leave it out with --host (use --json for the outputs)")
    missing = [i for i in args.inputs if not Path(i).exists()]
    if missing:
        raise UsageError(f"with --host, each INPUT must be a local file or folder to copy. Received: {missing[0]} (missing)")
    hosts, settings = _fleet(args)
    inputs = [Upload(Path(i)) for i in args.inputs]
    remote = ["run", _model(args.model), *inputs, *forwarded(args.host_parser, args, {"model", "inputs", "save_outputs"}), "--json"]
    with ui.progress():
        outcomes = run_on_hosts(hosts, RemoteCommand(tuple(remote), args.remote_edgeq), settings, args.parallel, args.timeout)

    def parse(o: Any) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in o.stdout.splitlines() if line.strip()]
        return [{"host": o.host.name, **r, "input": _local_path(r.get("input"), remote)} for r in records]

    good, outcomes = _parsed(outcomes, parse)
    records = [r for _, rs in good for r in rs]
    if ui.json_mode:
        for record in records:
            sys.stdout.write(json.dumps(record) + "\n")
    elif records:
        ui.print(run_table(records))
    return _report_failures(ui, outcomes, "ran the model")


def _local_path(text: Any, remote: Sequence[Any]) -> Any:
    """``text`` with the board's temporary copy of an uploaded file replaced by the path the user gave."""
    from edgeq._fleet import Upload

    if not isinstance(text, str):
        return text
    for n, arg in enumerate(remote):
        if isinstance(arg, Upload):
            copy = rf"\S*/edgeq-fleet\.[0-9a-f]+/{n}/{re.escape(arg.path.name)}"
            text = re.sub(copy, lambda _: str(arg.path), text)  # noqa: B023 - used at once
    return text


def run_table(records: Sequence[dict[str, Any]]) -> Table:
    """One row per board and input: latency and the top label (classifiers) or the output shapes."""
    from rich.table import Table

    table = Table(title="edgeq run on the boards", title_justify="left")
    for column, justify in (("host", "left"), ("input", "left"), ("ms", "right"), ("result", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for r in records:
        if r.get("top"):
            result = f"{r['top'][0]['label']} ({r['top'][0]['score']:.3f})"
        else:
            result = ", ".join(f"{k}: {_shape(v)}" for k, v in (r.get("outputs") or {}).items())
        table.add_row(safe_text(r["host"]), safe_text(r["input"]), f"{float(r['latency_ms']):.2f}", safe_text(result))
    return table


def _shape(value: Any) -> str:
    dims = []
    while isinstance(value, list):
        dims.append(len(value))
        value = value[0] if value else None
    return "x".join(map(str, dims)) or "scalar"
