"""Accuracy of a model on labelled data: top-1/top-5, per class, confusion, and against a reference model.

Labelled data comes in three forms, all read by :func:`read_labelled`:

* an ImageNet-style folder: ``folder/<class>/<image>``;
* images listed in a CSV file (``image,label`` rows, paths relative to the CSV; a folder holding
  one ``labels.csv`` counts too);
* a ``.npz`` file with ``x`` (preprocessed arrays, one per sample) and ``y`` (class indices, names or one-hot).

Class names are mapped to the model's class indices through the model's embedded labels (``0_tshirt_top``
matches ``T-shirt/top``), else through an ``N_`` index prefix, else by sorted order.

Never imports TensorFlow, except that a Keras ``reference`` needs it (loaded through ``edgeq.converters``).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from edgeq._progress import track
from edgeq.errors import DataError, ModelError
from edgeq.metadata import Preprocess
from edgeq.runtime.output_stats import OutputStats, per_output, sqnr_db
from edgeq.runtime.preprocess import IMAGE_EXTENSIONS, default_preprocess, image_to_array

#: how many most-confused (true, predicted) pairs the summary lists
CONFUSED_PAIRS = 5
#: samples a Keras reference predicts at once
REFERENCE_BATCH = 32


@dataclass(frozen=True)
class LabelledImages:
    """Image paths with their class index; ``classes`` are the folder names in index order."""

    paths: tuple[Path, ...]
    labels: np.ndarray
    classes: tuple[str, ...]


def labelled_folder(folder: str | os.PathLike) -> LabelledImages:
    """Read an ImageNet-style folder: ``folder/<class>/<image>``; class index = sorted folder order.

    Raises:
        DataError: the folder is missing or holds no class folders with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"labelled data folder not found: {root}")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        paths += files
        labels += [index] * len(files)
    if not paths:
        raise DataError(f"no labelled images in {root}: expected class sub-folders holding {', '.join(IMAGE_EXTENSIONS)} files")
    return LabelledImages(tuple(paths), np.asarray(labels), tuple(classes))


def top1_accuracy(predict: Callable[[Any], np.ndarray], items: Sequence[Any], labels: np.ndarray, what: str) -> float:
    """Share of ``items`` whose arg-max prediction equals the label."""
    correct = 0
    for item, label in zip(track(items, what), labels):
        correct += int(np.argmax(predict(item)) == label)
    return correct / len(labels)


# ------------------------------------------------------------------------------------ reading data
@dataclass(frozen=True)
class LabelledData:
    """Labelled samples with labels already mapped to the model's class indices.

    Attributes:
        items: image paths, or preprocessed float32 arrays with a batch dimension of 1.
        labels: the model class index of each item.
        source: where the data came from.
        kind: ``images`` or ``arrays``.
        mapping: how data classes became model class indices: ``labels`` (names matched the model's labels),
            ``index`` (an ``N_`` prefix), ``order`` (sorted names) or ``indices`` (the data holds class indices).
        data_classes: the class names as the data spells them, with the model index each maps to.
    """

    items: tuple[Any, ...]
    labels: np.ndarray
    source: str
    kind: str
    mapping: str
    data_classes: tuple[tuple[str, int], ...] = ()

    def arrays(self, preprocess: Preprocess | None) -> Iterator[np.ndarray]:
        """Each item as a float32 model input with a batch dimension (images go through ``preprocess``)."""
        for item in self.items:
            if self.kind == "arrays":
                yield item
            else:
                if preprocess is None:
                    raise DataError("the data holds images but the model's input is not an image; pass a .npz of arrays")
                yield image_to_array(item, preprocess)[None]


def _norm(name: str) -> str:
    """``0_tshirt_top`` and ``T-shirt/top`` both become ``tshirttop``."""
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^\d+[_\- .]+(?=\D)", "", name.strip().lower()))


def _index_prefix(name: str) -> int | None:
    match = re.match(r"^(\d+)(?:$|[_\- .])", name.strip())
    return int(match.group(1)) if match else None


def map_classes(names: Sequence[str], labels: Sequence[str], num_classes: int | None) -> tuple[list[int], str]:
    """Model class index of each data class name, and how it was found.

    Tried in order: the model's labels (names compared without case, punctuation or an ``N_`` prefix),
    an integer index (``3`` or ``3_dress``), and sorted order when the class counts match.

    Raises:
        DataError: the names cannot be mapped and the counts differ, or an index is out of range.
    """
    by_label = {_norm(label): i for i, label in enumerate(labels)}
    if labels and all(_norm(n) in by_label for n in names):
        return [by_label[_norm(n)] for n in names], "labels"
    prefixes = [_index_prefix(n) for n in names]
    if all(p is not None for p in prefixes) and (num_classes is None or max(prefixes) < num_classes):  # type: ignore[type-var]
        return [int(p) for p in prefixes], "index"  # type: ignore[arg-type]
    if num_classes is None or len(names) == num_classes:
        order = sorted(range(len(names)), key=lambda i: names[i])
        index = [0] * len(names)
        for rank, i in enumerate(order):
            index[i] = rank
        return index, "order"
    shown = ", ".join(sorted(names)[:6]) + (", …" if len(names) > 6 else "")
    hint = (f"name them like the model's labels ({', '.join(labels[:4])}{', …' if len(labels) > 4 else ''})"
            if labels else "prefix them with the class index (0_cat, 1_dog, …)")
    raise DataError(
        f"the data has {len(names)} classes ({shown}) but the model outputs {num_classes} classes, and the names "
        f"do not match the model's labels; {hint}"
    )


def _from_folder(root: Path, labels: Sequence[str], num_classes: int | None) -> LabelledData:
    found = labelled_folder(root)
    index, mapping = map_classes(found.classes, labels, num_classes)
    lookup = np.asarray(index)
    return LabelledData(found.paths, lookup[found.labels], str(root), "images", mapping,
                        tuple(zip(found.classes, index)))


def _from_csv(path: Path, labels: Sequence[str], num_classes: int | None) -> LabelledData:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read labels CSV {path}: {exc}") from None
    if rows and not (path.parent / rows[0][0].strip()).is_file():
        rows = rows[1:]  # a header row
    if not rows:
        raise DataError(f"labels CSV {path} has no rows; expected 'image,label' per line")
    paths, names = [], []
    for number, row in enumerate(rows, 1):
        if len(row) < 2:
            raise DataError(f"labels CSV {path} row {number} has {len(row)} column(s); expected 'image,label'")
        image = path.parent / row[0].strip()
        if not image.is_file():
            raise DataError(f"labels CSV {path} row {number} names {row[0].strip()!r}, which is not a file next to the CSV")
        paths.append(image)
        names.append(row[1].strip())
    classes = sorted(set(names))
    index, mapping = map_classes(classes, labels, num_classes)
    lookup = dict(zip(classes, index))
    return LabelledData(tuple(paths), np.asarray([lookup[n] for n in names]), str(path), "images", mapping,
                        tuple(zip(classes, index)))


def _from_npz(path: Path, labels: Sequence[str], num_classes: int | None) -> LabelledData:
    try:
        with np.load(path, allow_pickle=False) as loaded:
            if not {"x", "y"} <= set(loaded.keys()):
                raise DataError(f"{path} holds arrays {sorted(loaded.keys())}; a labelled .npz needs 'x' and 'y'")
            x, y = loaded["x"], loaded["y"]
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}") from None
    if y.dtype.kind == "f" and not (y.ndim == 2 and y.shape[1] > 1):
        raise DataError(f"{path} 'y' holds floats ({y.dtype}); it must hold class indices (integers), class names "
                        "(strings) or one-hot rows")
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1)
    if len(x) != len(y) or not len(y):
        raise DataError(f"{path} has {len(x)} samples in 'x' but {len(y)} labels in 'y'; they must match and not be empty")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError(f"{path} 'x' must hold finite numbers (preprocessed model inputs)")
    if np.issubdtype(y.dtype, np.integer):
        if y.min() < 0 or (num_classes is not None and y.max() >= num_classes):
            raise DataError(f"{path} 'y' has class indices {int(y.min())}..{int(y.max())} but the model has "
                            f"{num_classes} classes (0..{(num_classes or 1) - 1})")
        index, mapping = y.astype(int), "indices"
        data_classes: tuple[tuple[str, int], ...] = tuple((str(i), int(i)) for i in np.unique(y))
    else:
        names = [str(v) for v in y]
        classes = sorted(set(names))
        mapped, mapping = map_classes(classes, labels, num_classes)
        lookup = dict(zip(classes, mapped))
        index = np.asarray([lookup[n] for n in names])
        data_classes = tuple(zip(classes, mapped))
    items = tuple(np.asarray(a, dtype=np.float32)[None] for a in x)
    return LabelledData(items, np.asarray(index), str(path), "arrays", mapping, data_classes)


def read_labelled(data: str | os.PathLike, labels: Sequence[str] = (), num_classes: int | None = None) -> LabelledData:
    """Read labelled data (see the module docstring) and map its classes onto the model's.

    Args:
        data: a class-folder tree, a labels CSV (or a folder with one ``labels.csv``), or a ``.npz`` with ``x``/``y``.
        labels: the model's class names, in index order (may be empty).
        num_classes: how many classes the model outputs, when known.

    Raises:
        DataError: the data is missing, empty, unreadable, or its classes do not fit the model's.
    """
    path = Path(data)
    if path.is_dir():
        if (path / "labels.csv").is_file():
            return _from_csv(path / "labels.csv", labels, num_classes)
        return _from_folder(path, labels, num_classes)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _from_csv(path, labels, num_classes)
    if path.is_file() and path.suffix.lower() == ".npz":
        return _from_npz(path, labels, num_classes)
    if path.exists():
        raise DataError(f"cannot use {path} as labelled data: expected a folder of class sub-folders, a labels CSV or a .npz with x and y")
    raise DataError(f"labelled data not found: {path}")


# --------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ClassAccuracy:
    """Top-1 accuracy on the samples of one class."""

    name: str
    samples: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.samples if self.samples else None


@dataclass(frozen=True)
class ReferenceComparison:
    """The model against a reference model on the same samples.

    Attributes:
        name: the reference file.
        top1, top5: the reference's accuracies.
        drop_points: reference top-1 minus model top-1, in percentage points (positive = the model is worse).
        agreement: share of samples where both models predict the same top-1 class.
        sqnr_db: signal-to-noise ratio of the model's scores against the reference's (``inf`` = identical).
        outputs: the same comparison per output (:class:`~edgeq.runtime.output_stats.OutputStats`: SQNR, mean and
            max absolute error, top-1 agreement), in the model's output order.
    """

    name: str
    top1: float
    top5: float
    drop_points: float
    agreement: float
    sqnr_db: float
    outputs: tuple[OutputStats, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "top1": self.top1, "top5": self.top5, "drop_points": self.drop_points,
                "agreement": self.agreement, "sqnr_db": self.sqnr_db if math.isfinite(self.sqnr_db) else None,
                "outputs": [o.to_dict() for o in self.outputs]}


@dataclass
class EvalResult:
    """What :func:`evaluate` measured.

    Attributes:
        model: the evaluated model's name.
        data: the labelled data's source.
        samples: how many samples were evaluated.
        classes: the model's class names (labels, or indices as strings), in index order.
        mapping: how the data's classes were mapped to the model's (see :class:`LabelledData`).
        top1, top5: accuracies (``top5`` is top-``k`` with ``k = min(5, classes)``).
        k: the ``k`` of ``top5``.
        per_class: accuracy of each class present in the data.
        confusion: ``classes x classes`` counts, rows = true class, columns = predicted class.
        reference: the comparison with ``--reference``, if one was given.
        seconds: wall time of the evaluation.
    """

    model: str
    data: str
    samples: int
    classes: tuple[str, ...]
    mapping: str
    top1: float
    top5: float
    k: int
    per_class: list[ClassAccuracy]
    confusion: np.ndarray
    reference: ReferenceComparison | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def most_confused(self, n: int = CONFUSED_PAIRS) -> list[tuple[str, str, int]]:
        """The ``n`` largest off-diagonal confusion counts: ``(true class, predicted class, count)``."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:n]
        pairs = [np.unravel_index(i, off.shape) for i in order]
        return [(self.classes[t], self.classes[p], int(off[t, p])) for t, p in pairs if off[t, p] > 0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "data": self.data, "samples": self.samples, "classes": list(self.classes),
            "mapping": self.mapping, "top1": self.top1, "top5": self.top5, "k": self.k,
            "per_class": [{"name": c.name, "samples": c.samples, "correct": c.correct, "accuracy": c.accuracy}
                          for c in self.per_class],
            "confusion": self.confusion.tolist(),
            "most_confused": [{"true": t, "predicted": p, "count": n} for t, p, n in self.most_confused()],
            "reference": self.reference.to_dict() if self.reference else None,
            "seconds": self.seconds, "notes": list(self.notes),
        }


# ------------------------------------------------------------------------------------ evaluation
class _Scores:
    """Top-1/top-k bookkeeping for one model over a stream of score vectors."""

    def __init__(self, classes: int, k: int) -> None:
        self.k = k
        self.confusion = np.zeros((classes, classes), dtype=np.int64)
        self.in_top_k = 0

    def add(self, scores: np.ndarray, label: int) -> int:
        predicted = int(np.argmax(scores))
        self.confusion[label, predicted] += 1
        best = np.argpartition(-scores, self.k - 1)[: self.k]
        self.in_top_k += int(label in best)
        return predicted

    @property
    def samples(self) -> int:
        return int(self.confusion.sum())

    @property
    def top1(self) -> float:
        return float(np.trace(self.confusion)) / self.samples

    @property
    def topk(self) -> float:
        return self.in_top_k / self.samples


def _first_output(predict: Callable[[np.ndarray], Any], x: np.ndarray) -> np.ndarray:
    out = predict(x)
    if isinstance(out, dict):
        out = next(iter(out.values()))
    elif isinstance(out, (list, tuple)):
        out = out[0]
    return np.asarray(out, dtype=np.float32).reshape(-1)


def model_preprocess(model: Any) -> Preprocess | None:
    """The image preprocessing ``model`` applies: its embedded one, else the runtime default for its input."""
    spec = model.inputs[0]
    if not spec.is_image:
        return None
    pp = model.preprocess or default_preprocess(spec.shape)
    if pp is not None and pp.size is None:
        pp = Preprocess(**{**pp.to_dict(), "size": spec.shape[1:3], "mean": pp.mean, "std": pp.std})
    return pp


def _shape_fits(a: Sequence[int | None], b: Sequence[int | None]) -> bool:
    return len(a) == len(b) and all(x in (None, -1) or y in (None, -1) or x == y for x, y in zip(a, b))


@contextlib.contextmanager
def _reference(path: str | os.PathLike, model: Any, threads: int | None) -> Iterator[Callable[[list[np.ndarray]], list[np.ndarray]]]:
    """A batch predict function (inputs → first-output score vectors) for the reference model, after checking
    that it takes the model's input shape."""
    from edgeq.runtime.model import Model

    ref_path = Path(path)
    if not ref_path.exists():
        raise ModelError(f"reference model not found: {ref_path}")
    want = model.inputs[0].shape_signature
    if ref_path.is_file() and ref_path.read_bytes()[4:8] == b"TFL3":
        ref = Model(ref_path, threads=threads)
        if len(ref.inputs) != 1 or not _shape_fits(ref.inputs[0].shape_signature[1:], want[1:]):
            raise DataError(f"the reference {ref_path.name} takes input {[list(s.shape_signature) for s in ref.inputs]} but "
                            f"{Path(model.name).name} takes {list(want)}; eval feeds both the same data, so they must match")
        yield lambda xs: [_first_output(ref.predict, x) for x in xs]
        return
    # a Keras/SavedModel reference needs TensorFlow (the [convert] extra); loaded only here
    from edgeq.converters.source import load_source

    with tempfile.TemporaryDirectory(prefix="edgeq-eval-") as workdir:
        source = load_source(ref_path, workdir)
        if len(source.inputs) != 1 or not _shape_fits(source.inputs[0].shape[1:], want[1:]):
            raise DataError(f"the reference {ref_path.name} takes input {[list(s.shape) for s in source.inputs]} but "
                            f"{Path(model.name).name} takes {list(want)}; eval feeds both the same data, so they must match")
        if source.inputs[0].shape[0] is None:  # a dynamic batch: predict a chunk at once
            yield lambda xs: list(source.predict([np.concatenate(xs)])[0].reshape(len(xs), -1))
        else:
            yield lambda xs: [source.predict([x])[0].reshape(-1) for x in xs]


def _chunks(items: Any, size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def evaluate(
    model: Any,
    data: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    threads: int | None = None,
) -> EvalResult:
    """Measure a classifier's accuracy on labelled data, optionally against a reference model.

    Args:
        model: a ``.tflite`` path or bytes, or a loaded :class:`~edgeq.runtime.Model`.
        data: labelled data (see :func:`read_labelled`); images go through the model's embedded preprocessing.
        reference: a ``.tflite``, ``.keras``, ``.h5`` or SavedModel to compare with (a Keras model needs TensorFlow).
        threads: interpreter threads.

    Returns:
        An :class:`EvalResult`.

    Raises:
        ModelError: the model or reference cannot be loaded, or the model is not a classifier.
        DataError: the data is unreadable, does not fit the model, or the reference takes another input shape.
    """
    from edgeq.runtime.model import Model

    started = time.perf_counter()
    if not isinstance(model, Model):
        model = Model(model, threads=threads)
    out_shape = model.outputs[0].shape
    if len(model.outputs) != 1 or len(out_shape) != 2 or out_shape[1] < 2:
        raise ModelError(f"{model.name} is not a classifier: eval needs one output of shape (1, classes); it has "
                         f"{[list(s.shape) for s in model.outputs]}")
    classes = int(out_shape[1])
    labelled = read_labelled(data, model.labels, classes)
    if len(model.labels) == classes:
        names = tuple(model.labels)
    else:  # no labels in the model: name each class as the data does, where a data class maps to it
        by_index = {i: name for name, i in labelled.data_classes}
        names = tuple(by_index.get(i, str(i)) for i in range(classes))
    k = min(5, classes)
    scores, ref_scores = _Scores(classes, k), _Scores(classes, k)
    agree = 0
    output_name = model.outputs[0].name
    compared: tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]]] = ([], [])  # (reference, model)
    notes = []
    if labelled.mapping == "order" or (labelled.mapping == "index" and model.labels):
        how = "their index prefix" if labelled.mapping == "index" else "sorted name order"
        notes.append(f"the data's class names do not match the model's labels; mapped by {how}: "
                     + ", ".join(f"{n}→{names[i]}" for n, i in labelled.data_classes[:4])
                     + (", …" if len(labelled.data_classes) > 4 else ""))
    pp = model_preprocess(model)
    with contextlib.ExitStack() as stack:
        ref_predict = stack.enter_context(_reference(reference, model, threads)) if reference is not None else None
        pairs = track(zip(labelled.arrays(pp), labelled.labels), f"Evaluating {model.name}", total=len(labelled.items))
        for chunk in _chunks(pairs, REFERENCE_BATCH):
            refs = ref_predict([x for x, _ in chunk]) if ref_predict is not None else []
            for n, (x, label) in enumerate(chunk):
                out = _first_output(model.predict, x)
                predicted = scores.add(out, int(label))
                if ref_predict is not None:
                    ref = np.asarray(refs[n], dtype=np.float64)
                    agree += int(ref_scores.add(ref, int(label)) == predicted)
                    compared[0].append({output_name: ref[None]})
                    compared[1].append({output_name: out[None]})
    comparison = None
    if reference is not None:
        everything = [np.concatenate([c[output_name].reshape(-1) for c in side]) for side in compared]
        comparison = ReferenceComparison(
            Path(reference).name, ref_scores.top1, ref_scores.topk, (ref_scores.top1 - scores.top1) * 100,
            agree / scores.samples, sqnr_db(*everything), tuple(per_output(*compared)),
        )
    present = sorted({int(i) for i in labelled.labels})
    per_class = [ClassAccuracy(names[i], int(scores.confusion[i].sum()), int(scores.confusion[i, i])) for i in present]
    return EvalResult(model.name, labelled.source, scores.samples, names, labelled.mapping, scores.top1, scores.topk, k,
                      per_class, scores.confusion, comparison, time.perf_counter() - started, notes)
