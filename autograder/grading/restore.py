"""Stage 1: put the instructor's test and locked cells back into a submission, and note which were changed."""
import copy

from ..notebooks import grade_id, is_solution_cell, is_test_cell, nbgrader_meta, visible_test_source


def _normalise(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines())


def restore_test_cells(submission, source, release):
    """Replace every test and locked cell by the instructor's copy; re-add deleted test cells.

    A cell that claims nbgrader metadata the source does not give it (a grade id the instructor never wrote, an
    empty one, or a second cell with an id already seen, e.g. a pasted test cell) keeps its code but loses that
    metadata: only the instructor's cells are graded, each once.

    Returns (notebook to run, ids of tampered cells: test cells and locked cells of given code or text). A test cell
    counts as tampered only when its code differs from the release's visible tests, a locked cell when it differs
    from the instructor's (whitespace at line ends ignored), so untouched cells never raise a false alarm.
    """
    nb = copy.deepcopy(submission)
    source_cells = {grade_id(c): c for c in source.cells if grade_id(c)}
    released_tests = {grade_id(c): c for c in release.cells if is_test_cell(c)}
    tampered, seen = [], set()
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        original = source_cells.get(gid) if isinstance(gid, str) else None
        if "nbgrader" in cell.get("metadata", {}) and (original is None or gid in seen):
            cell.metadata.pop("nbgrader", None)
            cell.metadata.pop("course", None)
            continue
        if gid:
            seen.add(gid)
        if original is None:
            continue
        if is_solution_cell(original):  # the student's code, under the instructor's metadata (no self-made points)
            cell.metadata["nbgrader"] = copy.deepcopy(nbgrader_meta(original))
            cell.metadata.pop("course", None)
            if "course" in original.metadata:
                cell.metadata["course"] = copy.deepcopy(original.metadata["course"])
            continue
        if is_test_cell(original) or nbgrader_meta(original).get("locked"):
            released = released_tests.get(gid)
            expected = released.source if released is not None else \
                visible_test_source(original.source) if is_test_cell(original) else original.source
            if _normalise(cell.source) != _normalise(expected) or cell.get("cell_type") != original.cell_type:
                tampered.append(gid)
            nb.cells[i] = copy.deepcopy(original)
    # Test cells a student deleted come back after the cell that preceded them in the source.
    for pos, cell in enumerate(source.cells):
        gid = grade_id(cell)
        if not is_test_cell(cell) or gid in seen:
            continue
        tampered.append(gid)
        anchor = next((grade_id(c) for c in reversed(source.cells[:pos]) if grade_id(c)), None)
        where = next((i + 1 for i, c in enumerate(nb.cells) if anchor and grade_id(c) == anchor), len(nb.cells))
        nb.cells.insert(where, copy.deepcopy(cell))
    return nb, tampered
