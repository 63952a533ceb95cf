"""The argparse type= parsers: bad values must become one-line usage errors."""

from __future__ import annotations

import argparse

import pytest

from pytest_edgeopt.kinds import McuFit, Policy, ProgressMode, TableColumns, UpdateMode
from pytest_edgeopt.settings import non_negative_float, parse_name_list, positive_float, positive_int


@pytest.mark.parametrize(
    "text, names", [("int8,fp32", ("int8", "fp32")), ("int8 fp32", ("int8", "fp32")), (" fp16 , ", ("fp16",))]
)
def test_name_lists(text: str, names: tuple) -> None:
    assert parse_name_list(text) == names


@pytest.mark.parametrize(
    "parser, text",
    [
        (parse_name_list, " , "),
        (positive_int, "0"),
        (positive_int, "x"),
        (positive_float, "0"),
        (non_negative_float, "-1"),
        (positive_float, "fast"),
    ],
)
def test_bad_values_say_what_was_expected(parser: object, text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected"):
        parser(text)  # type: ignore[operator]


def test_good_numbers() -> None:
    assert positive_int("3") == 3
    assert positive_float("0.5") == 0.5
    assert non_negative_float("0") == 0.0


def test_progress_shows_in_a_terminal_unless_quiet_and_never_from_a_worker() -> None:
    from pytest_edgeopt.session.progress import shown

    assert shown(mode="auto", isatty=True, verbosity=0, worker=False)
    assert not shown(mode="auto", isatty=True, verbosity=-1, worker=False)  # -q
    assert not shown(mode="auto", isatty=False, verbosity=1, worker=False)  # a CI log
    assert shown(mode="on", isatty=False, verbosity=-1, worker=False)
    assert not shown(mode="on", isatty=True, verbosity=0, worker=True)
    assert not shown(mode="off", isatty=True, verbosity=0, worker=False)


def test_a_mode_is_parsed_once_from_its_text_and_stays_that_text() -> None:
    """Options stay strings on the command line (xdist copies them as they are); Settings holds the
    Enum, whose value is the same text, so the ini file, the reports and old comparisons agree."""
    assert Policy.parse("fail", name="--edge-inconclusive") is Policy.FAIL
    assert TableColumns.choices() == ("fit", "all") and ProgressMode.choices() == ("auto", "on", "off")
    assert UpdateMode.ALL == "all" and str(UpdateMode.NEW) == "new" and f"{McuFit.OFF}" == "off"
    with pytest.raises(ValueError, match=r"^edgeopt_mcu_fit: expected one of fail, off, got 'maybe'$"):
        McuFit.parse("maybe", name="edgeopt_mcu_fit")
