"""EdgeModel: what a test hands to the runner, whatever the model came from.

The model carries its own evaluation and calibration data because accuracy drop and INT8
calibration are only meaningful on data that fits the model; the runner never guesses it.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.kinds import DataSplit, ModelKind, Note, NoteKind
from pytest_edgeopt.measure.metric import Metric

ArrayLike = Any  # numpy array or torch tensor
InputData = Union[np.ndarray, Dict[str, np.ndarray]]  # one input, or several by name, batch-first
SampleShapes = Union[Tuple[int, ...], Dict[str, Tuple[int, ...]]]  # per sample, without the batch axis
EvalData = Union[ArrayLike, Mapping[str, ArrayLike], Tuple[Any, ArrayLike]]

SYNTHETIC_EVAL_COUNT = 32
MODEL_FILE_SUFFIXES = (".onnx", ".tflite")  # the model files a test may name by path
EXTERNAL_DATA_KEY = b"\x0a\x08location"  # StringStringEntryProto field 1, "location": an external tensor


@dataclass(frozen=True, eq=False)
class EdgeModel:
    """A model plus the data it is judged on.

    Build it with `from_torch`, `from_onnx` or `from_tflite`; the zoo builds its entries the same way.
    `tflite_path` on a torch model is a shipped conversion of it (the zoo's digits-cnn), used for
    runtime="tflite" at batch 1 so that path needs no converter.
    `eval_labels` is None for label-free models: then agreement with FP32 (or, for outputs
    without a class axis, the fidelity of every output) is the accuracy signal.
    Several inputs are a dict of batch-first arrays named after the model's inputs; `metric`
    scores the outputs of the whole eval set on the host; `output` names the classification output.
    Top-1 and agreement are computed only where the scored output holds class scores: labels given
    as class ids that fit it, or `classifier=True`; every other output is judged by its fidelity.
    """

    name: str
    kind: ModelKind
    eval_inputs: InputData
    eval_labels: Optional[Any] = None  # class ids (int64), or whatever the metric takes
    calibration_inputs: Optional[InputData] = None
    module: Any = None
    example_input: Optional[InputData] = None
    path: Optional[Path] = None
    notes: Tuple[Note, ...] = ()
    has_pretrained_weights: bool = True
    tflite_path: Optional[Path] = None
    metric: Optional[Metric] = None
    output: Optional[Union[str, int]] = None  # the scored output (name or index); None: the first
    classifier: bool = False  # the scored output holds class scores: top-1 agreement even without labels

    @classmethod
    def from_torch(
        cls,
        module: Any,
        *,
        name: str,
        example_input: ArrayLike,
        eval_data: Optional[EvalData] = None,
        calibration_data: Optional[Any] = None,
        notes: Sequence[str] = (),
        pretrained: bool = True,
        metric: Optional[Metric] = None,
        output: Optional[Union[str, int]] = None,
        classifier: bool = False,
    ) -> "EdgeModel":
        """Wrap a torch.nn.Module; it is exported to ONNX (dynamo exporter) when first measured.
        `example_input` is one tensor, a tuple (positional arguments of forward) or a dict
        (forward's arguments by name); several inputs' eval data is a dict by those names."""
        example = _example_inputs(example_input, module)
        inputs, labels = _split_eval_data(eval_data, example=example, name=name, metric=metric)
        _check_input_shapes(inputs, first_sample_shapes(example), name=name, what="eval_data")
        module.eval()
        return cls(
            name=name,
            kind=ModelKind.TORCH,
            module=module,
            example_input=example,
            eval_inputs=inputs,
            eval_labels=labels,
            calibration_inputs=_calibration(calibration_data, inputs, name=name),
            notes=_model_notes(notes, eval_data),
            has_pretrained_weights=pretrained,
            metric=_metric(metric),
            output=_output(output),
            classifier=classifier,
        )

    @classmethod
    def from_onnx(
        cls,
        path: Union[str, Path],
        *,
        name: Optional[str] = None,
        eval_data: Optional[EvalData] = None,
        calibration_data: Optional[Any] = None,
        notes: Sequence[str] = (),
        metric: Optional[Metric] = None,
        output: Optional[Union[str, int]] = None,
        classifier: bool = False,
    ) -> "EdgeModel":
        """Wrap an existing .onnx file; without eval_data it is timed on seeded random inputs.
        A model with several inputs takes a dict of batch-first arrays named after its inputs."""
        onnx_path = Path(path)
        if not onnx_path.is_file():
            raise EdgeOptError(f"ONNX file not found: {onnx_path}")
        shape = _onnx_input_shape(onnx_path) if eval_data is None else None
        example = _synthetic_inputs(shape, count=1) if shape is not None else None
        inputs, labels = _split_eval_data(eval_data, example=example, name=name or onnx_path.stem, metric=metric)
        return cls(
            name=name or onnx_path.stem,
            kind=ModelKind.ONNX,
            path=onnx_path,
            eval_inputs=inputs,
            eval_labels=labels,
            calibration_inputs=_calibration(calibration_data, inputs, name=onnx_path.stem),
            notes=_model_notes(notes, eval_data),
            metric=_metric(metric),
            output=_output(output),
            classifier=classifier,
        )

    @classmethod
    def from_tflite(
        cls,
        path: Union[str, Path],
        *,
        name: Optional[str] = None,
        eval_data: Optional[EvalData] = None,
        calibration_data: Optional[Any] = None,
        notes: Sequence[str] = (),
        metric: Optional[Metric] = None,
        output: Optional[Union[str, int]] = None,
        classifier: bool = False,
    ) -> "EdgeModel":
        """Wrap an existing .tflite file (runtime="tflite"). Eval data must be in the file's own
        layout (NHWC for most converters); without it the model is timed on seeded random inputs.
        Its fp16/int8 precisions are derived from it with ai-edge-quantizer: a file with float16
        weights is widened to its exact FP32 file first; a full-integer file is measured as given."""
        tflite_path = Path(path)
        if not tflite_path.is_file():
            raise EdgeOptError(f"TFLite file not found: {tflite_path}")
        label = name or tflite_path.stem
        shape = None
        if eval_data is None:
            from pytest_edgeopt.inspect.tflite_stats import input_shape

            shape = input_shape(tflite_path)
        example = _synthetic_inputs(shape, count=1) if shape is not None else None
        inputs, labels = _split_eval_data(eval_data, example=example, name=label, metric=metric)
        return cls(
            name=label,
            kind=ModelKind.TFLITE,
            path=tflite_path,
            tflite_path=tflite_path,
            eval_inputs=inputs,
            eval_labels=labels,
            calibration_inputs=_calibration(calibration_data, inputs, name=label),
            notes=_model_notes(notes, eval_data),
            metric=_metric(metric),
            output=_output(output),
            classifier=classifier,
        )

    @property
    def labelled(self) -> bool:
        return self.eval_labels is not None

    @property
    def calibration(self) -> InputData:
        """Calibration inputs; the eval inputs stand in (and the row says so) when none were given."""
        return self.eval_inputs if self.calibration_inputs is None else self.calibration_inputs

    @property
    def several_inputs(self) -> bool:
        return isinstance(self.eval_inputs, dict)

    @property
    def eval_count(self) -> int:
        return count_of(self.eval_inputs)

    def torch_module(self) -> Any:
        if self.module is None:
            raise EdgeOptError(f"model {self.name!r} is a {self.kind} file, not a torch module")
        return self.module

    def examples(self) -> InputData:
        """The example input(s) of a torch model: an array, or a dict in forward's argument order."""
        if self.example_input is None:
            raise EdgeOptError(f"model {self.name!r} has no example input")
        return self.example_input

    def file(self) -> Path:
        if self.path is None:
            raise EdgeOptError(f"model {self.name!r} is a torch module, not a file")
        return self.path

    def content_hash(self) -> str:
        """Hash of the weights and graph identity, so caches key on content, not on names."""
        return self._content_hash

    @cached_property
    def _content_hash(self) -> str:
        if self.kind == ModelKind.TORCH:
            return _module_hash(self)
        if self.kind == ModelKind.ONNX:
            return _files_hash([self.file(), *_external_data(self.file())])
        return _file_hash(self.file())

    def shipped_tflite_hash(self) -> str:
        if self.tflite_path is None:
            raise EdgeOptError(f"model {self.name!r} ships no .tflite conversion")
        return _file_hash(self.tflite_path)

    def data_hash(self, which: DataSplit) -> str:
        data = self.eval_inputs if which == DataSplit.EVAL else self.calibration
        return inputs_hash(data)


def within(model: EdgeModel, *, max_bytes: int) -> EdgeModel:
    """The model with its eval set cut to the first samples whose inputs fit `max_bytes`, noted
    for the row; the model itself when they fit (a 2.1 GB array once cost 5 GB on the host, 2.1 GB
    in the agent and 2.1 GB more in the cache)."""
    total, count = data_bytes(model.eval_inputs), model.eval_count
    if total <= max_bytes or count == 0:
        return model
    keep = max(1, int(max_bytes // max(1, total // count)))
    note = Note(
        NoteKind.MODEL,
        f"eval data cut to its first {keep} of {count} samples ({total / 1e6:.0f} MB > {max_bytes / 1e6:g} MB: "
        "raise --edge-max-eval-mb to use them all)",
    )
    return replace(
        model,
        eval_inputs=_first(model.eval_inputs, keep),
        eval_labels=None if model.eval_labels is None else _first(model.eval_labels, keep),
        notes=model.notes + (note,),
    )


def data_bytes(data: InputData) -> int:
    return sum(a.nbytes for a in data.values()) if isinstance(data, dict) else int(data.nbytes)


def _first(data: Any, keep: int) -> Any:
    if isinstance(data, Mapping):
        return {k: v[:keep] for k, v in data.items()}
    return data[:keep]


def inputs_hash(data: InputData) -> str:
    """One input hashes as before (caches stay valid); several by name and content."""
    if not isinstance(data, dict):
        return array_hash(data)
    digest = hashlib.sha256()
    for name in sorted(data):
        digest.update(name.encode())
        digest.update(array_hash(data[name]).encode())
    return digest.hexdigest()[:16]


def array_hash(array: Any) -> str:
    array = np.asarray(array)
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes() if array.dtype.kind != "O" else repr(array).encode())
    return digest.hexdigest()[:16]


def count_of(data: InputData) -> int:
    return len(next(iter(data.values()))) if isinstance(data, dict) else len(data)


def first_sample_shapes(data: InputData) -> SampleShapes:
    """Each input's per-sample shape (without the batch axis)."""
    if isinstance(data, dict):
        return {name: tuple(int(d) for d in array.shape[1:]) for name, array in data.items()}
    return tuple(int(d) for d in data.shape[1:])


def _passed_through(value: ArrayLike) -> Any:
    """A metric's labels of any type (words, boxes, dicts): the metric reads them, nothing else does."""
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object if _ragged(value) else None)


def _ragged(value: Any) -> bool:
    try:
        np.asarray(value)
    except ValueError:  # rows of different lengths (boxes per image)
        return True
    return False


def _as_array(value: ArrayLike, *, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise EdgeOptError(f"{what} must be numeric, got dtype {array.dtype}")
    return array


def _split_eval_data(
    eval_data: Optional[EvalData], *, example: Optional[InputData], name: str, metric: Optional[Metric] = None
) -> Tuple[InputData, Optional[Any]]:
    if eval_data is None:
        if example is None:
            raise EdgeOptError(f"model {name!r} needs eval_data (inputs, or (inputs, labels))")
        return _synthetic_like(example), None
    if isinstance(example, dict) and not isinstance(eval_data, Mapping) and not isinstance(eval_data[0], Mapping):
        raise EdgeOptError(
            f"model {name!r} takes {len(example)} inputs ({', '.join(example)}): "
            "pass eval_data as a dict by those names, or (dict, labels)"
        )
    if isinstance(eval_data, (tuple, list)) and len(eval_data) == 2:
        inputs = _inputs(eval_data[0], what="eval inputs", name=name)
        labels = _labels(eval_data[1], count=count_of(inputs), name=name, metric=metric)
    else:
        inputs, labels = _inputs(eval_data, what="eval inputs", name=name), None
    if count_of(inputs) == 0:
        raise EdgeOptError(f"model {name!r}: the eval set is empty; pass at least one input")
    return inputs, labels


def _inputs(value: Any, *, what: str, name: str) -> InputData:
    """One array, or a dict of batch-first arrays by input name; a 0-d array in a dict is a
    constant (a sample rate) repeated for every sample."""
    if not isinstance(value, Mapping):
        return _float_inputs(_as_array(value, what=what))
    if not value:
        raise EdgeOptError(f"model {name!r}: {what} is an empty dict; name one array per model input")
    arrays = {str(k): _float_inputs(_as_array(v, what=f"{what} {k!r}")) for k, v in value.items()}
    counts = {k: len(a) for k, a in arrays.items() if a.ndim > 0}
    if len(set(counts.values())) > 1:
        shown = ", ".join(f"{k}: {n}" for k, n in counts.items())
        raise EdgeOptError(f"model {name!r}: the {what} hold different numbers of samples ({shown}); pass one row each")
    count = next(iter(counts.values()), 1)
    return {k: a if a.ndim > 0 else np.repeat(a[None], count, axis=0) for k, a in arrays.items()}


def _labels(value: Any, *, count: int, name: str, metric: Optional[Metric]) -> Any:
    """Class ids for top-1; with a metric, whatever the metric takes (masks, boxes), counted."""
    if metric is not None:
        labels = value if isinstance(value, Mapping) else _passed_through(value)
        n = len(next(iter(labels.values()), ())) if isinstance(labels, Mapping) else len(labels)
    else:
        labels = _as_array(value, what="eval labels")
        if labels.ndim > 1 and labels.size != len(labels):
            raise EdgeOptError(
                f"model {name!r}: eval labels of shape {labels.shape} are not class ids; "
                "pass metric=Metric(name, fn) to score them"
            )
        labels = _class_ids(labels.reshape(-1), name=name)
        n = len(labels)
    if n != count:
        raise EdgeOptError(f"model {name!r}: {count} eval inputs but {n} labels; pass equal counts")
    return labels


def _class_ids(labels: np.ndarray, *, name: str) -> np.ndarray:
    """Whole numbers >= 0, checked before the cast: int64(NaN) is a huge negative number that no
    prediction equals, 2.7 would silently become class 2, and -1 is no class at all."""
    if labels.dtype.kind == "f":
        wrong = ~np.isfinite(labels) | (labels != np.round(labels))
        if wrong.any():
            at = int(np.argmax(wrong))
            raise EdgeOptError(
                f"model {name!r}: eval label {float(labels[at])} (index {at}) is not a class id; "
                "labels must be whole numbers 0..classes-1"
            )
    ids = labels.astype(np.int64)
    if len(ids) and ids.min() < 0:
        at = int(np.argmin(ids))
        raise EdgeOptError(
            f"model {name!r}: eval label {ids[at]} (index {at}) is negative; labels must be class ids 0..classes-1"
        )
    return ids


def _float_inputs(array: np.ndarray) -> np.ndarray:
    """float64 (numpy's default) becomes float32, the dtype exported graphs take; ids stay ints."""
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _calibration(data: Optional[Any], eval_inputs: InputData, *, name: str) -> Optional[InputData]:
    """Same shapes as the eval data: the same input names, the same per-sample shapes."""
    if data is None:
        return None
    inputs = _inputs(data, what="calibration_data", name=name)
    if isinstance(inputs, dict) != isinstance(eval_inputs, dict) or (
        isinstance(inputs, dict) and isinstance(eval_inputs, dict) and set(inputs) != set(eval_inputs)
    ):
        expected = ", ".join(eval_inputs) if isinstance(eval_inputs, dict) else "one array"
        raise EdgeOptError(f"model {name!r}: calibration_data must take the eval data's inputs ({expected})")
    _check_input_shapes(inputs, first_sample_shapes(eval_inputs), name=name, what="calibration_data")
    if count_of(inputs) == 0:
        raise EdgeOptError(f"model {name!r}: calibration_data is empty")
    return inputs


def _check_input_shapes(data: InputData, shapes: SampleShapes, *, name: str, what: str) -> None:
    if isinstance(shapes, dict) and not isinstance(data, dict):
        raise EdgeOptError(
            f"model {name!r} takes {len(shapes)} inputs ({', '.join(shapes)}): pass {what} as a dict by those names"
        )
    if isinstance(data, dict) and isinstance(shapes, dict):
        missing = [k for k in shapes if k not in data]
        if missing:
            raise EdgeOptError(f"model {name!r}: {what} has no array for input(s) {', '.join(missing)}")
        for key, shape in shapes.items():
            _check_input_shape(data[key], shape, name=name, what=f"{what} {key!r}")
    elif isinstance(data, dict):
        raise EdgeOptError(f"model {name!r} takes one input: pass {what} as one array, not a dict")
    else:
        _check_input_shape(data, shapes, name=name, what=what)  # type: ignore[arg-type]


def _check_input_shape(array: np.ndarray, sample_shape: Tuple[int, ...], *, name: str, what: str) -> None:
    if tuple(array.shape[1:]) != tuple(sample_shape):
        raise EdgeOptError(
            f"model {name!r}: {what} samples have shape {tuple(array.shape[1:])} but the model "
            f"input is {tuple(sample_shape)} (batch axis first)"
        )


def _example_inputs(value: Any, module: Any) -> InputData:
    """A tensor; a tuple named after forward's positional parameters; a dict by name."""
    if isinstance(value, Mapping):
        return {str(k): _as_array(v, what=f"example_input {k!r}") for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        names = _forward_names(module, len(value))
        return {n: _as_array(v, what=f"example_input {n!r}") for n, v in zip(names, value)}
    return _as_array(value, what="example_input")


def _forward_names(module: Any, count: int) -> List[str]:
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return positional[:count] if len(positional) >= count else [f"input_{i}" for i in range(count)]


def _synthetic_like(example: InputData) -> InputData:
    if isinstance(example, dict):
        return {
            k: _synthetic_inputs((None,) + tuple(a.shape[1:]), count=SYNTHETIC_EVAL_COUNT).astype(a.dtype)
            for k, a in example.items()
        }
    return _synthetic_inputs((None,) + tuple(example.shape[1:]), count=SYNTHETIC_EVAL_COUNT)


def _synthetic_inputs(shape: Sequence[Optional[int]], *, count: int) -> np.ndarray:
    dims = [count] + [d if isinstance(d, int) and d > 0 else 1 for d in list(shape)[1:]]
    return np.random.default_rng(0).standard_normal(dims).astype(np.float32)


def _metric(metric: Optional[Metric]) -> Optional[Metric]:
    if metric is not None and not isinstance(metric, Metric):
        raise EdgeOptError(
            f"metric= takes pytest_edgeopt.Metric(name, fn, higher_is_better=...), got {type(metric).__name__}"
        )
    return metric


def _output(output: Optional[Union[str, int]]) -> Optional[Union[str, int]]:
    if output is not None and (isinstance(output, bool) or not isinstance(output, (str, int))):
        raise EdgeOptError(f"output= takes an output name or index, got {output!r}")
    return output


def _model_notes(notes: Sequence[str], eval_data: Optional[EvalData]) -> Tuple[Note, ...]:
    synthetic = () if eval_data is not None else ("no eval data: seeded random inputs, agreement or fidelity only",)
    return tuple(Note(NoteKind.MODEL, text) for text in (*notes, *synthetic))


def _onnx_input_shape(path: Path) -> Tuple[Optional[int], ...]:
    from pytest_edgeopt.inspect.onnx_file import input_shape

    return input_shape(path)


def _module_hash(model: EdgeModel) -> str:
    """Everything that decides the exported graph (see torch_key) and the input shapes: a changed
    `forward`, attribute, buffer or helper must not reuse the old export (reproduced: `-self.fc(x)`
    kept measuring `self.fc(x)`; `Scaled(-1.0)` measured `Scaled(1.0)`'s artifact)."""
    from pytest_edgeopt.models.torch_key import module_key

    digest = module_key(model.torch_module())
    digest.update(str(first_sample_shapes(model.examples())).encode())
    return digest.hexdigest()[:16]


def _external_data(path: Path) -> List[Path]:
    """A file that does not parse has no side files to name; building it reports what is wrong.
    Only a file that holds an external-data entry (the protobuf bytes of the key "location") is
    parsed: importing onnx costs a second, more than hashing the file."""
    from pytest_edgeopt.inspect.onnx_file import external_data_files

    if EXTERNAL_DATA_KEY not in path.read_bytes():
        return []
    try:
        return [f for f in external_data_files(path) if f.is_file() and _inside(f, path.parent)]
    except EdgeOptError:
        return []


def _inside(path: Path, folder: Path) -> bool:
    """onnx refuses a location outside the model's folder; it is never read here either (a
    `../../secrets` location would otherwise be hashed, a `/dev` file read without end)."""
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        return False


def _files_hash(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        digest.update(_file_hash(path).encode())
    return digest.hexdigest()[:16]


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
