"""The MCU profiles' latency estimates against published results: the calibration table of docs/mcu.md.

    python benchmarks/mcu_calibration.py

Each row runs the estimator (pytest_edgeopt.measure.mcu) with a built-in profile's cycles per MAC
at the clock of the board that was measured, on the MACs per kernel class of the benchmark's
reference model (benchmarks/mcu_calibration.json, with the source of every published figure).
"Fitted" rows are in-sample: the profile's constants were fitted to them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

from pytest_edgeopt.inspect.tflite_kernels import KernelWork
from pytest_edgeopt.measure.mcu import estimate
from pytest_edgeopt.platforms.profiles import BUILTIN

DATA = Path(__file__).with_suffix(".json")


def rows() -> List[Dict[str, Any]]:
    data = json.loads(DATA.read_text())
    boards = {p.name: p.mcu for p in BUILTIN if p.mcu is not None}
    out = []
    for row in data["results"]:
        board = boards[row["profile"]]
        work = KernelWork(**data["work"][row["work"]])
        ms = estimate(work, cpm=board.cycles_per_mac, clock_mhz=row["clock_mhz"], active_mw=board.active_mw).latency_ms
        out.append({**row, "estimated_ms": ms, "error_pct": (ms / row["published_ms"] - 1) * 100})
    return out


def main() -> None:
    print("| profile | benchmark | board | engine | published ms | estimated ms | error % | fitted |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows():
        print(
            f"| {r['profile']} | {r['benchmark']} | {r['board']} | {r['engine']} | {r['published_ms']:.2f} | "
            f"{r['estimated_ms']:.2f} | {r['error_pct']:+.1f} | {'yes' if r['fitted'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
