"""EdgeModel: what a test hands to the runner, whatever the model came from.

The model carries its own evaluation and calibration data because accuracy drop and INT8
calibration are only meaningful on data that fits the model; the runner never guesses it.
"""

from __future__ import annotations

import hashlib
import inspect
import marshal
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.kinds import ModelKind, Note, NoteKind

ArrayLike = Any  # numpy array or torch tensor
EvalData = Union[ArrayLike, Tuple[ArrayLike, ArrayLike]]

SYNTHETIC_EVAL_COUNT = 32
EXTERNAL_DATA_KEY = b"\x0a\x08location"  # StringStringEntryProto field 1, "location": an external tensor


@dataclass(frozen=True, eq=False)
class EdgeModel:
    """A model plus the data it is judged on.

    Build it with `from_torch`, `from_onnx` or `from_tflite`; the zoo builds its entries the same way.
    `tflite_path` on a torch model is a shipped conversion of it (the zoo's digits-cnn), used for
    runtime="tflite" at batch 1 so that path needs no converter.
    `eval_labels` is None for label-free models: then agreement with FP32 is the accuracy signal.
    """

    name: str
    kind: ModelKind
    eval_inputs: np.ndarray
    eval_labels: Optional[np.ndarray] = None
    calibration_inputs: Optional[np.ndarray] = None
    module: Any = None
    example_input: Optional[np.ndarray] = None
    path: Optional[Path] = None
    notes: Tuple[Note, ...] = ()
    has_pretrained_weights: bool = True
    tflite_path: Optional[Path] = None

    @classmethod
    def from_torch(
        cls,
        module: Any,
        *,
        name: str,
        example_input: ArrayLike,
        eval_data: Optional[EvalData] = None,
        calibration_data: Optional[ArrayLike] = None,
        notes: Sequence[str] = (),
        pretrained: bool = True,
    ) -> "EdgeModel":
        """Wrap a torch.nn.Module; it is exported to ONNX (dynamo exporter) when first measured."""
        example = _as_array(example_input, what="example_input")
        inputs, labels = _split_eval_data(eval_data, example=example, name=name)
        _check_input_shape(inputs, example.shape[1:], name=name, what="eval_data")
        module.eval()
        return cls(
            name=name,
            kind=ModelKind.TORCH,
            module=module,
            example_input=example,
            eval_inputs=inputs,
            eval_labels=labels,
            calibration_inputs=_calibration(calibration_data, example.shape[1:], name=name),
            notes=_model_notes(notes, eval_data),
            has_pretrained_weights=pretrained,
        )

    @classmethod
    def from_onnx(
        cls,
        path: Union[str, Path],
        *,
        name: Optional[str] = None,
        eval_data: Optional[EvalData] = None,
        calibration_data: Optional[ArrayLike] = None,
        notes: Sequence[str] = (),
    ) -> "EdgeModel":
        """Wrap an existing .onnx file; without eval_data it is timed on seeded random inputs."""
        onnx_path = Path(path)
        if not onnx_path.is_file():
            raise EdgeOptError(f"ONNX file not found: {onnx_path}")
        shape = _onnx_input_shape(onnx_path) if eval_data is None else None
        example = _synthetic_inputs(shape, count=1) if shape is not None else None
        inputs, labels = _split_eval_data(eval_data, example=example, name=name or onnx_path.stem)
        return cls(
            name=name or onnx_path.stem,
            kind=ModelKind.ONNX,
            path=onnx_path,
            eval_inputs=inputs,
            eval_labels=labels,
            calibration_inputs=_calibration(calibration_data, inputs.shape[1:], name=onnx_path.stem),
            notes=_model_notes(notes, eval_data),
        )

    @classmethod
    def from_tflite(
        cls,
        path: Union[str, Path],
        *,
        name: Optional[str] = None,
        eval_data: Optional[EvalData] = None,
        calibration_data: Optional[ArrayLike] = None,
        notes: Sequence[str] = (),
    ) -> "EdgeModel":
        """Wrap an existing .tflite file (runtime="tflite"). Eval data must be in the file's own
        layout (NHWC for most converters); without it the model is timed on seeded random inputs.
        Its fp16/int8 precisions are derived from it with ai-edge-quantizer, so it should be FP32."""
        tflite_path = Path(path)
        if not tflite_path.is_file():
            raise EdgeOptError(f"TFLite file not found: {tflite_path}")
        label = name or tflite_path.stem
        shape = None
        if eval_data is None:
            from pytest_edgeopt.inspect.tflite_stats import input_shape

            shape = input_shape(tflite_path)
        example = _synthetic_inputs(shape, count=1) if shape is not None else None
        inputs, labels = _split_eval_data(eval_data, example=example, name=label)
        return cls(
            name=label,
            kind=ModelKind.TFLITE,
            path=tflite_path,
            tflite_path=tflite_path,
            eval_inputs=inputs,
            eval_labels=labels,
            calibration_inputs=_calibration(calibration_data, inputs.shape[1:], name=label),
            notes=_model_notes(notes, eval_data),
        )

    @property
    def labelled(self) -> bool:
        return self.eval_labels is not None

    @property
    def calibration(self) -> np.ndarray:
        """Calibration inputs; the eval inputs stand in (and the row says so) when none were given."""
        return self.eval_inputs if self.calibration_inputs is None else self.calibration_inputs

    def torch_module(self) -> Any:
        if self.module is None:
            raise EdgeOptError(f"model {self.name!r} is a {self.kind} file, not a torch module")
        return self.module

    def example(self) -> np.ndarray:
        """One batch-first input of a torch model, the shape it is exported at."""
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

    def data_hash(self, which: str) -> str:
        array = self.eval_inputs if which == "eval" else self.calibration
        return array_hash(array)


def array_hash(array: np.ndarray) -> str:
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def _as_array(value: ArrayLike, *, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise EdgeOptError(f"{what} must be numeric, got dtype {array.dtype}")
    return array


def _split_eval_data(
    eval_data: Optional[EvalData], *, example: Optional[np.ndarray], name: str
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    if eval_data is None:
        if example is None:
            raise EdgeOptError(f"model {name!r} needs eval_data (inputs, or (inputs, labels))")
        return _synthetic_inputs((None,) + tuple(example.shape[1:]), count=SYNTHETIC_EVAL_COUNT), None
    if isinstance(eval_data, (tuple, list)) and len(eval_data) == 2:
        inputs = _float_inputs(_as_array(eval_data[0], what="eval inputs"))
        labels = _as_array(eval_data[1], what="eval labels").astype(np.int64).reshape(-1)
        if len(labels) != len(inputs):
            raise EdgeOptError(f"model {name!r}: {len(inputs)} eval inputs but {len(labels)} labels; pass equal counts")
    else:
        inputs, labels = _float_inputs(_as_array(eval_data, what="eval inputs")), None
    if len(inputs) == 0:
        raise EdgeOptError(f"model {name!r}: the eval set is empty; pass at least one input")
    return inputs, labels


def _float_inputs(array: np.ndarray) -> np.ndarray:
    """float64 (numpy's default) becomes float32, the dtype exported graphs take; ids stay ints."""
    return array.astype(np.float32) if array.dtype == np.float64 else array


def _calibration(data: Optional[ArrayLike], sample_shape: Tuple[int, ...], *, name: str) -> Optional[np.ndarray]:
    if data is None:
        return None
    array = _float_inputs(_as_array(data, what="calibration_data"))
    _check_input_shape(array, sample_shape, name=name, what="calibration_data")
    if len(array) == 0:
        raise EdgeOptError(f"model {name!r}: calibration_data is empty")
    return array


def _check_input_shape(array: np.ndarray, sample_shape: Tuple[int, ...], *, name: str, what: str) -> None:
    if tuple(array.shape[1:]) != tuple(sample_shape):
        raise EdgeOptError(
            f"model {name!r}: {what} samples have shape {tuple(array.shape[1:])} but the model "
            f"input is {tuple(sample_shape)} (batch axis first)"
        )


def _synthetic_inputs(shape: Sequence[Optional[int]], *, count: int) -> np.ndarray:
    dims = [count] + [d if isinstance(d, int) and d > 0 else 1 for d in list(shape)[1:]]
    return np.random.default_rng(0).standard_normal(dims).astype(np.float32)


def _model_notes(notes: Sequence[str], eval_data: Optional[EvalData]) -> Tuple[Note, ...]:
    synthetic = () if eval_data is not None else ("no eval data: seeded random inputs, agreement only",)
    return tuple(Note(NoteKind.MODEL, text) for text in (*notes, *synthetic))


def _onnx_input_shape(path: Path) -> Tuple[Optional[int], ...]:
    from pytest_edgeopt.inspect.onnx_file import input_shape

    return input_shape(path)


def _module_hash(model: EdgeModel) -> str:
    """Weights, structure and the code of forward(): a changed `forward` with the same weights
    computes another function, so it must not reuse the old export (reproduced: -self.fc(x) kept
    measuring self.fc(x) until the cache was deleted)."""
    module = model.torch_module()
    digest = hashlib.sha256(repr(module).encode())
    digest.update(type(module).__qualname__.encode())
    for key, tensor in module.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(str(model.example().shape).encode())
    for source in _code_sources(module):
        digest.update(source)
    return digest.hexdigest()[:16]


def _code_sources(module: Any) -> List[bytes]:
    """The code of every class in the model that torch does not ship (torch's own code is keyed
    by its version): the whole defining file when there is one, so helper functions that
    forward() calls count too, else the compiled code of the class's functions."""
    classes = {cls for sub in module.modules() for cls in type(sub).__mro__}
    own = sorted(
        (c for c in classes if c.__module__.split(".")[0] not in ("torch", "builtins")),
        key=lambda c: f"{c.__module__}.{c.__qualname__}",
    )
    return [_class_code(cls) for cls in own]


def _class_code(cls: type) -> bytes:
    try:
        source_file = inspect.getsourcefile(cls)
    except (OSError, TypeError):
        source_file = None
    if source_file and Path(source_file).is_file():
        return Path(source_file).read_bytes()
    functions = [v for v in vars(cls).values() if hasattr(v, "__code__")]
    return b"".join(marshal.dumps(f.__code__) for f in functions) or cls.__qualname__.encode()


def _external_data(path: Path) -> List[Path]:
    """A file that does not parse has no side files to name; building it reports what is wrong.
    Only a file that holds an external-data entry (the protobuf bytes of the key "location") is
    parsed: importing onnx costs a second, more than hashing the file."""
    from pytest_edgeopt.inspect.onnx_file import external_data_files

    if EXTERNAL_DATA_KEY not in path.read_bytes():
        return []
    try:
        return [f for f in external_data_files(path) if f.is_file()]
    except EdgeOptError:
        return []


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
