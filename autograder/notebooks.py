"""Reading notebooks that students send, and the nbgrader cell markup the labs use."""
import ast
import json
from pathlib import Path

import nbformat

SOLUTION_BEGIN = "### BEGIN SOLUTION"
SOLUTION_END = "### END SOLUTION"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


class NotebookProblem(Exception):
    """A submitted file that cannot be graded; the message names the file and what to do."""


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell):
    return nbgrader_meta(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_bonus_cell(cell) -> bool:
    """A test cell of an optional (*) section: its points come on top of the core's, and make up for points lost
    there, but a lab's score never goes above its core maximum (GradeRecord.score). Marked by the instructor in the
    cell's metadata, `"course": {"bonus": true}` beside `nbgrader`; the grader reads it from the source notebook."""
    return is_test_cell(cell) and bool((cell.get("metadata", {}).get("course") or {}).get("bonus"))


def bonus_ids(nb) -> set:
    """The grade ids of nb's bonus cells."""
    return {grade_id(c) for c in nb.cells if is_bonus_cell(c)}


def is_solution_cell(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def lab_of(nb):
    return nb.get("metadata", {}).get("course", {}).get("lab")


def read_notebook(path: Path, expected_lab=None, data: bytes = None):
    """Read a notebook, checking it is JSON, nbformat 4 and (if given) a notebook of `expected_lab`.

    `data` gives the file's bytes when they were read elsewhere (a grading worker on another machine).
    """
    path = Path(path)
    raw = path.read_bytes() if data is None else data
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookProblem(
            f"{path.name}: not a notebook (not valid JSON: {exc.__class__.__name__} {str(exc)[:80]}). "
            "Send the .ipynb file itself (File > Download in JupyterLab), not a screenshot, PDF or export."
        ) from None
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise NotebookProblem(f"{path.name}: JSON but not a Jupyter notebook (no 'cells'/'nbformat'). Send the .ipynb file.")
    if data.get("nbformat") != 4:
        raise NotebookProblem(
            f"{path.name}: notebook format version {data.get('nbformat')}, the course needs version 4. "
            "Open it in JupyterLab and save it again (or: jupyter nbconvert --to notebook --nbformat 4)."
        )
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for broken structure
        raise NotebookProblem(f"{path.name}: broken notebook structure ({exc}). Re-download the release and copy your answers in.") from None
    if expected_lab is not None:
        check_lab(nb, expected_lab, path.name)
    return nb


def check_lab(nb, expected_lab: str, name: str) -> None:
    found = lab_of(nb)
    if found is not None and found != expected_lab:
        raise NotebookProblem(f"{name}: this is the notebook of lab {found}, not {expected_lab}. Send it for {found}, or send the {expected_lab} notebook.")
    if found is None:
        raise NotebookProblem(
            f"{name}: not a notebook of lab {expected_lab} (it carries no course metadata). "
            f"Start from the released {expected_lab}.ipynb and copy your answers in."
        )


def _marked_lines(source: str, begin: str, end: str):
    """(line, inside a begin/end region) for each line of source but the marker lines themselves."""
    inside = False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped in (begin, end):
            inside = stripped == begin
            continue
        yield line, inside


def strip_region(source: str, begin: str, end: str, keep_inner: bool) -> str:
    """Remove the marker lines of begin/end regions; keep or drop what is between them."""
    return "\n".join(line for line, inside in _marked_lines(source, begin, end) if keep_inner or not inside)


def region_lines(source: str, begin: str, end: str) -> list:
    """The lines between each begin/end marker pair."""
    return [line for line, inside in _marked_lines(source, begin, end) if inside]


def normalised(line: str) -> str:
    """A line with its runs of whitespace made single spaces, so that indentation does not hide a copy."""
    return " ".join(line.split())


MIN_ANSWER_LINE = 25  # characters: shorter lines (`return out`, `x = x + 1`) say nothing specific


def answer_lines(nb) -> set:
    """The normalised lines of the notebook's answers: its solutions (a markdown solution cell is an answer as a
    whole) and its hidden tests, each at least MIN_ANSWER_LINE characters long."""
    lines = []
    for cell in nb.cells:
        if cell.cell_type == "markdown" and is_solution_cell(cell):
            lines += cell.source.splitlines()
        else:
            lines += region_lines(cell.source, SOLUTION_BEGIN, SOLUTION_END)
            lines += region_lines(cell.source, HIDDEN_BEGIN, HIDDEN_END)
    return {n for n in map(normalised, lines) if len(n) >= MIN_ANSWER_LINE}


def visible_test_source(source: str) -> str:
    """What a test cell looks like in the release: hidden tests removed."""
    return strip_region(source, HIDDEN_BEGIN, HIDDEN_END, keep_inner=False)


def solution_source(source: str) -> str:
    """The reference answer without its markers."""
    return strip_region(source, SOLUTION_BEGIN, SOLUTION_END, keep_inner=True)


def imported_modules(nb) -> list:
    """Absolute module names the notebook's code cells import, in order (cells that are not plain Python,
    such as magics, are read without those lines; cells that still do not parse are skipped)."""
    names = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(code)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
    return list(dict.fromkeys(names))
