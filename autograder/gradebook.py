"""The parent process's side of grading: nbgrader's gradebook plus files in the course directory."""
import json
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import nbformat


from course_lib.files import write_atomic

from .course import COURSE_ID, Course, CourseError, ensure_tools_on_path


@contextmanager
def open_gradebook(course: Course):
    ensure_tools_on_path()
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import OperationalError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's autoflush chatter inside nbgrader
        try:
            gradebook = Gradebook(course.db_url, COURSE_ID)
        except OperationalError as exc:
            raise CourseError(f"cannot open the gradebook {_shown(course.db_url)}: {exc.orig}. Check that the course "
                              "directory (--course-dir) or COURSE_DB_URL is right and writable.") from None
        with gradebook as gb:
            yield gb


def _shown(url: str) -> str:
    return url.split("@")[-1] if "://" in url and "@" in url else url  # never print a password


def _has_gradebook(course: Course) -> bool:
    url = course.db_url
    return not url.startswith("sqlite:///") or url.endswith(":memory:") or Path(url[len("sqlite:///"):]).exists()


def gradebook_people(course: Course) -> dict:
    """{id: (first_name, last_name, email)} of the gradebook's students ({} without a gradebook)."""
    if not _has_gradebook(course):
        return {}
    with open_gradebook(course) as gb:
        return {s.id: (s.first_name or "", s.last_name or "", s.email or "") for s in gb.students}


def require_grades(course: Course) -> None:
    """A clear one-line error, before anything is opened or created, when there is nothing to read."""
    if not course.root.is_dir():
        raise CourseError(f"{course.root}: no such course directory. Pass --course-dir DIR (the folder where you "
                          "ran `course release`), or run the command from the folder that holds ./course")
    if not _has_gradebook(course):
        raise CourseError(f"nothing graded in {course.root} yet (no gradebook): run `course grade LAB` first")
    with open_gradebook(course) as gb:
        if not any(assignment.submissions for assignment in gb.assignments):
            raise CourseError(f"nothing graded in {course.root} yet: run `course grade LAB` first")


def read_timestamp(course: Course, student: str, lab: str):
    """The submission's time as naive UTC (nbgrader's convention), from timestamp.txt in either
    our ISO format or nbgrader's "2026-10-05 17:00:00.000000 UTC"; None when absent or unreadable."""
    from nbgrader.utils import parse_utc

    path = course.submitted_dir(student, lab) / "timestamp.txt"
    if not path.exists():
        return None
    try:
        return parse_utc(path.read_text().strip())
    except (ValueError, OverflowError):
        return None


def save_record(course: Course, record, roster=None, gradebook=None) -> None:
    """Write one graded notebook of a submission: the executed notebook, its result.json, and the gradebook
    scores (in `gradebook` when one is open: a lab's grading opens it once)."""
    name = record.notebook_name or record.lab
    out = course.autograded_dir(record.student, record.lab)
    out.mkdir(parents=True, exist_ok=True)
    if record.notebook is not None:
        write_notebook(out / f"{name}.ipynb", record.notebook)
    write_atomic(course.result_file(record.student, record.lab, name), json.dumps(record.to_json(), indent=1))
    if gradebook is None:
        with open_gradebook(course) as gb:
            return save_record(course, record, roster, gb)
    student = (roster or {}).get(record.student)
    gradebook.update_or_create_student(
        record.student,
        **({"first_name": student.first_name, "last_name": student.last_name, "email": student.email} if student else {}),
    )
    gradebook.update_or_create_submission(record.lab, record.student, timestamp=submission_time(course, record))
    mark_bonus_cells(gradebook, record.lab, name, [cell.grade_id for cell in record.cells if cell.bonus])
    for cell in record.cells:
        grade = gradebook.find_grade(cell.grade_id, name, record.lab, record.student)
        # a bonus cell's points are nbgrader's extra credit (score = auto_score + extra_credit) on a cell worth
        # 0 points, so that nbgrader's maximum is the core's; the 100% cap is applied where totals are read
        grade.auto_score = 0.0 if cell.bonus else cell.points
        grade.extra_credit = cell.points if cell.bonus else None
        grade.needs_manual_grade = False
    gradebook.db.commit()


def write_notebook(path: Path, nb) -> None:
    """An executed notebook, written whole or not at all. Its outputs are made notebook nodes first: what a kernel
    sent, after the grader's edits, is plain JSON, and nbformat's writer needs nodes."""
    write_atomic(path, nbformat.writes(nbformat.from_dict(nb)))


def mark_bonus_cells(gradebook, lab: str, notebook: str, grade_ids) -> None:
    """Make the bonus cells worth 0 points in nbgrader's gradebook (nbgrader's release records each cell's
    points as its maximum); their points are written as extra credit."""
    for gid in grade_ids:
        gradebook.find_grade_cell(gid, notebook, lab).max_score = 0.0
    gradebook.db.commit()


def generated_cells(course: Course, lab: str, notebook: str) -> dict:
    """{grade_id: source} of a notebook's cells as nbgrader's release saved them in the gradebook: AUTOTEST and HASHED
    AUTOTEST lines expanded into test code, hidden tests in (nbgrader autograde puts locked cells back from there).
    {} when the gradebook does not know the notebook (not released)."""
    from nbgrader.api import MissingEntry

    if not _has_gradebook(course):
        return {}
    with open_gradebook(course) as gb:
        try:
            return {cell.name: cell.source for cell in gb.find_notebook(notebook, lab).source_cells}
        except MissingEntry:
            return {}


def bonus_points(course: Course, lab: str, notebook: str) -> dict:
    """{grade_id: points} of the bonus cells of a notebook of lab, read from the course's source ({} without one)."""
    from .notebooks import is_bonus_cell, nbgrader_meta

    path = course.source(lab, notebook)
    if not path.exists():
        return {}
    nb = nbformat.read(path, as_version=4)
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0)) for c in nb.cells if is_bonus_cell(c)}


def submission_time(course: Course, record):
    """When the version that counted was received (naive UTC, nbgrader's convention); for a notebook placed in
    submitted/ by hand or by nbgrader, its timestamp.txt. (submitted/ holds the latest version, which under
    the "best" policy need not be the one that counted.)"""
    if record.received_at:
        moment = datetime.fromisoformat(record.received_at)
        return (moment.astimezone(timezone.utc) if moment.tzinfo else moment).replace(tzinfo=None)
    return read_timestamp(course, record.student, record.lab)


def load_notebook_result(course: Course, student: str, lab: str, notebook: str = None):
    """One graded notebook's result.json, or None."""
    path = course.result_file(student, lab, notebook)
    return json.loads(path.read_text()) if path.exists() else None


def load_result(course: Course, student: str, lab: str):
    """The result of a student's assignment, or None: for our labs their notebook's result.json; for an
    assignment of several notebooks, theirs merged (cells in notebook order, scores and seconds summed)."""
    results = [r for name in course.notebooks(lab) if (r := load_notebook_result(course, student, lab, name))]
    if len(results) <= 1:
        return results[0] if results else None
    merged = dict(results[0])
    merged.update(cells=[{**c, "grade_id": cell_key(r.get("notebook_name") or lab, c["grade_id"], True)}
                         for r in results for c in r["cells"]],
                  problem="; ".join(f"{r.get('notebook_name')}: {r['problem']}" for r in results if r.get("problem")),
                  **{key: sum(r.get(key) or 0 for r in results) for key in ("score", "max_score", "bonus", "bonus_max",
                                                                              "seconds", "kernel_restarts")})
    return merged


def lab_total(cells: dict, maximum: float) -> float:
    """A student's points in a lab from their per-cell scores (bonus included), capped at the core maximum."""
    return min(maximum, sum(cells.values()))


def cell_key(notebook: str, grade_id: str, several: bool) -> str:
    """A test cell's name in the grade tables: its grade id, NOTEBOOK/grade_id in an assignment of several notebooks
    (nbgrader allows the same grade id in two notebooks)."""
    return f"{notebook}/{grade_id}" if several else grade_id


def scores(course: Course) -> dict:
    """{lab: {"max": .., "cells": [(cell, max)], "bonus": {cell: its bonus points}, "notebooks": {name: [cell, ...]},
    "students": {student: {cell: score}}}} from the gradebook; a cell is named by cell_key. "max" is the core's
    (bonus cells are worth 0 in the gradebook); a bonus cell's max in "cells" is its bonus points, and its score
    the bonus it earned. A lab's total is min(sum of its cells' scores, max): lab_total()."""
    require_grades(course)
    table = {}
    with open_gradebook(course) as gb:
        for assignment in gb.assignments:
            several = len(assignment.notebooks) > 1
            bonus = {cell_key(nb.name, gid, several): points for nb in assignment.notebooks
                     for gid, points in bonus_points(course, assignment.name, nb.name).items()}
            cells = [(key, bonus.get(key, float(g.max_score)))
                     for nb in assignment.notebooks for g in nb.grade_cells
                     for key in [cell_key(nb.name, g.name, several)]]
            notebooks = {nb.name: [cell_key(nb.name, g.name, several) for g in nb.grade_cells]
                         for nb in assignment.notebooks}
            students = {}
            for submission in assignment.submissions:
                per_cell = {}
                for nb in submission.notebooks:
                    for grade in nb.grades:
                        per_cell[cell_key(nb.name, grade.name, several)] = float(grade.score)
                students[submission.student.id] = per_cell
            table[assignment.name] = {"max": float(assignment.max_score), "cells": cells, "bonus": bonus,
                                      "notebooks": notebooks, "students": students}
        people = {s.id: s for s in gb.students}
        names = {sid: (p.first_name or "", p.last_name or "", p.email or "") for sid, p in people.items()}
    return {"labs": table, "students": names}

