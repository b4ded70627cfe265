import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = Path(__file__).resolve().parent.parent

# Tests talk to local servers only, and must never pick up an instructor's real course.
for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(var, None)
os.environ["COURSE_OFFLINE"] = "1"


def nbgrader_cell(source, grade_id, *, solution=False, points=None):
    cell = new_code_cell(source)
    meta = {"grade": points is not None, "solution": solution, "locked": not solution,
            "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    return cell


def tiny_lab_notebook(lab="00_tiny"):
    """A two-answer lab that runs in about a second: the pipeline's test subject."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["course"] = {"lab": lab, "title": "Tiny",
                             "promises": [{"name": "double of 21", "expr": "double(21)", "expected": 42, "tol": 0}]}
    nb.cells = [
        new_markdown_cell("# A tiny lab"),
        nbgrader_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "double", solution=True),
        nbgrader_cell("assert double(1) == 2, 'double(1) should be 2'\n### BEGIN HIDDEN TESTS\n"
                      "assert double(-3) == -6, 'double(-3) should be -6'\n### END HIDDEN TESTS", "test_double", points=2),
        nbgrader_cell("def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION", "square", solution=True),
        nbgrader_cell("from course_lib.checks import assert_close\nassert_close(square(3), 9, name='square(3)')\n"
                      "### BEGIN HIDDEN TESTS\nassert_close(square(-4), 16, name='square(-4)')\n### END HIDDEN TESTS",
                      "test_square", points=3),
    ]
    return nb


TINY_BUGS = '''
[[bug]]
name = "double_is_square"
cell = "double"
find = "return 2 * x"
replace = "return x * x"
fails = ["test_double"]

[[bug]]
name = "square_of_abs_wrong"
cell = "square"
find = "return x * x"
replace = "return x * abs(x)"
fails = ["test_square"]
'''


@pytest.fixture(scope="session")
def tiny_labs_dir(tmp_path_factory):
    labs = tmp_path_factory.mktemp("labs")
    for lab in ("00_tiny", "00_other"):
        (labs / lab).mkdir(parents=True)
        nbformat.write(tiny_lab_notebook(lab), labs / lab / f"{lab}.ipynb")
    (labs / "00_tiny" / "bugs.toml").write_text(TINY_BUGS)
    return labs


@pytest.fixture
def tiny_labs(tiny_labs_dir, monkeypatch):
    monkeypatch.setenv("COURSE_LABS_DIR", str(tiny_labs_dir))
    return tiny_labs_dir


@pytest.fixture(scope="session")
def released_course_template(tiny_labs_dir, tmp_path_factory):
    """Releasing through nbgrader takes seconds: do it once, copy it for each test."""
    from autograder.course import Course
    from autograder.release import release

    saved = os.environ.get("COURSE_LABS_DIR")
    os.environ["COURSE_LABS_DIR"] = str(tiny_labs_dir)
    try:
        c = Course(tmp_path_factory.mktemp("template") / "course")
        c.root.mkdir()
        c.roster_path.write_text("id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.edu\n"
                                 "bob,Bob,\"O'Neil, \"\"Bobby\"\"\",bob@example.edu\ncy,Cy,Young,cy@example.edu\n")
        release(c, "00_tiny")
    finally:
        if saved is None:
            os.environ.pop("COURSE_LABS_DIR")
        else:
            os.environ["COURSE_LABS_DIR"] = saved
    return c.root


@pytest.fixture
def course(tmp_path, tiny_labs, released_course_template):
    from autograder.course import Course

    shutil.copytree(released_course_template, tmp_path / "course")
    return Course(tmp_path / "course")
