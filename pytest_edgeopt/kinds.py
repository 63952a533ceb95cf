"""The vocabulary every stage shares: verdicts, model kinds, note kinds and the Note itself.

States are Enums rather than strings so a typo is an AttributeError at import, not a row that
silently never matches; their values are the strings the table, the reports and xdist carry.
"""

from __future__ import annotations

from enum import Enum
from typing import Dict, Tuple, Type, TypeVar


class Verdict(str, Enum):
    """What the budgets said about one row, ordered from harmless to worst."""

    NONE = "-"  # no budget applied
    PASS = "pass"
    INCONCLUSIVE = "inconclusive"
    REGRESSED = "regressed"
    FAIL = "fail"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def __str__(self) -> str:
        return self.value


_SEVERITY: Dict[Verdict, int] = {v: i for i, v in enumerate(Verdict)}


class ModelKind(str, Enum):
    TORCH = "torch"
    ONNX = "onnx"
    TFLITE = "tflite"

    def __str__(self) -> str:
        return self.value


class NoteKind(str, Enum):
    """Why a note is under the table; the report groups and filters by it, never by its text."""

    MODEL = "model"  # from the model: label-free eval, random weights, synthetic inputs
    ARTIFACT = "artifact"  # how the artifact was built: calibration, dynamic quantization caveats
    RUNTIME = "runtime"  # the runtime's own caveats: legacy runtime, XNNPACK off, GPU missing
    TIMING = "timing"  # the latency loop: time cap hit, other processes on the CPU
    PARITY = "parity"  # FP32 of another format compared with ONNX Runtime
    FINGERPRINT = "fingerprint"  # the device differs from what the profile expects
    BASELINE = "baseline"  # why a stored entry was not compared, or is being rewritten
    ESTIMATE = "estimate"  # a figure computed from the graph and the platform profile, not measured
    OTHER = "other"  # a note given as plain text

    def __str__(self) -> str:
        return self.value


_M = TypeVar("_M", bound="OptionMode")


class OptionMode(str, Enum):
    """A setting's value: the option or ini string it is parsed from once, compared as a member."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls: Type[_M], text: str, *, name: str) -> _M:
        """The member named by an option's text; ValueError names the option and the choices."""
        try:
            return cls(text)
        except ValueError:
            raise ValueError(f"{name}: expected one of {', '.join(cls.choices())}, got {text!r}") from None

    @classmethod
    def choices(cls) -> Tuple[str, ...]:
        return tuple(member.value for member in cls)


class UpdateMode(OptionMode):
    """What a run writes to the baselines: --update-baselines (ALL) or --add-baselines (NEW)."""

    ALL = "all"  # new and changed entries, stale ones removed
    NEW = "new"  # missing entries only


class Policy(OptionMode):
    """What a condition the run cannot settle does: a warning (and a note) or a failed test."""

    WARN = "warn"
    FAIL = "fail"


class McuFit(OptionMode):
    """edgeopt_mcu_fit: a microcontroller row whose arena or flash exceeds the board's fails, or not."""

    FAIL = "fail"
    OFF = "off"


class OnUnreachable(OptionMode):
    """A platform's device that cannot be reached fails its tests, or skips them."""

    FAIL = "fail"
    SKIP = "skip"


class TableColumns(OptionMode):
    """--edge-table-columns: the columns that fit the terminal, or every one."""

    FIT = "fit"
    ALL = "all"


class ProgressMode(OptionMode):
    """--edge-progress: AUTO in a terminal and not with -q, ON also in CI logs, OFF never."""

    AUTO = "auto"
    ON = "on"
    OFF = "off"


class DataSplit(str, Enum):
    """A model's two input sets: what it is evaluated on, and what quantization calibrates on."""

    EVAL = "eval"
    CALIBRATION = "calibration"

    def __str__(self) -> str:
        return str(self.value)


class TransportKind(str, Enum):
    """Our transports; a plugin's transport (the make_transport hook) names its own."""

    LOCAL = "local"  # the agent runs on this machine (also `--edge-device local`: pytest runs on the device)
    SSH = "ssh"

    def __str__(self) -> str:
        return str(self.value)


class Note(str):
    """A caveat under the table: its text, with the kind the report sorts and filters by.

    A str subclass, so `m.notes` stays what tests have always read (`"time cap" in note`), and
    equal texts are one note however many rows carry it.
    """

    kind: NoteKind

    def __new__(cls, kind: NoteKind, text: str) -> "Note":
        note = super().__new__(cls, text)
        note.kind = NoteKind(kind)
        return note

    def __reduce__(self) -> Tuple[type, Tuple[NoteKind, str]]:
        return (Note, (self.kind, str(self)))

    @property
    def text(self) -> str:
        return str.__str__(self)

    def to_dict(self) -> Dict[str, str]:
        return {"kind": self.kind.value, "text": self.text}

    @classmethod
    def from_dict(cls, data: Dict[str, str]) -> "Note":
        return cls(NoteKind(data["kind"]), str(data["text"]))

    @classmethod
    def of(cls, text: str) -> "Note":
        """A note as given: a Note keeps its kind, plain text becomes OTHER."""
        return text if isinstance(text, Note) else cls(NoteKind.OTHER, text)
