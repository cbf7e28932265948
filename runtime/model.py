"""`Model`: run any ``.tflite`` file with float in, float out, on any installed backend."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from edgeq._frozen import Frozen
from edgeq._native import quiet_native_output
from edgeq.errors import DataError, DeviceError, InferenceError, ModelError, UsageError
from edgeq.runtime.backend import Backend, get_backend
from edgeq.runtime.preprocess import FloatQuantizer, apply_table, default_preprocess, dequantize, load_image, quantize_table
from edgeq.runtime.preprocess import normalize, resize_pixels

if TYPE_CHECKING:  # the model check and the metadata reader load with the first model, not with the package
    from edgeq._flatbuffer import TFLiteFile
    from edgeq.metadata import ModelMetadata, Preprocess


_IMAGE_TYPES = (str, os.PathLike)


class TensorSpec(Frozen):
    """An input or output of a model.

    ``scale``/``zero_point`` are the per-tensor quantization (``0.0``/``0`` for float tensors);
    ``scales``/``zero_points`` hold per-channel values when the tensor has them.
    """

    _fields = ("name", "index", "shape", "shape_signature", "dtype", "scale", "zero_point")
    name: str
    index: int
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    def __init__(
        self, name: str, index: int, shape: tuple[int, ...], shape_signature: tuple[int, ...], dtype: np.dtype,
        scale: float = 0.0, zero_point: int = 0,
    ) -> None:
        self.__dict__.update(
            name=name, index=index, shape=shape, shape_signature=shape_signature, dtype=dtype, scale=scale,
            zero_point=zero_point,
        )

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    @property
    def is_image(self) -> bool:
        """NHWC with 1 or 3 channels: an image model input."""
        return len(self.shape) == 4 and self.shape[3] in (1, 3) and min(self.shape[1:3]) > 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "index": self.index, "shape": list(self.shape),
            "shape_signature": list(self.shape_signature), "dtype": np.dtype(self.dtype).name,
            "scale": self.scale, "zero_point": self.zero_point,
        }


def _spec(name: str, d: Mapping[str, Any]) -> TensorSpec:
    scale, zp = d.get("quantization", (0.0, 0))
    return TensorSpec(
        name=name, index=int(d["index"]), shape=tuple(int(v) for v in d["shape"]),
        shape_signature=tuple(int(v) for v in d.get("shape_signature", d["shape"])),
        dtype=np.dtype(d["dtype"]), scale=float(scale), zero_point=int(zp),
    )


def max_threads() -> int:
    """The most interpreter threads edgeq accepts here: 8 per CPU core, at least 16 (more only oversubscribes)."""
    return max(16, 8 * (os.cpu_count() or 1))


def check_threads(threads: Any) -> int:
    """Return ``threads`` if it is a usable interpreter thread count.

    Checked before any interpreter is built: a huge count makes the native thread pool fail or crash.

    Raises:
        UsageError: not an integer, below 1, or above :func:`max_threads`.
    """
    limit = max_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= limit:
        raise UsageError(f"threads must be a positive integer of at most {limit} (8 per CPU core of this machine, "
                         f"at least 16). Received: threads={threads!r}")
    return threads


def _default_threads() -> int:
    try:
        from edgeq.devices._threads import recommended_threads  # not current(): no device or profile objects

        return max(1, int(recommended_threads()))
    except Exception:  # noqa: BLE001 - detection is best effort; never block inference on it
        return max(1, os.cpu_count() or 1)


class Model:
    """A TFLite model ready to run, with automatic (de)quantization and embedded preprocessing.

    Args:
        path: a ``.tflite`` file path, or its bytes.
        threads: interpreter threads; default: the device's recommendation (physical cores).
        backend: ``litert``, ``tflite-runtime`` or ``tensorflow``; default: the first that imports.
        delegate: path of an external delegate library (e.g. ``libedgetpu.so.1``).
        delegate_options: options passed to the delegate.
        signature: the signature to run for models with several; default: the only/first one.
        preprocess: image preprocessing when the model has no ``edgeq`` metadata.
        labels: class names when the model has no ``edgeq`` metadata.

    Inputs:
        ``predict`` takes a numpy array (float, or already in the input's dtype), a PIL image, an
        image path, or a list of these (a batch); several inputs as a list or a dict by name. Inputs of dynamic
        size (``-1`` beyond the batch in the shape signature) take the size of each array fed; ``predict_each``
        gives one result per sample of an array of samples.

    Outputs:
        A dict from output name to a float32 array (dequantized; ``raw=True`` keeps integers).

    Threads:
        ``predict`` may be called from several threads at once: a lock lets one invocation at a time use the
        interpreter (inputs are prepared outside it), so every call returns its own input's outputs.
        ``last_invoke_seconds`` is the latest call's, whichever thread made it. One ``Model`` per thread runs
        in parallel instead, for one interpreter's memory and load time each: with 8 threads on 2 cores and
        the Fashion-MNIST sample it gave 1.1-1.7x the throughput of one shared ``Model`` (measured by
        ``tests/robustness/test_threads.py``'s ``throughput`` helper).

    Raises:
        ModelError: the file is missing, not a TFLite model, corrupt, or uses an op the backend lacks.
        DeviceError: the delegate cannot be loaded.
    """

    def __init__(
        self,
        path: str | os.PathLike | bytes,
        threads: int | None = None,
        backend: str | None = None,
        delegate: str | None = None,
        delegate_options: Mapping[str, Any] | None = None,
        signature: str | None = None,
        preprocess: Preprocess | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        from edgeq._flatbuffer import parse
        from edgeq._io import read_model_bytes
        from edgeq.metadata import METADATA_NAME, ModelMetadata

        started = time.perf_counter()
        data, self.name = read_model_bytes(path)
        self.path = None if isinstance(path, (bytes, bytearray)) else os.fspath(path)
        self.file: TFLiteFile = parse(data, self.name)
        raw_meta = self.file.metadata.get(METADATA_NAME)
        self.metadata: ModelMetadata | None = ModelMetadata.from_json(raw_meta, self.name) if raw_meta else None
        if threads is not None:
            check_threads(threads)
        self.threads = threads or _default_threads()
        self.backend: Backend = get_backend(backend)
        self._data = data  # the interpreter reads from this buffer; keep it alive
        self._lock = threading.Lock()
        self.size_bytes = len(data)
        delegates = [self._load_delegate(delegate, delegate_options)] if delegate else None
        self._delegates = delegates
        self._signature_request = signature
        self._start_interpreter()
        self.preprocess = (self.metadata.preprocess if self.metadata and self.metadata.preprocess else preprocess)
        self.labels: tuple[str, ...] = tuple(self.metadata.labels if self.metadata and self.metadata.labels else labels or ())
        self._tables: dict[int, np.ndarray] = {}
        self._quantizers: dict[int, FloatQuantizer] = {}  # per quantized input fed floats (made on first use)
        self.load_seconds = time.perf_counter() - started
        self.last_invoke_seconds = 0.0

    # ----------------------------------------------------------------------------------- setup
    def _start_interpreter(self) -> None:
        """A fresh interpreter on the model's bytes; allocated now unless an input has a dynamic non-batch size.

        Such inputs (``[-1, -1]`` audio, ``[-1, -1, -1, 3]`` images) hold a placeholder shape that kernels and
        XNNPACK may refuse; the first :meth:`predict` resizes them to the real input and allocates then.
        """
        try:
            with quiet_native_output():  # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" on stderr
                self.interpreter = self.backend.Interpreter(
                    model_content=self._data, num_threads=self.threads, experimental_delegates=self._delegates
                )
                if not self._dynamic_in_file():  # before any signature runner: it pins the interpreter's tensors
                    self.interpreter.allocate_tensors()
            self._bind_signature(self._signature_request)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.name} cannot be loaded by {self.backend.name}: {_interpreter_reason(exc, self.file)}") from exc

    @property
    def dynamic(self) -> bool:
        """Whether an input has a dynamic size beyond the batch (``-1`` in its shape signature after dimension 0)."""
        return any(-1 in s.shape_signature[1:] for s in self.inputs)

    def _dynamic_in_file(self) -> bool:
        """:attr:`dynamic`, read from the file before the interpreter is bound to a signature."""
        sigs = self.file.signatures
        sig = next((s for s in sigs if s.key == self._signature_request), sigs[0] if sigs else None)
        graph = self.file.subgraphs[sig.subgraph if sig else 0]
        return any(-1 in graph.tensors[i].shape_signature[1:] for i in graph.inputs)

    def _load_delegate(self, library: str, options: Mapping[str, Any] | None) -> Any:
        try:
            return self.backend.load_delegate(library, dict(options or {}))
        except (ValueError, OSError, RuntimeError, AttributeError) as exc:
            raise DeviceError(
                f"cannot load delegate {library!r} with {self.backend.name}: {exc}; check that the library "
                "is installed and matches the runtime version, or run without --delegate"
            ) from exc

    def _bind_signature(self, signature: str | None) -> None:
        keys = [s.key for s in self.file.signatures]
        if signature is not None and signature not in keys:
            raise UsageError(f"{self.name} has no signature {signature!r}; it has: {', '.join(keys) or 'none'}")
        self.signature = signature or (keys[0] if keys else None)
        self._runner = None
        if self.signature is not None and (len(keys) > 1 or len(self.file.subgraphs) > 1):
            self._runner = self.interpreter.get_signature_runner(self.signature)
            self.inputs = tuple(_spec(n, d) for n, d in self._runner.get_input_details().items())
            self.outputs = tuple(_spec(n, d) for n, d in self._runner.get_output_details().items())
            return
        sig = self.file.signatures[0] if self.file.signatures else None
        in_names = {v: k for k, v in sig.inputs.items()} if sig else {}
        out_names = {v: k for k, v in sig.outputs.items()} if sig else {}
        self.inputs = tuple(_spec(in_names.get(d["index"], d["name"]), d) for d in self.interpreter.get_input_details())
        outs = self.interpreter.get_output_details()
        if sig:  # keep the signature's output order (output_0, output_1, …)
            order = {idx: i for i, idx in enumerate(sig.outputs.values())}
            outs = sorted(outs, key=lambda d: order.get(d["index"], len(order)))
        self.outputs = tuple(_spec(out_names.get(d["index"], d["name"]), d) for d in outs)
        # the shapes the interpreter is allocated for (None: not yet, the first predict() sets them)
        self._shapes: list[tuple[int, ...] | None] = [None if self.dynamic else s.shape for s in self.inputs]

    # ------------------------------------------------------------------------------- inference
    def __call__(self, x: Any, raw: bool = False) -> dict[str, np.ndarray]:
        return self.predict(x, raw=raw)

    def predict(self, x: Any, raw: bool = False) -> dict[str, np.ndarray]:
        """Run the model once on ``x`` (see the class's Inputs/Outputs).

        Raises:
            DataError: an input cannot be made to fit (wrong shape/dtype, undecodable image).
            ModelError: the interpreter cannot prepare the model's ops for its own input shapes.
            InferenceError: the interpreter failed.
        """
        arrays = self.prepare(x)
        interpreter = self.interpreter
        self._lock.acquire()  # one invocation at a time: the interpreter's tensors are shared state
        started = time.perf_counter()
        try:
            if self._runner is not None:
                result = self._runner(**{s.name: a for s, a in zip(self.inputs, arrays)})
                outputs = [result[s.name] for s in self.outputs]
            else:
                shapes = self._shapes
                if any(a.shape != shape for a, shape in zip(arrays, shapes)):  # a new batch or dynamic size
                    # resize every input before allocating: inputs that share a batch dimension must agree
                    resized = [(i, a.shape) for i, a in enumerate(arrays) if a.shape != shapes[i]]
                    for i, shape in resized:
                        interpreter.resize_tensor_input(self.inputs[i].index, shape, strict=False)
                    with quiet_native_output():  # the first allocation creates the XNNPACK delegate, which says so
                        interpreter.allocate_tensors()
                    for i, shape in resized:
                        shapes[i] = shape
                for spec, array in zip(self.inputs, arrays):
                    interpreter.set_tensor(spec.index, array)
                interpreter.invoke()
                outputs = [interpreter.get_tensor(s.index) for s in self.outputs]
        except (ValueError, RuntimeError) as exc:
            if "failed to prepare" in str(exc) and all(a.shape == s.shape for s, a in zip(self.inputs, arrays)):
                # ops after the first dynamic-shaped tensor are prepared on the first invoke: with the model's own
                # input shapes, a failure there is the model's, as if allocate_tensors() had refused it
                raise ModelError(f"{self.name} cannot be run by {self.backend.name}: "
                                 f"{_interpreter_reason(exc, self.file)}") from exc
            raise InferenceError(f"{self.name} failed to run on {self.backend.name}: {exc}") from exc
        finally:
            self.last_invoke_seconds = time.perf_counter() - started
            self._lock.release()
        if raw:
            return {s.name: o for s, o in zip(self.outputs, outputs)}
        return {name: dequantize(o, *q) if q else o for (name, q), o in zip(self._output_quantization(), outputs)}

    def predict_each(self, x: np.ndarray, raw: bool = False) -> list[tuple[dict[str, np.ndarray], int, float]]:
        """Results for each sample of an array of samples (a single-input model), in order.

        An array with the input's rank holds ``N`` samples along axis 0 (one rank less: a single sample). When the
        input's shape signature fixes the batch at 1, the samples run one after another (a stream: a stateful
        model carries its state from one to the next); otherwise they run as one batch, split per sample.

        Returns:
            ``(outputs, batch, seconds)`` per sample: its outputs (batch dimension 1 kept, as :meth:`predict`
            gives for one sample), how many samples the inference that made them ran, and that inference's time.
        """
        spec = self.inputs[0]
        array = np.asarray(x)
        n = array.shape[0] if len(self.inputs) == 1 and array.ndim == len(spec.shape) and array.ndim else 1
        if n == 1 or spec.shape_signature[0] == 1:
            samples = [array] if n == 1 else [array[i : i + 1] for i in range(n)]
            return [(self.predict(sample, raw=raw), 1, self.last_invoke_seconds) for sample in samples]
        outputs = self.predict(array, raw=raw)
        return [({k: v[i : i + 1] if v.ndim and v.shape[0] == n else v for k, v in outputs.items()}, n,
                 self.last_invoke_seconds) for i in range(n)]

    def _output_quantization(self) -> list[tuple[str, tuple[float, int] | None]]:
        """Per output: its name and ``(scale, zero_point)``, or ``None`` for float outputs (computed once)."""
        plan = getattr(self, "_dequantize_plan", None)
        if plan is None:
            plan = self._dequantize_plan = [(s.name, (s.scale, s.zero_point) if s.quantized else None) for s in self.outputs]
        return plan

    def dequantize(self, outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Turn raw outputs (``predict(x, raw=True)``) into float32 values; float outputs pass through."""
        return {name: dequantize(outputs[name], *q) if q else outputs[name] for name, q in self._output_quantization()}

    def prepare(self, x: Any) -> list[np.ndarray]:
        """The input tensors ``predict(x)`` would feed: preprocessed, quantized, batched (one per input).

        Feeding them back to ``predict`` skips that work, e.g. to time inference alone.
        """
        if type(x) is np.ndarray and len(self.inputs) == 1:  # the common case, without _split's checks
            return [self._prepare(self.inputs[0], x)]
        return [self._prepare(spec, value) for spec, value in zip(self.inputs, self._split(x))]

    def _split(self, x: Any) -> list[Any]:
        n = len(self.inputs)
        if isinstance(x, Mapping):
            missing = [s.name for s in self.inputs if s.name not in x]
            if missing:
                raise DataError(f"missing inputs {missing}; the model takes {[s.name for s in self.inputs]}")
            return [x[s.name] for s in self.inputs]
        if n == 1 and not (isinstance(x, list) and len(x) == 1 and _is_tensor_for(x[0], self.inputs[0])):
            return [x]
        if isinstance(x, (list, tuple)) and len(x) == n:
            return list(x)
        raise DataError(f"the model takes {n} inputs ({', '.join(s.name for s in self.inputs)}); pass a list or a dict of {n}")

    def _image_preprocess(self, spec: TensorSpec) -> Preprocess:
        pp = self.preprocess or default_preprocess(spec.shape)
        if pp is None:
            raise DataError(f"input {spec.name!r} of shape {list(spec.shape)} is not an image input; pass an array")
        if pp.size is None:
            from edgeq.metadata import Preprocess

            pp = Preprocess(**{**pp.to_dict(), "size": spec.shape[1:3], "mean": pp.mean, "std": pp.std})
        return pp

    def _image_tensor(self, spec: TensorSpec, images: Iterable[Any]) -> np.ndarray:
        pp = self._image_preprocess(spec)
        arrays = [resize_pixels(load_image(img), pp) for img in images]
        pixels = arrays[0][None] if len(arrays) == 1 else np.stack(arrays)
        if spec.quantized:
            table = self._tables.get(spec.index)
            if table is None:
                table = self._tables[spec.index] = quantize_table(pp, spec.scale, spec.zero_point, spec.dtype)
            return apply_table(pixels, table)
        return normalize(pixels, pp).astype(spec.dtype, copy=False)

    def _prepare(self, spec: TensorSpec, value: Any) -> np.ndarray:
        if (type(value) is np.ndarray and value.dtype == spec.dtype and value.shape == spec.shape
                and value.flags.c_contiguous):
            return value  # a ready tensor, as prepare() returns: what the checks below would let through unchanged
        quantizer = self._quantizers.get(spec.index) if type(value) is np.ndarray else None
        if quantizer is not None and value.shape == spec.shape and value.dtype.kind == "f":
            return self._quantize(spec, quantizer, value)  # floats of the exact shape: what the checks below pass
        if isinstance(value, _IMAGE_TYPES) or _is_pil(value):
            return self._image_tensor(spec, [value])
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, _IMAGE_TYPES) or _is_pil(v) for v in value):
            return self._image_tensor(spec, value)
        array = np.asarray(value)
        if array.size == 0:
            raise DataError(f"input {spec.name!r} got an empty array of shape {list(array.shape)}; "
                            f"expected {list(spec.shape_signature)} ({np.dtype(spec.dtype).name})")
        rank = len(spec.shape)
        if spec.is_image and array.dtype == np.uint8 and spec.dtype != np.uint8 and array.ndim in (2, 3, 4):
            return self._image_tensor(spec, list(array) if array.ndim == 4 else [array])
        if array.ndim == rank - 1:
            array = array[None]
        if array.ndim != rank or any(
            want not in (-1, got) for want, got in zip(spec.shape_signature[1:], array.shape[1:])
        ):
            raise DataError(
                f"input {spec.name!r} expects shape {list(spec.shape_signature)} ({np.dtype(spec.dtype).name}); "
                f"got {list(array.shape)} ({array.dtype})"
            )
        if array.dtype == spec.dtype:
            return np.ascontiguousarray(array)
        if spec.quantized and np.issubdtype(array.dtype, np.floating):
            quantizer = self._quantizers.get(spec.index)
            if quantizer is None:
                quantizer = self._quantizers[spec.index] = FloatQuantizer(spec.scale, spec.zero_point, spec.dtype)
            return self._quantize(spec, quantizer, array)
        if np.can_cast(array.dtype, spec.dtype, casting="same_kind"):
            if np.issubdtype(spec.dtype, np.integer) and array.size and array.dtype != np.bool_:
                info = np.iinfo(spec.dtype)
                low, high = array.min(), array.max()
                if low < info.min or high > info.max:  # astype would wrap around silently
                    raise DataError(
                        f"input {spec.name!r} expects {np.dtype(spec.dtype).name} values from {info.min} to "
                        f"{info.max}; got {array.dtype} values from {low} to {high}"
                    )
            return array.astype(spec.dtype)
        raise DataError(
            f"input {spec.name!r} expects {np.dtype(spec.dtype).name} (or float to quantize); got {array.dtype}"
        )

    @staticmethod
    def _quantize(spec: TensorSpec, quantizer: FloatQuantizer, array: np.ndarray) -> np.ndarray:
        q = quantizer(array)
        if q is None:
            raise DataError(f"input {spec.name!r} contains NaN or infinite values")
        return q

    # ---------------------------------------------------------------------------- classifiers
    def classify(self, x: Any, k: int = 5) -> list[tuple[str, float]]:
        """Top-``k`` ``(label, score)`` of the first output for one input; labels fall back to indices."""
        scores = next(iter(self.predict(x).values()))
        return top(scores, k, self.labels)

    def reset(self) -> None:
        """Restore the model's initial state, as if it were loaded again.

        A fresh interpreter on the same bytes: variables get their initial values again, including those an init
        subgraph (``CALL_ONCE``) sets, which LiteRT's ``reset_all_variables()`` leaves as they are.
        """
        with self._lock:
            self._start_interpreter()

    def describe(self) -> dict[str, Any]:
        """The model's inputs, outputs, backend, threads and metadata, JSON-ready."""
        return {
            "model": self.name,
            "backend": self.backend.to_dict(),
            "threads": self.threads,
            "signature": self.signature,
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
            "metadata": self.metadata.to_dict() if self.metadata else None,
        }

    def __repr__(self) -> str:
        return f"Model({self.name!r}, backend={self.backend.name!r}, threads={self.threads})"


def top(scores: np.ndarray, k: int, labels: Sequence[str] = ()) -> list[tuple[str, float]]:
    """The ``k`` best ``(label, score)`` of a score vector (or a batch of one); index strings when unlabelled."""
    flat = np.asarray(scores, dtype=np.float32).reshape(-1)
    k = max(1, min(k, flat.size))
    best = np.argpartition(-flat, k - 1)[:k]
    best = best[np.argsort(-flat[best], kind="stable")]
    return [(labels[i] if i < len(labels) else str(i), float(flat[i])) for i in best]


def _is_tensor_for(value: Any, spec: TensorSpec) -> bool:
    """Whether ``value`` is a ready tensor for ``spec`` (as :meth:`Model.prepare` returns)."""
    return isinstance(value, np.ndarray) and value.dtype == spec.dtype and value.ndim == len(spec.shape)


def _is_pil(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.")


def _interpreter_reason(exc: Exception, file: TFLiteFile) -> str:
    from edgeq._tflite_names import BUILTIN_OPS

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "custom op" in str(exc).lower() or "unresolved" in str(exc).lower():
        known = set(BUILTIN_OPS.values())
        custom = sorted({op.op for sg in file.subgraphs for op in sg.operators if op.op not in known})
        return f"it uses ops this backend does not have ({', '.join(custom) or text}); use a backend or delegate that provides them"
    return text
