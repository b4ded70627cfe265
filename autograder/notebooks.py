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


def _object(value) -> dict:
    return value if isinstance(value, dict) else {}


# A submission's metadata is never trusted: grading takes every nbgrader cell's from the instructor's notebook
# (restore.py), and metadata of the wrong type reads as none, as forged metadata earns nothing.

def nbgrader_meta(cell) -> dict:
    """A cell's nbgrader metadata; {} when it has none, or something other than an object there."""
    return _object(_object(cell.get("metadata")).get("nbgrader"))


def course_meta(nb_or_cell) -> dict:
    """The course's own metadata of a notebook (lab, notebook, promises) or a cell (bonus); {} as nbgrader_meta."""
    return _object(_object(nb_or_cell.get("metadata")).get("course"))


def grade_id(cell):
    """A cell's nbgrader grade id; None when it has none, or one that is not text (such a cell is no nbgrader cell)."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_test_cell(cell) -> bool:
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def is_bonus_cell(cell) -> bool:
    """A test cell of an optional (*) section: its points come on top of the core's, and make up for points lost
    there, but a lab's score never goes above its core maximum (GradeRecord.score). Marked by the instructor in the
    cell's metadata, `"course": {"bonus": true}` beside `nbgrader`; the grader reads it from the source notebook."""
    return is_test_cell(cell) and bool(course_meta(cell).get("bonus"))


def bonus_ids(nb) -> set:
    """The grade ids of nb's bonus cells."""
    return {grade_id(c) for c in nb.cells if is_bonus_cell(c)}


def is_solution_cell(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def lab_of(nb):
    """The lab a notebook names in its course metadata (None: it names none)."""
    lab = course_meta(nb).get("lab")
    return lab if isinstance(lab, str) else None


def notebook_of(nb):
    """Which notebook of its assignment a notebook names in its course metadata (None: it names none)."""
    name = course_meta(nb).get("notebook")
    return name if isinstance(name, str) else None


MAX_NOTEBOOK_BYTES = 100 * 2**20  # every read of a student's file, as Slack downloads: nbgrader's max_file_size
MAX_DEPTH = 64  # levels of JSON nesting; a lab's notebook has 6 to 8, a deeper one would overflow copy/json's recursion
_KINDS = {dict: "an object", list: "a list", str: "text", bool: "true/false", int: "a number", float: "a number",
          type(None): "null"}  # JSON's names for Python's types


def printable(text: str) -> str:
    """text with what a terminal would act on written as escapes: line breaks, tabs, right-to-left overrides and
    other control or format characters, and the bytes of a file name that were not UTF-8 (surrogates), so that a
    file's name prints as one honest line (a name cannot start a line of its own that says "PROBLEM: ...")."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def _kind(value) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _too_deep(value, limit: int) -> bool:
    """Whether value nests lists and objects more than limit levels deep (without recursion, so any depth is safe)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _shape_problem(data: dict) -> str | None:
    """What is wrong with the structure of a notebook's JSON, as nbformat defines it, where the grader reads it (its
    metadata, cells, their sources, metadata and outputs), or None. Metadata inside (course, nbgrader) is not checked
    here: of the wrong type it reads as none (nbgrader_meta, course_meta)."""
    def wrong(container, key, types, what):
        """What is wrong with container[key] (None when it is absent or of the type)."""
        if key not in container or isinstance(container[key], types):
            return None
        return f"{what} is {_kind(container[key])}, not {_KINDS[types]}"

    found = wrong(data, "metadata", dict, "the notebook's metadata") or wrong(data, "cells", list, "'cells'")
    if found:
        return found
    for number, cell in enumerate(data["cells"], start=1):
        if not isinstance(cell, dict):
            return f"cell {number} is {_kind(cell)}, not an object"
        source = cell.get("source")
        lines = isinstance(source, list) and all(isinstance(line, str) for line in source)  # nbformat's other form
        found = (wrong(cell, "cell_type", str, f"cell {number}'s type")
                 or (None if lines else wrong(cell, "source", str, f"cell {number}'s source"))
                 or wrong(cell, "metadata", dict, f"cell {number}'s metadata")
                 or wrong(cell, "outputs", list, f"cell {number}'s list of outputs"))
        if found:
            return found
        if any(not isinstance(output, dict) for output in cell.get("outputs") or []):
            return f"an output of cell {number} is not an object"
    return None


def too_big(name: str, size: int) -> NotebookProblem:
    """The problem of a file over MAX_NOTEBOOK_BYTES (size in bytes)."""
    return NotebookProblem(f"{printable(name)}: {size / 2**20:.0f} MB, more than the {MAX_NOTEBOOK_BYTES // 2**20} MB "
                           "a notebook may have; clear its outputs (Edit > Clear Outputs of All Cells), save it and "
                           "send it again.")


def notebook_json(raw: bytes, name: str) -> dict:
    """A notebook file's JSON, checked before anything reads it: its size, encoding, nesting, nbformat 4, and the
    types of what the grader reads (_shape_problem). NotebookProblem (one line: the file, what is wrong, what to do)
    otherwise; a student's file never raises anything else."""
    name = printable(name)
    again = "Re-download the release and copy your answers in."
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise too_big(name, len(raw))
    if raw.startswith(b"PK\x03\x04"):
        raise NotebookProblem(f"{name}: a zip archive, not a notebook. Unzip it and send the .ipynb file inside.")
    try:
        data = json.loads(raw.decode("utf-8-sig"))  # a byte-order mark (Windows editors) is harmless
    except UnicodeDecodeError:
        raise NotebookProblem(f"{name}: not a notebook (not UTF-8 text, as Jupyter saves notebooks). Send the .ipynb "
                              "file itself (File > Download in JupyterLab), not a screenshot, PDF or export.") from None
    except json.JSONDecodeError as exc:
        raise NotebookProblem(
            f"{name}: not a notebook (not valid JSON: {exc.__class__.__name__} {printable(str(exc))[:80]}). "
            "Send the .ipynb file itself (File > Download in JupyterLab), not a screenshot, PDF or export."
        ) from None
    except RecursionError:  # nested too deep for Python's parser: refused below with the others
        data = too_deep = True
    else:
        too_deep = _too_deep(data, MAX_DEPTH)
    if too_deep:
        raise NotebookProblem(f"{name}: JSON nested more than {MAX_DEPTH} levels deep (Jupyter's notebooks nest 6 to "
                              f"8): the file was made or changed by another program. {again}")
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise NotebookProblem(f"{name}: JSON but not a Jupyter notebook (no 'cells'/'nbformat'). Send the .ipynb file.")
    if data.get("nbformat") != 4:
        raise NotebookProblem(
            f"{name}: notebook format version {printable(str(data.get('nbformat')))[:20]}, the course needs version 4. "
            "Open it in JupyterLab and save it again (or: jupyter nbconvert --to notebook --nbformat 4)."
        )
    problem = _shape_problem(data)
    if problem:
        raise NotebookProblem(f"{name}: damaged notebook ({problem}): it was changed outside Jupyter. {again}")
    return data


def read_notebook(path: Path, expected_lab=None, data: bytes = None):
    """Read a notebook, checking it (notebook_json) and, if given, that it is a notebook of `expected_lab`.

    `data` gives the file's bytes when they were read elsewhere (a grading worker on another machine).
    """
    path = Path(path)
    if data is None and path.stat().st_size > MAX_NOTEBOOK_BYTES:  # not even read into memory
        raise too_big(path.name, path.stat().st_size)
    raw = path.read_bytes() if data is None else data
    notebook_json(raw, path.name)
    try:
        nb = nbformat.reads(raw.decode("utf-8-sig"), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for broken structure
        raise NotebookProblem(f"{printable(path.name)}: broken notebook structure ({printable(str(exc))[:200]}). "
                              "Re-download the release and copy your answers in.") from None
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


def python_tree(cell):
    """A code cell's syntax tree, its magic and shell lines (%, !) left out; None when the rest does not parse."""
    code = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def imported_modules(nb) -> list:
    """Absolute module names the notebook's code cells import, in order (cells that are not plain Python,
    such as magics, are read without those lines; cells that still do not parse are skipped)."""
    names = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tree = python_tree(cell)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module)
    return list(dict.fromkeys(names))
