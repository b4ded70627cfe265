"""Bad input gets one clear message naming the file and the fix; the others are still collected."""
import json

import nbformat
import pytest

from autograder.cli import main
from autograder.collect import collect_folder
from autograder.course import CourseError, read_roster
from autograder.matching import read_matched
from autograder.notebooks import NotebookProblem, read_notebook
from course_cli import course_command, problem_lines, scores_printed
from malformed_files import accepted, malformed, write_big
from sample_lab import with_answer, write_inbox

LAB = "00_tiny"


@pytest.fixture
def inbox(lab, tmp_path):
    return write_inbox(tmp_path / "inbox", {"ada": lab.reference})  # the one good file


def problems_for(course, inbox):
    report = collect_folder(course, inbox, LAB)
    return report, "\n".join(report.problems)


def test_not_json(course, inbox):
    (inbox / "bob.ipynb").write_text("this is not json")
    report, text = problems_for(course, inbox)
    assert "bob.ipynb" in text and "not valid JSON" in text
    assert [s for s, _, _ in report.collected] == ["ada"]
    assert len(list(course.received_dir("bob", LAB).iterdir())) == 1  # kept, never lost
    assert not (course.submitted_dir("bob", LAB) / f"{LAB}.ipynb").exists()


def test_wrong_format_version(course, inbox):
    (inbox / "bob.ipynb").write_text(json.dumps({"nbformat": 3, "nbformat_minor": 0, "worksheets": [], "cells": [], "metadata": {}}))
    _, text = problems_for(course, inbox)
    assert "bob.ipynb" in text and "format version 3" in text and "save it again" in text


def test_notebook_of_another_lab(course, inbox, tiny_labs):
    other = nbformat.read(tiny_labs / "00_other" / "00_other.ipynb", as_version=4)
    nbformat.write(other, inbox / "bob.ipynb")
    _, text = problems_for(course, inbox)
    assert "bob.ipynb" in text and "lab 00_other, not 00_tiny" in text


def test_notebook_without_course_metadata(course, inbox):
    nbformat.write(nbformat.v4.new_notebook(), inbox / "bob.ipynb")
    _, text = problems_for(course, inbox)
    assert "bob.ipynb" in text and "no course metadata" in text


def test_unknown_student_and_non_notebook(course, inbox):
    (inbox / "mallory.ipynb").write_text((inbox / "ada.ipynb").read_text())
    (inbox / "cy_notes.pdf").write_bytes(b"%PDF-1.4")
    report, text = problems_for(course, inbox)
    assert "mallory.ipynb: unknown student" in text and "roster.csv" in text
    assert "cy_notes.pdf: not a notebook" in text
    assert [s for s, _, _ in report.collected] == ["ada"]
    assert not report.ok


def test_empty_and_missing_folder(course, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "empty; nothing to collect" in "\n".join(collect_folder(course, tmp_path / "empty", LAB).problems)
    assert "no such folder" in "\n".join(collect_folder(course, tmp_path / "nope", LAB).problems)


def test_missing_roster_still_collects_by_file_name(course, inbox):
    course.roster_path.unlink()
    report, text = problems_for(course, inbox)
    assert "no roster" in text and "id,first_name,last_name,email" in text
    assert [s for s, _, _ in report.collected] == ["ada"]
    assert not report.ok  # the exit status says something went wrong


@pytest.mark.parametrize("content, expected", [
    ("name,email\nada,a@x\n", "no 'id' column"),
    ("id,email\nada,a@x\nada,b@x\n", "appears twice"),
    ("id,email\nada,a@x,extra\n", "line 2"),
    ("id\nada lovelace\n", "must be letters"),
])
def test_malformed_roster(course, inbox, content, expected):
    course.roster_path.write_text(content)
    with pytest.raises(CourseError, match=expected):
        read_roster(course.roster_path)
    report, text = problems_for(course, inbox)
    assert expected.split()[0] in text and str(course.roster_path) in text
    assert not report.collected  # nobody is guessed from a broken roster


def test_duplicates_are_not_collected_twice(course, inbox):
    collect_folder(course, inbox, LAB)
    report = collect_folder(course, inbox, LAB)
    assert report.duplicates == [("ada", "ada.ipynb")] and not report.collected
    assert len(list(course.received_dir("ada", LAB).iterdir())) == 1


def test_collect_exit_status(course, inbox, capsys):
    (inbox / "bob.ipynb").write_text("{")
    assert main(["--course-dir", str(course.root), "collect", "folder", str(inbox), "-a", LAB]) == 1
    captured = capsys.readouterr()
    assert "bob.ipynb" in captured.err and "collected ada.ipynb -> ada" in captured.out


def test_grading_an_unreadable_submission_goes_on(course, inbox):
    from autograder.grading.run_lab import grade_lab

    collect_folder(course, inbox, LAB)
    broken = course.submitted_dir("bob", LAB)
    broken.mkdir(parents=True)
    (broken / f"{LAB}.ipynb").write_text("garbage")
    records = {r.student: r for r in grade_lab(course, LAB, echo=lambda s: None)}
    assert records["ada"].score == 5
    assert records["bob"].score == 0 and "not valid JSON" in records["bob"].problem


def test_unknown_lab_message(course):
    from autograder.course import lab_source_notebook

    with pytest.raises(CourseError, match="unknown lab '99_nope'.*labs available: 00_other, 00_tiny"):
        lab_source_notebook("99_nope")


# --- the corpus of malformed files (tests/malformed_files.py) --------------------------------------------------

def test_each_malformed_file_is_one_line_naming_it(lab, tmp_path):
    for case, (name, data, words) in malformed(lab.reference).items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(NotebookProblem) as problem:
            read_notebook(tmp_path / name)
        message = str(problem.value)
        assert message.startswith(f"{name}: ") and words in message and "\n" not in message, case
        assert any(fix in message for fix in ("Re-download", "Send the", "Unzip", "save it again")), case
    big = write_big(tmp_path / "bob_big.ipynb", nbformat.writes(lab.reference).encode())
    with pytest.raises(NotebookProblem, match="bob_big.ipynb: 101 MB, more than the 100 MB.*Clear Outputs"):
        read_notebook(big)
    for case, (name, data) in accepted(lab.reference).items():  # by its metadata, else by its grade ids
        assert read_matched(tmp_path / "x.ipynb", LAB, {LAB: lab.release}, data=data)[1] == LAB, case


def test_malformed_corpus_through_the_cli(course, lab, tmp_path):
    """Every file of the corpus beside correct ones, collected from a folder: one line each, the others collected and
    graded; versions stored before the checks existed are checked again; the next collect and grade are unaffected."""
    course.roster_path.write_text(course.roster_path.read_text() + "dee,Dee,Dee,dee@example.edu\n")
    inbox = write_inbox(tmp_path / "inbox", {"ada": lab.reference, "cy": lab.reference})
    bad = malformed(lab.reference)
    for name, data, _ in bad.values():
        (inbox / name).write_bytes(data)
    write_big(inbox / "bob_big.ipynb", nbformat.writes(lab.reference).encode())
    nbformat.write(lab.reference, tmp_path / "elsewhere.ipynb")
    (inbox / "bob_link.ipynb").symlink_to(tmp_path / "elsewhere.ipynb")
    good = accepted(lab.reference)
    for name, data in good.values():
        (inbox / name).write_bytes(data)
    # what an older grader stored for dee: a poisoned version, and a file put there by hand
    stored = course.received_dir("dee", LAB)
    stored.mkdir(parents=True)
    (stored / "20260101T000000.000000Z__0123456789abcdef__dee.ipynb").write_bytes(bad["JSON nested 100,000 deep"][1])
    nbformat.write(lab.reference, stored / "by_hand.ipynb")

    first = course_command(course, "collect", "folder", str(inbox), "-a", LAB)
    assert first.returncode == 1
    lines = problem_lines(first)
    for case, (name, _, words) in bad.items():
        [line] = [line for line in lines if f" {name}: " in line]
        assert line.startswith("PROBLEM: bob: ") and words in line and "(kept in received/bob/" in line, case
    [big] = [line for line in lines if "bob_big.ipynb" in line]
    assert "101 MB, more than the 100 MB" in big and "not collected" in big
    [link] = [line for line in lines if "bob_link.ipynb" in line]
    assert "a symbolic link, not collected" in link
    assert len(lines) == len(bad) + 2
    collected = first.stdout.splitlines()
    assert "collected ada.ipynb -> ada (version 1)" in collected and "collected cy.ipynb -> cy (version 1)" in collected
    assert sum(line.endswith("-> bob") or "-> bob (" in line for line in collected) == len(good)
    assert not any(line.startswith("PROBLEM: none") for line in (first.stdout + first.stderr).splitlines())
    assert "bob_\\u202eelif\\nPROBLEM: none.ipynb" in first.stdout  # a name prints as one line, escaped
    assert "collected bob_\\udcff.ipynb -> bob" in first.stdout
    assert max(len(p.name.encode()) for p in course.received_dir("bob", LAB).iterdir()) <= 160

    graded = course_command(course, "grade", LAB, "-j", "2")
    assert graded.returncode == 1  # dee: nothing to grade
    scores = scores_printed(graded)
    assert {s: scores[s][0] for s in ("ada", "bob", "cy", "dee")} == {"ada": 5, "bob": 5, "cy": 5, "dee": 0}
    assert "no valid notebook was received" in scores["dee"][1] and "dee.ipynb: JSON nested" in scores["dee"][1]

    # the next run: a new version of cy's; the corpus is already had, the big file and the link are reported again
    answered = with_answer(lab.reference, "square", "def square(x):\n    return x * abs(x)")
    nbformat.write(answered, inbox / "cy_2.ipynb")
    again = course_command(course, "collect", "folder", str(inbox), "-a", LAB)
    assert "collected cy_2.ipynb -> cy (version 2)" in again.stdout.splitlines()
    assert len(problem_lines(again)) == 2 and f"{len(bad) + len(good) + 2} already had" in again.stdout
    regraded = course_command(course, "grade", LAB)
    assert {s: v[0] for s, v in scores_printed(regraded).items()} == {"ada": 5, "bob": 5, "cy": 2, "dee": 0}
    assert "already graded and unchanged 2" in regraded.stdout


def test_feedback_goes_on_past_a_notebook_it_cannot_render(course, lab, inbox, capsys):
    from autograder.grading.run_lab import grade_lab

    nbformat.write(lab.reference, inbox / "cy.ipynb")
    collect_folder(course, inbox, LAB)
    grade_lab(course, LAB, echo=lambda s: None)
    (course.autograded_dir("ada", LAB) / f"{LAB}.ipynb").write_text('{"cells": [')  # a save cut short
    capsys.readouterr()
    assert main(["--course-dir", str(course.root), "feedback", LAB]) == 1
    err = capsys.readouterr().err
    assert err.startswith("PROBLEM: ada: no feedback for 00_tiny.ipynb") and err.count("\n") == 1
    assert course.feedback_file("cy", LAB).exists() and not course.feedback_file("ada", LAB).exists()
