"""nbgrader's own autograde cases (nbgrader/tests/apps/test_nbgrader_autograde.py and its files/, from the installed
wheel), laid out twice as nbgrader courses: `nbgrader autograde` grades one copy, `course grade` (in a subprocess, as
instructors run it) the other, in the same test. Each student's total is the same, except where the README says
`course` differs on purpose (see DIFFERENCES)."""
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import nbgrader
from autograder.course import Course
from autograder.gradebook import load_result, open_gradebook
from course_cli import run_course

pytestmark = pytest.mark.slow  # two graders over 12 assignments (about three minutes)

FILES = Path(nbgrader.__file__).parent / "tests" / "apps" / "files"
BIN = str(Path(sys.executable).parent)

# assignment: (source notebook(s) {name: file}, {student: {notebook name: file}}, files beside the course)
CASES = {
    "plain": ({"p1": "submitted-unchanged.ipynb"},
              {"unchanged": {"p1": "submitted-unchanged.ipynb"}, "changed": {"p1": "submitted-changed.ipynb"},
               "grade_cell_changed": {"p1": "submitted-grade-cell-changed.ipynb"},
               "locked_cell_changed": {"p1": "submitted-locked-cell-changed.ipynb"},
               "cheat": {"p1": "submitted-cheat-attempt.ipynb"},
               "cheat_alternative": {"p1": "submitted-cheat-attempt-alternative.ipynb"}}, ()),
    "autotest_simple": ({"p1": "autotest-simple.ipynb"}, {"unchanged": {"p1": "autotest-simple-unchanged.ipynb"},
                                                          "changed": {"p1": "autotest-simple-changed.ipynb"}}, ()),
    "autotest_hashed": ({"p1": "autotest-hashed.ipynb"}, {"unchanged": {"p1": "autotest-hashed-unchanged.ipynb"},
                                                          "changed": {"p1": "autotest-hashed-changed.ipynb"}}, ()),
    "autotest_multi": ({"p1": "autotest-multi.ipynb"}, {"unchanged": {"p1": "autotest-multi-unchanged.ipynb"},
                                                        "changed": {"p1": "autotest-multi-changed.ipynb"}}, ()),
    "autotest_hidden": ({"p1": "autotest-hidden.ipynb"},
                        {"unchanged": {"p1": "autotest-hidden-unchanged.ipynb"},
                         "changed_wrong": {"p1": "autotest-hidden-changed-wrong.ipynb"},
                         "changed_right": {"p1": "autotest-hidden-changed-right.ipynb"}}, ()),
    # the student hands in the release untouched (RELEASED): passes the visible tests, fails the hidden ones
    "hidden_tests": ({"p1": "test-hidden-tests.ipynb"}, {"released": {"p1": "RELEASED"}}, ("jupyter.png",)),
    "side_effects": ({"p1": "side-effects.ipynb"}, {"writer": {"p1": "side-effects.ipynb"}}, ()),
    "relative_file": ({"p1": "open_relative_file.ipynb"}, {"reader": {"p1": "open_relative_file.ipynb"}}, ("data.txt",)),
    "validating_variable": ({"p1": "validating-environment-variable.ipynb"},
                            {"checker": {"p1": "validating-environment-variable.ipynb"}}, ()),
    "two_notebooks": ({"p1": "submitted-unchanged.ipynb", "p2": "submitted-unchanged.ipynb"},
                      {"one_of_two": {"p1": "submitted-changed.ipynb"},
                       "both": {"p1": "submitted-changed.ipynb", "p2": "submitted-changed.ipynb"}}, ()),
    "infinite_loop": ({"p1": "infinite-loop.ipynb"}, {"looper": {"p1": "infinite-loop.ipynb"}}, ()),
    "slow_test": ({"p1": "timeout.ipynb"}, {"sleeper": {"p1": "timeout.ipynb"}}, ()),
    # handed in before and after the due date (DUE_DATES) by nbgrader's timestamp.txt (TIMESTAMPS)
    "late": ({"p1": "submitted-unchanged.ipynb"}, {"on_time": {"p1": "submitted-changed.ipynb"},
                                                   "late_one": {"p1": "submitted-changed.ipynb"}}, ()),
}
DUE_DATES = {"late": "2026-01-01 00:00:00 UTC"}
TIMESTAMPS = {("late", "on_time"): "2025-12-31 23:00:00.000000 UTC", ("late", "late_one"): "2026-01-02 00:00:00.000000 UTC"}
# nbgrader_config.py of both courses: a timeout that the sleeping test (5 s) overruns, as nbgrader's own test does
CONFIG = "c = get_config()\nc.Execute.timeout = 3\nc.ClearSolutions.code_stub = dict(python='# YOUR CODE HERE')\n"

# (assignment, student): why `course` gives another total than nbgrader, as the README says
DIFFERENCES = {}


def _lay_out(root: Path, released_from: Path = None) -> Path:
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text(CONFIG)
    shutil.copy(FILES / "autotests.yml", root / "autotests.yml")
    for assignment, (sources, students, files) in CASES.items():
        folder = root / "source" / assignment
        folder.mkdir(parents=True)
        for name, file in sources.items():
            shutil.copy(FILES / file, folder / f"{name}.ipynb")
        for file in files:
            shutil.copy(FILES / file, folder / file)
        for student, notebooks in students.items():
            target = root / "submitted" / student / assignment
            target.mkdir(parents=True)
            for name, file in notebooks.items():
                if file == "RELEASED":
                    if released_from is None:
                        continue
                    shutil.copy(released_from / "release" / assignment / f"{name}.ipynb", target / f"{name}.ipynb")
                else:
                    shutil.copy(FILES / file, target / f"{name}.ipynb")
            for file in files:  # as nbgrader's collect would have them: beside the student's notebook
                shutil.copy(FILES / file, target / file)
            if (assignment, student) in TIMESTAMPS:
                (target / "timestamp.txt").write_text(TIMESTAMPS[assignment, student])
    for assignment, due in DUE_DATES.items():
        _nbgrader(root, "db", "assignment", "add", assignment, f"--duedate={due}", force=False)
    return root


def _nbgrader(course_dir: Path, *args, force=True):
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"]}
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, *(["--force"] if force else [])], cwd=course_dir, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def _totals(course_dir: Path) -> dict:
    """{(assignment, student): total} from the course's gradebook."""
    with open_gradebook(Course(course_dir)) as gb:
        return {(a.name, s.student.id): s.score for a in gb.assignments for s in a.submissions}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("parity")
    theirs = _lay_out(base / "theirs")
    for assignment in CASES:
        _nbgrader(theirs, "generate_assignment", assignment)
    for student, notebooks in CASES["hidden_tests"][1].items():  # the untouched release, handed in
        for name in notebooks:
            shutil.copy(theirs / "release" / "hidden_tests" / f"{name}.ipynb",
                        theirs / "submitted" / student / "hidden_tests" / f"{name}.ipynb")
    for assignment in CASES:
        _nbgrader(theirs, "autograde", assignment)

    ours = _lay_out(base / "ours", released_from=theirs)
    outputs = {}
    environment = {"COURSE_LABS_DIR": str(base / "no-labs")}
    for assignment in CASES:
        done = run_course(ours, "release", assignment, env=environment)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[assignment] = run_course(ours, "grade", assignment, "-j", "2", env=environment)
    outputs["grades"] = run_course(ours, "grades", env=environment)
    outputs["export"] = run_course(ours, "export", "--format", "csv", env=environment)
    return _totals(theirs), _totals(ours), outputs, Course(ours)


@pytest.mark.parametrize("assignment", list(CASES))
def test_the_same_totals_as_nbgrader_autograde(graded, assignment):
    theirs, ours, outputs, _ = graded
    done = outputs[assignment]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    students = CASES[assignment][1]
    expected = {s: theirs[(assignment, s)] for s in students}
    got = {s: ours.get((assignment, s)) for s in students}
    for key, why in DIFFERENCES.items():
        if key[0] == assignment:
            got.pop(key[1]), expected.pop(key[1])
    assert got == expected, f"{assignment}: course grade {got}, nbgrader autograde {expected}\n{done.stdout[-2000:]}"


def test_the_cases_grade_what_nbgrader_s_own_tests_say(graded):
    """The cases are the ones nbgrader's tests describe (so that equal totals mean something): its numbers."""
    theirs = graded[0]
    assert theirs[("plain", "unchanged")] == 1 and theirs[("plain", "changed")] == 2
    assert theirs[("autotest_simple", "unchanged")] == 0 and theirs[("autotest_simple", "changed")] == 1
    assert theirs[("autotest_multi", "changed")] == 3 and theirs[("hidden_tests", "released")] == 1.5
    assert theirs[("autotest_hidden", "changed_right")] == 1 and theirs[("autotest_hidden", "changed_wrong")] == 0
    assert theirs[("relative_file", "reader")] == 10 and theirs[("slow_test", "sleeper")] == 0
    assert theirs[("two_notebooks", "one_of_two")] == 2
    assert theirs[("late", "late_one")] == theirs[("late", "on_time")] == 2  # nbgrader's default: no late penalty


def test_late_is_shown_late_and_counted_as_nbgrader_counts_it(graded):
    course, outputs = graded[3], graded[2]
    late_line = next(line for line in outputs["late"].stdout.splitlines() if "late_one" in line)
    on_time_line = next(line for line in outputs["late"].stdout.splitlines() if "on_time" in line)
    assert "[late]" in late_line and "[late]" not in on_time_line, outputs["late"].stdout
    assert load_result(course, "late_one", "late")["kind"] == "late"
    with open_gradebook(course) as gb:  # nbgrader's formgrader and export read the seconds late from here
        assert gb.find_submission("late", "late_one").total_seconds_late == 24 * 3600
        assert gb.find_submission("late", "on_time").total_seconds_late == 0


def test_the_cheats_and_changed_cells_are_reported_as_tampering(graded):
    course = graded[3]
    for student in ("grade_cell_changed", "locked_cell_changed", "cheat", "cheat_alternative"):
        result = load_result(course, student, "plain")
        assert result["restored"] or any(c["tampered"] or c["replaced"] or c["status"] == "tampered"
                                         for c in result["cells"]), (student, result["cells"])
    assert load_result(course, "locked_cell_changed", "plain")["restored"] == ["ro1", "ro2"]
    unchanged = load_result(course, "unchanged", "plain")
    assert not any(c["tampered"] for c in unchanged["cells"]) and not unchanged["restored"]


def test_timeouts_and_loops_are_reported_not_fatal(graded):
    _, _, outputs, course = graded
    for assignment in ("infinite_loop", "slow_test"):
        assert outputs[assignment].returncode in (0, 1) and "Traceback" not in outputs[assignment].stderr
    assert (course.autograded_dir("sleeper", "slow_test") / "p1.ipynb").exists()
    statuses = [c["status"] for c in load_result(course, "sleeper", "slow_test")["cells"]]
    assert statuses == ["timeout"], statuses
    # nbgrader's infinite-loop notebook has no nbgrader cell at all: `course` refuses to grade it (README), in one line
    problem = load_result(course, "looper", "infinite_loop")["problem"]
    assert "none of its cells has the grade id" in problem and "\n" not in problem


def test_course_grades_shows_the_course_s_own_assignments(graded):
    """An nbgrader course without course.toml: `course grades` lists its assignments, not this course's labs and quiz."""
    done = graded[2]["grades"]
    assert done.returncode == 0, done.stderr
    header = done.stdout.splitlines()[0].split()
    assert header[0] == "student" and header[-1] == "final" and {c[:14] for c in CASES} <= set(header), header
    assert "01_micrograd" not in done.stdout and "quiz" not in header
    assert f"final = mean of the {len(CASES)} assignment percentages" in done.stdout
    cheat = next(line for line in done.stdout.splitlines() if line.startswith("cheat "))
    assert cheat.split()[header.index("plain")] == "14.29"  # 1 of nbgrader's 7 points (its written answers are manual)
    exported = graded[2]["export"]
    assert exported.returncode == 0, exported.stderr
    with open(graded[3].root / "exports" / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert "quiz %" not in rows[0] and {f"{a} score" for a in CASES} <= set(rows[0]), list(rows[0])
    assert next(r for r in rows if r["student_id"] == "cheat")["plain score"] == "1"
