"""Pure parts of sensitivity and int8-mixed: pattern matching, the ranking, the search's steps."""

from __future__ import annotations

import re

import pytest

from pytest_edgeopt.errors import EdgeOptError
from pytest_edgeopt.measure.result import LayerError
from pytest_edgeopt.optimize.sensitivity import Layer, layer_scores, matches, rank, resolve_keep_float
from pytest_edgeopt.session.mixed import steps

LAYERS = [
    Layer("/model.0/conv/Conv", "Conv", "/model.0/conv/Conv"),
    Layer("/model.22/cv2/Conv", "Conv", "/model.22/cv2/Conv"),
    Layer("/model.22/Sigmoid", "Sigmoid", "/model.22/Sigmoid"),
    Layer("node_linear_1", "Gemm", "head.fc1"),
]


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("/model.22/*", ("/model.22/cv2/Conv", "/model.22/Sigmoid")),
        ("Sigmoid", ("/model.22/Sigmoid",)),
        ("head.*", ("node_linear_1",)),
        ("node_linear_1", ("node_linear_1",)),
        ("Conv", ("/model.0/conv/Conv", "/model.22/cv2/Conv")),
    ],
)
def test_patterns_select_by_glob_name_source_and_op_type(pattern: str, expected: tuple) -> None:
    assert resolve_keep_float([pattern], LAYERS, where="m") == expected


def test_resolved_names_keep_graph_order_without_repeats() -> None:
    chosen = resolve_keep_float(["Sigmoid", "/model.*", "Conv"], LAYERS, where="m")
    assert chosen == ("/model.0/conv/Conv", "/model.22/cv2/Conv", "/model.22/Sigmoid")


def test_a_pattern_matching_nothing_is_refused_by_name() -> None:
    with pytest.raises(EdgeOptError, match=re.escape("yolo: keep_float pattern '/model.99/*' matches no node")):
        resolve_keep_float(["/model.22/*", "/model.99/*"], LAYERS, where="yolo")


def test_a_glob_is_case_sensitive_as_node_names_are() -> None:
    assert not matches("sigmoid", LAYERS[2])


def test_a_layer_is_blamed_for_the_sqnr_it_loses_not_for_upstream_error() -> None:
    layers = {"a": Layer("A", "Conv", "a"), "b": Layer("B", "Gemm", "b"), "c": Layer("C", "Relu", "c")}
    inputs = {"A": ["x"], "B": ["a"], "C": ["b"]}
    sqnr = {"x": 40.0, "a": 38.0, "b": 5.0, "c": 4.5}  # B collapses; C only inherits its error
    ranked = rank(layer_scores(sqnr, layers, inputs))
    assert [e.name for e in ranked] == ["B", "A", "C"]
    assert ranked[0] == LayerError("B", "Gemm", "b", 5.0, 33.0)


def test_ties_on_loss_put_the_lower_sqnr_first() -> None:
    errors = [LayerError("a", "Conv", "a", 20.0, 1.0), LayerError("b", "Conv", "b", 10.0, 1.0)]
    assert [e.name for e in rank(errors)] == ["b", "a"]


@pytest.mark.parametrize(
    "ranked, cap, expected",
    [
        (3, 16, [1, 2, 3]),
        (40, 16, [1, 2, 3, 4, 6, 9, 14, 16]),
        (40, 1, [1]),
        (0, 16, []),
    ],
)
def test_the_search_reverts_one_layer_at_a_time_then_in_growing_steps(ranked: int, cap: int, expected: list) -> None:
    assert steps(ranked, cap) == expected


def test_a_layer_error_round_trips_through_json() -> None:
    error = LayerError("/model.22/Concat", "Concat", "/model.22/Concat", 12.5, 8.25)
    assert LayerError.from_dict(error.to_dict()) == error


def test_a_collapsed_channel_shows_although_the_whole_tensor_looks_fine() -> None:
    import numpy as np

    from pytest_edgeopt.optimize.sensitivity import worst_channel_sqnr

    rng = np.random.default_rng(0)
    exact = np.concatenate([rng.uniform(0, 320, (2, 4, 50)), rng.uniform(0, 1, (2, 3, 50))], axis=1)
    seen = exact.copy()
    seen[:, 4:] = np.round(seen[:, 4:] / 1.25) * 1.25  # class scores on the boxes' 8-bit grid: all gone
    whole = 20 * np.log10(np.linalg.norm(exact) / np.linalg.norm(exact - seen))
    assert whole > 40 and worst_channel_sqnr(exact, seen) < 3


def test_a_silent_channel_is_not_scored() -> None:
    import numpy as np

    from pytest_edgeopt.optimize.sensitivity import worst_channel_sqnr

    exact = np.stack([np.linspace(1, 2, 10), np.zeros(10)])[None]
    seen = exact + np.stack([np.full(10, 1e-3), np.full(10, 1e-6)])[None]
    assert worst_channel_sqnr(exact, seen) > 60


def test_a_layer_whose_output_qdq_is_the_harm_keeps_its_readers_float_with_it() -> None:
    from pytest_edgeopt.session.mixed import _float_sets

    sigmoid = LayerError("/model.22/Sigmoid", "Sigmoid", "/model.22/Sigmoid", -0.9, 28.2, ("/model.22/Concat_25",))
    conv = LayerError("/model.0/conv/Conv", "Conv", "/model.0/conv/Conv", 22.2, 17.8)
    assert LayerError.from_dict(sigmoid.to_dict()) == sigmoid
    assert "in its output's Q/DQ, read by /model.22/Concat_25" in sigmoid.describe()
    assert _float_sets([sigmoid, conv, sigmoid]) == [
        ("/model.22/Sigmoid", "/model.22/Concat_25"),
        ("/model.0/conv/Conv",),
    ]


def test_a_layer_above_int8s_floor_loses_nothing() -> None:
    layers = {"r": Layer("Range", "Range", "r"), "c": Layer("Conv", "Conv", "c")}
    scores = {e.name: e.loss_db for e in layer_scores({"r": 54.3, "c": 22.2}, layers, {})}
    assert scores == {"Range": 0.0, "Conv": 17.8}
