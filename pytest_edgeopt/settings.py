"""Settings: built once at configure time from the command line and the ini file, then frozen.

Options stay plain strings on the command line (xdist copies them to workers as they are); the
argparse `type=` parsers turn them into values here and say the fix when one is wrong.
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type, TypeVar

import pytest

from pytest_edgeopt.agent.contract import DEFAULT_MAX_OUTPUTS_MB, SamplingPlan
from pytest_edgeopt.kinds import McuFit, OptionMode, Policy, ProgressMode, TableColumns, TransportKind, UpdateMode

DEFAULT_MAX_EVAL_MB = 1024.0  # eval inputs a case may send: the host, the agent and the cache each hold a copy

if TYPE_CHECKING:
    from pytest_edgeopt.platforms.profiles import Platform

QUICK_PLAN = SamplingPlan(warmup_runs=2, warmup_s=0.0, min_runs=5, min_s=0.05, max_s=2.0)
# each default written once: the ini defaults below, the Settings fields and the help texts read these
DEFAULT_PLAN = SamplingPlan()
DEFAULT_PLATFORM = "host"
DEFAULT_PRECISIONS = "fp32,int8"
DEFAULT_CACHE_DIR = ".edgeopt_cache"
DEFAULT_BASELINES_DIR = "baselines"
DEFAULT_TIMEOUT_S = 900
DEFAULT_REMEASURE = 2
DEFAULT_INCONCLUSIVE = Policy.WARN
DEFAULT_FINGERPRINT_MISMATCH = Policy.WARN
DEFAULT_TABLE_COLUMNS = TableColumns.FIT
DEFAULT_PROGRESS = ProgressMode.AUTO
DEFAULT_MCU_FIT = McuFit.FAIL
DEFAULT_MIXED_MAX_S = 600  # an int8-mixed search's re-measurements (NNCF's ranking took 19 min: #3118)
DEFAULT_MIXED_MAX_LAYERS = 16

# ini name -> (help, default)
INI_OPTIONS = {
    "edgeopt_platform": ("platform profile to measure on (like --edge-platform)", DEFAULT_PLATFORM),
    "edgeopt_precisions": ("precisions of tests that use edge_precision without a marker", DEFAULT_PRECISIONS),
    "edgeopt_cache_dir": ("artifact cache directory, relative to the rootdir", DEFAULT_CACHE_DIR),
    "edgeopt_cache_max_mb": (
        "prune the artifact cache to this many MB at the end of a run (least recently used first; "
        "what this run used stays); empty: no cap",
        "",
    ),
    "edgeopt_min_runs": ("minimum timed inferences per case", str(DEFAULT_PLAN.min_runs)),
    "edgeopt_min_time": ("minimum seconds of timed inferences per case", str(DEFAULT_PLAN.min_s)),
    "edgeopt_max_time": ("maximum seconds of timed inferences per case", str(DEFAULT_PLAN.max_s)),
    "edgeopt_warmup_runs": ("minimum warm-up inferences before timing", str(DEFAULT_PLAN.warmup_runs)),
    "edgeopt_warmup_time": ("minimum warm-up seconds before timing", str(DEFAULT_PLAN.warmup_s)),
    "edgeopt_timeout": ("seconds one agent job may take before it is killed", str(DEFAULT_TIMEOUT_S)),
    "edgeopt_baselines_dir": ("baseline directory, relative to the rootdir", DEFAULT_BASELINES_DIR),
    "edgeopt_inconclusive": ("what an inconclusive latency verdict does: warn or fail", DEFAULT_INCONCLUSIVE.value),
    "edgeopt_remeasure": ("re-measurements of an inconclusive latency before reporting it", str(DEFAULT_REMEASURE)),
    "edgeopt_fingerprint_mismatch": (
        "what a latency or memory budget that cannot be compared (baseline from another CPU, runtime "
        "version or thread count) does: warn or fail",
        DEFAULT_FINGERPRINT_MISMATCH.value,
    ),
    "edgeopt_table_columns": (
        "the terminal table's layout: fit (blocks that fit the terminal's width, every value kept; -v: one block) "
        "or all (one block of every column)",
        DEFAULT_TABLE_COLUMNS.value,
    ),
    "edgeopt_progress": (
        "progress lines for exports, calibration and conversion: auto (in a terminal, not with -q), on or off",
        DEFAULT_PROGRESS.value,
    ),
    "edgeopt_max_outputs_mb": (
        "the eval set's outputs (every output, uncompressed) a host-side metric and the fidelity vs FP32 may "
        "bring back, in MB; past it the case fails naming this option",
        f"{DEFAULT_MAX_OUTPUTS_MB:g}",
    ),
    "edgeopt_mcu_fit": (
        "a microcontroller row whose arena or flash exceeds the board's: fail or off",
        DEFAULT_MCU_FIT.value,
    ),
    "edgeopt_max_eval_mb": (
        "the eval data (inputs) one case may send to the runtime, in MB; a larger set is cut to its first "
        "samples that fit, and the row says so (the default: the host, the agent and the "
        "cache each hold a copy, which fits a 24 GiB machine with two xdist workers)",
        f"{DEFAULT_MAX_EVAL_MB:g}",
    ),
    "edgeopt_mixed_max_time": (
        "seconds an int8-mixed search may spend re-measuring candidates before it stops with the best one",
        str(DEFAULT_MIXED_MAX_S),
    ),
    "edgeopt_mixed_max_layers": (
        "layers an int8-mixed search may keep in float before it stops with the best candidate",
        str(DEFAULT_MIXED_MAX_LAYERS),
    ),
}


def add_options(parser: pytest.Parser) -> None:
    """The command line: every option a plain string or flag (xdist copies them to workers)."""
    group = parser.getgroup("edgeopt", "edge-AI optimization budgets (pytest-edgeopt)")
    for flags, options in _OPTIONS:
        group.addoption(*flags, **options)
    for name, (text, default) in INI_OPTIONS.items():
        parser.addini(name, text, default=default)


REPORT_SUFFIXES = (".md", ".json", ".html")


@dataclass(frozen=True)
class Settings:
    platform: str
    precisions: Optional[Tuple[str, ...]]  # --edge-precision filter; None = no filter
    runtimes: Optional[Tuple[str, ...]]  # --edge-runtime filter; None = no filter
    default_precisions: Tuple[str, ...]
    cache_dir: Path
    cache_max_mb: Optional[float]  # --edge-cache-max-mb: prune to this at the end; None: no cap
    threads: Optional[int]
    plan: SamplingPlan
    timeout_s: float
    table: bool
    baselines_dir: Path
    update_baselines: Optional[UpdateMode]  # None, ALL (--update-baselines) or NEW (--add-baselines)
    inconclusive: Policy  # what a latency verdict that stays inconclusive does
    fingerprint_mismatch: Policy  # what a machine-dependent budget that cannot be compared does
    remeasure: int
    reports: Tuple[Path, ...]  # --edge-report, once per file
    budgets: Dict[str, Any]  # [tool.edgeopt.budgets]; with_budgets merges in the platform's
    devices: Tuple[str, ...] = ()  # --edge-device, in the order given
    on_host: bool = False  # --edge-on-host
    platform_entries: Dict[str, Any] = field(default_factory=dict)  # [tool.edgeopt.platforms.*]
    mcu_fit: McuFit = DEFAULT_MCU_FIT  # edgeopt_mcu_fit: fail a row that does not fit the board, or off
    table_columns: TableColumns = DEFAULT_TABLE_COLUMNS  # --edge-table-columns
    progress: ProgressMode = DEFAULT_PROGRESS  # --edge-progress
    profile: bool = False  # --edge-profile: a per-op profiled pass after every timed job
    max_outputs_mb: float = DEFAULT_MAX_OUTPUTS_MB  # edgeopt_max_outputs_mb: the outputs file's cap
    max_eval_mb: float = DEFAULT_MAX_EVAL_MB  # --edge-max-eval-mb: eval inputs past it are cut, the row says so
    explain: bool = False  # --edge-explain: every quantized row gets its per-layer sensitivity
    mixed_max_s: float = DEFAULT_MIXED_MAX_S  # --edge-mixed-max-time: an int8-mixed search's time cap
    mixed_max_layers: int = DEFAULT_MIXED_MAX_LAYERS  # --edge-mixed-max-layers: its cap of float layers

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Settings":
        option = config.option
        plan = _plan(config)
        tool = _tool_table(_pyproject(config))  # read once: budgets and platforms both live there
        return cls(
            platform=option.edge_platform or config.getini("edgeopt_platform"),
            precisions=option.edge_precision,
            runtimes=option.edge_runtime,
            default_precisions=parse_name_list(config.getini("edgeopt_precisions")),
            cache_dir=cache_dir(config),
            cache_max_mb=_cache_cap(config),
            threads=option.edge_threads,
            plan=plan,
            timeout_s=_ini_float(config, option.edge_timeout, "edgeopt_timeout"),
            table=option.edge_table,
            baselines_dir=_dir(config, option.edge_baselines_dir, "edgeopt_baselines_dir"),
            update_baselines=_update_mode(option),
            inconclusive=_mode(
                Policy, option.edge_inconclusive or config.getini("edgeopt_inconclusive"), "--edge-inconclusive"
            ),
            remeasure=_ini_int(config, option.edge_remeasure, "edgeopt_remeasure", minimum=0),
            fingerprint_mismatch=_mode(
                Policy,
                option.edge_fingerprint_mismatch or config.getini("edgeopt_fingerprint_mismatch"),
                "--edge-fingerprint-mismatch",
            ),
            reports=tuple(_report_path(text) for text in option.edge_report or ()),
            budgets=_budgets_table(tool),
            devices=tuple(option.edge_device or ()),
            on_host=option.edge_on_host,
            platform_entries=_platform_entries(tool),
            mcu_fit=_mode(McuFit, config.getini("edgeopt_mcu_fit"), "edgeopt_mcu_fit"),
            profile=option.edge_profile,
            max_outputs_mb=_ini_float(config, None, "edgeopt_max_outputs_mb"),
            max_eval_mb=_ini_float(config, option.edge_max_eval_mb, "edgeopt_max_eval_mb"),
            explain=option.edge_explain,
            mixed_max_s=_ini_float(config, option.edge_mixed_max_time, "edgeopt_mixed_max_time"),
            mixed_max_layers=_ini_int(config, option.edge_mixed_max_layers, "edgeopt_mixed_max_layers", minimum=1),
            progress=_mode(ProgressMode, option.edge_progress or config.getini("edgeopt_progress"), "--edge-progress"),
            table_columns=_mode(
                TableColumns,
                option.edge_table_columns or config.getini("edgeopt_table_columns"),
                "--edge-table-columns",
            ),
        )

    def with_budgets(self, budgets: Dict[str, Any]) -> "Settings":
        return replace(self, budgets=budgets)


def tool_budgets(config: pytest.Config, settings: Settings, platform: "Platform") -> Dict[str, Any]:
    """`[tool.edgeopt.budgets]` overlaid with the platform's budgets (its profile's, which
    `[tool.edgeopt.platforms.<platform>.budgets]` has already overlaid)."""
    path = _pyproject(config)
    merged = {**settings.budgets, **platform.budgets}
    if not merged:
        return {}
    from pytest_edgeopt.errors import EdgeOptError
    from pytest_edgeopt.judge.budgets import validate_budgets

    try:
        return validate_budgets(merged, where=f"{path} [tool.edgeopt]")
    except EdgeOptError as error:
        raise pytest.UsageError(str(error)) from None


def _budgets_table(tool: Dict[str, Any]) -> Dict[str, Any]:
    budgets = tool.get("budgets", {})
    if not isinstance(budgets, dict):
        raise pytest.UsageError(
            "pyproject.toml: [tool.edgeopt.budgets] must be a table, e.g. budgets = {max_storage_mb = 5}"
        )
    return dict(budgets)


def _platform_entries(tool: Dict[str, Any]) -> Dict[str, Any]:
    platforms = tool.get("platforms", {})
    if not isinstance(platforms, dict) or not all(isinstance(v, dict) for v in platforms.values()):
        raise pytest.UsageError(
            "pyproject.toml: [tool.edgeopt.platforms] must hold one table per platform, "
            "e.g. [tool.edgeopt.platforms.mypi]"
        )
    return platforms


def _pyproject(config: pytest.Config) -> Path:
    return Path(config.rootpath) / "pyproject.toml"


def _tool_table(path: Path) -> Dict[str, Any]:
    return _read_toml(path).get("tool", {}).get("edgeopt", {}) if path.is_file() else {}


def device_address(text: str) -> str:
    """argparse type= for --edge-device: `local` or ssh://USER@HOST[:PORT], checked here so a typo
    is a usage error before anything is built."""
    if text == TransportKind.LOCAL:
        return text
    from pytest_edgeopt.platforms.ssh import SshAddress

    try:
        SshAddress.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _read_toml(path: Path) -> Dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise pytest.UsageError(f"{path}: cannot read it as TOML ({error})") from None


def warn_or_fail(text: str) -> str:
    """argparse type= for the policy options; argparse names the option in its message. The text
    stays a string (xdist copies options to workers as they are); Settings parses it into Policy."""
    if text not in Policy.choices():
        raise argparse.ArgumentTypeError(f"expected {' or '.join(Policy.choices())}, got {text!r}")
    return text


def parse_name_list(text: str) -> Tuple[str, ...]:
    """`int8,fp32` or `int8 fp32` -> ("int8", "fp32"); argparse type= for --edge-precision."""
    names = tuple(part for part in text.replace(",", " ").split() if part)
    if not names:
        raise argparse.ArgumentTypeError("expected one or more names, e.g. fp32,int8")
    return names


def _bounded(kind: Any, *, minimum: float, strict: bool, what: str) -> Any:
    """An argparse type= parser for numbers with a lower bound; the error says what was expected."""

    def parse(text: str) -> Any:
        value = _number(text, kind)
        if value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


positive_int = _bounded(int, minimum=1, strict=False, what="a whole number >= 1")
non_negative_int = _bounded(int, minimum=0, strict=False, what="a whole number >= 0")
positive_float = _bounded(float, minimum=0.0, strict=True, what="a number > 0")
non_negative_float = _bounded(float, minimum=0.0, strict=False, what="a number >= 0")


def _number(text: str, kind: Any) -> Any:
    """NaN and inf are refused: every comparison with NaN is False, so a NaN bound checks nothing."""
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _plan(config: pytest.Config) -> SamplingPlan:
    """The ini values, --edge-quick's preset in their place; an option given explicitly beats both."""
    option = config.option
    quick = QUICK_PLAN if option.edge_quick else None
    plan = SamplingPlan(
        warmup_runs=_ini_int(
            config, _given(option.edge_warmup_runs, quick, "warmup_runs"), "edgeopt_warmup_runs", minimum=0
        ),
        warmup_s=_ini_float(
            config, _given(option.edge_warmup_time, quick, "warmup_s"), "edgeopt_warmup_time", minimum=0.0
        ),
        min_runs=_ini_int(config, _given(option.edge_min_runs, quick, "min_runs"), "edgeopt_min_runs", minimum=1),
        min_s=_ini_float(config, _given(option.edge_min_time, quick, "min_s"), "edgeopt_min_time", minimum=0.0),
        max_s=_ini_float(config, _given(option.edge_max_time, quick, "max_s"), "edgeopt_max_time", minimum=0.0),
    )
    if plan.max_s < plan.min_s:
        raise pytest.UsageError(
            f"--edge-max-time ({plan.max_s} s) is below --edge-min-time ({plan.min_s} s): raise the maximum"
        )
    return plan


def _given(cli: Any, quick: Optional[SamplingPlan], field: str) -> Any:
    return cli if cli is not None or quick is None else getattr(quick, field)


def _ini_int(config: pytest.Config, cli: Optional[int], name: str, *, minimum: int) -> int:
    value = cli if cli is not None else _ini_number(config, name, int)
    if value < minimum:
        raise pytest.UsageError(f"{name} must be >= {minimum}, got {value}")
    return value


def _ini_float(config: pytest.Config, cli: Optional[float], name: str, *, minimum: float = 1e-9) -> float:
    value = cli if cli is not None else _ini_number(config, name, float)
    if value < minimum:
        raise pytest.UsageError(f"{name} must be {'>= 0' if minimum == 0 else '> 0'}, got {value}")
    return value


def _ini_number(config: pytest.Config, name: str, kind: Any) -> Any:
    raw = config.getini(name)
    try:
        return _number(str(raw).strip(), kind)
    except argparse.ArgumentTypeError:
        raise pytest.UsageError(f"ini option {name} = {raw!r} is not a number; fix it in your pytest config") from None


_M = TypeVar("_M", bound=OptionMode)


def _mode(kind: Type[_M], text: str, name: str) -> _M:
    """An option's or ini value parsed into its Enum once, here; a wrong one is a UsageError."""
    try:
        return kind.parse(text, name=name)
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def _dir(config: pytest.Config, cli: Optional[str], ini: str) -> Path:
    if cli:
        return Path(cli).resolve()
    path = Path(config.getini(ini))
    return path if path.is_absolute() else Path(config.rootpath) / path


def _update_mode(option: argparse.Namespace) -> Optional[UpdateMode]:
    """Two plain flags, as users type them (syrupy's --snapshot-update): a flag that takes an
    optional value would swallow the test path after it."""
    if option.update_baselines and option.add_baselines:
        raise pytest.UsageError("--update-baselines already adds missing entries: drop --add-baselines")
    return UpdateMode.ALL if option.update_baselines else UpdateMode.NEW if option.add_baselines else None


def _report_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in REPORT_SUFFIXES:
        raise pytest.UsageError(f"--edge-report {text}: the file name must end in {', '.join(REPORT_SUFFIXES)}")
    return path.resolve()


def _cache_cap(config: pytest.Config) -> Optional[float]:
    if config.option.edge_cache_max_mb is not None:
        return float(config.option.edge_cache_max_mb)
    raw = str(config.getini("edgeopt_cache_max_mb")).strip()
    if not raw:
        return None
    value: float = _ini_number(config, "edgeopt_cache_max_mb", float)
    if value < 0:
        raise pytest.UsageError(f"edgeopt_cache_max_mb must be >= 0, got {value}")
    return value


def cache_dir(config: pytest.Config) -> Path:
    """--edge-cache-dir, then $EDGEOPT_CACHE_DIR (share one cache across CI jobs), then the ini."""
    chosen = config.option.edge_cache_dir or os.environ.get("EDGEOPT_CACHE_DIR")
    if chosen:
        return Path(chosen).resolve()
    path = Path(config.getini("edgeopt_cache_dir"))
    return path if path.is_absolute() else Path(config.rootpath) / path


# flags -> argparse keywords; at the end of the module because the parsers above are its types
_OPTIONS: Tuple[Tuple[Tuple[str, ...], Dict[str, Any]], ...] = (
    (
        ("--edge-platform",),
        dict(metavar="NAME", default=None, help=f"platform profile to measure on (default: {DEFAULT_PLATFORM})"),
    ),
    (
        ("--edge-device",),
        dict(
            metavar="URL",
            action="append",
            type=device_address,
            default=None,
            help="measure on this device: ssh://USER@HOST[:PORT], or local (pytest runs on the "
            "device); repeat it with -n N for a fleet, one device per worker",
        ),
    ),
    (
        ("--edge-on-host",),
        dict(
            action="store_true",
            default=False,
            help="measure a device profile (e.g. pi) on this machine: its runtime and threads, "
            "not its hardware; rows say so",
        ),
    ),
    (
        ("--edge-precision",),
        dict(metavar="LIST", type=parse_name_list, default=None, help="only run these precisions, e.g. int8,fp32"),
    ),
    (
        ("--edge-runtime",),
        dict(
            metavar="LIST", type=parse_name_list, default=None, help="only run these runtimes, e.g. tflite,onnxruntime"
        ),
    ),
    (
        ("--edge-threads",),
        dict(
            metavar="N", type=positive_int, default=None, help="inference threads (default: the platform's, 1 on host)"
        ),
    ),
    (
        ("--edge-cache-dir",),
        dict(
            metavar="DIR",
            default=None,
            help=f"artifact cache (default {DEFAULT_CACHE_DIR} under the rootdir; or $EDGEOPT_CACHE_DIR)",
        ),
    ),
    (
        ("--edge-cache-max-mb",),
        dict(
            metavar="MB",
            type=non_negative_float,
            default=None,
            help="prune the artifact cache to this size at the end of the run, least recently used first",
        ),
    ),
    (
        ("--edge-min-runs",),
        dict(metavar="N", type=positive_int, default=None, help="minimum timed inferences per case"),
    ),
    (
        ("--edge-min-time",),
        dict(metavar="S", type=non_negative_float, default=None, help="minimum seconds of timed inferences per case"),
    ),
    (
        ("--edge-max-time",),
        dict(metavar="S", type=positive_float, default=None, help="cap on seconds of timed inferences per case"),
    ),
    (
        ("--edge-warmup-runs",),
        dict(metavar="N", type=non_negative_int, default=None, help="minimum warm-up inferences"),
    ),
    (("--edge-warmup-time",), dict(metavar="S", type=non_negative_float, default=None, help="minimum warm-up seconds")),
    (
        ("--edge-quick",),
        dict(
            action="store_true", default=False, help="short sampling (5 runs, 2 s cap): smoke runs, not numbers to keep"
        ),
    ),
    (
        ("--edge-max-eval-mb",),
        dict(
            metavar="MB",
            type=positive_float,
            default=None,
            help="cut each case's eval inputs to their first samples within MB (default 1024, ini "
            "edgeopt_max_eval_mb); the row notes the cut",
        ),
    ),
    (
        ("--edge-timeout",),
        dict(
            metavar="S",
            type=positive_float,
            default=None,
            help="seconds one measurement may take before the agent is killed",
        ),
    ),
    (
        ("--no-edge-table",),
        dict(dest="edge_table", action="store_false", default=True, help="do not print the comparison table"),
    ),
    (
        ("--edge-profile",),
        dict(
            action="store_true",
            default=False,
            help="profile every case per op after its timed samples (a regressed paired verdict always is): "
            "the report gets the per-op tables, --update-baselines stores the per-op summary",
        ),
    ),
    (
        ("--edge-explain",),
        dict(
            action="store_true",
            default=False,
            help="rank the layers of every ONNX Runtime INT8 row by their SQNR against FP32 on the eval set "
            "(m.sensitivity; a broken accuracy, metric or fidelity budget always does)",
        ),
    ),
    (
        ("--edge-mixed-max-time",),
        dict(
            metavar="S",
            type=positive_float,
            default=None,
            help="seconds an int8-mixed search may re-measure candidates (default "
            f"{DEFAULT_MIXED_MAX_S}, ini edgeopt_mixed_max_time)",
        ),
    ),
    (
        ("--edge-mixed-max-layers",),
        dict(
            metavar="N",
            type=int,
            default=None,
            help="layers an int8-mixed search may keep in float (default "
            f"{DEFAULT_MIXED_MAX_LAYERS}, ini edgeopt_mixed_max_layers)",
        ),
    ),
    (
        ("--edge-progress",),
        dict(
            choices=ProgressMode.choices(),
            default=None,
            help="progress lines while exporting, calibrating and converting: auto (default: in a terminal, "
            "not with -q), on (also in CI logs) or off",
        ),
    ),
    (
        ("--edge-table-columns",),
        dict(
            choices=TableColumns.choices(),
            default=None,
            help="fit: the terminal table wraps into stacked blocks that fit the terminal's width (80 columns "
            "in a CI log), every value kept (the default; -v shows one block); all: one block of every column, "
            "as in the report files",
        ),
    ),
    (
        ("--update-baselines",),
        dict(
            action="store_true",
            default=False,
            help="write new and changed baseline entries of the tests that passed and drop stale ones",
        ),
    ),
    (
        ("--add-baselines",),
        dict(
            action="store_true",
            default=False,
            help="only add the missing baseline entries of the tests that passed; keep the others",
        ),
    ),
    (
        ("--edge-baselines-dir",),
        dict(
            metavar="DIR",
            default=None,
            help=f"baseline directory (default: {DEFAULT_BASELINES_DIR}/ under the rootdir)",
        ),
    ),
    (
        ("--edge-inconclusive",),
        dict(
            metavar="warn|fail",
            default=None,
            type=warn_or_fail,
            help=f"what a latency verdict that stays inconclusive does (default: {DEFAULT_INCONCLUSIVE})",
        ),
    ),
    (
        ("--edge-fingerprint-mismatch",),
        dict(
            metavar="warn|fail",
            default=None,
            type=warn_or_fail,
            help="what a latency or memory budget does whose baseline was measured on another CPU, runtime "
            f"version or thread count (default: {DEFAULT_FINGERPRINT_MISMATCH}, and the summary says so; fail for CI)",
        ),
    ),
    (
        ("--edge-remeasure",),
        dict(
            metavar="N",
            type=non_negative_int,
            default=None,
            help=f"re-measurements of an inconclusive latency (default {DEFAULT_REMEASURE})",
        ),
    ),
    (
        ("--edge-report",),
        dict(
            metavar="PATH",
            action="append",
            default=None,
            help="also write the table to PATH: .md (fits $GITHUB_STEP_SUMMARY), .json or .html; repeat "
            "it for several files",
        ),
    ),
)
