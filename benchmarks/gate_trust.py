"""Can the latency gate be trusted on a shared 2-core machine?

Counts, for a latency-gated MobileNetV2 (torchvision architecture, 1 thread, ONNX Runtime):
- false alarms over N unchanged reruns against one stored baseline: quiet, with two busy-loop
  processes keeping both cores busy, and quiet again at the end (host drift);
- detections of a real ~25% slowdown of the model itself (extra inverted-residual blocks with the
  same weights, spliced into the graph: more compute, not a sleep), quiet and busy.
pytest-edgeopt runs `@pytest.mark.edge_budget(max_latency_regression="10%")`; pytest-benchmark
runs the same ONNX file in the same loop with `--benchmark-compare-fail=median:10%`.

    python benchmarks/gate_trust.py [--runs 20] [--tools edgeopt,benchmark]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DELTA = re.compile(r"mobilenet_v2 .*? ([+-][\d.]+)% \(cpu")  # the table's Delta column

EDGEOPT_TEST = """
import os
import re
import numpy as np
import pytest
from pytest_edgeopt import EdgeModel

INPUTS = np.load(os.environ["GATE_INPUTS"])


@pytest.mark.edge_budget(max_latency_regression="10%")
def test_gate(edge_runner):
    model = EdgeModel.from_onnx(os.environ["GATE_MODEL"], name="mobilenet_v2", eval_data=INPUTS)
    edge_runner.measure(model, precision="fp32")
"""

BENCHMARK_TEST = """
import os
import re
import numpy as np
import onnxruntime as ort


def test_gate(benchmark):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(os.environ["GATE_MODEL"], sess_options=options,
                                   providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.load(os.environ["GATE_INPUTS"])[:1]}
    benchmark(session.run, None, feed)
"""


def build_models(workdir: Path, extra_blocks: int) -> Tuple[Path, Path, Path]:
    """MobileNetV2 and the same network with `extra_blocks` copies of features[16] after it."""
    import copy

    import torch
    import torchvision

    torch.manual_seed(0)
    base = torchvision.models.mobilenet_v2(weights=None).eval()
    slow = copy.deepcopy(base)
    block = slow.features[16]
    slow.features = torch.nn.Sequential(*list(slow.features[:17]), *[block] * extra_blocks, *list(slow.features[17:]))
    example = torch.zeros(1, 3, 224, 224)
    paths = workdir / "mobilenet_v2.onnx", workdir / "mobilenet_v2_slow.onnx"
    for module, path in zip((base, slow), paths):
        torch.onnx.export(module, (example,), str(path), dynamo=True, external_data=False, opset_version=20)
    inputs = workdir / "inputs.npy"
    np.save(inputs, np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32))
    return paths[0], paths[1], inputs


def burners(count: int) -> List[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def run_pytest(project: Path, test: str, env: Dict[str, str], args: List[str]) -> Tuple[int, float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", test, "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    (project / "last.log").write_text(done.stdout + done.stderr)
    return done.returncode, time.perf_counter() - start, done.stdout


def tool_args(tool: str) -> List[str]:
    if tool == "edgeopt":
        return ["-p", "no:benchmark"]
    return ["--benchmark-storage", "bench", "--benchmark-compare=0001", "--benchmark-compare-fail=median:10%"]


def cell(project: Path, tool: str, env: Dict[str, str], runs: int, busy: bool) -> Dict[str, object]:
    hogs = burners(2) if busy else []
    try:
        time.sleep(1.0 if busy else 0.0)
        results = [run_pytest(project, f"test_{tool}.py", env, tool_args(tool)) for _ in range(runs)]
    finally:
        for hog in hogs:
            hog.terminate()
            hog.wait()
    codes = [code for code, _, _ in results]
    deltas = [float(found.group(1)) for _, _, out in results if (found := DELTA.search(out))]
    return {
        "failed": sum(c != 0 for c in codes),
        "runs": runs,
        "codes": sorted(set(codes)),
        "seconds_per_run": round(float(np.median([s for _, s, _ in results])), 1),
        "median_delta_percent": round(float(np.median(deltas)), 1) if deltas else None,
    }


def baseline(project: Path, tool: str, env: Dict[str, str]) -> None:
    args = ["--update-baselines"] if tool == "edgeopt" else ["--benchmark-storage", "bench", "--benchmark-save=base"]
    code, _, _ = run_pytest(
        project, f"test_{tool}.py", env, args + (["-p", "no:benchmark"] if tool == "edgeopt" else [])
    )
    if code != 0:
        raise SystemExit(f"{tool} baseline run failed:\n{(project / 'last.log').read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--extra-blocks", type=int, default=5, help="copies of features[16] in the slow model")
    parser.add_argument("--tools", default="edgeopt,benchmark")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    project = Path(tempfile.mkdtemp(prefix="edgeopt-gate-"))
    normal, slow, inputs = build_models(project, args.extra_blocks)
    (project / "test_edgeopt.py").write_text(EDGEOPT_TEST)
    (project / "test_benchmark.py").write_text(BENCHMARK_TEST)
    (project / "pytest.ini").write_text("[pytest]\n")
    env = {
        **os.environ,
        "GATE_INPUTS": str(inputs),
        "PYTHONPATH": str(ROOT),
        "EDGEOPT_CACHE_DIR": str(project / "cache"),
    }
    plan = [
        ("quiet", False, normal),
        ("busy", True, normal),
        ("quiet, slow model", False, slow),
        ("busy, slow model", True, slow),
        ("quiet again (later)", False, normal),
    ]
    figures: Dict[str, Dict[str, object]] = {}
    for tool in args.tools.split(","):
        baseline(project, tool, {**env, "GATE_MODEL": str(normal)})
        for name, busy, model in plan:
            result = cell(project, tool, {**env, "GATE_MODEL": str(model)}, args.runs, busy)
            figures[f"{tool}: {name}"] = result
            kind = "detections" if model == slow else "false alarms"
            shift = result["median_delta_percent"]
            delta = "" if shift is None else f", median latency delta {shift:+.1f}%"
            print(
                f"{tool:9} {name:22} {kind:13} {result['failed']}/{result['runs']}  "
                f"(exit codes {result['codes']}, {result['seconds_per_run']} s per run{delta})",
                flush=True,
            )
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
