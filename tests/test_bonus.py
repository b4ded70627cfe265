"""Bonus points: the test cells of a lab's optional (*) sections (cell metadata "course": {"bonus": true}) add to
the core points and make up for points lost there, but a lab's score never goes above the core maximum."""
import csv
import json
import shutil
from fractions import Fraction

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell

from autograder.grading.records import CellResult, GradeRecord
from autograder.notebooks import bonus_ids, is_bonus_cell, is_test_cell
from conftest import release_course
from sample_lab import by_grade_id as by_id, nbgrader_cell, sample_lab_notebook, with_answer

LAB = "00_bonus"
CORE, BONUS = 5, 2  # test_double 2 + test_square 3; test_cube 2 bonus points


def bonus_lab_notebook():
    """00_tiny's two core exercises, then a (*) section whose test cell is a bonus cell."""
    nb = sample_lab_notebook(LAB)
    nb.metadata["course"]["promises"] = []
    nb.cells += [
        new_markdown_cell("## (*) Cubes\n\nOptional: bonus points."),
        nbgrader_cell("def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION", "cube", solution=True),
        nbgrader_cell("assert cube(2) == 8, 'cube(2) should be 8'\n### BEGIN HIDDEN TESTS\n"
                      "assert cube(-1) == -1, 'cube(-1) should be -1'\n### END HIDDEN TESTS", "test_cube", points=BONUS),
    ]
    nb.cells[-1].metadata["course"] = {"bonus": True}
    return nb


@pytest.fixture(scope="module")
def bonus_template(tmp_path_factory):
    """A course with 00_bonus released (nbgrader's release takes seconds: once for the module)."""
    labs = tmp_path_factory.mktemp("bonus_labs")
    (labs / LAB).mkdir()
    nbformat.write(bonus_lab_notebook(), labs / LAB / f"{LAB}.ipynb")
    root = release_course(tmp_path_factory.mktemp("bonus_template") / "course", labs, LAB,
                          f'[grading]\nlabs = ["{LAB}"]\nquiz = "quiz"\n')
    return labs, root


@pytest.fixture
def bonus_course(bonus_template, tmp_path, monkeypatch):
    from autograder.course import Course

    labs, root = bonus_template
    monkeypatch.setenv("COURSE_LABS_DIR", str(labs))
    shutil.copytree(root, tmp_path / "course")
    return Course(tmp_path / "course")


@pytest.fixture
def bonus_lab(bonus_course):
    from autograder.planted_bugs import reference_submission

    source = nbformat.read(bonus_course.source(LAB), as_version=4)
    release = nbformat.read(bonus_course.release(LAB), as_version=4)
    return source, release, reference_submission(release, source)


WRONG_SQUARE = "def square(x):\n    return 0"  # test_square fails: 3 core points lost
WRONG_DOUBLE = "def double(x):\n    return 0"  # test_double fails: 2 core points lost


def test_bonus_cell_is_a_test_cell_with_course_bonus_metadata():
    nb = bonus_lab_notebook()
    assert [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_bonus_cell(c)] == ["test_cube"]
    assert bonus_ids(nb) == {"test_cube"}
    solution = nb.cells[-2]
    solution.metadata["course"] = {"bonus": True}
    assert not is_bonus_cell(solution)  # only a test cell can be worth bonus points
    assert is_test_cell(nb.cells[2]) and not is_bonus_cell(nb.cells[2])


def test_release_keeps_the_bonus_mark_and_the_gradebook_counts_the_core_only(bonus_course, bonus_lab):
    from autograder.gradebook import open_gradebook

    _, release, _ = bonus_lab
    assert bonus_ids(release) == {"test_cube"}  # `course check` reads the release: the mark must survive nbgrader
    with open_gradebook(bonus_course) as gb:
        assert gb.find_grade_cell("test_cube", LAB, LAB).max_score == 0  # bonus points are written as extra credit
        assert gb.find_assignment(LAB).max_score == CORE


@pytest.mark.parametrize("answers, core, score", [
    ({"cube": "def cube(x):\n    raise NotImplementedError()"}, CORE, CORE),  # the core alone: 100%
    ({"square": WRONG_SQUARE}, 2, 2 + BONUS),           # bonus makes up for lost points...
    ({"double": WRONG_DOUBLE}, 3, CORE),                # ...up to 100%
    ({}, CORE, CORE),                                   # everything passes: exactly 100%, not more
])
def test_bonus_points_make_up_for_lost_core_points_up_to_100_percent(bonus_lab, grade_one, answers, core, score):
    source, release, reference = bonus_lab
    nb = reference
    for cell, code in answers.items():
        nb = with_answer(nb, cell, code)
    record = grade_one(nb, source, release, lab=LAB)
    assert record.max_score == CORE and record.bonus_max == BONUS
    assert record.core_score == core
    assert record.bonus == (0 if "cube" in answers else BONUS)
    assert record.score == score == min(CORE, record.core_score + record.bonus)
    assert by_id(record)["test_cube"].bonus and not by_id(record)["test_square"].bonus
    saved = record.to_json()
    assert saved["score"] == score and saved["max_score"] == CORE and saved["bonus_max"] == BONUS


def test_a_student_cannot_mark_or_unmark_bonus_cells(bonus_lab, grade_one):
    source, release, reference = bonus_lab
    nb = with_answer(reference, "square", WRONG_SQUARE)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "test_cube":
            del cell.metadata["course"]  # un-bonus: the cube's 2 points would raise the max to 7
        if gid == "test_square":
            cell.metadata["course"] = {"bonus": True}  # the failed cell made bonus: the max would drop to 2
    record = grade_one(nb, source, release, lab=LAB)
    assert {c.grade_id for c in record.cells if c.bonus} == {"test_cube"}
    assert record.max_score == CORE and record.score == 2 + BONUS


def test_results_written_before_bonus_cells_read_back_as_core():
    old = {"student": "ada", "lab": LAB, "score": 3, "max_score": 5,
           "cells": [{"grade_id": "a", "points": 3, "max_points": 3, "status": "passed"},
                     {"grade_id": "b", "points": 0, "max_points": 2, "status": "failed"}]}
    record = GradeRecord.from_json(old)
    assert not any(c.bonus for c in record.cells) and record.score == 3 and record.max_score == 5
    again = GradeRecord.from_json(GradeRecord("ada", LAB, cells=[CellResult("a", 1, 1, "passed"),
                                                                  CellResult("c", 2, 2, "passed", bonus=True)]).to_json())
    assert [c.bonus for c in again.cells] == [False, True] and again.score == 1 and again.bonus == 2


def test_pipeline_reports_exports_and_feedback_show_bonus_capped(bonus_course, bonus_lab, tmp_path, capsys):
    from autograder.collect import collect_folder
    from autograder.export import export_csv, export_gradescope, export_questions
    from autograder.feedback import write_feedback
    from autograder.final_grade import final_grades
    from autograder.gradebook import scores
    from autograder.grading.run_lab import grade_lab

    source, release, reference = bonus_lab
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(reference, inbox / "ada.ipynb")                                    # 5 + 2 bonus: 5
    nbformat.write(with_answer(reference, "square", WRONG_SQUARE), inbox / "bob.ipynb")  # 2 + 2 bonus: 4
    core_only = with_answer(reference, "cube", "def cube(x):\n    raise NotImplementedError()")
    nbformat.write(core_only, inbox / "cy.ipynb")                                      # 5 + 0: 5
    assert collect_folder(bonus_course, inbox, LAB).ok
    lines = []
    records = {r.student: r for r in grade_lab(bonus_course, LAB, echo=lines.append)}
    assert {s: r.score for s, r in records.items()} == {"ada": CORE, "bob": 2 + BONUS, "cy": CORE}
    ada_line = next(line for line in lines if line.strip().startswith("ada"))
    assert f"5 / {CORE} (bonus 2/2)" in ada_line, lines

    table = scores(bonus_course)["labs"][LAB]
    assert table["max"] == CORE and table["bonus"] == {"test_cube": BONUS}
    assert table["students"]["ada"]["test_cube"] == BONUS  # nbgrader's score: auto_score + extra credit
    finals = {f.student: f for f in final_grades(bonus_course)}
    assert finals["ada"].labs[LAB] == 1 and finals["bob"].labs[LAB] == Fraction(4, 5)

    grades = list(csv.DictReader(open(export_csv(bonus_course), newline="")))
    ada = next(r for r in grades if r["student_id"] == "ada")
    assert ada[f"{LAB} score"] == "5" and ada[f"{LAB} max"] == "5" and ada[f"{LAB}:test_cube (bonus)"] == "2"
    questions = list(csv.DictReader(open(export_questions(bonus_course), newline="")))
    cube = next(r for r in questions if r["student_id"] == "bob" and r["question"] == "test_cube")
    assert cube["bonus"] == "yes" and cube["score"] == "2" and cube["max_score"] == "2"
    gradescope = json.loads((export_gradescope(bonus_course) / "ada" / LAB / "results.json").read_text())
    assert gradescope["score"] == CORE
    assert sum(t["max_score"] for t in gradescope["tests"]) == CORE
    assert {"name": "test_cube (bonus)", "score": BONUS, "max_score": 0.0} == \
        {k: gradescope["tests"][-1][k] for k in ("name", "score", "max_score")}

    write_feedback(bonus_course, LAB)
    ada_feedback = bonus_course.feedback_file("ada", LAB).read_text()
    assert "test_cube (bonus)" in ada_feedback and "never goes above 100%" in ada_feedback
    assert "2 of your bonus points went beyond 100%" in ada_feedback
    bob_feedback = bonus_course.feedback_file("bob", LAB).read_text()
    assert "Score: 4 / 5" in bob_feedback and "Core tests: 2 / 5" in bob_feedback
    assert "went beyond" not in bob_feedback


def test_check_shows_bonus_points(bonus_course, bonus_lab, tmp_path):
    from autograder.student_check import check_notebook

    _, _, reference = bonus_lab
    path = tmp_path / f"{LAB}.ipynb"
    nbformat.write(with_answer(reference, "square", WRONG_SQUARE), path)
    lines = []
    check_notebook(path, echo=lines.append, released_folders=(bonus_course.root / "release",))
    text = "\n".join(lines)
    assert "worth 5 points (and 2 bonus points in the optional extras)" in text, text
    assert "test_cube: passes the visible tests (2 of 2 bonus points)" in text, text
    assert "Core: 2 of 5 points; bonus: 2 of 2 points; together 4 of 5" in text, text


def test_verify_counts_bonus_apart(bonus_template, monkeypatch):
    from autograder.verify import verify_lab

    monkeypatch.setenv("COURSE_LABS_DIR", str(bonus_template[0]))
    lines = []
    assert verify_lab(LAB, graded=True, echo=lines.append)
    assert any("3/3 pass (5/5 points; bonus 2/2)" in line for line in lines), lines


def test_planted_bug_cost_counts_core_points_only():
    import bench.planted_bug_cost as bench

    def record(name, double, square, cube):
        return GradeRecord(name, LAB, cells=[CellResult("test_double", double, 2, "passed" if double else "failed"),
                                             CellResult("test_square", square, 3, "passed" if square else "failed"),
                                             CellResult("test_cube", cube, 2, "passed" if cube else "failed",
                                                        bonus=True)])

    from autograder.planted_bugs import Bug

    bugs = [Bug("double_bug", "double", "", "", ["test_double"]), Bug("cube_bug", "cube", "", "", ["test_cube"])]
    records = {"reference": record("reference", 2, 3, 2), "double_bug": record("double_bug", 0, 3, 2),
               "cube_bug": record("cube_bug", 2, 3, 0)}
    lines = []
    worst, median = bench.report(LAB, records, bugs, 1.0, echo=lines.append)
    # double_bug loses 2 of 5 core points though its bonus passed; cube_bug, planted in the extras, costs bonus points
    # only, so it is listed apart and left out of the median (which it would pull towards 0%)
    assert worst == 40.0 and median == 40.0
    assert any("in the (*) extras only" in line and "cube_bug" in line for line in lines), lines
    assert "5 core points (+ 2 bonus points, not counted here)" in lines[0]
