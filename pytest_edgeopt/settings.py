"""Settings: built once at configure time from the command line and the ini file, then frozen.

Options stay plain strings on the command line (xdist copies them to workers as they are); the
argparse `type=` parsers turn them into values here and say the fix when one is wrong.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional, Tuple

import pytest

from pytest_edgeopt.agent.sampling import SamplingPlan

QUICK_PLAN = SamplingPlan(warmup_runs=2, warmup_s=0.0, min_runs=5, min_s=0.05, max_s=2.0)

# ini name -> (help, default)
INI_OPTIONS = {
    "edgeopt_platform": ("platform profile to measure on (like --edge-platform)", "host"),
    "edgeopt_precisions": ("precisions of tests that use edge_precision without a marker", "fp32,int8"),
    "edgeopt_cache_dir": ("artifact cache directory, relative to the rootdir", ".edgeopt_cache"),
    "edgeopt_min_runs": ("minimum timed inferences per case", "30"),
    "edgeopt_min_time": ("minimum seconds of timed inferences per case", "1.0"),
    "edgeopt_max_time": ("maximum seconds of timed inferences per case", "10.0"),
    "edgeopt_warmup_runs": ("minimum warm-up inferences before timing", "5"),
    "edgeopt_warmup_time": ("minimum warm-up seconds before timing", "0.2"),
    "edgeopt_timeout": ("seconds one agent job may take before it is killed", "900"),
}


@dataclass(frozen=True)
class Settings:
    platform: str
    precisions: Optional[Tuple[str, ...]]  # --edge-precision filter; None = no filter
    default_precisions: Tuple[str, ...]
    cache_dir: Path
    threads: Optional[int]
    plan: SamplingPlan
    timeout_s: float
    table: bool

    @classmethod
    def from_config(cls, config: pytest.Config) -> "Settings":
        option = config.option
        plan = QUICK_PLAN if option.edge_quick else _plan(config)
        return cls(
            platform=option.edge_platform or config.getini("edgeopt_platform"),
            precisions=option.edge_precision,
            default_precisions=parse_name_list(config.getini("edgeopt_precisions")),
            cache_dir=_cache_dir(config),
            threads=option.edge_threads,
            plan=plan,
            timeout_s=_ini_float(config, option.edge_timeout, "edgeopt_timeout"),
            table=option.edge_table,
        )

    def with_platform(self, name: str) -> "Settings":
        return replace(self, platform=name)


def parse_name_list(text: str) -> Tuple[str, ...]:
    """`int8,fp32` or `int8 fp32` -> ("int8", "fp32"); argparse type= for --edge-precision."""
    names = tuple(part for part in text.replace(",", " ").split() if part)
    if not names:
        raise argparse.ArgumentTypeError("expected one or more names, e.g. fp32,int8")
    return names


def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _number(text: str, kind: Any) -> Any:
    try:
        return kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _plan(config: pytest.Config) -> SamplingPlan:
    option = config.option
    plan = SamplingPlan(
        warmup_runs=_ini_int(config, option.edge_warmup_runs, "edgeopt_warmup_runs", minimum=0),
        warmup_s=_ini_float(config, option.edge_warmup_time, "edgeopt_warmup_time", minimum=0.0),
        min_runs=_ini_int(config, option.edge_min_runs, "edgeopt_min_runs", minimum=1),
        min_s=_ini_float(config, option.edge_min_time, "edgeopt_min_time", minimum=0.0),
        max_s=_ini_float(config, option.edge_max_time, "edgeopt_max_time", minimum=0.0),
    )
    if plan.max_s < plan.min_s:
        raise pytest.UsageError(
            f"--edge-max-time ({plan.max_s} s) is below --edge-min-time ({plan.min_s} s): raise the maximum")
    return plan


def _ini_int(config: pytest.Config, cli: Optional[int], name: str, *, minimum: int) -> int:
    value = cli if cli is not None else _ini_number(config, name, int)
    if value < minimum:
        raise pytest.UsageError(f"{name} must be >= {minimum}, got {value}")
    return value


def _ini_float(config: pytest.Config, cli: Optional[float], name: str, *, minimum: float = 1e-9) -> float:
    value = cli if cli is not None else _ini_number(config, name, float)
    if value < minimum:
        raise pytest.UsageError(f"{name} must be >= {minimum:g}, got {value}")
    return value


def _ini_number(config: pytest.Config, name: str, kind: Any) -> Any:
    raw = config.getini(name)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"ini option {name} = {raw!r} is not a number; fix it in your pytest config") from None


def _cache_dir(config: pytest.Config) -> Path:
    """--edge-cache-dir, then $EDGEOPT_CACHE_DIR (share one cache across CI jobs), then the ini."""
    chosen = config.option.edge_cache_dir or os.environ.get("EDGEOPT_CACHE_DIR")
    if chosen:
        return Path(chosen).resolve()
    path = Path(config.getini("edgeopt_cache_dir"))
    return path if path.is_absolute() else Path(config.rootpath) / path
