"""`python -m pytest_edgeopt`: what a user does outside a test run, on the files a run leaves.

python -m pytest_edgeopt cache info [--cache-dir DIR]
python -m pytest_edgeopt cache prune --max-mb N [--cache-dir DIR]
python -m pytest_edgeopt table [BASELINES_DIR] [--report table.md|.html|.json ...] [--columns fit|all]
python -m pytest_edgeopt compare OLD.json NEW.json [--fail-on METRIC:LIMIT ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from pytest_edgeopt.baselines.store import read_tree
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.judge.types import Row
from pytest_edgeopt.kinds import TableColumns
from pytest_edgeopt.optimize.cache import entries, prune
from pytest_edgeopt.report.compare import Limit, compare_lines, parse_limit, read_report
from pytest_edgeopt.report.files import write_report
from pytest_edgeopt.report.recommend import recommendation_lines
from pytest_edgeopt.report.table import table_lines
from pytest_edgeopt.settings import REPORT_SUFFIXES

DEFAULT_CACHE = ".edgeopt_cache"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Lines on stdout; a command that hit errors prints them on stderr, one line each, and returns 1."""
    args = _parser().parse_args(argv)
    errors: List[str] = []
    try:
        lines: List[str] = args.run(args, errors) if args.command in ("table", "compare") else args.run(args)
    except (OSError, EdgeOptError) as error:  # a file that changed under us, a lock that is not a file
        lines, errors = [], [str(error)]
    for line in lines:
        print(line)
    for line in errors:
        print(f"ERROR {line}", file=sys.stderr)
    if args.command == "compare" and not errors:
        return 1 if args.breaches else 0
    return (2 if args.command == "compare" else 1) if errors else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pytest_edgeopt", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cache = commands.add_parser("cache", help="the artifact cache: what it holds, and pruning it")
    actions = cache.add_subparsers(dest="action", required=True)
    info = actions.add_parser("info", help="entries and size")
    info.set_defaults(run=_cache_info)
    pruner = actions.add_parser("prune", help="remove least recently used entries beyond a size")
    pruner.add_argument("--max-mb", type=_megabytes, required=True, help="the size to prune to")
    pruner.set_defaults(run=_cache_prune)
    table = commands.add_parser(
        "table",
        help="the comparison table of every platform's stored baselines, without measuring",
        description="Read baselines/<platform>/**/*.json and print the comparison table, one row group per platform.",
    )
    table.add_argument("baselines", nargs="?", type=Path, default=Path("baselines"), help="default: baselines")
    table.add_argument(
        "--report",
        action="append",
        type=_report_path,
        default=[],
        metavar="PATH",
        help="also write .md, .html or .json (repeatable)",
    )
    table.add_argument(
        "--columns",
        choices=TableColumns.choices(),
        default=TableColumns.FIT.value,
        help="fit: stacked blocks that fit this terminal's width, every value kept (the default); all: one block",
    )
    table.add_argument(
        "--recommend",
        action="store_true",
        help="after the table, per model and platform the fastest and the smallest stored configuration",
    )
    table.set_defaults(run=_table)
    compare = commands.add_parser(
        "compare",
        help="two JSON reports (--edge-report x.json) side by side; exit 1 when a --fail-on limit is broken",
        description="Per case (model/precision/runtime@platform) the change of each metric between two runs; "
        "exit 1 on a breach, 2 on a file that cannot be read, else 0.",
    )
    compare.add_argument("old", type=Path, help="the earlier report (.json)")
    compare.add_argument("new", type=Path, help="the later report (.json)")
    compare.add_argument(
        "--fail-on",
        action="append",
        type=_limit,
        default=[],
        metavar="METRIC:LIMIT",
        help="fail when METRIC gets worse by more than LIMIT: 10%% (relative) or 0.01 (absolute, "
        "in the metric's unit), e.g. latency_ms:10%% or top1:0.01 (repeatable)",
    )
    compare.set_defaults(run=_compare, breaches=0)
    for sub in (info, pruner):
        sub.add_argument(
            "--cache-dir",
            type=Path,
            default=None,
            help=f"the cache (default: $EDGEOPT_CACHE_DIR, else {DEFAULT_CACHE})",
        )
    return parser


def _cache_dir(args: argparse.Namespace) -> Path:
    chosen = args.cache_dir or os.environ.get("EDGEOPT_CACHE_DIR") or DEFAULT_CACHE
    path = Path(chosen)
    if not path.is_dir():
        raise SystemExit(f"{path} is not an artifact cache directory: pass --cache-dir")
    return path


def _cache_info(args: argparse.Namespace) -> List[str]:
    root = _cache_dir(args)
    found = entries(root)
    total = sum(e.size for e in found)
    return [f"{root}: {len(found)} entries, {total / 1e6:.1f} MB"]


def _cache_prune(args: argparse.Namespace) -> List[str]:
    root = _cache_dir(args)
    removed = list(prune(root, max_bytes=int(args.max_mb * 1e6)))
    freed = sum(len(e.files) for e in removed)
    return [f"{root}: removed {len(removed)} entries ({freed} files), least recently used first"]


def _table(args: argparse.Namespace, errors: List[str]) -> List[str]:
    root: Path = args.baselines
    if not root.is_dir():
        raise SystemExit(f"{root} is not a directory of baselines (baselines/<platform>/...): pass its path")
    tree = read_tree(root)
    errors += tree.errors
    rows = [Row(measurement=m) for m in tree.measurements]
    if not rows:
        errors.append(f"{root}: no baseline entry in {tree.files} file(s): run pytest --update-baselines first")
        return []
    platforms = ", ".join(dict.fromkeys(m.platform for m in sorted(tree.measurements, key=lambda m: m.platform)))
    width = None if TableColumns(args.columns) == TableColumns.ALL else shutil.get_terminal_size().columns
    lines = [f"stored baselines in {root}: {len(tree.measurements)} entries, platforms {platforms}"]
    lines += table_lines(rows, width=width, by_platform=True)
    if args.recommend:
        lines += ["", "what to deploy (budgets are not stored: every stored entry counts as passing):"]
        lines += [f"  {line}" for line in recommendation_lines(rows)]
    for path in args.report:
        try:
            write_report(path, rows, platform=platforms, by_platform=True)
        except OSError as error:
            errors.append(f"{path}: cannot write the report ({error.strerror or error})")
        else:
            lines.append(f"wrote {path}")
    return lines


def _compare(args: argparse.Namespace, errors: List[str]) -> List[str]:
    try:
        old, new = read_report(args.old), read_report(args.new)
    except ValueError as error:
        errors.append(str(error))
        return []
    lines, args.breaches = compare_lines(old, new, args.fail_on)
    return lines


def _limit(text: str) -> Limit:
    try:
        return parse_limit(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _report_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in REPORT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"{text}: the file name must end in {', '.join(REPORT_SUFFIXES)}")
    return path


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of MB, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
