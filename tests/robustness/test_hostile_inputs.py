"""Hostile and malformed inputs, table-driven: each one is a one-line exit 2, writes nothing, changes no input.

Every case builds its inputs in a fresh folder from the checked-in sample model (no TensorFlow): models
with edited ``edgeq`` metadata or tensor names, profile reports with hostile fields, odd ``.npy``/``.npz``
files, output paths that cannot work. The CLI runs in-process (``edgeq.cli.main``); the folder is
snapshotted (names, sizes, SHA-256) before and compared after, so a half-written output or a touched
input fails the case.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from edgeq.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE_MODEL = REPO / "samples" / "fashion_mnist" / "model_int8.tflite"
ESC = "\x1b"
#: strings a model, report or file name may carry: markup that breaks rich, screen clears, window titles, bad UTF-16
HOSTILE = ["[/]", "[bold red]x", f"{ESC}[2J", f"{ESC}]0;owned{chr(7)}", "\x9b31m", "\udcff", "a\nb"]


# ------------------------------------------------------------------------------------- builders
def sample_metadata() -> dict[str, Any]:
    from edgeq.metadata import read_metadata

    return read_metadata(SAMPLE_MODEL).to_dict()


def with_model(raw_metadata: bytes | None = None, rename: Callable[[str], str] | None = None) -> bytes:
    """The sample model with its ``edgeq`` entry replaced by ``raw_metadata`` and/or its IO tensors renamed."""
    from ai_edge_litert.tools import flatbuffer_utils as fb

    obj = fb.convert_bytearray_to_object(bytearray(SAMPLE_MODEL.read_bytes()))
    if raw_metadata is not None:
        entry = next(m for m in obj.metadata if m.name in (b"edgeq", "edgeq"))
        obj.buffers[entry.buffer].data = list(raw_metadata)
    if rename is not None:
        sg = obj.subgraphs[0]
        for i in (*sg.inputs, *sg.outputs):
            name = sg.tensors[i].name
            sg.tensors[i].name = rename(name.decode() if isinstance(name, bytes) else name).encode("utf-8", "surrogatepass")
    return bytes(fb.convert_object_to_bytearray(obj))


def meta_json(change: Callable[[dict[str, Any]], Any]) -> bytes:
    d = sample_metadata()
    out = change(d)
    return json.dumps(d if out is None else out).encode("utf-8", "surrogatepass")


def deep(n: int) -> str:
    return "[" * n + "]" * n


def sample_report() -> dict[str, Any]:
    from edgeq.runtime import Model
    from edgeq.runtime.report import report_from_timings

    model = Model(SAMPLE_MODEL, threads=1)
    return json.loads(report_from_timings(model, [1.0, 1.2, 0.9, 1.1, 1.3], 2.0).to_json())


def report_bytes(change: Callable[[dict[str, Any]], Any]) -> bytes:
    d = sample_report()
    out = change(d)
    return json.dumps(d if out is None else out).encode("utf-8", "surrogatepass")


def set_in(d: dict[str, Any], path: str, value: Any) -> None:
    *keys, last = path.split(".")
    for k in keys:
        d = d[int(k)] if isinstance(d, list) else d[k]
    d[last] = value


def _clip(path: Path) -> None:
    import cv2

    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(3):
        out.write(np.full((48, 64, 3), i * 60, np.uint8))
    out.release()


def _touch(path: Path) -> Path:
    path.touch()
    return path


def npy_header(shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def object_npz(path: Path) -> None:
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.array([0, 1]))


# --------------------------------------------------------------------------------------- harness
def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Each file's size and SHA-256 (sparse giants: their mtime), each link's target."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if st.st_size < 1 << 24 else str(st.st_mtime_ns)
            out[str(p.relative_to(folder))] = (st.st_size, digest)
        elif p.is_symlink():
            out[str(p.relative_to(folder))] = (-1, os.readlink(p))
    return out


def main_in(folder: Path, args: list[str]) -> int:
    """The CLI's exit code for ``args``, run with ``folder`` as the working folder."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return main(args)
    finally:
        os.chdir(cwd)


def run_clean_failure(args: list[str], folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI in ``folder``; assert exit 2, one error line, no traceback, no new or changed file."""
    before = snapshot(folder)
    rc = main_in(folder, args)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, f"exit {rc}, expected 2; stderr:\n{err}"
    assert len(lines) == 1 and "Traceback" not in err, f"expected one error line, got:\n{err}"
    assert "Unexpected error" not in err
    assert ESC not in err + out and "\x9b" not in err + out, "a raw escape sequence reached the terminal"
    assert snapshot(folder) == before, "the command wrote, removed or changed a file although it failed"
    return lines[0]


M = "model.tflite"
Case = tuple[str, dict[str, bytes | Callable[[Path], None]], list[str], str]


def bad_meta(case: str, change: Callable[[dict[str, Any]], Any], pattern: str = "metadata") -> list[Case]:
    files = {M: lambda folder, c=change: (folder / M).write_bytes(with_model(meta_json(c)))}
    return [(f"{case}-inspect", files, ["inspect", M], pattern), (f"{case}-run", files, ["run", M, "--random"], pattern)]


def bad_raw_meta(case: str, raw: bytes, pattern: str = "metadata") -> list[Case]:
    files = {M: lambda folder: (folder / M).write_bytes(with_model(raw))}
    return [(f"{case}-inspect", files, ["inspect", M], pattern), (f"{case}-run", files, ["run", M, "--random"], pattern)]


def bad_report(case: str, change: Callable[[dict[str, Any]], Any], pattern: str = "report") -> list[Case]:
    files = {"a.json": lambda folder, c=change: (folder / "a.json").write_bytes(report_bytes(c)),
             "b.json": lambda folder: (folder / "b.json").write_bytes(report_bytes(lambda d: None))}
    return [(f"{case}-compare", files, ["compare", "a.json", "b.json", "--html", "c.html", "--png", "c.png"], pattern)]


def sample(folder: Path) -> None:
    (folder / M).write_bytes(SAMPLE_MODEL.read_bytes())


CASES: list[Case] = [
    # metadata of the wrong shape, type, nesting or size
    *bad_raw_meta("meta-list", b"[]"),
    *bad_raw_meta("meta-null", b"null"),
    *bad_raw_meta("meta-deep", deep(100_000).encode()),
    *bad_raw_meta("meta-deep-dict", b'{"quant": ' + deep(5000).encode() + b"}"),
    *bad_meta("meta-quant-list", lambda d: set_in(d, "quant", [])),
    *bad_meta("meta-quant-null", lambda d: set_in(d, "quant", None)),
    *bad_meta("meta-preprocess-str", lambda d: set_in(d, "preprocess", "imagenet")),
    *bad_meta("meta-preprocess-size-huge", lambda d: set_in(d, "preprocess.size", [60000, 60000]), "size"),
    *bad_meta("meta-preprocess-size-str", lambda d: set_in(d, "preprocess.size", "28x28"), "size"),
    *bad_meta("meta-preprocess-mean-dict", lambda d: set_in(d, "preprocess.mean", {"a": 1})),
    *bad_meta("meta-verification-str", lambda d: set_in(d, "verification", "ok")),
    *bad_meta("meta-verification-list", lambda d: set_in(d, "verification", [1, 2])),
    *bad_meta("meta-calibration-str", lambda d: set_in(d, "quant.calibration", "minmax")),
    *bad_meta("meta-source-list", lambda d: set_in(d, "source", [1])),
    *bad_meta("meta-labels-dict", lambda d: set_in(d, "labels", {"a": 1})),
    *bad_meta("meta-labels-str", lambda d: set_in(d, "labels", "cat")),
    *bad_meta("meta-labels-nested", lambda d: set_in(d, "labels", [["a"]] * 10)),
    *bad_meta("meta-keep-float-int", lambda d: set_in(d, "quant.keep_float", 7)),
    *bad_meta("meta-schema-str", lambda d: set_in(d, "schema_version", "1"), "schema"),
    *bad_meta("meta-schema-float", lambda d: set_in(d, "schema_version", 1.5), "schema"),
    *bad_meta("meta-schema-bool", lambda d: set_in(d, "schema_version", True), "schema"),
    *bad_meta("meta-mode-int", lambda d: set_in(d, "quant.mode", 8)),
    # reports with hostile values, with both pictures asked for
    *bad_report("report-p99-null", lambda d: set_in(d, "results.0.latency.p99_ms", None)),
    *bad_report("report-p99-1e308", lambda d: set_in(d, "results.0.latency.p99_ms", 1e308)),
    *bad_report("report-p50-negative", lambda d: set_in(d, "results.0.latency.p50_ms", -5.0)),
    *bad_report("report-timings-inf", lambda d: set_in(d, "results.0.timings_ms", [1e308, 1e308])),
    *bad_report("report-results-dict", lambda d: set_in(d, "results", {"a": 1})),
    *bad_report("report-device-list", lambda d: set_in(d, "device", [1, 2])),
    *bad_report("report-list", lambda d: []),
    *bad_report("report-schema-float", lambda d: set_in(d, "schema_version", 1.0), "schema_version"),
    *bad_report("report-schema-bool", lambda d: set_in(d, "schema_version", True), "schema_version"),
    # odd data files
    ("npy-empty", {M: sample, "x.npy": b""}, ["run", M, "x.npy"], "x.npy"),
    ("npy-huge-shape", {M: sample, "x.npy": npy_header((10**6, 10**6, 10**6))}, ["run", M, "x.npy"], "x.npy"),
    ("npy-truncated", {M: sample, "x.npy": npy_header((1, 28, 28, 1)) + b"\0" * 10}, ["run", M, "x.npy"], "x.npy"),
    ("npz-object", {M: sample, "d.npz": object_npz}, ["eval", M, "--data", "d.npz"], "d.npz"),
    ("npz-float-y", {M: sample, "d.npz": lambda f: np.savez(f / "d.npz", x=np.zeros((2, 28, 28, 1), np.float32),
                                                            y=np.array([0.5, 1.5]))}, ["eval", M, "--data", "d.npz"], "y"),
    # "models" that are not regular files, would never end, or are sparse giants
    ("model-fifo", {"m.tflite": lambda f: os.mkfifo(f / "m.tflite")}, ["inspect", "m.tflite"], "regular file"),
    ("model-dev-zero", {}, ["run", "/dev/zero", "--random"], "regular file"),
    ("model-sparse-2gb", {"m.tflite": lambda f: os.truncate(_touch(f / "m.tflite"), 2**31)}, ["inspect", "m.tflite"], "larger"),
    ("model-sparse-zeros", {"m.tflite": lambda f: os.truncate(_touch(f / "m.tflite"), 2**30)}, ["run", "m.tflite", "--random"], "identifier"),
    ("model-empty", {"m.tflite": b""}, ["profile", "m.tflite"], "too short"),
    # output paths that cannot work
    ("out-name-257", {M: sample}, ["profile", M, "--runs", "1", "--no-memory", "--json-out", "a" * 257 + ".json"], "name"),
    ("threads-huge-run", {M: sample}, ["run", M, "--random", "--threads", "100000"], "threads"),
    ("threads-huge-profile", {M: sample}, ["profile", M, "--threads", "1,100000", "--runs", "1"], "threads"),
]
def out_dir(*names: str, link_to: str | None = None) -> Callable[[Path], None]:
    """An ``out/`` folder holding ``names`` (small files, or links to ``link_to``)."""

    def make(folder: Path) -> None:
        (folder / "out").mkdir()
        for name in names:
            if link_to is None:
                (folder / "out" / name).write_bytes(b"earlier output")
            else:
                (folder / "out" / name).symlink_to(folder / link_to)

    return make


def valid_npy(folder: Path) -> None:
    np.save(folder / "x.npy", np.zeros((1, 28, 28, 1), np.float32))


def dangling(folder: Path) -> None:
    (folder / "link.json").symlink_to(folder / "missing" / "r.json")


CASES += [
    # outputs that would destroy an input, follow a planted link, overwrite earlier outputs or be left half-done
    ("save-outputs-later-input-fails", {M: sample, "x.npy": valid_npy, "e.npy": b"", "out": out_dir()},
     ["run", M, "x.npy", "e.npy", "--save-outputs", "out"], "e.npy"),
    ("save-outputs-existing", {M: sample, "x.npy": valid_npy, "out": out_dir("00000_output_0.npy")},
     ["run", M, "x.npy", "--save-outputs", "out"], "force"),
    ("save-outputs-planted-link", {M: sample, "x.npy": valid_npy, "victim": b"keep", "out": out_dir("00000_output_0.npy", link_to="victim")},
     ["run", M, "x.npy", "--save-outputs", "out"], "force"),
    ("save-outputs-is-input-force", {M: sample, "out": lambda f: ((f / "out").mkdir(), np.save(f / "out" / "00000_output_0.npy", np.zeros((1, 28, 28, 1), np.float32)))},
     ["run", M, "out/00000_output_0.npy", "--save-outputs", "out", "--force"], "input"),
    ("profile-json-is-model-force", {M: sample}, ["profile", M, "--runs", "1", "--no-memory", "--json-out", M, "--force"], "input"),
    ("profile-json-dangling-link", {M: sample, "link.json": dangling}, ["profile", M, "--runs", "1", "--no-memory", "--json-out", "link.json"], "link"),
    ("compare-html-is-report-force", {"a.json": lambda f: (f / "a.json").write_bytes(report_bytes(lambda d: None))},
     ["compare", "a.json", "--html", "a.json", "--force"], "input"),
    ("camera-output-is-source-force", {M: sample, "clip.avi": lambda f: _clip(f / "clip.avi")},
     ["camera", M, "--source", "clip.avi", "--headless", "--output", "clip.avi", "--force"], "input"),
    ("camera-profile-is-model-force", {M: sample, "clip.avi": lambda f: _clip(f / "clip.avi")},
     ["camera", M, "--source", "clip.avi", "--headless", "--profile", M, "--force"], "input"),
    ("compare-same-path-twice", {"a.json": lambda f: (f / "a.json").write_bytes(report_bytes(lambda d: None))},
     ["compare", "a.json", "--html", "c.out", "--png", "c.out"], "same"),
    ("report-deep", {"a.json": deep(50_000).encode()}, ["compare", "a.json", "--html", "c.html", "--png", "c.png"], "report"),
    ("report-surrogate", {"a.json": b'{"kind": "\\udcff"}'}, ["compare", "a.json", "--html", "c.html"], "report"),
]


@pytest.mark.parametrize("case,files,args,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clean_line(case: str, files: dict[str, Any], args: list[str], pattern: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name, content in files.items():
        if callable(content):
            content(tmp_path)
        else:
            (tmp_path / name).write_bytes(content)
    line = run_clean_failure(args, tmp_path, capsys)
    assert re.search(pattern, line, re.IGNORECASE), line


# ------------------------------------------------------------------------ hostile strings that are valid
def run_ok(args: list[str], folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    rc = main_in(folder, args)
    out, err = capsys.readouterr()
    assert rc == 0, err
    for raw in (ESC, "\x9b", "\x07", "\udcff"):
        assert raw not in out + err, f"{raw!r} reached the terminal raw:\n{out}{err}"
    return out + err


def test_hostile_labels_tensor_names_and_report_fields_print_as_plain_text(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    labels = [*HOSTILE, "\ufeffx", "y", "<script>"][:10]

    def change(d: dict[str, Any]) -> None:
        d["labels"] = labels
        d["source"]["name"] = f"{ESC}[31mred.keras"

    (tmp_path / M).write_bytes(with_model(meta_json(change), rename=lambda n: f"{n}{ESC}[2J[/]"))
    valid_npy(tmp_path)
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 28, 28, 1), np.float32), y=np.array([0, 1, 2]))
    shown = run_ok(["inspect", M], tmp_path, capsys)
    assert "\\x1b[2J" in shown and "[/]" in shown and "\\x1b[31mred.keras" in shown  # shown escaped, not dropped
    info = json.loads(run_ok(["inspect", M, "--json"], tmp_path, capsys))
    assert info["edgeq"]["labels"][0] == "[/]"
    shown = run_ok(["run", M, "x.npy", "--top", "10"], tmp_path, capsys)
    assert "[bold red]x" in shown and "\\x1b]0;owned\\x07" in shown and "\\x9b31m" in shown and "\\udcff" in shown
    run_ok(["eval", M, "--data", "d.npz"], tmp_path, capsys)

    def hostile_report(d: dict[str, Any]) -> None:
        set_in(d, "device.board", f"<b>{ESC}[2J[/]\udcff")
        set_in(d, "notes", [f"{ESC}]0;t{chr(7)}"])

    (tmp_path / "r.json").write_bytes(report_bytes(hostile_report))
    shown = run_ok(["compare", "r.json", "--html", "c.html", "--png", "c.png"], tmp_path, capsys)
    page = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert ESC not in page and "<b>" not in page and "&lt;b&gt;\\x1b[2J[/]\\udcff" in page
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_safe_text_shows_every_control_character_escaped_and_no_markup() -> None:
    from edgeq._render import safe_markup, safe_str, safe_text

    raw = "".join(map(chr, range(0x20))) + "\x7f\x85\x9b\u202e\u2066\udcff[bold]x[/]é日本"
    shown = safe_str(raw)
    assert all(ord(c) >= 0x20 and not 0x7f <= ord(c) <= 0x9f for c in shown)
    assert "\\x1b" in shown and "\\x9b" in shown and "\\u202e" in shown and "\\udcff" in shown
    assert shown.endswith("[bold]x[/]é日本")  # printable text, markup-like or not, is kept as it is
    assert safe_text(raw).plain == shown and not safe_text(raw).spans  # a Text: never parsed as markup
    assert safe_str("a\nb", lines=True) == "a\nb" and safe_str("a\nb") == "a\\x0ab"
    assert safe_markup("[bold]x\x1b") == "\\[bold]x\\x1b"


def test_bom_is_stripped_from_the_first_label() -> None:
    from edgeq.metadata import ModelMetadata

    meta = ModelMetadata.from_json(meta_json(lambda d: set_in(d, "labels", ["\ufeffcat", "dog"])))
    assert meta.labels == ("cat", "dog")


def test_valid_npy_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The header check must not refuse good arrays (v1 and v2 headers, C and Fortran order)."""
    from edgeq._io import load_npy

    x = np.arange(28 * 28, dtype=np.float32).reshape(1, 28, 28, 1)
    np.save(tmp_path / "c.npy", x)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    with open(tmp_path / "v2.npy", "wb") as fh:
        np.lib.format.write_array(fh, x, version=(2, 0))
    for name in ("c.npy", "f.npy", "v2.npy"):
        np.testing.assert_array_equal(load_npy(tmp_path / name), x)
    (tmp_path / M).write_bytes(SAMPLE_MODEL.read_bytes())
    run_ok(["run", M, "c.npy", "f.npy", "v2.npy"], tmp_path, capsys)


def test_inspect_and_run_json_are_strict_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Metadata may carry NaN (Python's json reads it); edgeq's JSON output never does."""
    raw = json.dumps(sample_metadata() | {"verification": {"agreement": float("nan"), "sqnr_db": float("inf")}}).encode()
    (tmp_path / M).write_bytes(with_model(raw))
    text = run_ok(["inspect", M, "--json"], tmp_path, capsys)
    info = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in inspect --json"))
    assert info["edgeq"]["verification"] == {"agreement": None, "sqnr_db": None}
    shown = run_ok(["inspect", M], tmp_path, capsys)
    assert "verified" in shown
    valid_npy(tmp_path)
    line = run_ok(["run", M, "x.npy", "--json"], tmp_path, capsys).splitlines()[0]
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in run --json"))["input"] == "x.npy"


# ------------------------------------------------------------------------------------------ counts
def count_outcomes(timeout: float = 60.0, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run every case of ``CASES`` in a child process; count clean exits, exit 1s, crashes, partial files.

    ``python tests/robustness/test_hostile_inputs.py [SKIP…]`` prints the counts (the figures of issue #15).
    """
    import subprocess
    import sys
    import tempfile
    from collections import Counter

    counts: Counter = Counter()
    details = {}
    for case, files, args, _ in CASES:
        if case in skip:
            counts["skipped"] += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            for name, content in files.items():
                content(folder) if callable(content) else (folder / name).write_bytes(content)
            before = snapshot(folder)
            code = "import sys; from edgeq.cli import main; sys.exit(main(sys.argv[1:]))"
            try:
                done = subprocess.run([sys.executable, "-c", code, *args], cwd=folder, capture_output=True, text=True,
                                      timeout=timeout, env={**os.environ, "COLUMNS": "200"})
                rc, err = done.returncode, done.stderr
            except subprocess.TimeoutExpired:
                rc, err = "hang", ""
            lines = [ln for ln in err.splitlines() if ln.strip() and "XNNPACK delegate" not in ln]
            partial = snapshot(folder) != before
            if rc == "hang":
                outcome = "hang"
            elif isinstance(rc, int) and rc < 0:
                outcome = "crash"
            elif rc == 2 and len(lines) == 1 and "Traceback" not in err:
                outcome = "clean exit 2"
            elif rc == 1:
                outcome = "exit 1"
            elif rc == 0:
                outcome = "exit 0 (accepted)"
            else:
                outcome = f"exit {rc}, {len(lines)} lines"
            counts[outcome] += 1
            counts["partial files"] += partial
            details[case] = (outcome, lines[-1][:160] if lines else "")
    return {"tried": len(CASES), "counts": dict(counts), "cases": details}


if __name__ == "__main__":
    import sys

    result = count_outcomes(skip=tuple(sys.argv[1:]))
    for case, (outcome, line) in result["cases"].items():
        print(f"{case:42s} {outcome:20s} {line}")
    print(json.dumps({k: result[k] for k in ("tried", "counts")}, indent=1))
