"""One walk over an ONNX file's external data: the cache key and the storage size name the same side files.

Weights can sit outside the file not only as initializers but as node attribute tensors (a Constant's
value) and inside subgraphs (an If branch). The cache key (EdgeModel.content_hash, through
external_data_files) used to read top-level and subgraph initializers only, the storage size also the
attribute tensors: a model whose side file hangs off a Constant in an If branch had a storage size
that counted the file and a cache key that ignored it, so an edited side file reused a stale artifact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

from pytest_edgeopt.inspect.onnx_file import external_data_files
from pytest_edgeopt.inspect.onnx_stats import artifact_stats
from pytest_edgeopt.models.base import EdgeModel

WEIGHTS = 4096  # float32 elements per constant: far above the 1 KB onnx keeps inline by default


def _constant(name: str, seed: int) -> Any:
    values = np.random.default_rng(seed).standard_normal(WEIGHTS).astype(np.float32)
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(values, f"{name}_value"))


def _branch(name: str, seed: int) -> Any:
    out = helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [WEIGHTS])
    return helper.make_graph([_constant(f"{name}_out", seed)], name, [], [out])


def _model_with_weights_in_subgraph_attributes(path: Path) -> List[Path]:
    """y = x + (cond ? then-constant : else-constant), the constants only in the If's branches,
    each saved to its own side file. Returns the side files."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [WEIGHTS])
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [WEIGHTS])
    branch = helper.make_node(
        "If", ["cond"], ["chosen"], then_branch=_branch("then", 1), else_branch=_branch("else", 2)
    )
    add = helper.make_node("Add", ["x", "chosen"], ["y"])
    model = helper.make_model(
        helper.make_graph([branch, add], "g", [x, cond], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=False,
        size_threshold=0,
        convert_attribute=True,
    )
    return sorted(f for f in path.parent.iterdir() if f != path)


def test_subgraph_attribute_tensors_count_in_the_cache_key_and_the_storage(tmp_path: Path) -> None:
    path = tmp_path / "branches.onnx"
    side_files = _model_with_weights_in_subgraph_attributes(path)
    assert len(side_files) == 2, "onnx wrote no side file for the branches' constants"

    assert external_data_files(path) == side_files  # what the cache key hashes
    storage = artifact_stats(path).storage_bytes
    assert storage == path.stat().st_size + sum(f.stat().st_size for f in side_files)  # what the table counts

    before = _wrapped(path).content_hash()
    side_files[0].write_bytes(side_files[0].read_bytes()[::-1])  # same size, other weights
    assert _wrapped(path).content_hash() != before


def _wrapped(path: Path) -> EdgeModel:
    inputs = {"x": np.zeros((1, WEIGHTS), np.float32), "cond": np.ones((1,), bool)}
    return EdgeModel.from_onnx(path, eval_data=inputs)
