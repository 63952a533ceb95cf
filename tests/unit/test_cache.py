"""The content-addressed artifact cache: build once, never half a file, and reuse across runs."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import textwrap
from pathlib import Path
from typing import Any, Dict, List

import pytest

from pytest_edgeopt.optimize.cache import ArtifactCache, atomic_write_text, cache_key
from pytest_edgeopt.runtimes.causes import own_warning_filters

QUICK = ("--edge-quick", "-p", "no:cacheprovider")


class CountingBuilder:
    """A builder that writes `payload` and counts its calls."""

    def __init__(self, payload: bytes = b"artifact") -> None:
        self.payload = payload
        self.calls: List[Path] = []

    def __call__(self, dest: Path) -> Dict[str, Any]:
        self.calls.append(dest)
        dest.write_bytes(self.payload)
        return {"size": len(self.payload)}


def listing(root: Path) -> List[str]:
    return sorted(os.listdir(root))


def test_builds_once_then_returns_the_cached_entry(tmp_path: Path) -> None:
    cache, build = ArtifactCache(tmp_path), CountingBuilder()
    first = cache.get_or_build({"stage": "fp32", "model": "abc"}, suffix=".onnx", build=build)
    second = cache.get_or_build({"model": "abc", "stage": "fp32"}, suffix=".onnx", build=build)
    assert len(build.calls) == 1
    assert first == second
    path, info = first
    assert path == tmp_path / f"{cache_key({'stage': 'fp32', 'model': 'abc'})}.onnx"
    assert path.read_bytes() == b"artifact" and info == {"size": 8}
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta == {
        "parts": {"stage": "fp32", "model": "abc"},
        "info": {"size": 8},
        "size": 8,
        "sha256": hashlib.sha256(b"artifact").hexdigest(),
    }  # checked when the entry is reused


def test_a_new_cache_object_on_the_same_directory_reuses_the_entry(tmp_path: Path) -> None:
    build = CountingBuilder()
    ArtifactCache(tmp_path).get_or_build({"k": 1}, suffix=".onnx", build=build)
    ArtifactCache(tmp_path).get_or_build({"k": 1}, suffix=".onnx", build=build)
    assert len(build.calls) == 1


def test_the_builder_writes_a_temporary_name_in_the_cache_directory(tmp_path: Path) -> None:
    build = CountingBuilder()
    path, _ = ArtifactCache(tmp_path).get_or_build({"k": 1}, suffix=".onnx", build=build)
    (dest,) = build.calls
    assert dest.parent == tmp_path and dest != path and dest.name.endswith(".tmp")
    assert not dest.exists()


@pytest.mark.parametrize(
    "changed",
    [
        {"stage": "int8"},
        {"model": "other"},
        {"calibration": "c2"},
        {"tools": {"onnx": "9.9"}},
        {"batch": 4},
    ],
)
def test_any_different_key_part_is_a_different_file(tmp_path: Path, changed: Dict[str, Any]) -> None:
    base = {"stage": "fp32", "model": "abc", "calibration": "c1", "tools": {"onnx": "1.0"}, "batch": 1}
    cache = ArtifactCache(tmp_path)
    one, _ = cache.get_or_build(base, suffix=".onnx", build=CountingBuilder(b"one"))
    two, _ = cache.get_or_build({**base, **changed}, suffix=".onnx", build=CountingBuilder(b"two"))
    assert one != two
    assert (one.read_bytes(), two.read_bytes()) == (b"one", b"two")


def test_the_suffix_does_not_share_a_key_with_another_entry(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path)
    onnx, _ = cache.get_or_build({"stage": "fp32"}, suffix=".onnx", build=CountingBuilder())
    npz, _ = cache.get_or_build({"stage": "eval-inputs"}, suffix=".npz", build=CountingBuilder())
    assert onnx.stem != npz.stem


def test_a_builder_that_raises_leaves_nothing_behind(tmp_path: Path) -> None:
    def failing(dest: Path) -> Dict[str, Any]:
        dest.write_bytes(b"half a model")
        raise RuntimeError("quantization failed")

    cache = ArtifactCache(tmp_path)
    with pytest.raises(RuntimeError, match="quantization failed"):
        cache.get_or_build({"k": "bad"}, suffix=".onnx", build=failing)
    key = cache_key({"k": "bad"})
    assert [name for name in listing(tmp_path) if not name.endswith(".lock")] == []
    assert not (tmp_path / f"{key}.onnx").exists() and not (tmp_path / f"{key}.json").exists()
    # and the next attempt builds afresh instead of finding a stale entry
    build = CountingBuilder()
    path, _ = cache.get_or_build({"k": "bad"}, suffix=".onnx", build=build)
    assert len(build.calls) == 1 and path.read_bytes() == b"artifact"


def _can_lock(path: Path, mode: int) -> bool:
    fcntl = pytest.importorskip("fcntl")
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_a_build_holds_the_timing_lock_shared_so_no_worker_times_beside_it(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    lock = tmp_path / "host-latency.lock"
    seen: Dict[str, bool] = {}

    def build(dest: Path) -> Dict[str, Any]:
        seen["timing"], seen["another build"] = _can_lock(lock, fcntl.LOCK_EX), _can_lock(lock, fcntl.LOCK_SH)
        dest.write_bytes(b"x")
        return {}

    ArtifactCache(tmp_path / "cache", build_lock=lock).get_or_build({"k": 1}, suffix=".bin", build=build)
    assert seen == {"timing": False, "another build": True}
    assert _can_lock(lock, fcntl.LOCK_EX)  # released once built


def test_an_artifact_without_its_metadata_is_rebuilt(tmp_path: Path) -> None:
    cache, build = ArtifactCache(tmp_path), CountingBuilder()
    path, _ = cache.get_or_build({"k": 1}, suffix=".onnx", build=build)
    path.with_suffix(".json").unlink()  # a crash between the rename and the metadata write
    cache.get_or_build({"k": 1}, suffix=".onnx", build=build)
    assert len(build.calls) == 2 and path.with_suffix(".json").exists()


def test_atomic_write_text_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "baseline.json"
    atomic_write_text(target, "x" * 10_000)
    atomic_write_text(target, "short")
    assert target.read_text() == "short"
    assert listing(target.parent) == ["baseline.json"]


def test_atomic_write_text_leaves_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "baseline.json"
    atomic_write_text(target, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "new \udcff")  # a lone surrogate cannot be encoded
    assert target.read_text() == "old"
    assert listing(tmp_path) == ["baseline.json"]


# across pytest runs -----------------------------------------------------------------------------

CALIBRATED = """
    import os

    import pytest

    from pytest_edgeopt import EdgeModel
    from pytest_edgeopt.models.zoo import load_zoo_model

    DIGITS = load_zoo_model("digits-cnn")
    STARTS = [int(s) for s in os.environ["CALIBRATION_STARTS"].split(",")]


    def wrapped(start):
        return EdgeModel.from_torch(
            DIGITS.module, name=f"digits-calib-{start}", example_input=DIGITS.example_input,
            eval_data=(DIGITS.eval_inputs, DIGITS.eval_labels),
            calibration_data=DIGITS.calibration_inputs[start:start + 64])


    SEEN = {}


    @pytest.mark.parametrize("start", STARTS)
    def test_int8(edge_runner, start):
        m = edge_runner.measure(wrapped(start), precision="int8")
        assert m.model == f"digits-calib-{start}"
        assert m.quantization["calibration_samples"] == 64
        assert m.agreement >= 0.95
        assert m.artifact_sha not in {seen.artifact_sha for seen in SEEN.values()}
        SEEN[start] = m
"""


@pytest.fixture(scope="module")
def native_modules_loaded(shared_cache: Path) -> None:
    """Export and quantize once in this process before any pytester run: pytester restores
    sys.modules after each in-process run, and onnx's C extension aborts the process (SIGABRT)
    when it is imported a second time."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import onnx  # noqa: F401
    import onnxruntime.quantization  # noqa: F401

    from pytest_edgeopt.models.zoo import load_zoo_model
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.precisions import get_precision

    for name in ("fp32", "int8"):
        build_artifact(
            load_zoo_model("digits-cnn"),
            precision=get_precision(name),
            batch=1,
            arch=platform.machine(),
            cache=ArtifactCache(shared_cache),
        )


def artifacts_by_stage(cache_dir: Path) -> Dict[str, Dict[Path, int]]:
    """stage -> {artifact path: mtime_ns}, from the metadata each entry keeps."""
    stages: Dict[str, Dict[Path, int]] = {}
    for meta in sorted(cache_dir.glob("*.json")):
        artifact = meta.with_suffix(".onnx")
        if artifact.exists():
            stage = json.loads(meta.read_text())["parts"]["stage"]
            stages.setdefault(stage, {})[artifact] = artifact.stat().st_mtime_ns
    return stages


def run_calibrated(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, cache_dir: Path, starts: str
) -> pytest.RunResult:
    monkeypatch.setenv("CALIBRATION_STARTS", starts)
    result = pytester.runpytest(*QUICK, "--edge-cache-dir", str(cache_dir))
    result.assert_outcomes(passed=len(starts.split(",")))
    return result


@pytest.mark.usefixtures("native_modules_loaded")
def test_a_second_run_over_the_same_cache_rebuilds_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = pytester.path / "edge-cache"
    pytester.makepyfile(test_calibrated=textwrap.dedent(CALIBRATED))

    run_calibrated(pytester, monkeypatch, cache_dir, "0")
    first = artifacts_by_stage(cache_dir)
    assert {stage: len(files) for stage, files in first.items()} == {"fp32": 1, "int8": 1}
    before = listing(cache_dir)

    run_calibrated(pytester, monkeypatch, cache_dir, "0")
    assert artifacts_by_stage(cache_dir) == first
    assert listing(cache_dir) == before


@pytest.mark.usefixtures("native_modules_loaded")
def test_new_calibration_data_builds_a_new_int8_artifact_and_reuses_fp32(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = pytester.path / "edge-cache"
    pytester.makepyfile(test_calibrated=textwrap.dedent(CALIBRATED))
    run_calibrated(pytester, monkeypatch, cache_dir, "0")
    first = artifacts_by_stage(cache_dir)

    # another run, and within it two models that differ only in their calibration data
    run_calibrated(pytester, monkeypatch, cache_dir, "0,64")
    after = artifacts_by_stage(cache_dir)
    assert after["fp32"] == first["fp32"]  # same file, not rewritten
    assert set(first["int8"]).issubset(after["int8"]) and len(after["int8"]) == 2
    assert all(after["int8"][path] == mtime for path, mtime in first["int8"].items())


def test_flops_of_a_fixed_batch_onnx_file_are_per_sample(tmp_path: Path) -> None:
    """A user's .onnx exported at batch 4 counts its graph once per sample, like a batch-1 export."""
    torch = pytest.importorskip("torch")
    import numpy as np

    from pytest_edgeopt.models.base import EdgeModel
    from pytest_edgeopt.optimize.artifacts import build_artifact
    from pytest_edgeopt.optimize.cache import ArtifactCache
    from pytest_edgeopt.optimize.precisions import get_precision

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    flops = {}
    for batch in (1, 4):
        path = tmp_path / f"b{batch}.onnx"
        with own_warning_filters():  # as the plugin exports: torch 2.13 warns from outside torch
            torch.onnx.export(net, (torch.zeros(batch, 1, 8, 8),), str(path), dynamo=True, external_data=False)
        model = EdgeModel.from_onnx(path, eval_data=np.zeros((8, 1, 8, 8), np.float32))
        artifact = build_artifact(
            model, precision=get_precision("fp32"), batch=batch, arch="x86_64", cache=ArtifactCache(tmp_path / "cache")
        )
        flops[batch] = artifact.flops
    assert flops[1] == flops[4] == 2 * 64 * 10


# -- issue 24 item 11: `python -m pytest_edgeopt cache info|prune` on a damaged cache ---------------------------


@pytest.mark.parametrize("damage", ["dangling-record", "directory-named-like-an-artifact"])
@pytest.mark.parametrize("command", [["info"], ["prune", "--max-mb", "0"]])
def test_cache_commands_survive_a_damaged_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str, command: List[str]
) -> None:
    from pytest_edgeopt.cli import main

    cache = ArtifactCache(tmp_path)
    path, _ = cache.get_or_build({"stage": "x"}, suffix=".onnx", build=lambda p: p.write_bytes(b"x" * 10) and {})
    key = path.stem
    if damage == "dangling-record":  # the record is a link whose target is gone
        (tmp_path / f"{key}.json").rename(tmp_path / "gone.json")
        (tmp_path / f"{key}.json").symlink_to(tmp_path / "gone-for-good.json")
        (tmp_path / "gone.json").unlink()
    else:  # a directory holding a file, named like the entry's artifact
        path.unlink()
        path.mkdir()
        (path / "keep").write_text("not ours")
    status = main(["cache", *command, "--cache-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out.startswith(f"{tmp_path}: ") and len(out.splitlines()) == 1
    if damage != "dangling-record":
        assert (path / "keep").read_text() == "not ours"  # never deleted as if it were an artifact


def test_a_module_class_held_as_an_attribute_keys_by_its_name() -> None:
    """torchvision's ResNet holds `_norm_layer = nn.BatchNorm2d`, a class: it is named, not walked."""
    torch = pytest.importorskip("torch")
    from pytest_edgeopt.models.torch_key import module_key

    class Net(torch.nn.Module):
        def __init__(self, norm: Any) -> None:
            super().__init__()
            self._norm_layer = norm

    batch, layer = (module_key(Net(norm)).hexdigest() for norm in (torch.nn.BatchNorm2d, torch.nn.LayerNorm))
    assert batch != layer and module_key(Net(torch.nn.BatchNorm2d)).hexdigest() == batch


def test_a_companion_file_is_renamed_with_its_entry_and_checked_on_reuse(tmp_path: Path) -> None:
    """An OpenVINO IR is an .xml and a .bin: both land under the entry's key, and a .bin changed
    or gone since the build makes the entry be rebuilt, as the entry itself would."""
    calls: List[Path] = []

    def build(dest: Path) -> Dict[str, object]:
        calls.append(dest)
        dest.write_text("<net/>")
        dest.with_suffix(".bin").write_bytes(b"weights")
        return {}

    cache = ArtifactCache(tmp_path)
    path, _ = cache.get_or_build({"k": "ir"}, suffix=".xml", build=build, companions=(".bin",))
    assert path.with_suffix(".bin").read_bytes() == b"weights"
    assert sorted(p.suffix for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [".bin", ".json", ".xml"]
    cache.get_or_build({"k": "ir"}, suffix=".xml", build=build, companions=(".bin",))
    assert len(calls) == 1
    path.with_suffix(".bin").write_bytes(b"edited!")
    cache.get_or_build({"k": "ir"}, suffix=".xml", build=build, companions=(".bin",))
    assert len(calls) == 2 and path.with_suffix(".bin").read_bytes() == b"weights"
    path.with_suffix(".bin").unlink()
    assert cache.lookup(path.stem, suffix=".xml") is None
