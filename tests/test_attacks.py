"""The attack corpus (tests/attacks.py) against `course grade`, sandbox on, the way an instructor grades.

Every attack is a cell added to a submission whose answers are left unanswered: it must earn 0
points, and what it changed in the kernel must be reported as tampering. An honest submission
graded in the same run keeps its full marks.
"""
import nbformat
import pytest

from attacks import ATTACKS, attack_lab_notebook, nbgrader_cheats
from autograder.collect import collect_folder
from autograder.course import Course
from autograder.grading.run_lab import grade_lab
from autograder.release import release
from autograder.planted_bugs import reference_submission

pytestmark = pytest.mark.slow  # grades the whole attack corpus (about a minute and a half)

LAB = "00_attack"
CHEATS = nbgrader_cheats()
CORPUS = {**{f"nbgrader_file_{name}": (code, True) for name, code in CHEATS.items()}, **ATTACKS}


def student(name):
    return "atk-" + name.replace("_", "-").strip("-")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    labs = tmp_path_factory.mktemp("attack-labs")
    (labs / LAB).mkdir()
    nbformat.write(attack_lab_notebook(LAB), labs / LAB / f"{LAB}.ipynb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_LABS_DIR", str(labs))
        course = Course(tmp_path_factory.mktemp("attack-course") / "course")
        course.root.mkdir()
        release(course, LAB)
        source = nbformat.read(course.source(LAB), as_version=4)
        released = nbformat.read(course.release(LAB), as_version=4)
        inbox = course.root / "inbox"
        inbox.mkdir()
        nbformat.write(reference_submission(released, source), inbox / "honest.ipynb")
        for name, (code, _) in CORPUS.items():
            nb = nbformat.from_dict(released)
            answer = "double" if code.startswith("def double") else \
                code.split("\n", 1)[0][len("# answer: "):] if code.startswith("# answer: ") else None
            if answer:  # runs as that answer (the double attacks run inside the test that calls it)
                next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == answer).source = code
            else:
                nb.cells.insert(1, nbformat.v4.new_code_cell(code))
            nbformat.write(nb, inbox / f"{student(name)}.ipynb")
        ids = ["honest"] + [student(name) for name in CORPUS]
        course.roster_path.write_text("id,first_name,last_name,email\n" + "".join(f"{i},,,\n" for i in ids))
        report = collect_folder(course, inbox, LAB)
        assert report.ok and len(report.collected) == len(ids), report.problems
        lines = []
        records = {r.student: r for r in grade_lab(course, LAB, jobs=2, cell_timeout=20, budget=120, echo=lines.append)}
    return records, lines


def test_the_corpus_holds_nbgraders_own_cheats():
    assert len(CHEATS) == 2 and all("showtraceback" in code for code in CHEATS.values())


def test_the_honest_submission_keeps_full_marks(graded):
    records, lines = graded
    honest = records["honest"]
    assert honest.score == honest.max_score == 9 and honest.tampered == [], honest.to_json()
    assert lines[0].startswith("sandbox: bubblewrap")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_attack_earns_nothing_and_is_reported(graded, name):
    records, _ = graded
    record = records[student(name)]
    assert record.score == 0, [(c.grade_id, c.status, c.message) for c in record.cells]
    assert not record.problem, record.problem
    if CORPUS[name][1]:
        assert record.tampered, f"{name}: the change to the kernel was not reported"
