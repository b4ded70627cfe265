"""The time model (docs/time-model.md, autograder/lab_time.py): its arithmetic on a crafted notebook, the
recording of cell times by `course verify --record-times`, and the command that prints a lab's minutes."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from autograder.cli import main
from autograder.lab_time import TIMINGS, count_words, lab_time, notebook_time, write_labels

ROOT = Path(__file__).resolve().parent.parent


def _solution(source, grade_id, **course):
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": False, "solution": True, "locked": False, "grade_id": grade_id,
                                 "schema_version": 3}
    if course:
        cell.metadata["course"] = course
    return cell


def _test(grade_id, points=1, bonus=False):
    cell = new_code_cell(f"assert {grade_id!r}\n" + "x = 1\n" * 40)  # a long test cell: never counted as read
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True, "grade_id": grade_id,
                                 "points": points, "schema_version": 3}
    if bonus:
        cell.metadata["course"] = {"bonus": True}
    return cell


def crafted():
    words = lambda n: " ".join(["word"] * n)  # noqa: E731
    nb = new_notebook()
    nb.metadata["course"] = {"lab": "99_crafted"}
    nb.cells = [
        new_markdown_cell("# Lab 99\n\n" + words(148) + "\n\n| a | b |\n|---|---|\n"),              # 0: 150 + 2 words
        new_markdown_cell("## 1. First\n\n" + words(28) + "\n\n### Exercise 1 — easy lines (~9 min)\n\n" + words(10)),
        _solution("def f(x):\n    # given comment\n    ### BEGIN SOLUTION\n    y = x + 1\n\n    # a comment\n"
                  "    return y\n    ### END SOLUTION\n", "f", difficulty="easy"),                 # 2: 2 easy lines
        _test("test_f"),                                                                           # 3
        new_code_cell("import matplotlib\nprint('a plot')"),                                       # 4: run, not read
        new_markdown_cell(words(30) + "\n\n**Exercise 2.** (~1 min) " + words(5)),                 # 5
        new_code_cell("def helper(a, b):\n    return a + b"),                                      # 6: read (7 words)
        _solution("### BEGIN SOLUTION\nz = helper(1, 2)\nw = z * 2\nv = w - 1\n### END SOLUTION", "g",
                  difficulty="hard"),                                                              # 7: 3 hard lines
        _test("test_g", points=3),                                                                 # 8
        new_markdown_cell("## (*) Extra\n\n**Exercise 3.** (~2 min) " + words(100)),               # 9
        _solution("### BEGIN SOLUTION\nq = 1\n### END SOLUTION", "h"),                             # 10: 1 medium line
        _test("test_h", bonus=True),                                                               # 11
        new_markdown_cell("## Summary\n\n" + words(20)),                                           # 12
    ]
    return nb


def test_words_are_tokens_with_a_letter_or_a_digit():
    assert count_words("The loss $\\ln 27$ is | --- | $$ 3.2958 - `x`") == 7  # $\\ln and 27$ are two


def test_the_model_adds_reading_writing_and_running_per_exercise():
    nb = crafted()
    timings = {nb.cells[i].id: s for i, s in [(2, 0.5), (3, 0.5), (4, 60.0), (6, 0.1), (7, 0.2), (8, 29.2),
                                                 (10, 1.0), (11, 1.0)]}
    result = lab_time(nb, timings)
    units = {u.label: u for u in result.units}
    assert list(units) == ["Lab 99", "Exercise 1 — easy lines (~9 min)", "**Exercise 2.** (~1 min)",
                           "**Exercise 3.** (~2 min)", "Summary"]
    intro, first, second, extra, summary = units.values()
    assert intro.words == 152 and intro.minutes == pytest.approx(152 / 150)
    # section 1's text before the label counts for exercise 1; the plot cell (after its test) introduces exercise 2
    assert first.words == 2 + 28 + 6 + 10 and first.stated == 9
    assert first.lines == {"easy": 2, "medium": 0, "hard": 0} and first.writing == pytest.approx(2 * 0.5 + 2)
    assert first.code_words == 4  # the released skeleton `def f(x): # given comment`, not the test cell
    assert second.code_cells == [4, 6, 7, 8] and second.code_words == count_words(nb.cells[6].source)  # not the plot
    assert second.lines["hard"] == 3 and second.writing == pytest.approx(3 * 2.5 + 2)
    assert second.seconds == pytest.approx(60 + 0.1 + 0.2 + 29.2) and second.running == pytest.approx(89.5 / 60)
    assert extra.extra and not any(u.extra for u in (intro, first, second, summary))
    assert result.core_minutes == pytest.approx(sum(u.minutes for u in (intro, first, second, summary)))
    assert result.core_lines == 5 and result.untimed == [] and result.limit == 75


def test_a_core_code_cell_without_a_time_is_reported():
    nb = crafted()
    result = lab_time(nb, {nb.cells[2].id: 1.0})
    assert result.untimed == [3, 4, 6, 7, 8]
    assert lab_time(nb).timed is False


def test_a_read_marker_overrides_the_default():
    nb = crafted()
    nb.cells[4].metadata["course"] = {"read": True}
    nb.cells[6].metadata["course"] = {"read": False}
    second = [u for u in lab_time(nb).units if u.label.startswith("**Exercise 2")][0]
    assert second.code_words == count_words(nb.cells[4].source)


def test_an_unknown_difficulty_is_named():
    nb = crafted()
    nb.cells[7].metadata["course"]["difficulty"] = "tricky"
    with pytest.raises(ValueError, match="difficulty 'tricky': use one of easy, medium, hard"):
        lab_time(nb)


def test_lab_six_has_the_quiz_in_its_session():
    nb = crafted()
    nb.metadata["course"]["lab"] = "06_diffusion"
    assert lab_time(nb).limit == 55


def test_write_labels_sets_the_model_minutes(tmp_path):
    folder = tmp_path / "99_crafted"
    folder.mkdir()
    path = folder / "99_crafted.ipynb"
    nb = crafted()
    nbformat.write(nb, path)
    (folder / TIMINGS).write_text(json.dumps({"cells": {"99_crafted": {c.id: 0.0 for c in nb.cells}}}))
    changed = write_labels(path)
    assert len(changed) == 3 and "cell 1: 'Exercise 1 — easy lines (~9 min)': ~9 -> ~3 min" in changed[0]
    again = notebook_time(path)
    assert all(u.stated == round(u.minutes) for u in again.units if u.exercise)
    assert write_labels(path) == []


def test_verify_records_the_cell_times_and_the_command_prints_the_minutes(tiny_labs, capsys):
    """As an instructor does it: `course verify LAB --record-times`, then `python -m autograder.lab_time`."""
    assert main(["verify", "00_tiny", "--record-times"]) == 0
    assert "cell times recorded in" in capsys.readouterr().out
    notebook = tiny_labs / "00_tiny" / "00_tiny.ipynb"
    recorded = json.loads((tiny_labs / "00_tiny" / TIMINGS).read_text())
    nb = nbformat.read(notebook, as_version=4)
    assert set(recorded["cells"]["00_tiny"]) == {c.id for c in nb.cells if c.cell_type == "code"}
    assert "cores" in recorded["recorded"]["00_tiny"]["machine"]
    run = subprocess.run([sys.executable, "-m", "autograder.lab_time", str(notebook)], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "core of 00_tiny:" in run.stdout and "limit 75 (met)" in run.stdout and "without a recorded" not in run.stdout


def test_record_times_needs_a_full_run(tiny_labs, capsys):
    assert main(["verify", "00_tiny", "--graded", "--record-times"]) == 2
    out = capsys.readouterr()
    assert "a full run (no --graded, no --time-caps)" in out.out + out.err
    assert not (tiny_labs / "00_tiny" / TIMINGS).exists() or "cells" in (tiny_labs / "00_tiny" / TIMINGS).read_text()


def test_the_command_names_a_missing_notebook():
    run = subprocess.run([sys.executable, "-m", "autograder.lab_time", "labs/nope/nope.ipynb"], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 2 and run.stderr.strip().count("\n") == 0 and "no such notebook" in run.stderr


def test_the_recorded_run_is_the_students_without_the_hidden_tests(tiny_labs, capsys):
    path = tiny_labs / "00_tiny" / "00_tiny.ipynb"
    nb = nbformat.read(path, as_version=4)
    original = json.dumps(nb)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_double")
    cell.source = cell.source.replace("assert double(-3) == -6", "assert False")
    nbformat.write(nb, path)
    try:
        assert main(["verify", "00_tiny"]) == 1  # the hidden test fails the full check ...
        assert main(["verify", "00_tiny", "--record-times"]) == 0  # ... and is not part of the student's run
        assert "visible tests only" in capsys.readouterr().out
    finally:
        nbformat.write(nbformat.reads(original, as_version=4), path)
