"""Which notebook of an assignment a submitted notebook is: its course metadata, else nbgrader's grade ids and
checksums (a notebook made by nbgrader carries no course metadata, but every graded or locked cell keeps the
grade_id and checksum the release gave it).
"""
from pathlib import Path

import nbformat

from .notebooks import NotebookProblem, grade_id, lab_of, nbgrader_meta, notebook_of, read_notebook


def released_notebooks(course, lab: str) -> dict:
    """{notebook name: released notebook} of an assignment."""
    return {name: nbformat.read(course.release(lab, name), as_version=4) for name in course.notebooks(lab)
            if course.release(lab, name).exists()}


def _cells(nb) -> dict:
    """{grade_id: checksum} of the notebook's nbgrader cells."""
    return {gid: nbgrader_meta(cell).get("checksum") for cell in nb.cells if (gid := grade_id(cell))}


def match_notebook(nb, lab: str, released: dict, file_name: str = "") -> str:
    """The name of the notebook of `lab` that nb is a copy of; NotebookProblem (one line, for the student) if none.

    released: {name: released notebook}. A notebook that names another lab in its metadata is refused; one that
    names this lab is this lab's (its `notebook` metadata, or the assignment's only notebook); any other is
    the released notebook with the most grade ids in common, then the most equal checksums, then its file name.
    """
    found = lab_of(nb)
    if found is not None and found != lab:
        raise NotebookProblem(f"{file_name}: this is the notebook of lab {found}, not {lab}. Send it for {found}, "
                              f"or send the {lab} notebook.")
    if found == lab:
        named = notebook_of(nb)
        if named in released:
            return named
        if len(released) == 1:
            return next(iter(released))
    cells = _cells(nb)
    scores = {}
    for name, release in released.items():
        theirs = _cells(release)
        common = set(cells) & set(theirs)
        if common:
            same = sum(1 for gid in common if cells[gid] and cells[gid] == theirs[gid])
            scores[name] = (len(common), same, Path(file_name).stem.split("__")[-1] == name)  # received/: STAMP__HASH__NAME
    if not scores:
        expected = " or ".join(f"{name}.ipynb" for name in released) or f"{lab}.ipynb"
        raise NotebookProblem(
            f"{file_name}: not a notebook of lab {lab} (it carries no course metadata, and none of its cells has the "
            f"grade id of a cell of {expected}). Start from the released {expected} and copy your answers in.")
    ranked = sorted(scores, key=scores.get, reverse=True)
    if len(ranked) > 1 and scores[ranked[0]] == scores[ranked[1]]:
        raise NotebookProblem(f"{file_name}: matches both {ranked[0]}.ipynb and {ranked[1]}.ipynb of lab {lab} equally; "
                              "send each notebook under its released name")
    return ranked[0]


def read_matched(path: Path, lab: str, released: dict, data: bytes = None):
    """(notebook, the name of the notebook of `lab` it is); NotebookProblem when unreadable or of no notebook."""
    nb = read_notebook(Path(path), data=data)
    return nb, match_notebook(nb, lab, released, Path(path).name)


def lab_from_cells(nb, assignments: dict) -> str | None:
    """The one assignment among {lab: {name: released notebook}} whose notebooks share grade ids with nb."""
    cells = set(_cells(nb))
    found = [lab for lab, released in assignments.items()
             if any(cells & set(_cells(release)) for release in released.values())]
    return found[0] if len(found) == 1 else None
