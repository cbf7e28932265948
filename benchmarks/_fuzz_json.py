"""Fuzz the JSON documents edgeq reads: the ``edgeq`` metadata inside a model and ``edgeq profile`` reports.

Each mutant is one JSON-level change of a valid document (a node replaced by a hostile value, a key
removed, a node wrapped or nested 10 000 deep, a hostile string, an extreme number, bytes of the text
flipped or cut), fed to the commands that read it, in-process through ``edgeq.cli.main``:

* metadata (embedded in the sample model): ``inspect``, ``inspect --json``, ``run --random``;
* reports: ``compare R.json --json`` and ``compare R.json --html X --png Y``.

Outcomes per command run: ``ok`` (exit 0), ``clean`` (exit 2, one line), ``exit1`` (exit 1: an
"Unexpected error", i.e. a bug), ``dirty`` (a traceback or more than one line), ``escape`` (a raw
control character reached the output), ``partial`` (a failed run left a file), ``crash`` (an exception
escaped ``main``), ``slow`` (over 10 s).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "fashion_mnist" / "model_int8.tflite"
BAD_OUTCOMES = ("exit1", "dirty", "escape", "partial", "crash", "slow")
ESC = "\x1b"
HOSTILE_VALUES: list[Any] = [
    None, [], {}, "", 0, -1, 1, 2**63, -(2**63), 10**30, 1e308, -1e308, 1e-308, 0.5, True, False,
    "[/]", f"{ESC}[2J", f"{ESC}]0;t\x07", "\x9b31m", "\udcff", "\ufeffbom", "x" * 10_000, ["a"] * 1000,
    {"a": None}, [[["x"]]], [60000, 60000], [-1, 28], [1.5, 2.5], ["28", "28"],
]
JSON_MUTATORS = ("replace", "delete", "wrap", "deep", "string", "number", "text")


def _nodes(doc: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _nodes(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:20]):
            out += _nodes(v, (*path, i))
    return out


def _set(doc: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return doc


def _get(doc: Any, path: tuple) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutate(doc: Any, rng: random.Random, kind: str) -> bytes:
    """One mutant of ``doc`` (a JSON value) as bytes; ``text`` mutants may not be valid JSON."""
    doc = json.loads(json.dumps(doc))
    path = rng.choice(_nodes(doc))
    if kind == "replace":
        doc = _set(doc, path, rng.choice(HOSTILE_VALUES))
    elif kind == "delete" and path:
        parent = _get(doc, path[:-1])
        del parent[path[-1]]
    elif kind == "wrap":
        doc = _set(doc, path, rng.choice([[_get(doc, path)], {"x": _get(doc, path)}]))
    elif kind == "deep":
        return json.dumps(_set(doc, path, "@@DEEP@@")).replace('"@@DEEP@@"', "[" * 10_000 + "]" * 10_000).encode()
    elif kind == "string":
        doc = _set(doc, path, rng.choice([v for v in HOSTILE_VALUES if isinstance(v, str)]))
    elif kind == "number":
        return json.dumps(_set(doc, path, "@@NUM@@")).replace(
            '"@@NUM@@"', rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1" + "0" * 5000])).encode()
    elif kind == "text":
        raw = bytearray(json.dumps(doc).encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw[: rng.randint(1, len(raw))] if rng.random() < 0.3 else raw)
    return json.dumps(doc).encode("utf-8", "surrogatepass")


def _embed(model: bytes, raw: bytes) -> bytes:
    from ai_edge_litert.tools import flatbuffer_utils as fb

    obj = fb.convert_bytearray_to_object(bytearray(model))
    entry = next(m for m in obj.metadata if m.name in (b"edgeq", "edgeq"))
    obj.buffers[entry.buffer].data = list(raw)
    return bytes(fb.convert_object_to_bytearray(obj))


def run_command(args: list[str], folder: Path) -> str:
    """Run the CLI in-process and classify the run (see the module docstring)."""
    from edgeq.cli import main

    before = sorted(p.name for p in folder.iterdir())
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(args)
    except BaseException:  # noqa: BLE001 - anything escaping main is what this looks for
        return "crash"
    if time.monotonic() - started > 10:
        return "slow"
    text = out.getvalue() + err.getvalue()
    if re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", text):
        return "escape"
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and "XNNPACK delegate" not in ln]
    if rc == 1:
        return "exit1"
    if rc != 0:
        if len(lines) != 1 or "Traceback" in text:
            return "dirty"
        if sorted(p.name for p in folder.iterdir()) != before:
            return "partial"
        return "clean"
    return "ok"


def _sample_documents() -> tuple[dict, dict]:
    from edgeq.metadata import read_metadata
    from edgeq.runtime import Model
    from edgeq.runtime.report import report_from_timings

    report = report_from_timings(Model(SAMPLE, threads=1), [1.0, 1.4, 0.9, 1.2, 1.1], 2.0)
    return read_metadata(SAMPLE).to_dict(), json.loads(report.to_json())


def json_campaign(mutants: int, seed: int = 0, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Mutate the metadata and a report ``mutants`` times each; count the outcomes per document and command."""
    metadata, report = _sample_documents()
    model = SAMPLE.read_bytes()
    counts: dict[str, Counter] = {"metadata": Counter(), "report": Counter()}
    examples: dict[str, list[dict[str, Any]]] = {"metadata": [], "report": []}
    with tempfile.TemporaryDirectory(prefix="edgeq-fuzz-json-") as tmp:
        folder = Path(tmp)
        for i in range(mutants):
            rng = random.Random(f"{seed}:{i}")
            kind = JSON_MUTATORS[i % len(JSON_MUTATORS)]
            for doc_name, doc in (("metadata", metadata), ("report", report)):
                raw = mutate(doc, rng, kind)
                if doc_name == "metadata":
                    (folder / "m.tflite").write_bytes(_embed(model, raw))
                    commands = [["inspect", "m.tflite"], ["inspect", "m.tflite", "--json"], ["run", "m.tflite", "--random"]]
                else:
                    (folder / "r.json").write_bytes(raw)
                    commands = [["compare", "r.json", "--json"], ["compare", "r.json", "--html", "c.html", "--png", "c.png"]]
                for args in commands:
                    for name in ("c.html", "c.png"):
                        (folder / name).unlink(missing_ok=True)
                    cwd = os.getcwd()
                    os.chdir(folder)
                    try:
                        outcome = run_command(args, folder)
                    finally:
                        os.chdir(cwd)
                    counts[doc_name][outcome] += 1
                    if outcome in BAD_OUTCOMES and len(examples[doc_name]) < 20:
                        examples[doc_name].append({"index": i, "mutator": kind, "command": args[0], "outcome": outcome,
                                                   "document": raw[:300].decode("utf-8", "replace")})
            if progress:
                progress(i)
    return {"mutants": mutants, "seed": seed, "mutators": list(JSON_MUTATORS),
            "outcomes": {k: dict(v) for k, v in counts.items()},
            "bad": sum(c[o] for c in counts.values() for o in BAD_OUTCOMES), "examples": examples}
