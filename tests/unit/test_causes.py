"""One line for a tool's failure: its own first line (and hint), then the deepest cause."""

from __future__ import annotations

import warnings

import pytest

from pytest_edgeopt.runtimes.causes import cause_line, first_line, own_warning_filters


def failed_export() -> BaseException:
    try:
        try:
            try:
                warnings.warn("torch.x is deprecated", FutureWarning, stacklevel=1)
            except FutureWarning as warning:
                raise RuntimeError("Failed to decompose the FX graph") from warning
        except RuntimeError:
            raise ValueError("\x1b[96mThis is step 2/3\x1b[0m of exporting. Next steps:\n- try dynamo=False\n")  # noqa: B904  (an implicit __context__, as torch chains it)
    except ValueError as error:
        return error
    raise AssertionError("unreachable")


def test_the_line_carries_the_tools_hint_and_the_root_cause() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        line = cause_line(failed_export())
    assert line == (
        "This is step 2/3 of exporting. Next steps: - try dynamo=False; cause: FutureWarning: torch.x is deprecated"
    )
    assert cause_line(KeyError()) == "KeyError" and first_line("\n\n  two\nthree") == "two"


def test_a_tools_warning_does_not_raise_under_the_users_error_filter() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with own_warning_filters(), pytest.warns(FutureWarning):
            warnings.warn("inside the tool", FutureWarning, stacklevel=1)
        with pytest.raises(FutureWarning):
            warnings.warn("the user's own", FutureWarning, stacklevel=1)
