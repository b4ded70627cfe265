"""The instructor pipeline end to end on a tiny lab: release, collect, grade, feedback, export."""
import csv
import zipfile

import nbformat

from autograder.cli import main
from autograder.grading.run_lab import grade_lab
from autograder.collect import collect_folder
from autograder.export import export_csv
from autograder.feedback import write_feedback
from autograder.gradebook import load_result
from autograder.bundle import bundle
from autograder.planted_bugs import apply_bugs, load_bugs, reference_submission

LAB = "00_tiny"


def lab_notebooks(course):
    return nbformat.read(course.source(LAB), as_version=4), nbformat.read(course.release(LAB), as_version=4)


def test_release_strips_solutions_and_hidden_tests(course):
    text = course.release(LAB).read_text()
    assert "BEGIN SOLUTION" not in text and "return 2 * x" not in text
    assert "HIDDEN" not in text and "double(-3)" not in text
    assert "raise NotImplementedError()" in text
    assert "double(1) == 2" in text  # visible tests stay
    assert nbformat.read(course.release(LAB), as_version=4).metadata["course"]["lab"] == LAB


def test_bundle_has_notebooks_and_library_but_no_solutions(course, tmp_path):
    path = bundle(course, tmp_path / "b.zip")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert f"notebooks/{LAB}.ipynb" in names
        assert f"course_lib/released/{LAB}.ipynb" in names  # what `course check` restores test cells from
        assert "course_lib/asserts.py" in names and "environment.yml" in names and "README.md" in names
        assert not any(n.startswith(("labs/", "bench/", "tests/")) for n in names)
        for name in names:
            body = zf.read(name).decode("utf-8", "replace")
            assert "### BEGIN SOLUTION\n" not in body.replace("    ", ""), name
            assert "double(-3)" not in body, name


def test_full_cycle_scores_reference_release_and_bug(course, tmp_path):
    source, release = lab_notebooks(course)
    reference = reference_submission(release, source)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(reference, inbox / "ada.ipynb")
    nbformat.write(release, inbox / f"bob_{LAB}.ipynb")
    nbformat.write(apply_bugs(reference, load_bugs(LAB)[:1]), inbox / f"cy@example.edu - {LAB} (1).ipynb")
    report = collect_folder(course, inbox, LAB)
    assert report.ok, report.problems
    assert sorted(s for s, _, _ in report.collected) == ["ada", "bob", "cy"]

    records = {r.student: r for r in grade_lab(course, LAB, echo=lambda s: None)}
    assert records["ada"].score == 5 and records["ada"].max_score == 5
    assert records["bob"].score == 0
    assert records["cy"].score == 3
    failed = [c for c in records["cy"].cells if c.status != "passed"]
    assert [c.grade_id for c in failed] == ["test_double"] and "double(1) should be 2" in failed[0].message

    files = write_feedback(course, LAB)
    assert len(files) == 3
    cy = course.feedback_file("cy", LAB).read_text()
    assert "double(1) should be 2" in cy and "3 / 5" in cy
    assert "double(-3)" not in cy and "HIDDEN" not in cy  # hidden test code never shown

    out = export_csv(course, tmp_path / "grades.csv")
    rows = list(csv.DictReader(open(out, newline="")))
    by_id = {r["student_id"]: r for r in rows}
    assert by_id["ada"][f"{LAB} score"] == "5" and by_id["bob"][f"{LAB} score"] == "0"
    assert by_id["cy"][f"{LAB}:test_double"] == "0" and by_id["cy"][f"{LAB}:test_square"] == "3"
    assert by_id["bob"]["last_name"] == "O'Neil, \"Bobby\""  # quoting survives a round trip
    assert load_result(course, "ada", LAB)["score"] == 5


def test_cli_end_to_end(course, tmp_path, capsys):
    source, release = lab_notebooks(course)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(reference_submission(release, source), inbox / "ada.ipynb")
    args = ["--course-dir", str(course.root)]
    assert main(args + ["collect", "folder", str(inbox), "--assignment", LAB]) == 0
    assert main(args + ["grade", LAB]) == 0
    assert main(args + ["feedback", LAB]) == 0
    assert main(args + ["export", "--out", str(tmp_path / "g.csv")]) == 0
    assert main(args + ["grades"]) == 0
    out = capsys.readouterr().out
    assert "5/5" in out.replace(" ", "")
    assert main(args + ["grade", "no_such_lab"]) == 2
    assert "has not been released" in capsys.readouterr().err


def test_regrade_replaces_scores(course, tmp_path):
    source, release = lab_notebooks(course)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(release, inbox / "ada.ipynb")
    collect_folder(course, inbox, LAB)
    assert grade_lab(course, LAB, echo=lambda s: None)[0].score == 0
    import os
    import time
    nbformat.write(reference_submission(release, source), inbox / "ada.ipynb")
    future = time.time() + 60
    os.utime(inbox / "ada.ipynb", (future, future))
    report = collect_folder(course, inbox, LAB)
    assert report.collected and report.collected[0][2] == 2  # a second version, the first kept
    assert len(list(course.received_dir("ada", LAB).iterdir())) == 2
    assert grade_lab(course, LAB, echo=lambda s: None)[0].score == 5
    from autograder.gradebook import scores
    assert sum(scores(course)["labs"][LAB]["students"]["ada"].values()) == 5
