"""Every lab in labs/, end to end through the `course` command as instructors run it (in a subprocess): release,
collect from a folder, `grade -j 2`, feedback, export. One class per lab, graded once: the reference solution, the
untouched release and one submission per planted bug (labs/LAB/bugs.toml). The reference gets full marks, the release
0, each bug fails its tests, and every executed notebook, feedback file and export row is written."""
import csv
import html
import os

import nbformat
import pytest

from autograder.course import Course, available_labs
from autograder.notebooks import HIDDEN_BEGIN, HIDDEN_END, MIN_ANSWER_LINE, grade_id, normalised, region_lines
from autograder.planted_bugs import apply_bugs, load_bugs, reference_submission
from course_cli import run_course

pytestmark = pytest.mark.slow  # grades every lab's reference, release and planted bugs

LABS = [lab for lab in available_labs()] if os.environ.get("COURSE_LABS_DIR") is None else []


@pytest.fixture(scope="module", params=LABS)
def graded(request, tmp_path_factory):
    """One course per lab, its class graded through the CLI: (lab, course, {student: submitted notebook}, bugs,
    {command: its completed process})."""
    lab = request.param
    base = tmp_path_factory.mktemp(lab)
    course = Course(base / "course")
    done = {"release": run_course(course.root, "release", lab)}
    assert done["release"].returncode == 0, done["release"].stderr
    source = nbformat.read(course.source(lab), as_version=4)
    released = nbformat.read(course.release(lab), as_version=4)
    reference = reference_submission(released, source)
    bugs = load_bugs(lab)
    submissions = {"reference": reference, "release": released}
    submissions.update({f"bug_{b.name}": _up_to_last_failing_cell(apply_bugs(reference, [b]), b) for b in bugs})
    course.roster_path.write_text("id,first_name,last_name,email\n" + "".join(
        f"{student},{student},Student,{student}@example.edu\n" for student in submissions))
    inbox = base / "inbox"
    inbox.mkdir()
    for student, nb in submissions.items():
        nbformat.write(nb, inbox / f"{student}.ipynb")
    done["collect"] = run_course(course.root, "collect", "folder", inbox, "-a", lab)
    # 120 s a cell: the class is graded two at a time on a shared two-core machine
    done["grade"] = run_course(course.root, "grade", lab, "-j", "2", "--timeout", "120")
    done["feedback"] = run_course(course.root, "feedback", lab)
    done["export"] = run_course(course.root, "export")
    return lab, course, submissions, bugs, done


def _up_to_last_failing_cell(nb, bug):
    """The bug's notebook without the cells after the last test it must fail: what comes later cannot
    change those tests' results, and leaving it out (its training, mostly) halves this suite's time.
    The grader re-adds the deleted test cells, which then fail at once without their solutions."""
    ids = [grade_id(c) for c in nb.cells]
    last = max(i for i, gid in enumerate(ids) if gid in bug.fails)
    nb.cells = nb.cells[:last + 1]
    return nb


def _result(course, lab, student):
    from autograder.gradebook import load_result

    return load_result(course, student, lab)


def test_every_command_ran_without_a_traceback(graded):
    lab, course, submissions, _, done = graded
    for command, process in done.items():
        assert "Traceback" not in process.stderr + process.stdout, f"{lab}: course {command}\n{process.stderr[-3000:]}"
    assert done["collect"].returncode == 0, done["collect"].stderr
    assert f"{len(submissions)} collected" in done["collect"].stdout
    assert done["feedback"].returncode == 0 and done["export"].returncode == 0, done["export"].stderr
    assert "could not grade 0" in done["grade"].stdout, done["grade"].stdout[-3000:]


def test_release_contains_no_solution_and_no_hidden_test(graded):
    # the markers only: tests/test_bundle_leaks.py searches the whole student bundle for every answer line
    lab, course, _, _, _ = graded
    text = course.release(lab).read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text


def test_reference_gets_full_marks(graded):
    lab, course, _, _, done = graded
    result = _result(course, lab, "reference")
    failing = [(c["grade_id"], c["status"], c["message"]) for c in result["cells"] if c["status"] != "passed"]
    assert not failing and result["score"] == result["max_score"] > 0, failing
    assert result["bonus"] == result["bonus_max"], "the reference must earn every bonus point too"
    print(f"{lab}: reference graded in {result['seconds']:.0f} s")
    assert result["seconds"] < 120, f"{lab} graded in {result['seconds']:.0f} s; the target is about a minute"
    with open(course.root / "exports" / "grades.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["student_id"] == "reference")
    assert float(row[f"{lab} score"]) == result["max_score"]


def test_untouched_release_gets_zero(graded):
    lab, course, _, _, _ = graded
    result = _result(course, lab, "release")
    assert result["score"] == 0 and result["bonus"] == 0, [(c["grade_id"], c["points"]) for c in result["cells"]
                                                           if c["points"]]


def test_each_planted_bug_fails_its_tests(graded):
    lab, course, _, bugs, _ = graded
    assert len(bugs) >= 3, f"{lab}: plant at least three typical bugs in bugs.toml"
    for bug in bugs:
        result = _result(course, lab, f"bug_{bug.name}")
        failed = {c["grade_id"] for c in result["cells"] if c["status"] != "passed"}
        missed = set(bug.fails) - failed
        assert not missed, f"{lab}: bug {bug.name} was not caught by {sorted(missed)} (failed: {sorted(failed)})"
        # every point, bonus included: a bug in a bonus cell loses bonus points only, and bonus points may
        # make up the capped score of a bug in the core
        core = sum(c["points"] for c in result["cells"] if not c.get("bonus"))
        assert core + result["bonus"] < result["max_score"] + result["bonus_max"]


def test_every_student_s_executed_notebook_and_feedback_are_written_without_hidden_tests(graded):
    lab, course, submissions, _, _ = graded
    hidden = {normalised(line) for cell in nbformat.read(course.source(lab), as_version=4).cells
              for line in region_lines(cell.source, HIDDEN_BEGIN, HIDDEN_END) if len(normalised(line)) >= MIN_ANSWER_LINE}
    for student in submissions:
        assert (course.autograded_dir(student, lab) / f"{lab}.ipynb").exists(), student
        feedback = html.unescape(course.feedback_file(student, lab).read_text())
        shown = {normalised(line) for line in feedback.splitlines()}
        assert not shown & hidden, f"{lab}: {student}'s feedback shows hidden-test lines: {sorted(shown & hidden)[:3]}"
