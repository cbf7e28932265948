"""``edgeq devices``: the detected device, its live state and its board profile; ``--list`` the boards."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeq._render.text import safe_markup as escape

from edgeq._commands._hosts import add_host_options, devices_on_hosts, wants_hosts
from edgeq._commands._options import add_json_options
from edgeq.devices import BoardProfile, Device, LiveState, current, detect, known_profiles, profile_for
from edgeq.errors import UsageError

if TYPE_CHECKING:  # rich loads when a table is drawn, not on every start
    from rich.console import Group
    from rich.table import Table

RATING_STYLES = {"good": "green", "ok": "yellow", "poor": "red"}

EXAMPLES = """\
examples:
  edgeq devices                 # this device, its live state and what to expect from it
  edgeq devices --json          # the same as JSON (device, live, profile)
  edgeq devices --list          # the boards edgeq knows (keys work with convert --target)
  edgeq devices --root ./pi4    # read a recorded /proc, /sys and /etc tree instead of /
  edgeq devices --hosts lab.ini # every board of an inventory over SSH, one row each
"""


def register(subparsers: Any) -> None:
    """Add the ``devices`` subcommand."""
    parser = subparsers.add_parser(
        "devices",
        help="show the detected device and its board profile",
        description="Show the detected board, CPU, memory, OS, backend and camera, its live state "
        "(temperature, clock, throttling) and its board profile: threads, preferred quantization mode, "
        "how each mode fits, runtime wheel and caveats.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_json_options(parser)
    parser.add_argument("--list", action="store_true", help="list the known board profiles")
    parser.add_argument("--root", default="/", metavar="DIR",
                        help="read /proc, /sys, /dev and /etc below DIR instead of / (a recorded tree)")
    add_host_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ui: Any) -> int:
    """Print the device and its profile, or the known boards with ``--list``."""
    if wants_hosts(args):
        return devices_on_hosts(args, ui)
    if args.list:
        profiles = known_profiles()
        ui.json([p.to_dict() for p in profiles])
        ui.print(boards_table(profiles))
        return 0
    if not Path(args.root).is_dir():
        raise UsageError(f"--root must be a folder holding proc/, sys/ and etc/. Received: --root {args.root}")
    device = current() if Path(args.root) == Path("/") else detect(args.root)
    profile, live = profile_for(device), device.live()
    ui.json({"device": device.to_dict(), "live": live.to_dict(), "profile": profile.to_dict()})
    if not ui.json_mode:
        ui.print(device_table(device, live), profile_view(profile, device.arch))
    return 0


def device_table(device: Device, live: LiveState) -> Table:
    """The detected device and its live state as a two-column table."""
    from rich.table import Table

    table = Table(title="Device", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    cores = f"{device.cores or '?'} ({device.physical_cores or '?'} physical)"
    revision = device.revision
    rows = [
        ("board", device.board),
        ("profile", device.profile),
        ("soc", device.soc),
        ("cpu", f"{device.cpu_part or 'unknown'} x {cores}"),
        ("arch", device.arch),
        ("features", " ".join(device.features) or None),
        ("int8 dot product", _yes_no(device.int8_dot_product)),
        ("fp16 arithmetic", _yes_no(device.fp16_arithmetic)),
        ("memory", f"{device.memory_mb} MB" if device.memory_mb else None),
        ("pi revision", revision and f"{revision.code}: {revision.board_type} rev {revision.board_revision}, "
                                     f"{revision.memory_mb} MB, {revision.processor}, {revision.manufacturer}"),
        ("os", device.os_name),
        ("kernel", device.kernel),
        ("python", device.python),
        ("backend", device.backend and f"{device.backend.name} {device.backend.version}"),
        ("camera", "; ".join((["picamera2"] if device.camera.picamera2 else []) + list(device.camera.video_devices)) or "none"),
        ("threads", str(device.recommended_threads)),
        ("temperature", f"{live.temperature_c} C" if live.temperature_c is not None else None),
        ("clock", live.freq_cur_mhz and f"{live.freq_cur_mhz} / {live.freq_max_mhz or '?'} MHz ({live.governor or '?'})"),
        ("free memory", f"{live.mem_available_mb} MB" if live.mem_available_mb is not None else None),
        ("throttling", live.throttled and (", ".join(live.throttled.active) or "none")),
    ]
    for name, value in rows:
        table.add_row(name, escape(str(value)) if value is not None else "[dim]unknown[/]")
    return table


def profile_view(profile: BoardProfile, arch: str | None) -> Group:
    """A board profile: preferred mode, each mode's fit, the runtime wheel and the caveats."""
    from rich.console import Group
    from rich.table import Table

    modes = Table(title=f"Profile {profile.key}: {escape(profile.name)}", title_justify="left")
    modes.add_column("mode")
    modes.add_column("fit")
    modes.add_column("why")
    for mode, note in profile.modes.items():
        marker = " (preferred)" if mode == profile.preferred_mode else ""
        modes.add_row(mode + marker, f"[{RATING_STYLES[note.rating]}]{note.rating}[/]", escape(note.reason))
    lines: list[Any] = [modes, f"[bold]prefer[/] {profile.preferred_mode}: {escape(profile.preferred_reason)}"]
    wheel = profile.runtime.get(arch or "")
    if wheel:
        lines.append(f"[bold]runtime[/] ({arch}): {escape(wheel.install)}" + (f" - {escape(wheel.note)}" if wheel.note else ""))
    lines += [f"[yellow]caveat[/] {escape(c)}" for c in profile.caveats]
    return Group(*lines)


def boards_table(profiles: list[BoardProfile]) -> Table:
    """The known board profiles, one row each."""
    from rich.table import Table

    table = Table(title="Known boards", title_justify="left")
    table.add_column("key", no_wrap=True)
    for column in ("name", "aliases", "cpu", "threads", "prefer"):
        table.add_column(column)
    for p in profiles:
        table.add_row(p.key, escape(p.name), ", ".join(p.aliases), escape(p.cpu or "any"),
                      str(p.recommended_threads or "cores"), p.preferred_mode)
    return table


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"
