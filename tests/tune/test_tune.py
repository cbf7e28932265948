"""``edgeq tune``: candidates built from the bundled sample, measured without TensorFlow, picked under constraints.

The candidates (float32, int8, int8 keeping the debugger's worst layer in float) are built once per module
from ``samples/fashion_mnist`` through the CLI; measuring and picking run in a child process where importing
TensorFlow fails, on a 100-image subset of the sample's eval folder.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from support import REPO, error_line, run_cli

SAMPLE = REPO / "samples" / "fashion_mnist"
FAST = ("--threads", "1", "--runs", "5", "--warmup", "1")


@pytest.fixture(scope="module")
def eval_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 images of each class of the sample's eval folder."""
    root = tmp_path_factory.mktemp("tune-eval")
    for cls in sorted((SAMPLE / "eval").iterdir()):
        (root / cls.name).mkdir()
        for image in sorted(cls.iterdir())[:10]:
            shutil.copy(image, root / cls.name / image.name)
    return root


@pytest.fixture(scope="module")
def candidates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("tune") / "cands"
    proc = run_cli("tune", str(SAMPLE / "model.keras"), "--data", str(SAMPLE / "calib"), "--samples", "50",
                   "--labels", str(SAMPLE / "labels.txt"), "--modes", "float32,int8,int8-keep1",
                   "--candidates", str(folder), "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    return folder, json.loads(proc.stdout)


@pytest.fixture(scope="module")
def tuned(candidates: tuple[Path, dict], eval_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    folder, _ = candidates
    out = tmp_path_factory.mktemp("tune-out") / "best.tflite"
    proc = run_cli("tune", str(folder), "--eval-data", str(eval_subset), *FAST, "--max-drop", "3", "--json",
                   "--out", str(out), "--html", str(out.with_suffix(".html")), block_tf=True)
    assert proc.returncode == 0, proc.stderr  # 97: TensorFlow or Keras got imported
    return json.loads(proc.stdout), out


def _dominated(row: dict, rows: list[dict]) -> bool:
    def beats(a: dict, b: dict) -> bool:
        ge = a["top1"] >= b["top1"] and a["p50_ms"] <= b["p50_ms"] and a["size_kb"] <= b["size_kb"]
        return ge and (a["top1"] > b["top1"] or a["p50_ms"] < b["p50_ms"] or a["size_kb"] < b["size_kb"])

    return any(beats(other, row) for other in rows if other is not row)


@pytest.mark.tf
@pytest.mark.slow  # builds the module's candidates (~30 s: three conversions and the debugger)
def test_candidates_carry_their_recipe_and_a_rebuild_reuses_them(candidates):
    from edgeq.runtime.tune import discover

    folder, built = candidates
    assert sorted(built["files"]) == ["float32", "int8", "int8-keep1"] and not built["reused"]
    found = {c.name: c for c in discover(folder)}
    assert {n: c.mode for n, c in found.items()} == {"float32": "float32", "int8": "int8", "int8-keep1": "int8"}
    assert found["int8-keep1"].keep_float == tuple(built["keep_float"]["int8-keep1"]) and found["int8-keep1"].keep_float
    assert found["int8"].keep_float == () and found["int8"].size_bytes < found["float32"].size_bytes / 2
    again = run_cli("tune", str(SAMPLE / "model.keras"), "--data", str(SAMPLE / "calib"), "--samples", "50",
                    "--labels", str(SAMPLE / "labels.txt"), "--modes", "float32,int8,int8-keep1",
                    "--candidates", str(folder), "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["reused"] is True
    assert {c.name: c.sha256 for c in discover(folder)} == {n: c.sha256 for n, c in found.items()}


@pytest.mark.tf
def test_candidates_of_a_model_that_rescales_its_input_are_fed_raw_pixels(raw_pixel_classifier, tmp_path, capsys):
    """Without --normalize, every candidate (and the debugger choosing the keep-float layers) is calibrated on what
    the model's own Rescaling(1/255) expects, as convert does, and embeds it for the runtime."""
    from edgeq.cli import main
    from edgeq.metadata import read_metadata

    folder = tmp_path / "cands"
    assert main(["tune", str(raw_pixel_classifier.keras), "--data", str(raw_pixel_classifier.images), "--modes",
                 "int8,int8-keep1", "--candidates", str(folder), "--json"]) == 0, capsys.readouterr().err
    assert sorted(json.loads(capsys.readouterr().out)["files"]) == ["int8", "int8-keep1"]
    for name in ("int8", "int8-keep1"):
        meta = read_metadata(folder / f"{name}.tflite")
        assert meta.source["preprocessing"]["decided_by"] == "model" and meta.preprocess.scale == 1.0, name


@pytest.mark.tf
def test_on_device_tune_picks_a_candidate_that_meets_the_constraints_on_the_front(tuned, candidates, eval_subset):
    from edgeq.runtime.evaluate import evaluate

    report, out = tuned
    folder, _ = candidates
    rows = report["rows"]
    assert sorted({(r["candidate"], r["threads"]) for r in rows}) == [("float32", 1), ("int8", 1), ("int8-keep1", 1)]
    pick = report["pick"]
    assert pick is not None and pick["violations"] == [] and pick["drop_points"] <= 3
    assert pick["on_front"] and not _dominated(next(r for r in rows if r["candidate"] == pick["candidate"]), rows)
    assert [r["candidate"] for r in rows if r["on_front"]] == [r["candidate"] for r in rows if not _dominated(r, rows)]
    assert out.read_bytes() == (folder / f"{pick['candidate']}.tflite").read_bytes()
    # accuracy and agreement agree with 'edgeq eval' on the same data
    ref = evaluate(folder / "float32.tflite", eval_subset)
    by_name = {r["candidate"]: r for r in rows}
    assert by_name["float32"]["top1"] == pytest.approx(ref.top1) and by_name["float32"]["agreement"] == 1.0
    int8 = evaluate(folder / "int8.tflite", eval_subset, reference=folder / "float32.tflite")
    assert by_name["int8"]["top1"] == pytest.approx(int8.top1)
    assert by_name["int8"]["agreement"] == pytest.approx(int8.reference.agreement)
    assert by_name["int8"]["drop_points"] == pytest.approx(int8.reference.drop_points)
    assert all(r["p50_ms"] > 0 and r["p90_ms"] >= r["p50_ms"] and r["memory_mb"] > 0 for r in rows)
    chart = out.with_suffix(".html").read_text()
    assert chart.count("<title>") == len(rows) + 1 and chart.count('stroke="#b8443f"') == 1  # markers; the pick ring
    assert f"{pick['candidate']} ×1: top-1 {pick['top1']:.1%}" in chart


@pytest.mark.tf
def test_a_rerun_is_served_from_the_cache(tuned, candidates, eval_subset):
    report, _ = tuned
    folder, _ = candidates
    proc = run_cli("tune", str(folder), "--eval-data", str(eval_subset), *FAST, "--max-drop", "3", "--json",
                   block_tf=True)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["cached"] == len(again["rows"]) == len(report["rows"])
    assert [r["p50_ms"] for r in again["rows"]] == [r["p50_ms"] for r in report["rows"]]


@pytest.mark.tf
def test_nothing_meeting_the_constraints_exits_1_with_the_nearest(candidates, eval_subset, tmp_path):
    folder, _ = candidates
    out = tmp_path / "best.tflite"
    proc = run_cli("tune", str(folder), "--eval-data", str(eval_subset), *FAST, "--max-size-kb", "1",
                   "--out", str(out), block_tf=True)
    assert proc.returncode == 1, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    nearest = [ln for ln in lines if ln.startswith("nearest:")]
    assert len(nearest) == 3 and all("size" in ln and "> 1" in ln for ln in nearest)
    assert nearest[0].startswith("nearest: int8")  # the smallest file is nearest to a size limit
    assert lines[-1].startswith("CheckFailed: no candidate meets --max-size-kb 1")
    assert not out.exists()


@pytest.mark.tf
def test_merging_device_reports_takes_the_worst_case(tuned, tmp_path):
    report, _ = tuned
    slow = json.loads(json.dumps(report))
    victim = report["pick"]["candidate"]
    for row in slow["rows"]:
        if row["candidate"] == victim:
            row["p50_ms"] *= 1000
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report))
    b.write_text(json.dumps(slow))
    proc = run_cli("tune", "--merge", str(a), str(b), "--max-drop", "3", "--json", block_tf=True)
    assert proc.returncode == 0, proc.stderr
    merged = json.loads(proc.stdout)
    assert merged["pick"]["candidate"] != victim
    assert next(r for r in merged["rows"] if r["candidate"] == victim)["p50_ms"] == pytest.approx(
        next(r for r in slow["rows"] if r["candidate"] == victim)["p50_ms"])


@pytest.mark.parametrize("args, expected", [
    (["nowhere/", "--eval-data", str(SAMPLE / "eval")], "nowhere not found; give a .keras/.h5/SavedModel to convert"),
    ([str(SAMPLE), "--prefer", "speed"], "--prefer must be one of latency, size, accuracy"),
    ([str(SAMPLE), "--max-drop", "-1"], "--max-drop must be a number of at least 0"),
    (["--merge", "one.json"], "--merge takes at least two reports"),
    ([], "give a model"),
    ([str(SAMPLE / "model.keras"), "--candidates", "c/", "--out", "b.tflite"], "--candidates only builds"),
    ([str(SAMPLE / "model.keras"), "--modes", "int7", "--eval-data", str(SAMPLE / "eval")], "unknown candidate(s) int7"),
    ([str(SAMPLE / "model.keras"), "--modes", "int8", "--eval-data", str(SAMPLE / "eval"), "--max-drop", "1"],
     "add float32 to --modes"),
])
def test_bad_input_exits_2_with_one_line(args, expected, capsys):
    from edgeq.cli import main

    assert main(["tune", *args]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and expected in err[0], err


@pytest.mark.parametrize("args, expected", [
    ([str(SAMPLE / "model.keras"), "--data", str(SAMPLE / "calib")], "tune needs --eval-data"),
    ([str(SAMPLE / "model.keras"), "--eval-data", "missing/"], "labelled data not found: missing/"),
    ([str(SAMPLE / "model.keras"), "--eval-data", str(SAMPLE / "eval"), "--runs", "0"], "--runs must be at least 1"),
    ([str(SAMPLE / "model.keras"), "--eval-data", str(SAMPLE / "eval"), "--modes", "float32,int8"],
     "candidates int8 need representative data"),
])
def test_bad_options_are_refused_before_anything_is_built(args, expected):
    proc = run_cli("tune", *args, block_tf=True)  # a build would import TensorFlow, which is blocked here
    assert proc.returncode == 2, proc.stderr
    assert expected in error_line(proc)


def test_a_candidates_folder_without_eval_data_exits_2(tmp_path):
    shutil.copy(SAMPLE / "model_int8.tflite", tmp_path / "int8.tflite")
    proc = run_cli("tune", str(tmp_path), block_tf=True)
    assert proc.returncode == 2 and "tune needs --eval-data" in error_line(proc)


# ------------------------------------------------------------------------- picking, on synthetic rows
def _rows(rng: random.Random, n: int) -> list:
    from edgeq.runtime.tune import Candidate, Row

    rows = []
    for i in range(n):
        size = rng.choice([10_000, 20_000, 40_000, 80_000])
        cand = Candidate(f"c{i}", Path(f"c{i}.tflite"), "int8", (), size, f"{i:064x}")
        top1 = rng.choice([0.80, 0.85, 0.9, 0.91])
        rows.append(Row(cand, rng.choice([1, 2]), top1, None, (0.91 - top1) * 100, rng.choice([1.0, 2.0, 3.0, 5.0]),
                        6.0, rng.choice([3.0, 5.0, 8.0])))
    return rows


@pytest.mark.parametrize("prefer", ["latency", "size", "accuracy"])
def test_the_pick_is_the_best_feasible_row_on_the_front(prefer):
    from edgeq.runtime.tune import Constraints, pick

    rng = random.Random(7)
    picked = 0
    for _ in range(300):
        rows = _rows(rng, rng.randint(1, 8))
        limits = Constraints(max_drop=rng.choice([None, 0.5, 6.0]), max_latency_ms=rng.choice([None, 1.5, 3.0]),
                             max_size_kb=rng.choice([None, 15, 50]), max_memory_mb=rng.choice([None, 4.0, 6.0]))
        best, why, nearest = pick(rows, limits, prefer, reference="float32")

        def ok(r) -> bool:  # noqa: ANN001
            return ((limits.max_drop is None or r.drop_points <= limits.max_drop)
                    and (limits.max_latency_ms is None or r.p50_ms <= limits.max_latency_ms)
                    and (limits.max_size_kb is None or r.size_kb <= limits.max_size_kb)
                    and (limits.max_memory_mb is None or r.memory_mb <= limits.max_memory_mb))

        feasible = [r for r in rows if ok(r)]
        if not feasible:
            assert best is None and nearest and why.startswith("no candidate meets")
            continue
        picked += 1
        assert best in feasible and not nearest
        key = {"latency": lambda r: r.p50_ms, "size": lambda r: r.size_kb, "accuracy": lambda r: -r.top1}[prefer]
        candidates = [r for r in feasible if r.on_front] or feasible  # the front, unless a memory limit empties it
        assert key(best) == min(key(r) for r in candidates)
        dominated = any(o.top1 >= best.top1 and o.p50_ms <= best.p50_ms and o.size_kb <= best.size_kb
                        and (o.top1, -o.p50_ms, -o.size_kb) != (best.top1, -best.p50_ms, -best.size_kb) for o in rows)
        assert best.on_front == (not dominated)
        if limits.max_memory_mb is None:  # only a memory limit can rule out every row that dominates the pick
            assert best.on_front
    assert picked > 50


def test_max_drop_without_a_float32_candidate_is_a_usage_error():
    from edgeq.errors import UsageError
    from edgeq.runtime.tune import Constraints, pick

    with pytest.raises(UsageError, match="float32 candidate"):
        pick(_rows(random.Random(1), 3), Constraints(max_drop=1.0), "latency", reference=None)


@pytest.mark.tf
@pytest.mark.slow  # two conversions
def test_the_workstation_flow_builds_measures_and_writes_the_pick(eval_subset, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # where candidates are kept without --candidates
    out = tmp_path / "best.tflite"
    args = ("tune", str(SAMPLE / "model.keras"), "--modes", "float32,float16", "--labels", str(SAMPLE / "labels.txt"),
            "--eval-data", str(eval_subset), *FAST, "--no-memory", "--prefer", "size", "--json")
    proc = run_cli(*args, "--out", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["pick"]["candidate"] == "float16" and report["pick"]["memory_mb"] is None  # half the size
    folder = next((tmp_path / "cache" / "edgeq" / "tune").iterdir())
    assert out.read_bytes() == (folder / "float16.tflite").read_bytes()
    again = run_cli(*args, block_tf=True)  # built and measured already: nothing needs TensorFlow now
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["cached"] == 2
