"""Pure code behind several inputs, the outputs file and the accuracy signals of non-classifiers."""

from __future__ import annotations

import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pytest_edgeopt.agent import feeds
from pytest_edgeopt.agent.outputs import (
    OutputsTooLarge,
    OutputsWriter,
    batch_first,
    check_outputs,
    output_names,
    read_outputs,
)
from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.metric import Metric, fidelity


@pytest.mark.parametrize(
    ("declared", "sample", "batch", "axis"),
    [
        ((None, 3, 8, 8), (3, 8, 8), 1, 0),
        ((1, 3, 8, 8), (3, 8, 8), 1, 0),  # a fixed batch of 1 at batch 1
        ((2, None, 128), (2, 128), 1, 1),  # Silero's state: the dynamic dim, not the first
        ((2, None, 128), (2, 128), 2, 1),  # a fixed 2 equal to the batch loses to the dynamic dim
        ((), (), 4, None),  # a scalar sample rate
        ((1,), (1,), 4, None),  # declared at the sample's own rank: a constant
        ((None, None), (576,), 8, 0),
    ],
)
def test_each_input_is_batched_where_the_model_declares_it(declared, sample, batch, axis) -> None:
    assert feeds.batch_axis("x", declared, sample, batch=batch) == axis


def test_a_shape_that_fits_no_axis_names_the_input_and_both_shapes() -> None:
    with pytest.raises(feeds.FeedError, match=r"input 'state': the model takes shape \(2, \?, 128\) but one eval"):
        feeds.batch_axis("state", (2, None, 128), (3, 128), batch=1)


def test_feed_moves_the_batch_axis_and_feeds_a_constant_once() -> None:
    rows = {"state": np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3), "sr": np.array([16000, 16000])}
    placed = [feeds.Placement("state", 1, "float32"), feeds.Placement("sr", None, "int64")]
    tensors = feeds.feed(rows, placed)
    assert tensors["state"].shape == (2, 2, 3) and np.array_equal(tensors["state"][:, 1], rows["state"][1])
    assert tensors["sr"].shape == () and tensors["sr"].dtype == np.int64 and int(tensors["sr"]) == 16000
    with pytest.raises(feeds.FeedError, match="its eval samples differ"):
        feeds.feed({"sr": np.array([8000, 16000])}, [feeds.Placement("sr", None, "int64")])


def test_outputs_file_round_trips_batch_first_and_stops_at_its_cap(tmp_path: Path) -> None:
    path = str(tmp_path / "out.npz")
    writer = OutputsWriter(path, ["y", "stateN"], max_mb=1.0)
    batches = [np.full((2, 3), i, np.float32) for i in range(3)]
    for i, b in enumerate(batches):
        writer.add([b, np.full((2, 2, 4), -i, np.float32)])
    writer.close()
    assert output_names(path) == ("y", "stateN")
    read = read_outputs(path)
    assert np.array_equal(read["y"], np.concatenate(batches)) and read["stateN"].shape == (6, 2, 4)
    assert list(read_outputs(path, names=["stateN"])) == ["stateN"]
    capped = OutputsWriter(str(tmp_path / "big.npz"), ["y"], max_mb=0.001)
    with pytest.raises(OutputsTooLarge):
        capped.add([np.zeros((1000,), np.float32)])
    capped.abort()
    assert not list(tmp_path.glob("big.npz*"))  # nothing half-written is left


def test_batch_first_finds_the_batch_axis_of_an_output() -> None:
    state = np.zeros((2, 1, 128), np.float32)  # [2, N, 128] at batch 1
    assert batch_first(state, (None, None, None), batch=1).shape == (1, 2, 128)
    assert batch_first(np.zeros((4, 10)), (None, 10), batch=4).shape == (4, 10)
    assert batch_first(np.float32(3.0) * np.ones(()), (), batch=2).shape == (2,)


def test_fidelity_is_exact_for_a_known_error() -> None:
    ref = np.array([3.0, 4.0])  # energy 25
    out = ref + np.array([0.5, 0.0])  # error energy 0.25: 20 dB
    f = fidelity(out, ref)
    assert f.sqnr_db == pytest.approx(20.0) and f.max_abs == 0.5 and f.mean_abs == 0.25
    assert f.cosine == pytest.approx(float(out @ ref / np.linalg.norm(out) / np.linalg.norm(ref)))
    assert math.isinf(fidelity(ref, ref).sqnr_db) and fidelity(ref, ref).cosine == pytest.approx(1.0)


def test_a_metric_drop_is_percent_of_the_reference_in_the_metric_s_direction() -> None:
    higher, lower = Metric("IoU", lambda o, y: 0.0), Metric("WER", lambda o, y: 0.0, higher_is_better=False)
    assert higher.drop(0.6, 0.75) == pytest.approx(20.0)
    assert lower.drop(0.15, 0.12) == pytest.approx(25.0) and lower.drop(0.10, 0.12) < 0


def test_a_metric_that_raises_or_returns_text_is_one_line() -> None:
    with pytest.raises(EdgeOptError, match=r"metric 'IoU' of model 'm' raised ZeroDivisionError: .* at test_"):
        Metric("IoU", lambda o, y: 1 / 0).score({}, None, model="m")
    with pytest.raises(EdgeOptError, match="returned 'x': it must return one finite number"):
        Metric("IoU", lambda o, y: "x").score({}, None, model="m")
    assert Metric("n", lambda o, y: np.float32(0.5)).score({}, None, model="m") == 0.5


# -- issue 24 item 5: an outputs file from a device is untrusted -------------------------------------------------


def _written(tmp_path: Path, rows: int) -> str:
    path = str(tmp_path / "outputs.npz")
    writer = OutputsWriter(path, ["logits"], max_mb=10)
    writer.add([np.zeros((rows, 4), dtype=np.float32)])
    writer.close()
    return path


def test_an_honest_outputs_file_passes_the_checks(tmp_path: Path) -> None:
    check_outputs(_written(tmp_path, 8), rows=8, max_bytes=1 << 20)


def test_an_outputs_file_with_more_rows_than_eval_inputs_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """A 0.4 MB npz of zeros that inflates to 25M rows: refused from its header, nothing inflated."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("names.npy", _npy(np.array(["logits"])))
        archive.writestr("0.npy", _npy(np.zeros((25_000_000, 1), dtype=np.uint8)))
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ValueError, match=r"^the outputs file holds 25000000 rows of output 0 for 8 eval inputs$"):
        check_outputs(str(path), rows=8, max_bytes=16 << 30)
    with pytest.raises(ValueError, match="declares more than the cap of 1 MB"):
        check_outputs(str(path), rows=8, max_bytes=10**6)


def test_a_member_name_the_agent_never_writes_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "odd.npz"
    np.savez(path, names=np.array(["logits"]), logits=np.zeros((8, 4)))
    with pytest.raises(ValueError, match=r"^the outputs file holds a member this agent never writes: 'logits.npy'$"):
        check_outputs(str(path), rows=8, max_bytes=1 << 20)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
