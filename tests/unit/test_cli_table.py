"""`python -m pytest_edgeopt table`: the seed table of every platform's stored baselines, no measuring."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_edgeopt.cli import main

REPO = Path(__file__).resolve().parents[2]
BASELINES = REPO / "baselines"
PLATFORMS = sorted(p.name for p in BASELINES.iterdir() if p.is_dir())


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple:
    code = main(["table", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err.splitlines()


def test_the_committed_baselines_of_every_platform_render_in_groups(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    code, lines, err = run(capsys, str(BASELINES))
    assert (code, err) == (0, [])
    assert {"host", "cortex-m4", "cortex-m7"} <= set(PLATFORMS)
    groups = [line for line in lines if line.startswith("-- ")]
    titles = [g.split(":")[0][3:] for g in groups]  # one row group per platform, in order, in every block
    assert list(dict.fromkeys(titles)) == PLATFORMS and len(titles) % len(PLATFORMS) == 0
    assert max(len(line) for line in lines) <= 120
    header = next(line for line in lines if line.startswith("Model "))
    assert "Verdict" not in header and "Delta" not in header  # stored entries were not judged
    assert any(line.startswith("digits-cnn ") and " est." in line for line in lines)  # an MCU row
    assert any(line.startswith("[1] stored in cortex-m4/suites/test_mcu.json, measured ") for line in lines)


def test_every_column_and_the_report_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    md, page, data = tmp_path / "seed.md", tmp_path / "seed.html", tmp_path / "seed.json"
    code, lines, _ = run(
        capsys, str(BASELINES), "--columns", "all", "--report", str(md), "--report", str(page), "--report", str(data)
    )
    assert code == 0 and f"wrote {md}" in lines
    header = next(line for line in lines if line.startswith("Model "))
    assert header.index("Size (MB)") < header.index("Top-1 (%)") < header.index("Platform")
    assert not [line for line in lines if "()" in line]  # a stored entry keeps no compute unit: none is named
    text = md.read_text(encoding="utf-8")
    for platform in PLATFORMS:
        assert f"| **{platform}: " in text
    assert "Arena (KB)" in text and "Flash (KB)" in text
    html = page.read_text(encoding="utf-8")
    assert html.count('<tr class="group">') == len(PLATFORMS)
    rows = json.loads(data.read_text(encoding="utf-8"))["rows"]
    assert {row["measurement"]["platform"] for row in rows} == set(PLATFORMS)


def test_a_damaged_file_is_one_line_naming_it_and_the_others_still_render(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "baselines"
    shutil.copytree(BASELINES, root)
    bad = root / "host" / "suites" / "test_digits.json"
    bad.write_text('{"schema_version": 1,', encoding="utf-8")
    code, lines, err = run(capsys, str(root))
    assert code == 1
    assert (
        len(err) == 1 and err[0].startswith(f"ERROR {bad}: not valid JSON (line 1") and "--update-baselines" in err[0]
    )
    assert any(line.startswith("efficientnet-lite0 ") for line in lines)  # host's other file and the MCUs


def test_no_directory_or_no_entries_say_what_to_do(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="is not a directory of baselines"):
        main(["table", str(tmp_path / "missing")])
    code, lines, err = run(capsys, str(tmp_path))
    assert code == 1 and lines == [] and "run pytest --update-baselines first" in err[0]


def test_a_report_with_another_suffix_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["table", str(BASELINES), "--report", "seed.txt"])
    assert "the file name must end in .md, .json, .html" in capsys.readouterr().err


def test_python_dash_m_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_edgeopt", "table", str(BASELINES), "--columns", "all"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "stored baselines in " in done.stdout and "-- host: " in done.stdout
