"""A two-answer sample lab that grades in about a second: the subject of tests and the grading benchmark."""
import copy

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PLANTED_BUGS = '''
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


def nbgrader_cell(source, grade_id, *, solution=False, points=None):
    cell = new_code_cell(source)
    meta = {"grade": points is not None, "solution": solution, "locked": not solution,
            "grade_id": grade_id, "schema_version": 3}
    if points is not None:
        meta["points"] = points
    cell.metadata["nbgrader"] = meta
    return cell


def sample_lab_notebook(lab="00_tiny"):
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
        nbgrader_cell("from course_lib.asserts import assert_close\nassert_close(square(3), 9, name='square(3)')\n"
                      "### BEGIN HIDDEN TESTS\nassert_close(square(-4), 16, name='square(-4)')\n### END HIDDEN TESTS",
                      "test_square", points=3),
    ]
    return nb


def write_sample_labs(labs_dir, names=("00_tiny", "00_other")):
    for lab in names:
        (labs_dir / lab).mkdir(parents=True, exist_ok=True)
        nbformat.write(sample_lab_notebook(lab), labs_dir / lab / f"{lab}.ipynb")
    (labs_dir / names[0] / "bugs.toml").write_text(PLANTED_BUGS)
    return labs_dir


def with_answer(nb, cell_id, code):
    """A copy of nb whose cell `cell_id` holds `code`."""
    nb = nbformat.from_dict(copy.deepcopy(nb))
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == cell_id:
            cell.source = code
    return nb


def by_grade_id(record):
    return {c.grade_id: c for c in record.cells}


def write_inbox(folder, notebooks: dict):
    """A folder of submissions as students send them: {file name without .ipynb: notebook}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        (folder / f"{name}.ipynb").parent.mkdir(parents=True, exist_ok=True)  # "ada/part1": in ada's folder
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


MULTI = "10_multi"


def write_multi_assignment(labs_dir, lab=MULTI):
    """An nbgrader-style assignment (no course metadata): two notebooks, a data file and a helper module, and
    the instructor's bugs.toml (never released)."""
    folder = labs_dir / lab
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "numbers.csv").write_text("1\n2\n3\n4\n")
    (folder / "helpers.py").write_text("def twice(x):\n    return 2 * x\n")
    (folder / "bugs.toml").write_text("")
    part1, part2 = new_notebook(), new_notebook()
    for nb in (part1, part2):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    part1.cells = [
        new_markdown_cell("# Part 1: a data file"),
        nbgrader_cell("def mean_of_file(path):\n    ### BEGIN SOLUTION\n    values = [float(v) for v in open(path)]\n"
                      "    return sum(values) / len(values)\n    ### END SOLUTION", "mean_of_file", solution=True),
        nbgrader_cell("assert mean_of_file('data/numbers.csv') == 2.5, 'the mean of data/numbers.csv is 2.5'",
                      "test_mean", points=2),
    ]
    part2.cells = [
        new_markdown_cell("# Part 2: a helper module"),
        nbgrader_cell("from helpers import twice", "given_import"),
        nbgrader_cell("def quad(x):\n    ### BEGIN SOLUTION\n    return twice(twice(x))\n    ### END SOLUTION", "quad",
                      solution=True),
        nbgrader_cell("assert quad(1) == 4\n### BEGIN HIDDEN TESTS\nassert quad(-2) == -8\n### END HIDDEN TESTS",
                      "test_quad", points=3),
    ]
    nbformat.write(part1, folder / "part1.ipynb")
    nbformat.write(part2, folder / "part2.ipynb")
    return folder
