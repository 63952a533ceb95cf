"""The metric registry: every metric a row can carry, declared once.

A metric's facts used to be written wherever they were needed (peak RSS was named in 9 modules and
2 schemas): the budget names, the table column, the column a broken budget marks, the JUnit
property, the stored baseline field. Each of those now derives from the entry here, so adding a
metric is this entry plus the code that measures it (a `Measurement` attribute of the same name).

Stdlib only: the judge, the baselines, the report and the session all read it, and it reads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Dict, Optional, Tuple


class Direction(Enum):
    """Which way is better; a budget in the bad direction is an upper limit (`max_...`)."""

    LOWER = "lower"
    HIGHER = "higher"


class Noise(Enum):
    """DETERMINISTIC: the same artifact gives the same value, compared exactly and a change
    rewrites the baseline. NOISY: timing and memory, judged from samples or with a tolerance."""

    DETERMINISTIC = "deterministic"
    NOISY = "noisy"


class BudgetKind(Enum):
    ABSOLUTE = "absolute"  # max_storage_mb=5: the value itself
    RELATIVE = "relative"  # max_latency_regression="10%": a fraction of the stored baseline's value
    POINTS = "points"  # max_top1_regression=1.0: percentage points below the stored baseline
    PAIRED = "paired"  # max_latency_ratio_vs="fp32": against another precision in the same session
    FIT = "fit"  # sram_fit: a check the platform makes (a microcontroller's memory), not one a test writes


class Stored(Enum):
    """Whether the baseline file keeps the metric (schemas/baseline.schema.json)."""

    ALWAYS = "always"
    WHEN_PRESENT = "when present"  # microcontroller rows only: other platforms' files do not change
    NEVER = "never"


class Junit(Enum):
    """Whether the metric is a property of the JUnit XML test case (`--junitxml`)."""

    ALWAYS = "always"  # even when None (the value "None" says it was not measured)
    WHEN_PRESENT = "when present"


@dataclass(frozen=True)
class Budget:
    name: str
    kind: BudgetKind

    @property
    def upper(self) -> bool:
        """`max_...` limits from above, `min_...` from below (every budget name says which)."""
        return self.name.startswith("max_")


@dataclass(frozen=True)
class MetricSpec:
    """One metric. `id` is the `Measurement` attribute, the stored field and the JUnit name."""

    id: str
    unit: str
    direction: Direction
    noise: Noise
    column: Optional[str]  # the table column (by id) that shows it and that a broken budget marks
    budgets: Tuple[Budget, ...] = ()
    stored: Stored = Stored.NEVER
    junit: Junit = Junit.WHEN_PRESENT
    machine_dependent: bool = False  # relative budgets compared only against this machine's baseline
    # what quantization changes (accuracy, task metric, fidelity): a broken absolute budget of it
    # ranks the layers (m.sensitivity), and those budgets are the goal an int8-mixed search meets
    accuracy: bool = False
    # why a row may have no value, said by a budget that cannot be checked ({platform} is the row's)
    absent: str = "is not available (the eval set has no labels): gate on agreement"


@dataclass(frozen=True)
class ColumnSpec:
    """A column of the comparison table: its id (what code names it by) and its title."""

    id: str
    title: str


def _b(*names: str, kind: BudgetKind = BudgetKind.ABSOLUTE) -> Tuple[Budget, ...]:
    return tuple(Budget(name, kind) for name in names)


_LOW, _HIGH = Direction.LOWER, Direction.HIGHER
_DET, _NOISY = Noise.DETERMINISTIC, Noise.NOISY
_REL, _PTS = BudgetKind.RELATIVE, BudgetKind.POINTS

_NO_METER = (
    "is not available: the platform {platform} has no power meter "
    "(set power = {{kind = ...}} in [tool.edgeopt.platforms.{platform}])"
)
_MCU_ONLY = "is measured on microcontroller platforms only (e.g. --edge-platform=cortex-m4)"

METRICS: Tuple[MetricSpec, ...] = (
    MetricSpec("latency_ms", "ms", _LOW, _NOISY, "latency", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               machine_dependent=True, budgets=_b("max_latency_ms") + _b("max_latency_regression", kind=_REL)
               + _b("max_latency_ratio_vs", kind=BudgetKind.PAIRED)),
    MetricSpec("top1", "", _HIGH, _DET, "top1", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               accuracy=True, budgets=_b("min_top1") + _b("max_top1_regression", kind=_PTS)),
    MetricSpec("agreement", "", _HIGH, _DET, "agreement", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               accuracy=True, budgets=_b("min_agreement") + _b("max_agreement_regression", kind=_PTS)),
    MetricSpec("top5_agreement", "", _HIGH, _DET, "agreement", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               accuracy=True, budgets=_b("min_top5_agreement")),
    MetricSpec("size_mb", "MB", _LOW, _DET, "size", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               budgets=_b("max_size_mb") + _b("max_size_regression", kind=_REL)),
    MetricSpec("storage_mb", "MB", _LOW, _DET, "storage", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               budgets=_b("max_storage_mb") + _b("max_storage_regression", kind=_REL)),
    MetricSpec("params", "", _LOW, _DET, "params", stored=Stored.ALWAYS, junit=Junit.ALWAYS, budgets=_b("max_params")),
    MetricSpec("peak_rss_mb", "MB", _LOW, _NOISY, "peak_rss", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               machine_dependent=True, budgets=_b("max_peak_rss_mb") + _b("max_peak_rss_regression", kind=_REL)),
    MetricSpec("throughput", "inf/s", _HIGH, _NOISY, "throughput", stored=Stored.ALWAYS, junit=Junit.ALWAYS,
               budgets=_b("min_throughput")),
    MetricSpec("accuracy_drop", "pp", _LOW, _DET, "top1", accuracy=True, budgets=_b("max_accuracy_drop")),
    MetricSpec("gflops", "GFLOPs", _LOW, _DET, "compute", stored=Stored.ALWAYS),
    MetricSpec("quantized_share", "", _HIGH, _DET, "bitwidth", stored=Stored.WHEN_PRESENT,
               budgets=_b("min_quantized_share"),
               absent="is not available: an FP32 row, or an artifact whose types were not read (a .pte)"),
    MetricSpec("int8_weight_share", "", _HIGH, _DET, "bitwidth", budgets=_b("min_int8_weight_share"),
               absent="is not available: the artifact stores no weights"),
    MetricSpec("float_layers", "", _LOW, _DET, "bitwidth", budgets=_b("max_float_layers"),
               absent="is not available: the row is not a static INT8 file (FP32, FP16, int8-dynamic)"),
    MetricSpec("energy_w", "W", _LOW, _NOISY, "energy_w", budgets=_b("max_energy_w"), absent=_NO_METER),
    MetricSpec("energy_mj", "mJ/inf", _LOW, _NOISY, "energy_mj", budgets=_b("max_energy_mj"), absent=_NO_METER),
    MetricSpec("arena_kb", "KB", _LOW, _DET, "arena", stored=Stored.WHEN_PRESENT,  # KiB, as MCU datasheets count
               budgets=_b("max_arena_kb") + _b("sram_fit", kind=BudgetKind.FIT), absent=_MCU_ONLY),
    MetricSpec("flash_kb", "KB", _LOW, _DET, "flash", stored=Stored.WHEN_PRESENT,
               budgets=_b("max_flash_kb") + _b("flash_fit", kind=BudgetKind.FIT), absent=_MCU_ONLY),
    # metric_drop: % of the reference's value; min_sqnr_db: the worst output against FP32
    MetricSpec("metric_drop", "%", _LOW, _DET, "top1", accuracy=True, budgets=_b("max_metric_drop")),
    MetricSpec("metric", "", _HIGH, _DET, "top1", accuracy=True, budgets=_b("min_metric", "max_metric")),
    MetricSpec("min_sqnr_db", "dB", _HIGH, _DET, "agreement", accuracy=True, budgets=_b("min_sqnr_db")),
    MetricSpec("min_cosine", "", _HIGH, _DET, "agreement", accuracy=True, budgets=_b("min_cosine")),
    MetricSpec("latency_ratio", "", _LOW, _NOISY, "latency", budgets=_b("max_latency_ratio")),  # vs the reference
    MetricSpec("size_ratio", "", _LOW, _DET, "size", budgets=_b("max_size_ratio")),
    MetricSpec("eval_count", "", _HIGH, _DET, None, stored=Stored.ALWAYS),
    MetricSpec("load_ms", "ms", _LOW, _NOISY, None, stored=Stored.ALWAYS),
    MetricSpec("first_inference_ms", "ms", _LOW, _NOISY, None, stored=Stored.ALWAYS),
    MetricSpec("latency_mean_ms", "ms", _LOW, _NOISY, None),
    MetricSpec("latency_stddev_ms", "ms", _LOW, _NOISY, None),
    MetricSpec("cpu_latency_ms", "ms", _LOW, _NOISY, None),
    MetricSpec("gflops_per_s", "GFLOP/s", _HIGH, _NOISY, "compute"),
)  # fmt: skip

# The comparison table's columns in their order (Arena and Flash only with MCU rows).
COLUMNS: Tuple[ColumnSpec, ...] = (
    ColumnSpec("model", "Model"),
    ColumnSpec("bitwidth", "Bit-width (W/A)"),
    ColumnSpec("runtime", "Runtime"),
    ColumnSpec("size", "Size (MB)"),
    ColumnSpec("params", "Params (M)"),
    ColumnSpec("top1", "Top-1 (%)"),
    ColumnSpec("agreement", "Agreement (%)"),
    ColumnSpec("storage", "Storage (MB)"),
    ColumnSpec("latency", "Latency (ms, p50)"),
    ColumnSpec("throughput", "Throughput (inf/s)"),
    ColumnSpec("peak_rss", "Peak RSS (MB)"),
    ColumnSpec("arena", "Arena (KB)"),
    ColumnSpec("flash", "Flash (KB)"),
    ColumnSpec("energy_w", "Energy (W)"),
    ColumnSpec("energy_mj", "Energy (mJ/inf)"),
    ColumnSpec("compute", "Compute (GFLOPs, GFLOP/s)"),
    ColumnSpec("platform", "Platform"),
    ColumnSpec("baseline", "Baseline (ms)"),
    ColumnSpec("delta", "Delta"),
    ColumnSpec("verdict", "Verdict"),
    ColumnSpec("notes", "Notes"),
)
MCU_COLUMNS = ("arena", "flash")  # shown only when a row has them: microcontroller rows
JUDGED_COLUMNS = ("baseline", "delta", "verdict")  # a run's columns; the stored-baselines table has none
TITLES: Dict[str, str] = {c.id: c.title for c in COLUMNS}
BY_ID: Dict[str, MetricSpec] = {spec.id: spec for spec in METRICS}


def budget_index() -> Dict[str, Tuple[MetricSpec, Budget]]:
    """Every budget name -> the metric it limits and how."""
    return {budget.name: (spec, budget) for spec in METRICS for budget in spec.budgets}


def budgets_of(kind: BudgetKind) -> Dict[str, MetricSpec]:
    return {name: spec for name, (spec, budget) in budget_index().items() if budget.kind == kind}


def stored_ids() -> Tuple[str, ...]:
    """The metrics a baseline entry keeps, in the file's order."""
    return tuple(spec.id for spec in METRICS if spec.stored != Stored.NEVER)
