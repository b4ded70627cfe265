"""Bad input gets one clear message naming the file and the fix; the others are still collected."""
import json

import nbformat
import pytest

from autograder.cli import main
from autograder.collect import collect_folder
from autograder.course import CourseError, read_roster
from sample_lab import write_inbox

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
