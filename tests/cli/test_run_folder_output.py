"""``edgeq run`` on several inputs: one row per input (name, top label, score, ms) with steady column widths, a
class summary, and ``--csv FILE``; and ``edgeq demo --no-convert``'s sample path and next commands. No TensorFlow."""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest

from edgeq.cli import main
from edgeq.runtime import Model
from support import REPO

SAMPLE = REPO / "samples" / "fashion_mnist"
MODEL = SAMPLE / "model_int8.tflite"


def test_a_folder_gives_one_row_per_image_and_a_class_summary(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    folder = SAMPLE / "eval" / "1_trouser"
    images = sorted(folder.iterdir())
    out_csv = tmp_path / "p.csv"
    assert main(["run", str(MODEL), str(folder), "--csv", str(out_csv), "--top", "2"]) == 0
    captured = capsys.readouterr()
    rows = [ln for ln in captured.out.splitlines() if re.match(r"│ \d{5}\.png ", ln)]
    assert len(rows) == len(images) == 100  # one line per image, names relative to the folder given
    assert len({len(r) for r in rows}) == 1  # the same column widths for every image
    model = Model(MODEL)
    label, score = model.classify(images[3], 1)[0]
    assert re.match(rf"│ {images[3].name} │ {re.escape(label)} +│ {score:.4f} │ +\d+\.\d\d │", rows[3]), rows[3]
    summary = captured.out[captured.out.index("Top label per class"):]
    trousers = int(re.search(r"│ Trouser +│ +(\d+) │", summary).group(1))
    assert trousers >= 90  # the sample's eval accuracy on trousers is 98 %
    with out_csv.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 100 and list(table[0]) == ["input", "latency_ms", "label_1", "score_1", "label_2", "score_2"]
    assert table[3]["label_1"] == label and float(table[3]["score_1"]) == pytest.approx(score, abs=1e-6)
    assert f"wrote 100 row(s) to {out_csv}" in " ".join(captured.err.split())
    # an existing CSV is refused before anything runs
    assert main(["run", str(MODEL), str(folder), "--csv", str(out_csv)]) == 2


def test_the_demo_says_where_the_sample_is_and_what_to_try_next(capsys) -> None:
    assert main(["demo", "--no-convert"]) == 0
    out = capsys.readouterr().out
    assert f"The sample: {SAMPLE}" in out and "16,682 parameters" in out
    commands = [ln.strip() for ln in out.splitlines() if ln.startswith("  edgeq ")]
    assert [shlex.split(c)[1] for c in commands] == ["convert", "run", "eval"]
    for command in commands:  # each names files that exist (the output file of the first aside)
        paths = [a for a in shlex.split(command) if "/" in a]
        assert paths and all(Path(p).exists() for p in paths), command
