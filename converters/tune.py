"""Build the candidate models ``edgeq tune`` measures: one Keras model converted every sensible way.

Candidates (each a ``.tflite`` file named after it, with the ``edgeq`` metadata embedded by
:func:`~edgeq.converters.convert`):

* ``float32``, ``float16``, ``dynamic``, ``int8``, ``uint8``;
* ``int8-keep1``, ``int8-keep2``…: int8 keeping the debugger's worst 1, 2… layers in float
  (:func:`~edgeq.converters.debug.debug`);
* ``int8-weights``, ``int4-weights`` when ai-edge-quantizer (the ``[int4]`` extra) is installed;
* on request (``modes``): ``int8-refine`` and ``int4-refine``, the same conversions with ``refine=True``
  (:mod:`edgeq.converters.refine`; not built by default: refining costs 2-12x a conversion).

The folder gets a ``tune-candidates.json`` manifest keyed by the model's hash, the data's hash and the
options, so building again with the same inputs reuses the files.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from edgeq._io import atomic_write, sha256_file, sha256_of
from edgeq._progress import step
from edgeq.errors import ConversionError, ModelError, UsageError

log = logging.getLogger(__name__)

MANIFEST = "tune-candidates.json"
BASE_CANDIDATES = ("float32", "float16", "dynamic", "int8", "uint8")
WEIGHT_ONLY_CANDIDATES = ("int8-weights", "int4-weights")
#: refined candidates (built only when named in ``modes``) -> the mode they refine
REFINED_CANDIDATES = {"int8-refine": "int8", "int4-refine": "int4-weights"}
#: the most layers a keep-float candidate keeps in float
MAX_KEEP = 3


@dataclass
class BuildResult:
    """The candidates :func:`build_candidates` wrote (or found already built).

    Attributes:
        folder: where the candidate files are.
        files: candidate name → ``.tflite`` path, in build order.
        keep_float: candidate name → the layers it keeps in float (keep-float candidates only).
        skipped: candidate name → why it could not be built (e.g. an op without an int8 kernel).
        reused: whether the files came from an earlier build with the same inputs.
    """

    folder: Path
    files: dict[str, Path]
    keep_float: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "files": {k: str(v) for k, v in self.files.items()},
                "keep_float": self.keep_float, "skipped": self.skipped, "reused": self.reused}


def candidate_names(keep_layers: int = 2, modes: Sequence[str] | None = None) -> list[str]:
    """The candidates to build: all available ones, or those named in ``modes`` (validated).

    Raises:
        UsageError: an unknown name, or ``keep_layers`` out of range.
    """
    if not 0 <= keep_layers <= MAX_KEEP:
        raise UsageError(f"--keep-layers must be between 0 and {MAX_KEEP}. Received: {keep_layers}")
    keep = [f"int8-keep{n}" for n in range(1, keep_layers + 1)]
    weight_only = list(WEIGHT_ONLY_CANDIDATES) if importlib.util.find_spec("ai_edge_quantizer") else []
    available = [*BASE_CANDIDATES, *keep, *weight_only]
    if not modes:
        return available
    known = [*BASE_CANDIDATES, *(f"int8-keep{n}" for n in range(1, MAX_KEEP + 1)), *WEIGHT_ONLY_CANDIDATES,
             *REFINED_CANDIDATES]
    bad = [m for m in modes if m not in known]
    if bad:
        raise UsageError(f"unknown candidate(s) {', '.join(bad)}; choose from {', '.join(known)}")
    return list(dict.fromkeys(modes))


def _build_key(model: str | os.PathLike, data: Any, names: Sequence[str], options: dict[str, Any]) -> str:
    data_id = sha256_file(data) if isinstance(data, (str, os.PathLike)) and Path(data).exists() else repr(data)
    parts = {"model": sha256_file(model), "data": data_id, "names": list(names), "options": options}
    return sha256_of(json.dumps(parts, sort_keys=True, default=str).encode())


def _reuse(folder: Path, key: str) -> BuildResult | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != key:
        return None
    files = {name: folder / f"{name}.tflite" for name in manifest.get("files", [])}
    if not all(p.is_file() for p in files.values()):
        return None
    return BuildResult(folder, files, manifest.get("keep_float", {}), manifest.get("skipped", {}), reused=True)


def build_candidates(
    model: str | os.PathLike,
    data: Any,
    folder: str | os.PathLike,
    names: Sequence[str] | None = None,
    keep_layers: int = 2,
    force: bool = False,
    **options: Any,
) -> BuildResult:
    """Convert ``model`` into every candidate and write them to ``folder``.

    Args:
        model: a Keras ``.keras``/``.h5`` file or a SavedModel folder.
        data: representative data, as for :func:`~edgeq.converters.convert`.
        folder: the candidates folder (created if missing).
        names: candidates to build (see :func:`candidate_names`); default all available.
        keep_layers: keep-float candidates to build (``int8-keep1``..``int8-keepN``).
        force: replace candidate files of another build in ``folder``.
        **options: ``convert`` options shared by every candidate: ``samples``, ``seed``, ``resize``,
            ``normalize``, ``force_normalize``, ``bgr``, ``labels``, ``calibration``.

    Returns:
        A :class:`BuildResult`; candidates the converter cannot make are listed in ``skipped``.

    Raises:
        UsageError, ModelError, DataError, DependencyMissing: bad input (found while building ``float32``).
        ConversionError: the ``float32`` candidate cannot be built (the others are skipped instead).
    """
    from edgeq.converters.convert import convert
    from edgeq.converters.debug import debug

    names = list(names) if names else candidate_names(keep_layers)
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise UsageError(f"--candidates {root} is a file; give a folder")
    if not Path(model).exists():
        raise ModelError(f"model not found: {model}; give a .keras, .h5 file or SavedModel folder")
    needing = [n for n in names if n in ("int8", "uint8") or n.startswith("int8-keep")]
    if data is None and needing:
        raise UsageError(f"candidates {', '.join(needing)} need representative data: pass --data (an image folder, "
                         "video, .npy/.npz or module:function), or leave them out with --modes")
    key = _build_key(model, data, names, options)
    if root.is_dir():
        reused = _reuse(root, key)
        if reused is not None:
            return reused
        if any(root.glob("*.tflite")) and not force:
            raise UsageError(f"{root} holds candidates of another model or other options; pass --force to replace "
                             "them or choose an empty folder")
    root.mkdir(parents=True, exist_ok=True)
    result = BuildResult(root, {})
    keep_names = sorted((n for n in names if n.startswith("int8-keep")), key=lambda n: int(n[len("int8-keep"):]))
    with tempfile.TemporaryDirectory(prefix=".edgeq-tune-", dir=root) as work:
        with step("Building candidates", len(names)) as advance:
            for name in [n for n in names if not n.startswith("int8-keep")]:
                try:
                    convert(model, data, Path(work) / f"{name}.tflite", mode=REFINED_CANDIDATES.get(name, name),
                            refine=name in REFINED_CANDIDATES, **options)
                    result.files[name] = root / f"{name}.tflite"
                except ConversionError as exc:
                    if name == "float32":
                        raise
                    result.skipped[name] = str(exc)
                advance(1)
            if keep_names:
                calibration = {k: options[k] for k in ("samples", "seed", "resize", "normalize", "force_normalize",
                                                         "bgr", "calibration") if k in options}
                try:
                    worst = list(dict.fromkeys(r.name for r in debug(model, data, **calibration).layers if r.name))
                except ConversionError as exc:  # e.g. an op without an int8 kernel: no keep-float variant either
                    worst, why = [], f"the debugger cannot run: {exc}"
                else:
                    why = f"the model has only {len(worst)} quantized layers"
                for name in keep_names:
                    count = int(name[len("int8-keep"):])
                    if len(worst) < count:
                        result.skipped[name] = why
                    else:
                        try:
                            convert(model, data, Path(work) / f"{name}.tflite", mode="int8",
                                    keep_float=worst[:count], **options)
                            result.files[name] = root / f"{name}.tflite"
                            result.keep_float[name] = worst[:count]
                        except ConversionError as exc:
                            result.skipped[name] = str(exc)
                    advance(1)
        for name in names:  # stale files of an earlier build go; the new ones move in
            (root / f"{name}.tflite").unlink(missing_ok=True)
        for name, path in result.files.items():
            os.replace(Path(work) / path.name, path)
    manifest = {"key": key, "files": list(result.files), "keep_float": result.keep_float, "skipped": result.skipped}
    atomic_write(root / MANIFEST, json.dumps(manifest, indent=1).encode(), force=True)
    log.info("built %d candidates in %s", len(result.files), root)
    return result


def default_work_folder(model: str | os.PathLike) -> Path:
    """Where candidates are kept between runs when no folder is given: the user cache, per model path."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeq" / "tune"
    return base / f"{Path(model).stem}-{sha256_of(os.fspath(Path(model).resolve()).encode())[:12]}"

