"""Submissions made from a lab's source: the reference answer, the untouched release, planted bugs.

Used by `course demo` and the tests. A lab's planted bugs live in labs/LAB/bugs.toml:

    [[bug]]
    name = "assign_instead_of_accumulate"
    cell = "value_add"                  # grade_id of a solution cell
    find = "self.grad += out.grad"      # text in that cell's reference solution
    replace = "self.grad = out.grad"
    fails = ["test_accumulate"]         # test cells that must fail
"""
import copy
import tomllib
from dataclasses import dataclass

from .course import CourseError, labs_dir
from .notebooks import grade_id, is_solution_cell, solution_source


@dataclass
class Bug:
    name: str
    cell: str
    find: str
    replace: str
    fails: list
    description: str = ""


def load_bugs(lab: str) -> list:
    path = labs_dir() / lab / "bugs.toml"
    if not path.exists():
        return []
    entries = tomllib.loads(path.read_text()).get("bug", [])
    return [Bug(e["name"], e["cell"], e["find"], e["replace"], list(e.get("fails", [])), e.get("description", "")) for e in entries]


def reference_submission(release, source):
    """The release with every solution cell answered by the reference solution."""
    answers = {grade_id(c): solution_source(c.source) for c in source.cells if is_solution_cell(c)}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if is_solution_cell(cell) and grade_id(cell) in answers:
            cell.source = answers[grade_id(cell)]
    return nb


def apply_bugs(nb, bugs):
    """A copy of nb with each bug's find→replace applied to its solution cell."""
    nb = copy.deepcopy(nb)
    cells = {grade_id(c): c for c in nb.cells if is_solution_cell(c)}
    for bug in bugs:
        cell = cells.get(bug.cell)
        if cell is None or bug.find not in cell.source:
            raise CourseError(f"planted bug {bug.name}: text not found in solution cell {bug.cell!r}: {bug.find!r}")
        cell.source = cell.source.replace(bug.find, bug.replace)
    return nb


def released_with_bugs(course, lab: str):
    """Release LAB into the course; (source, release, reference submission, planted bugs), what gradings of
    the planted bugs start from (tests/test_labs.py, bench/planted_bug_cost.py)."""
    import nbformat

    from .release import release

    release(course, lab)
    source = nbformat.read(course.source(lab), as_version=4)
    released = nbformat.read(course.release(lab), as_version=4)
    return source, released, reference_submission(released, source), load_bugs(lab)
