"""`python -m pytest_edgeopt`: what a user does outside a test run, on the files a run leaves.

python -m pytest_edgeopt cache info [--cache-dir DIR]
python -m pytest_edgeopt cache prune --max-mb N [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from pytest_edgeopt.optimize.cache import entries, prune

DEFAULT_CACHE = ".edgeopt_cache"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    lines: List[str] = args.run(args)
    for line in lines:
        print(line)
    return 0


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
