"""Collecting submissions from a folder into nbgrader's submitted/ layout, keeping every version.

A file belongs to a student by its sub-folder (DIR/alice/...) or by the start of its name
(alice.ipynb, alice_01_micrograd.ipynb, "alice - 01_micrograd (1).ipynb"), matched against the
roster's ids, e-mails and e-mail names (without roster.csv: the gradebook's students, else any id-like
name). Every received version is archived under received/STUDENT/LAB/; which notebook of the assignment
it is comes from matching.py, and the newest valid one of each notebook is copied to
submitted/STUDENT/LAB/NB.ipynb with its timestamp.
"""
import hashlib
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .course import STUDENT_ID_PATTERN, Course, CourseError, read_roster
from .matching import read_matched, released_notebooks
from .notebooks import NotebookProblem

NAME_SPLIT = re.compile(r"[_\s\-+]+")


@dataclass
class CollectReport:
    collected: list = field(default_factory=list)   # (student, file, version)
    duplicates: list = field(default_factory=list)  # (student, file)
    problems: list = field(default_factory=list)    # messages
    skipped: list = field(default_factory=list)     # files that are not notebooks (screenshots, PDFs)

    @property
    def ok(self) -> bool:
        return not self.problems


def identify_student(relative: Path, roster) -> str | None:
    """The student a file belongs to, or None."""
    stem = relative.stem
    first_token = NAME_SPLIT.split(stem)[0]
    candidates = ([relative.parts[0]] if len(relative.parts) > 1 else []) + [first_token, stem]
    if roster is None:
        return next((c for c in candidates[:-1] if STUDENT_ID_PATTERN.match(c)), None)
    by_alias = {alias: sid for sid, s in roster.items() for alias in s.aliases}
    for c in candidates:
        if c.lower() in by_alias:
            return by_alias[c.lower()]
    # the longest roster id that starts the file name: "ada.lovelace_lab1.ipynb"
    matches = [sid for sid in roster if stem.lower().startswith(sid.lower()) and
               (len(stem) == len(sid) or not stem[len(sid)].isalnum())]
    return max(matches, key=len) if matches else None


def archive_version(course: Course, student: str, lab: str, data: bytes, original_name: str, received_at: datetime):
    """Store one received version under received/; returns (path, is_new)."""
    digest = hashlib.sha256(data).hexdigest()
    folder = course.received_dir(student, lab)
    folder.mkdir(parents=True, exist_ok=True)
    for existing in folder.iterdir():
        if existing.name.split("__")[1:2] == [digest[:16]]:
            return existing, False
    stamp = received_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    safe_name = re.sub(r"[^A-Za-z0-9._() \-]", "_", original_name)
    path = folder / f"{stamp}__{digest[:16]}__{safe_name}"
    path.write_bytes(data)
    return path, True


def received_at_of(path: Path) -> datetime:
    name = path.name.split("__")[0]
    return datetime.strptime(name, "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=timezone.utc)


def valid_versions(course: Course, student: str, lab: str, notebook: str = None, released: dict = None) -> list:
    """[(path, received_at)] of every received version of a lab that is a readable copy of its notebook
    `notebook` (default: the lab's first notebook, the only one of our labs)."""
    folder = course.received_dir(student, lab)
    if not folder.exists():
        return []
    released = released if released is not None else released_notebooks(course, lab)
    notebook = notebook or course.notebooks(lab)[0]
    versions = []
    for path in sorted(folder.iterdir()):
        try:
            _, name = read_matched(path, lab, released)
        except NotebookProblem:
            continue
        if name == notebook:
            versions.append((path, received_at_of(path)))
    return versions


def selection_for(course: Course, student: str, lab: str, notebook: str = None, released: dict = None):
    """The versions of one notebook that count under course.toml's windows and policy (all of them without it)."""
    from .policy import load_config, select_versions, window_for

    return select_versions(valid_versions(course, student, lab, notebook, released),
                           window_for(load_config(course), student, lab, course))


def promote_latest(course: Course, student: str, lab: str) -> list:
    """Copy the last version of each notebook that counts to submitted/ (nbgrader's layout: what to grade)."""
    released = released_notebooks(course, lab)
    target_dir, promoted, latest = course.submitted_dir(student, lab), [], None
    for name in course.notebooks(lab):
        selection = selection_for(course, student, lab, name, released)
        if not selection.candidates:
            continue
        chosen = selection.candidates[-1]
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / f"{name}.ipynb"
        shutil.copyfile(chosen.path, target)
        promoted.append(target)
        latest = max(latest or chosen.received_at, chosen.received_at)
    if latest is not None:
        (target_dir / "timestamp.txt").write_text(latest.isoformat())
    return promoted


def gradebook_students(course: Course):
    """{id: Student} of the gradebook (an nbgrader course's class list), or None when it has none."""
    from .course import Student
    from .gradebook import gradebook_people

    people = gradebook_people(course)
    if not people:
        return None
    return {sid: Student(sid, first, last, email, {sid.lower()} | ({email.lower(), email.split("@")[0].lower()}
                                                                   if email else set()))
            for sid, (first, last, email) in people.items()}


def collect_folder(course: Course, folder: Path, lab: str) -> CollectReport:
    course.require_release(lab)
    report = CollectReport()
    folder = Path(folder)
    if course.roster_path.exists():
        try:
            roster = read_roster(course.roster_path)
        except CourseError as exc:
            report.problems.append(f"{exc}")
            return report  # a malformed roster: identify nobody rather than guess
    else:
        roster = gradebook_students(course)  # an nbgrader course keeps its students there
        if roster is None:
            report.problems.append(f"no roster at {course.roster_path} nor students in the gradebook: files are "
                                   "matched to students by their id-like name; add roster.csv (id,first_name,"
                                   "last_name,email) to match e-mails too")
    if not folder.is_dir():
        report.problems.append(f"{folder}: no such folder; pass the folder that holds the students' notebooks")
        return report
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        report.problems.append(f"{folder}: the folder is empty; nothing to collect")
        return report
    touched, released = set(), released_notebooks(course, lab)
    for path in files:
        relative = path.relative_to(folder)
        if path.suffix.lower() != ".ipynb":
            report.problems.append(f"{relative}: not a notebook (.ipynb); left where it is, not collected")
            continue
        student = identify_student(relative, roster)
        if student is None:
            report.problems.append(
                f"{relative}: unknown student; add them to {course.roster_path.name} or rename the file "
                "to start with the student's id (e.g. ada_01_micrograd.ipynb)")
            continue
        data = path.read_bytes()
        received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        stored, is_new = archive_version(course, student, lab, data, path.name, received_at)
        if not is_new:
            report.duplicates.append((student, str(relative)))
            continue
        try:
            read_matched(stored, lab, released)
        except NotebookProblem as problem:
            report.problems.append(f"{student}: {problem} (kept in {stored.relative_to(course.root)})")
            continue
        touched.add(student)
        version = len(list(course.received_dir(student, lab).iterdir()))
        report.collected.append((student, str(relative), version))
    for student in sorted(touched):
        promote_latest(course, student, lab)
    return report
