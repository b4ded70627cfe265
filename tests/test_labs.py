"""Every lab in labs/: the release drops its solutions and hidden tests, and grading tells the reference, the
untouched release and each planted bug apart (reference = full marks, release = 0, each bug fails its tests)."""
import os

import nbformat
import pytest

from autograder.course import Course, available_labs
from autograder.grading.records import GradeJob
from autograder.grading.kernel_pool import preloadable
from autograder.grading.run_lab import run_jobs
from autograder.planted_bugs import apply_bugs, released_with_bugs

pytestmark = pytest.mark.slow  # grades every lab's reference, release and planted bugs (about half an hour)

LABS = [lab for lab in available_labs()] if os.environ.get("COURSE_LABS_DIR") is None else []


@pytest.fixture(scope="module", params=LABS)
def graded(request, tmp_path_factory):
    """Grade the reference, the release and one submission per planted bug, two at a time (as `course grade
    -j 2` does: the kernel pool starts the next kernels, with the lab's imports, while two run)."""
    lab = request.param
    course = Course(tmp_path_factory.mktemp(lab) / "course")
    course.root.mkdir(parents=True)
    source, released, reference, bugs = released_with_bugs(course, lab)
    submissions = {"reference": reference, "release": released}
    submissions.update({f"bug:{b.name}": _up_to_last_failing_cell(apply_bugs(reference, [b]), b) for b in bugs})
    jobs = []
    for name, nb in submissions.items():
        path = course.root / f"{name.replace(':', '_')}.ipynb"
        nbformat.write(nb, path)
        jobs.append(GradeJob(name, lab, str(path), source, released, cell_timeout=120, budget=300,
                             preload=preloadable(source)))
    records = {r.student: r for r in run_jobs(jobs, jobs=2)}
    return lab, course, source, bugs, records


def _up_to_last_failing_cell(nb, bug):
    """The bug's notebook without the cells after the last test it must fail: what comes later cannot
    change those tests' results, and leaving it out (its training, mostly) halves this suite's time.
    The grader re-adds the deleted test cells, which then fail at once without their solutions."""
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells]
    last = max(i for i, grade_id in enumerate(ids) if grade_id in bug.fails)
    nb.cells = nb.cells[:last + 1]
    return nb


def test_release_contains_no_solution_and_no_hidden_test(graded):
    # the markers only: tests/test_bundle_leaks.py searches the whole student bundle for every answer line
    lab, course, _, _, _ = graded
    text = course.release(lab).read_text()
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text


def test_reference_gets_full_marks(graded):
    lab, _, _, _, records = graded
    record = records["reference"]
    failing = [(c.grade_id, c.status, c.message) for c in record.cells if c.status != "passed"]
    assert not failing and record.score == record.max_score > 0, failing
    assert record.bonus == record.bonus_max, "the reference must earn every bonus point too"
    print(f"{lab}: reference graded in {record.seconds:.0f} s")
    assert record.seconds < 120, f"{lab} graded in {record.seconds:.0f} s; the target is about a minute"


def test_untouched_release_gets_zero(graded):
    _, _, _, _, records = graded
    record = records["release"]
    assert record.score == 0, [(c.grade_id, c.points) for c in record.cells if c.points]


def test_each_planted_bug_fails_its_tests(graded):
    lab, _, _, bugs, records = graded
    assert len(bugs) >= 3, f"{lab}: plant at least three typical bugs in bugs.toml"
    for bug in bugs:
        record = records[f"bug:{bug.name}"]
        failed = {c.grade_id for c in record.cells if c.status != "passed"}
        missed = set(bug.fails) - failed
        assert not missed, f"{lab}: bug {bug.name} was not caught by {sorted(missed)} (failed: {sorted(failed)})"
        # every point, bonus included: a bug in a bonus cell loses bonus points only, and bonus points may
        # make up the capped score of a bug in the core
        assert record.core_score + record.bonus < record.max_score + record.bonus_max
