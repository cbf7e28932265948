"""Command-line parsing as users type it: intermixed options, ``--debug`` anywhere, values starting with ``-``,
and one convention for machine output (``--json`` on stdout, ``--json-out FILE`` to a file).

No TensorFlow needed: these parse, or run the bundled int8 sample through the runtime.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from edgeq.cli import COMMANDS, build_parser, main, parse_args
from support import REPO

SAMPLE = REPO / "samples" / "fashion_mnist"


@pytest.mark.parametrize("value", ["-1,1", "-0.5/0.5", "-127.5,-127.5,-127.5/127.5"])
@pytest.mark.parametrize("command", ["convert", "qat", "debug"])
def test_normalize_takes_values_starting_with_a_dash(command: str, value: str) -> None:
    extra = ["--train", "t/"] if command == "qat" else []
    out = [] if command == "debug" else ["--out", "o.tflite"]
    args = parse_args([command, "m.keras", "--data", "d/", "--normalize", value, *extra, *out])
    assert args.normalize == value and args.model == "m.keras" and args.data == "d/"


def test_a_missing_value_is_still_an_error(capsys: pytest.CaptureFixture) -> None:
    """``--out --force`` must not take ``--force`` as the file name."""
    with pytest.raises(SystemExit) as exc:
        parse_args(["convert", "m.keras", "--data", "d/", "--out", "--force"])
    assert exc.value.code == 2
    assert "--out: expected one argument" in capsys.readouterr().err


def test_options_between_positionals() -> None:
    args = parse_args(["run", "m.tflite", "--top", "3", "photo.jpg", "more/", "--every", "2"])
    assert (args.model, args.inputs, args.top, args.every) == ("m.tflite", ["photo.jpg", "more/"], 3, 2)
    args = parse_args(["compare", "--threads", "1", "a.json", "--baseline", "2", "b.json"])
    assert (args.reports, args.threads, args.baseline) == (["a.json", "b.json"], [1], 2)


@pytest.mark.parametrize("argv", [
    ["--debug", "run", "m.tflite", "x.jpg"],
    ["run", "--debug", "m.tflite", "x.jpg"],
    ["run", "m.tflite", "x.jpg", "--debug"],
])
def test_debug_anywhere(argv: list[str]) -> None:
    args = parse_args(argv)
    assert args.debug is True and args.inputs == ["x.jpg"] and args.command == "run"
    assert parse_args(["run", "m.tflite", "x.jpg"]).debug is False


@pytest.mark.parametrize("argv, options", [
    (["camera", "m.tflite", "--source", "0"], ["--source", "0"]),
    (["camera", "--source", "clip.mp4", "m.tflite", "--top", "2"], ["--source", "clip.mp4", "--top", "2"]),
    (["camera", "--headless", "--threshold", "0.6", "m.tflite"], ["--headless", "--threshold", "0.6"]),
    (["camera", "--source=cam", "--json", "m.tflite", "--max-frames", "3"], ["--source=cam", "--json", "--max-frames", "3"]),
])
def test_camera_model_among_app_options(argv: list[str], options: list[str]) -> None:
    args = parse_args(argv)
    assert args.model == "m.tflite" and args.options == options


def test_json_is_a_flag_and_json_out_takes_a_file_everywhere() -> None:
    """One convention: no command's --json takes a value, and every such command has --json-out FILE."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    with_json = []
    for name in COMMANDS:
        actions = {opt: a for a in commands[name]._actions for opt in a.option_strings}
        if "--json" in actions:
            with_json.append(name)
            assert actions["--json"].nargs == 0, f"edgeq {name} --json takes a value"
            assert actions["--json-out"].nargs is None and actions["--json-out"].metavar == "FILE", name
    assert {"profile", "compare", "run", "convert", "eval", "inspect", "doctor", "devices"} <= set(with_json)


def test_json_out_writes_the_file_and_keeps_the_tables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "inspect.json"
    assert main(["inspect", "--json-out", str(out), str(SAMPLE / "model_int8.tflite")]) == 0
    captured = capsys.readouterr()
    assert "Operators" in captured.out  # the human tables still print
    data = json.loads(out.read_text())
    assert data["edgeq"]["labels"][0] == "T-shirt/top"
    assert main(["inspect", str(SAMPLE / "model_int8.tflite"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == data  # the same document as on stdout
    # an existing file is refused before any work, and --force overwrites it
    assert main(["inspect", str(SAMPLE / "model_int8.tflite"), "--json-out", str(out)]) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    out.write_text("old")
    assert main(["inspect", str(SAMPLE / "model_int8.tflite"), "--json-out", str(out), "--force"]) == 0
    assert json.loads(out.read_text()) == data


def test_help_points_only_to_files_an_installed_user_has() -> None:
    """docs/, samples/, benchmarks/ and scripts/ are not in the wheel: help names them only inside a URL."""
    import re

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    texts = [parser.format_help()] + [commands[name].format_help() for name in COMMANDS]
    repo_file = re.compile(r"(?<![\w/.])(?:docs|samples|benchmarks|scripts)/[\w-]+\.\w+")
    for name, text in zip(("edgeq", *COMMANDS), texts):
        assert not repo_file.findall(" ".join(text.split())), f"edgeq {name} --help names a file the wheel lacks"


def test_the_schema_link_in_profile_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    assert main(["profile", str(SAMPLE / "model_int8.tflite"), "--runs", "3", "--threads", "1", "--no-memory",
                 "--json-out", str(out)]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert f"report written to {out} (schema_version 1; fields documented at https://" in err


#: token orders of each kind: positionals first, last, split by options, none, and a bad option
ORDERS = [["m.tflite", "a.jpg", "b.jpg", "--top", "3"], ["--top", "3", "m.tflite", "a.jpg"],
          ["m.tflite", "--top", "3", "a.jpg", "--every", "2", "b/"], ["m.tflite", "--random", "--json"],
          ["m.tflite"], ["--threads", "2", "m.tflite", "--json-out", "r.json", "x.npy"]]


@pytest.mark.parametrize("tokens", ORDERS)
@pytest.mark.parametrize("command", ["run", "profile", "inspect", "eval", "convert"])
def test_the_one_pass_parse_gives_what_intermixed_parsing_gives(command: str, tokens: list[str],
                                                                capsys: pytest.CaptureFixture) -> None:
    from edgeq.cli import _parse_intermixed

    sub = next(a for a in build_parser(only=command)._actions if isinstance(a, argparse._SubParsersAction)).choices[command]

    def outcome(parse) -> tuple:  # type: ignore[no-untyped-def]
        try:
            return ("ok", vars(parse()))
        except SystemExit as exc:
            return ("exit", exc.code, capsys.readouterr().err)

    assert outcome(lambda: _parse_intermixed(sub, tokens)) == outcome(lambda: sub.parse_intermixed_args(tokens))
