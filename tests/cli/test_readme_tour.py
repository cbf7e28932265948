"""The README as a new user reads it: the tour's commands run verbatim, and ``edgeq demo`` prints what it shows.

The tour (README "A 5-minute tour" up to "Camera apps") is read from README.md: every line starting with
``edgeq`` runs as printed, in a shell, in a folder holding the files it names; each must exit 0 and print every
"quoted" phrase of the ``→`` comment under it. It runs twice: on a small classifier this test trains (three
colour classes on raw 0-255 pixels, scaled by its own ``Rescaling(1/255)`` layer, as many real models are: the
tour's ``convert`` has no ``--normalize`` and must read the scaling from the model) and on the bundled sample's
files under the tour's names.

The demo block of the README must be what ``edgeq demo`` prints (the latency, the backend and the sample's
folder differ per machine and are compared as patterns), and the three commands it suggests must work.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import REPO

pytestmark = [pytest.mark.tf, pytest.mark.slow]

README = REPO / "README.md"
SAMPLE = REPO / "samples" / "fashion_mnist"
COLOURS = {"blue": (40, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def tour() -> list[tuple[str, list[str]]]:
    """``(command, phrases it must print)`` for each ``edgeq`` line of the README's tour, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## A 5-minute tour")
    section = text[start: text.index("\n### ", start)]  # the tour ends at the next section
    steps: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S):
        for line in block.splitlines():
            if line.startswith("edgeq "):
                steps.append((line.split("  #")[0].strip(), []))
            elif line.lstrip().startswith("#") and steps and ("→" in line or line.startswith("#      ")):
                steps[-1][1].extend(re.findall(r'"([^"]+)"', line))
    return steps


def shell(command: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run a README line in bash with this venv's ``edgeq`` first on PATH and a wide, colourless terminal."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "200", "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def _image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 32) -> np.ndarray:
    noise = rng.integers(-40, 40, (size, size, 3))
    return np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)


def trained_model(root: Path) -> str:
    """my_model.keras (three colour classes), my_images/<class>/*.png, labels.txt and photo.jpg (red); the answer."""
    import keras
    from PIL import Image

    rng = np.random.default_rng(0)
    xs, ys = [], []
    for index, (name, colour) in enumerate(COLOURS.items()):
        folder = root / "my_images" / name
        folder.mkdir(parents=True)
        for i in range(20):
            pixels = _image(colour, rng)
            Image.fromarray(pixels).save(folder / f"{i:02d}.png")
            xs.append(pixels.astype(np.float32))  # raw pixels: the model scales them itself
            ys.append(index)
    (root / "labels.txt").write_text("\n".join(COLOURS) + "\n")
    Image.fromarray(_image(COLOURS["red"], rng, 40)).save(root / "photo.jpg")
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(x))
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(np.asarray(xs, np.float32), np.asarray(ys), epochs=30, batch_size=20, verbose=0)
    model.save(root / "my_model.keras")
    return "red"


def bundled_sample(root: Path) -> str:
    """The sample's model, calibration images and labels under the tour's names; photo.jpg is a trouser."""
    from PIL import Image

    shutil.copy(SAMPLE / "model.keras", root / "my_model.keras")
    shutil.copytree(SAMPLE / "calib", root / "my_images")
    shutil.copy(SAMPLE / "labels.txt", root / "labels.txt")
    trouser = sorted((SAMPLE / "eval" / "1_trouser").iterdir())[0]
    Image.open(trouser).convert("L").save(root / "photo.jpg", quality=95)
    return "Trouser"


def test_the_readme_tour_lists_the_commands_it_shows() -> None:
    commands = [c for c, _ in tour()]
    assert commands[0].startswith("edgeq convert my_model.keras") and "edgeq doctor" in commands
    assert sum(bool(phrases) for _, phrases in tour()) >= 7  # the → comments were read


@pytest.mark.parametrize("make", [trained_model, bundled_sample], ids=["trained", "sample"])
def test_the_readme_tour_runs_as_printed(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    answer = make(tmp_path)
    for command, phrases in tour():
        proc = shell(command, tmp_path)
        assert proc.returncode == 0, f"{command}\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr and "XNNPACK" not in proc.stderr, f"{command}\n{proc.stderr}"
        for phrase in phrases:
            assert phrase in proc.stdout, f"{command} did not print {phrase!r}:\n{proc.stdout[-3000:]}"
        if command.endswith("photo.jpg --top 3"):
            rows = [ln for ln in proc.stdout.splitlines() if re.match(r"│\s+1 │", ln)]
            assert rows and answer in rows[0], proc.stdout  # the best label is the right one
    assert (tmp_path / "compare.png").stat().st_size > 5000 and "<svg" in (tmp_path / "compare.html").read_text()
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == len([p for p in (tmp_path / "my_images").rglob("*.png")])
    assert (tmp_path / "predictions.csv").read_text().startswith("input,latency_ms,label_1,score_1")


def _masked(text: str) -> list[str]:
    """Lines with what differs per machine replaced by placeholders: latency, backend and threads, install folder."""
    text = text.replace(str(REPO), "…")
    text = re.sub(r"\d+\.\d+ ms │$", "N ms │", text, flags=re.M)
    text = re.sub(r"latency: .*, \d+ thread\(s\)", "latency: BACKEND", text)
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_demo_prints_what_the_readme_shows_and_its_next_commands_work(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    shown = text[text.index("```text\nedgeq demo:") + len("```text\n"):]
    shown = shown[: shown.index("```")]
    proc = shell("edgeq demo", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _masked(proc.stdout) == _masked(shown)
    commands = [ln.strip() for ln in proc.stdout.splitlines() if ln.startswith("  edgeq ")]
    assert len(commands) == 3
    for command in commands:
        run = shell(command, tmp_path)
        assert run.returncode == 0, f"{command}\n{run.stderr[-3000:]}"
    assert (tmp_path / "fashion_int8.tflite").is_file()
    assert (tmp_path / "predictions.csv").read_text().count("\n") == 1001
    assert "drop vs reference" in run.stdout and "top-1 agreement" in run.stdout  # eval against model.keras
