"""Assignments of several notebooks and files, and nbgrader's own courses as they are (issue 12)."""
import json
import os
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from autograder.cli import main
from autograder.collect import collect_folder, selection_for
from autograder.course import Course
from autograder.gradebook import load_result, open_gradebook
from autograder.matching import match_notebook
from autograder.nbgrader_settings import cell_timeout
from autograder.notebooks import NotebookProblem
from autograder.planted_bugs import reference_submission
from autograder.release import release
from autograder.slack.export_archive import collect_export
from sample_lab import MULTI, write_inbox, write_multi_assignment
from test_slack import T1, T2, make_export

import nbgrader

DOCS_COURSE = Path(nbgrader.__file__).parent / "docs" / "source" / "user_guide"
BIN = str(Path(sys.executable).parent)


@pytest.fixture
def multi(tmp_path, monkeypatch, tiny_labs_dir):
    labs = tmp_path / "labs"
    shutil.copytree(tiny_labs_dir, labs)
    write_multi_assignment(labs)
    monkeypatch.setenv("COURSE_LABS_DIR", str(labs))
    course = Course(tmp_path / "course")
    course.root.mkdir()
    course.roster_path.write_text("id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.edu\n"
                                  "bob,Bob,Builder,bob@example.edu\ncy,Cy,Young,cy@example.edu\n")
    release(course, MULTI)
    return course


def notebooks_of(course, lab=MULTI):
    return {name: (nbformat.read(course.source(lab, name), as_version=4),
                   nbformat.read(course.release(lab, name), as_version=4)) for name in course.notebooks(lab)}


def nbgrader_shaped(nb):
    """A student's copy as nbgrader hands it out: no course metadata."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("course", None)
    return nb


def test_matching_by_grade_ids_and_checksums(multi):
    released = {name: release for name, (_, release) in notebooks_of(multi).items()}
    assert match_notebook(nbgrader_shaped(released["part2"]), MULTI, released, "whatever.ipynb") == "part2"
    assert match_notebook(released["part1"], MULTI, released, "x.ipynb") == "part1"  # by its metadata
    with pytest.raises(NotebookProblem, match="no course metadata.*part1.ipynb or part2.ipynb"):
        match_notebook(nbformat.v4.new_notebook(), MULTI, released, "empty.ipynb")
    other = nbformat.v4.new_notebook(metadata={"course": {"lab": "00_tiny"}})
    with pytest.raises(NotebookProblem, match="lab 00_tiny, not 10_multi"):
        match_notebook(other, MULTI, released, "bob.ipynb")


def test_multi_notebook_assignment_through_the_whole_cycle(multi, tmp_path, capsys):
    course = multi
    assert sorted(os.listdir(course.release_dir(MULTI))) == ["data", "helpers.py", "part1.ipynb", "part2.ipynb"]
    assert course.files(MULTI) == ["data/numbers.csv", "helpers.py"]  # bugs.toml stays with the instructor

    assert main(["--course-dir", str(course.root), "bundle", "--labs", MULTI]) == 0
    names = zipfile.ZipFile(course.root / "bundle" / "course-lab-student.zip").namelist()
    assert {f"notebooks/{MULTI}/part1.ipynb", f"notebooks/{MULTI}/part2.ipynb", f"notebooks/{MULTI}/data/numbers.csv",
            f"notebooks/{MULTI}/helpers.py", f"course_lib/released/{MULTI}/part2.ipynb"} <= set(names)
    assert not any("bugs.toml" in n for n in names)

    answers = {name: nbgrader_shaped(reference_submission(release, source))
               for name, (source, release) in notebooks_of(course).items()}
    # from a folder: ada sends both parts (in her folder, under any name), cy only part 2, and one that matches nothing
    inbox = write_inbox(tmp_path / "inbox", {"ada/first": answers["part1"], "ada/second": answers["part2"],
                                             "cy_part2": answers["part2"], "cy_notes": nbformat.v4.new_notebook()})
    report = collect_folder(course, inbox, MULTI)
    assert sorted((s, n) for s, n, _ in report.collected) == [("ada", "ada/first.ipynb"), ("ada", "ada/second.ipynb"),
                                                              ("cy", "cy_part2.ipynb")]
    assert any("cy_notes.ipynb: not a notebook of lab 10_multi" in p for p in report.problems)
    assert sorted(os.listdir(course.submitted_dir("ada", MULTI))) == ["part1.ipynb", "part2.ipynb", "timestamp.txt"]

    # from a Slack export: bob's part 1, with its file inside the zip
    export = tmp_path / "export.zip"
    make_export(export, {"lab-submissions/2026-09-21.json": [
        {"type": "message", "user": "UBOB", "ts": T1, "files": [{"id": "FB1", "name": "part1.ipynb", "mode": "hosted"}]},
        {"type": "message", "user": "UBOB", "ts": T2, "files": [{"id": "FB2", "name": "mine.ipynb", "mode": "hosted"}]}]},
        files={"__uploads/FB1/part1.ipynb": nbformat.writes(answers["part1"]),
               "__uploads/FB2/mine.ipynb": nbformat.writes(answers["part2"])})
    report = collect_export(course, export, None, offline=True)
    assert sorted(n for _, n, _ in report.collected) == ["mine.ipynb", "part1.ipynb"], report.problems
    assert sorted(os.listdir(course.submitted_dir("bob", MULTI))) == ["part1.ipynb", "part2.ipynb", "timestamp.txt"]

    assert main(["--course-dir", str(course.root), "grade", MULTI, "-j", "2", "--timeout", "20"]) == 1  # cy: part 1 missing
    totals = {s: load_result(course, s, MULTI) for s in ("ada", "bob", "cy")}
    assert {s: r["score"] for s, r in totals.items()} == {"ada": 5, "bob": 5, "cy": 3}  # the file and module were there
    assert all(r["max_score"] == 5 for r in totals.values())
    assert "no valid notebook" in totals["cy"]["problem"]
    out = capsys.readouterr().out
    assert "ada part1" in out and "in all" in out

    assert main(["--course-dir", str(course.root), "feedback", MULTI]) == 0
    assert course.feedback_file("ada", MULTI, "part1").exists() and course.feedback_file("ada", MULTI, "part2").exists()
    feedback = course.feedback_file("ada", MULTI, "part2").read_text()
    assert "quad(-2)" not in feedback and "3 / 3" in feedback  # hidden test code never shown
    assert main(["--course-dir", str(course.root), "export", "--format", "csv"]) == 0
    grades = (course.root / "exports" / "grades.csv").read_text().splitlines()
    header = grades[0].split(",")
    assert f"{MULTI}/part1 score" in header and f"{MULTI}:part2/test_quad" in header
    cy = dict(zip(header, next(line for line in grades if line.startswith("cy,")).split(",")))
    assert (cy[f"{MULTI} score"], cy[f"{MULTI}/part1 score"], cy[f"{MULTI}/part2 score"]) == ("3", "0", "3")
    with open_gradebook(course) as gb:
        assert gb.find_submission(MULTI, "ada").score == 5 and gb.find_submission(MULTI, "cy").score == 3


def test_nbgrader_due_date_and_timeout_are_honoured(course, lab, tmp_path):
    (course.root / "nbgrader_config.py").write_text("c = get_config()\nc.ExecutePreprocessor.timeout = 7\n")
    assert cell_timeout(course) == 7 and cell_timeout(course, 3) == 3
    due = datetime(2026, 10, 5, 16, 0)
    with open_gradebook(course) as gb:
        gb.update_or_create_assignment("00_tiny", duedate=due)
    inbox = write_inbox(tmp_path / "inbox", {"ada": lab.reference, "bob": lab.reference})
    os.utime(inbox / "ada.ipynb", (0, (due.replace(tzinfo=timezone.utc) - timedelta(hours=1)).timestamp()))
    os.utime(inbox / "bob.ipynb", (0, (due.replace(tzinfo=timezone.utc) + timedelta(hours=1)).timestamp()))
    collect_folder(course, inbox, "00_tiny")
    assert [v.kind for v in selection_for(course, "ada", "00_tiny").candidates] == ["in-session"]
    # nbgrader's late rule: its default (penalty_method 'none') grades the late version, shown late; 'zero' does not
    bob = selection_for(course, "bob", "00_tiny")
    assert [v.kind for v in bob.candidates] == ["late"] and bob.late == bob.candidates
    (course.root / "nbgrader_config.py").write_text("c = get_config()\nc.ExecutePreprocessor.timeout = 7\n"
                                                    "c.LateSubmissionPlugin.penalty_method = 'zero'\n")
    assert selection_for(course, "bob", "00_tiny").candidates == [] and selection_for(course, "bob", "00_tiny").late


def _copy_docs_course(target: Path) -> Path:
    target.mkdir(parents=True)
    for part in ("source", "submitted"):
        shutil.copytree(DOCS_COURSE / part, target / part)
    return target


def _nbgrader(course_dir: Path, *args):
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    env.pop("COURSE_LABS_DIR", None)
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _totals(course_dir: Path, students) -> dict:
    with open_gradebook(Course(course_dir)) as gb:
        return {s: gb.find_submission("ps1", s).score for s in students}


@pytest.mark.slow
def test_nbgrader_documentation_course_as_it_is(tmp_path, monkeypatch):
    """nbgrader's own documentation course, from the installed wheel: the same autograded totals as
    `nbgrader autograde` on it, and its jupyter.png beside the notebooks in the sandbox."""
    monkeypatch.setenv("COURSE_LABS_DIR", str(tmp_path / "no-labs"))
    ours, theirs = _copy_docs_course(tmp_path / "ours"), _copy_docs_course(tmp_path / "theirs")
    students = ["bitdiddle", "hacker"]
    _nbgrader(theirs, "generate_assignment", "ps1")
    _nbgrader(theirs, "autograde", "ps1")
    expected = _totals(theirs, students)
    assert expected["hacker"] > expected["bitdiddle"] > 0  # nbgrader graded them (1.5 and 3.0 with 0.9.6)

    assert main(["--course-dir", str(ours), "release", "ps1"]) == 0
    assert main(["--course-dir", str(ours), "grade", "ps1", "-j", "2"]) == 0
    assert _totals(ours, students) == expected
    assert {s: load_result(Course(ours), s, "ps1")["score"] for s in students} == expected
    assert load_result(Course(ours), "bitdiddle", "ps1")["cells"][0]["tampered"]  # commented-out tests
    assert not any(c["tampered"] for c in load_result(Course(ours), "hacker", "ps1")["cells"])

    # the image is beside the notebook for the kernel: a student whose notebook looks for it
    visitor = ours / "submitted" / "visitor" / "ps1"
    shutil.copytree(ours / "submitted" / "hacker" / "ps1", visitor)
    nb = nbformat.read(visitor / "problem1.ipynb", as_version=4)
    nb.cells.insert(1, new_code_cell("import os\nprint('jupyter.png is here:', os.path.getsize('jupyter.png') > 0)"))
    nbformat.write(nb, visitor / "problem1.ipynb")
    assert main(["--course-dir", str(ours), "grade", "ps1", "--student", "visitor"]) == 0
    executed = nbformat.read(Course(ours).autograded_dir("visitor", "ps1") / "problem1.ipynb", as_version=4)
    assert "jupyter.png is here: True" in executed.cells[1].outputs[0]["text"]

    assert main(["--course-dir", str(ours), "feedback", "ps1"]) == 0
    assert (ours / "feedback" / "hacker" / "ps1" / "problem2.html").exists()
    assert main(["--course-dir", str(ours), "export", "--format", "questions"]) == 0
