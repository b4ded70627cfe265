"""`course grade LAB --preview`: after a change to a lab's tests, whose score would change and by how much, before
anything is written to the gradebook.

The lab is released from its source as it is now (labs/LAB, or the course's source/LAB for an nbgrader course) into a
scratch course that holds a copy of the students' received versions, the roster and course.toml, with a gradebook of
its own; every student is graded there and compared with the course's gradebook. The course directory is only read,
and the scratch course is deleted afterwards.
"""
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .course import Course, CourseError, labs_dir, notebook_names


class ScratchCourse(Course):
    """A course whose gradebook is SQLite in its own folder, whatever COURSE_DB_URL says."""

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.root / 'gradebook.db'}"


@dataclass
class Change:
    student: str
    before: float | None     # None: not in the gradebook
    after: float
    maximum: float
    cells: list = field(default_factory=list)  # [(test, before, after)]

    @property
    def delta(self) -> float:
        return self.after - (self.before or 0.0)


def _copy_course_inputs(course: Course, scratch: Course, lab: str) -> None:
    scratch.root.mkdir(parents=True)
    for name in ("roster.csv", "course.toml", "nbgrader_config.py"):
        if (course.root / name).exists():
            shutil.copy2(course.root / name, scratch.root / name)
    for kind in ("received", "submitted"):
        for folder in sorted((course.root / kind).glob(f"*/{lab}")):
            shutil.copytree(folder, scratch.root / kind / folder.parent.name / lab)
    if not notebook_names(labs_dir() / lab):  # an nbgrader course's own assignment: its source is in the course
        shutil.copytree(course.source_dir(lab), scratch.source_dir(lab))


def preview(course: Course, lab: str, cell_timeout=60.0, budget=300.0, jobs=1, sandbox=True, dask=None,
            echo=print) -> list:
    """Grade LAB as its source is now in a scratch course; [Change] of every student whose score differs from the
    gradebook's."""
    from .gradebook import lab_total, scores
    from .grading.run_lab import grade_lab
    from .release import release

    course.require_release(lab)
    before = scores(course)["labs"].get(lab)  # a clear error when nothing is graded yet
    if before is None:
        raise CourseError(f"nothing of {lab} is graded in {course.root}: a preview compares with the gradebook; "
                          f"run `course grade {lab}` first")
    with tempfile.TemporaryDirectory(prefix=f"preview-{lab}-") as folder:
        scratch = ScratchCourse(Path(folder) / "course")
        _copy_course_inputs(course, scratch, lab)
        release(scratch, lab)
        lines = []
        records = grade_lab(scratch, lab, cell_timeout=cell_timeout, budget=budget, jobs=jobs, force=True,
                            sandbox=sandbox, dask=dask, echo=lines.append)
    echo(lines[0] if lines else "")
    echo(lines[-1].replace("graded", "graded in the scratch course", 1) if lines else "nothing graded")
    after = {}
    for record in records:
        total, maximum, cells = after.get(record.student, (0.0, 0.0, {}))
        name = record.notebook_name
        cells.update({f"{name}/{c.grade_id}" if name else c.grade_id: c.points for c in record.cells})
        after[record.student] = (total + record.score, maximum + record.max_score, cells)
    changes = []
    for student, (total, maximum, cells) in sorted(after.items()):
        old_cells = before["students"].get(student)
        old = lab_total(old_cells, before["max"]) if old_cells is not None else None
        if old is not None and abs(old - total) < 1e-9:
            continue
        moved = [(cell, (old_cells or {}).get(cell, 0.0), points) for cell, points in cells.items()
                 if abs((old_cells or {}).get(cell, 0.0) - points) > 1e-9]
        changes.append(Change(student, old, total, maximum, moved))
    return sorted(changes, key=lambda c: (-abs(c.delta), c.student))


def print_preview(changes: list, course: Course, lab: str, graded: int, echo=print) -> None:
    for c in changes:
        before = "not graded" if c.before is None else f"{c.before:g}"
        cells = ", ".join(f"{cell} {a:g} → {b:g}" for cell, a, b in c.cells)
        echo(f"  {c.student:20s} {before} → {c.after:g} / {c.maximum:g} ({c.delta:+g}){': ' + cells if cells else ''}")
    echo(f"{len(changes)} of {graded} students' scores would change; the gradebook and the results in {course.root} "
         f"are as they were. To apply the change: course release {lab}, then course grade {lab}")
