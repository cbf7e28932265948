"""``edgeq doctor``: check the install on this device; each check is ok, warn or fail with a fix."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from edgeq._render.text import safe_markup as escape

from edgeq._commands._options import add_json_options
from edgeq.devices import DoctorReport, Status, run_doctor

if TYPE_CHECKING:  # rich loads when the table is drawn, not on every start
    from rich.table import Table

STATUS_STYLES = {Status.OK: "[green]ok[/]", Status.WARN: "[yellow]warn[/]", Status.FAIL: "[red]fail[/]"}

EXAMPLES = """\
examples:
  edgeq doctor           # check backend, numpy, XNNPACK, OS, camera, OpenCV, convert, memory, throttling
  edgeq doctor --json    # the same as JSON; the exit status is 1 when a check fails
"""


def register(subparsers: Any) -> None:
    """Add the ``doctor`` subcommand."""
    parser = subparsers.add_parser(
        "doctor",
        help="check the install on this device and say how to fix problems",
        description="Check that a TFLite interpreter imports and which version, that numpy suits it, that "
        "XNNPACK is applied, the OS architecture, the camera stack, OpenCV (one build, can it open a window here), "
        "TensorFlow/Keras for edgeq convert, free memory and throttling. Each check "
        "prints ok, warn or fail with a fix; the exit status is 1 when any check fails.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_json_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, ui: Any) -> int:
    """Run the checks, print them, and return 1 if any failed."""
    from edgeq._native import quiet_native_output

    with quiet_native_output():  # the XNNPACK check makes LiteRT print "INFO: Created … XNNPACK delegate"
        report = run_doctor()
    ui.json(report.to_dict())
    if not ui.json_mode:
        ui.print(checks_table(report))
    if report.failed:
        ui.error(f"doctor: {len(report.failed)} check(s) failed: {', '.join(c.name for c in report.failed)}")
        return 1
    return 0


def checks_table(report: DoctorReport) -> Table:
    """The checks, one row each, with the fix under warnings and failures."""
    from rich.table import Table

    device = report.device
    table = Table(title=f"edgeq doctor on {escape(device.board or device.profile)} ({device.arch})", title_justify="left")
    table.add_column("status")
    table.add_column("check")
    table.add_column("finding / fix")
    for check in report.checks:
        text = escape(check.message)
        if check.fix:
            text += f"\n[bold]fix:[/] {escape(check.fix)}"
        table.add_row(STATUS_STYLES[check.status], check.name, text)
    return table
