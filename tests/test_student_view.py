"""What a student sees (feedback, Gradescope results) never shows a grader traceback or an instructor's folder."""
import json
import sys
from pathlib import Path

import nbformat

import autograder.grading.submission as grade_module
from autograder.collect import collect_folder
from autograder.course import REPO_ROOT
from autograder.export import export_gradescope
from autograder.feedback import write_feedback
from autograder.gradebook import load_result
from autograder.grading.submission import COULD_NOT_GRADE
from autograder.grading.run_lab import grade_lab
from autograder.planted_bugs import reference_submission
from sample_lab import write_inbox

LAB = "00_tiny"


def _submit(course, tmp_path, notebooks):
    assert collect_folder(course, write_inbox(tmp_path / "inbox", notebooks), LAB).ok


def _student_texts(course, student):
    feedback = course.feedback_file(student, LAB).read_text()
    results = (export_gradescope(course) / student / LAB / "results.json").read_text()
    return feedback, results


def _instructor_folders(course):
    return [str(course.root), str(REPO_ROOT), sys.prefix, sys.base_prefix, str(Path.home())]


def test_a_grader_failure_reads_could_not_be_graded(course, tmp_path, monkeypatch):
    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    _submit(course, tmp_path, {"ada": reference_submission(release, source)})

    def broken(*args, **kwargs):
        raise RuntimeError(f"internal failure reading {course.root / 'secret'}")

    monkeypatch.setattr(grade_module, "grade_notebook", broken)
    lines = []
    [record] = grade_lab(course, LAB, jobs=1, echo=lines.append)
    assert record.problem == COULD_NOT_GRADE and "RuntimeError: internal failure" in record.error
    assert "grader error: RuntimeError: internal failure" in "\n".join(lines)  # the instructor sees it
    assert "Traceback" in load_result(course, "ada", LAB)["error"]            # in full, in result.json
    write_feedback(course, LAB)
    for text in _student_texts(course, "ada"):
        assert "could not be graded" in text
        assert "Traceback" not in text and "RuntimeError" not in text and "internal failure" not in text
        for folder in _instructor_folders(course):
            assert folder not in text, folder


def test_feedback_hides_the_instructors_folders(course, tmp_path):
    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    nb = reference_submission(release, source)
    # an answer whose error names the instructor's files, and a cell whose traceback runs through the library
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "square").source = (
        "import numpy, course_lib, os\n"
        "print('working in', os.getcwd(), 'numpy from', numpy.__file__)\n"
        "def square(x):\n"
        "    raise ValueError('see ' + course_lib.__file__ + ' and ' + numpy.__file__ + ' in ' + os.getcwd())\n")
    nb.cells.insert(1, nbformat.v4.new_code_cell("import numpy\nnumpy.zeros(2) @ numpy.zeros(3)"))
    _submit(course, tmp_path, {"cy": nb})
    [record] = grade_lab(course, LAB, jobs=1, echo=lambda s: None)
    square = next(c for c in record.cells if c.grade_id == "test_square")
    assert str(REPO_ROOT) in square.message  # the instructor's record keeps what happened
    write_feedback(course, LAB)
    feedback, results = _student_texts(course, "cy")
    assert "ValueError: see &lt;course software&gt;/course_lib/__init__.py" in feedback or \
        "ValueError: see <course software>/course_lib/__init__.py" in feedback
    assert "<your notebook's folder>" in json.loads(results)["tests"][1]["output"]
    for text in (feedback, results):
        for folder in _instructor_folders(course) + ["/tmp/grade-"]:
            assert folder not in text, folder
