"""Stage 0: which versions of which notebooks of which students a lab's grading runs (one job each), and
which are already graded against the same source (their record is reused unless forced). An assignment of
several notebooks gives one job per notebook and version; all its jobs share the kernels' settings: the
assignment's files and the modules any of its notebooks imports."""
import hashlib
import json

import nbformat

from ..collect import selection_for
from ..course import Course
from ..matching import released_notebooks
from ..gradebook import generated_cells
from ..notebooks import grade_id, is_bonus_cell, is_solution_cell, is_test_cell, nbgrader_meta
from .kernel_pool import preloadable
from .records import CellResult, GradeJob, GradeRecord


def _fingerprint(submission_bytes: bytes, source_bytes: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(submission_bytes).digest() + source_bytes).hexdigest()


def students_of(course: Course, lab: str) -> list:
    found = set(course.submitted_students(lab))
    received = course.root / "received"
    if received.exists():
        found |= {p.name for p in received.iterdir() if (p / lab).is_dir()}
    return sorted(found)


def graded_source(course: Course, lab: str, name: str):
    """The instructor's notebook as grading runs it: its test and locked cells as the release generated them (the
    gradebook's copy: AUTOTEST lines expanded, hidden tests in), its solution cells as written."""
    nb = nbformat.read(course.source(lab, name), as_version=4)
    generated = generated_cells(course, lab, name)
    for cell in nb.cells:
        gid = grade_id(cell)
        if gid in generated and (is_test_cell(cell) or nbgrader_meta(cell).get("locked")) and not is_solution_cell(cell):
            cell.source = generated[gid]
    return nb


def plan(course: Course, lab: str, students, cell_timeout, budget, sandbox=True):
    """(jobs, records of notebooks with nothing to grade)."""
    names = course.notebooks(lab)
    released = released_notebooks(course, lab)
    notebooks = {name: graded_source(course, lab, name) for name in names}
    # what the fingerprint covers: a regrade follows any change to the tests that grading runs
    sources = {name: nbformat.writes(nb).encode() for name, nb in notebooks.items()}
    preload = tuple(dict.fromkeys(m for nb in notebooks.values() for m in preloadable(nb)))
    files = tuple((relative, (course.source_dir(lab) / relative).read_bytes()) for relative in course.files(lab))
    files_bytes = b"".join(relative.encode() + b"\0" + data for relative, data in files)  # b"" for our labs
    jobs, nothing = [], []
    for student in students:
        for name in names:
            source, own = notebooks[name], "" if name == lab else name
            skipped = []  # the problems of received versions that are not notebooks of the lab
            selection = selection_for(course, student, lab, name, released, skipped)  # else submitted/'s
            versions = [(v.path, v.received_at.isoformat() if v.received_at else "", v.kind)
                        for v in selection.candidates]
            if not versions:
                last = selection.late[-1].received_at if selection.late else None
                why = (f"only late versions were received (the last at {last:%Y-%m-%d %H:%M} UTC), and a late "
                       "version is not counted" if last else "no valid notebook was received")
                problem = why + "".join(f"; {p}" for p in skipped[-3:])  # what was wrong with the last ones
                nothing.append(GradeRecord(student, lab, problem=problem, notebook_name=own, kind="late" if last else "",
                                           received_at=last.isoformat() if last else "", cells=[
                    CellResult(nbgrader_meta(c)["grade_id"], 0.0, float(nbgrader_meta(c).get("points", 0)), "skipped",
                               why, bonus=is_bonus_cell(c)) for c in source.cells if is_test_cell(c)]))
                continue
            for path, received_at, kind in versions:
                data = path.read_bytes()
                jobs.append(GradeJob(student, lab, str(path), source, released[name], cell_timeout, budget,
                                     version=path.name, received_at=received_at, kind=kind,
                                     fingerprint=_fingerprint(data, sources[name] + files_bytes),
                                     sandbox=sandbox, hidden=(str(course.root),), submission_bytes=data,
                                     preload=preload, notebook_name=own, released=released, files=files))
    return jobs, nothing


def previous_record(course: Course, job: GradeJob):
    path = course.autograded_dir(job.student, job.lab) / "versions" / f"{job.version}.json"
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("fingerprint") == job.fingerprint:
            return GradeRecord.from_json(data)
    return None
