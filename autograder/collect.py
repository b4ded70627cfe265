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
from .notebooks import MAX_NOTEBOOK_BYTES, NotebookProblem, printable, too_big

NAME_SPLIT = re.compile(r"[_\s\-+]+")
MAX_KEPT_NAME = 100  # characters of the sent file's name kept in a stored version's (a name has at most 255 bytes)
STAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"


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
    stamp = received_at.astimezone(timezone.utc).strftime(STAMP_FORMAT)
    path = folder / f"{stamp}__{digest[:16]}__{kept_name(original_name)}"
    path.write_bytes(data)
    return path, True


def kept_name(original_name: str) -> str:
    """The sent file's name as a stored version ends: its odd characters (path separators, line breaks, bytes that
    are not UTF-8, ...) made "_", and at most MAX_KEPT_NAME characters, its extension kept."""
    safe = re.sub(r"[^A-Za-z0-9._() \-]", "_", original_name)
    if len(safe) <= MAX_KEPT_NAME:
        return safe
    suffix = Path(safe).suffix[:10]
    return safe[:MAX_KEPT_NAME - len(suffix) - 3] + "..." + suffix


def received_at_of(path: Path) -> datetime:
    name = path.name.split("__")[0]
    return datetime.strptime(name, STAMP_FORMAT).replace(tzinfo=timezone.utc)


def sent_name(path: Path) -> str:
    """The name a stored version was sent under (received/STUDENT/LAB/STAMP__HASH__NAME)."""
    return path.name.split("__", 2)[-1]


def valid_versions(course: Course, student: str, lab: str, notebook: str = None, released: dict = None,
                   problems: list = None) -> list:
    """[(path, received_at)] of every received version of a lab that is a readable copy of its notebook
    `notebook` (default: the lab's first notebook, the only one of our labs). Every version is checked again
    (notebooks.notebook_json): one that is not (a file stored before a check existed, one put there by hand) is
    skipped and its one-line problem appended to `problems`, never raised."""
    folder = course.received_dir(student, lab)
    if not folder.exists():
        return []
    released = released if released is not None else released_notebooks(course, lab)
    notebook = notebook or course.notebooks(lab)[0]
    versions, problems = [], problems if problems is not None else []
    for path in sorted(folder.iterdir()):
        try:
            received_at = received_at_of(path)
        except ValueError:  # no time stamp starts its name
            problems.append(f"{printable(path.name)}: not a version `course collect` stored (its name does not start "
                            f"with the time it was received, {STAMP_FORMAT}); skipped. Collect the file instead.")
            continue
        try:
            _, name = read_matched(path, lab, released)
        except NotebookProblem as problem:
            problems.append(str(problem).replace(path.name, sent_name(path)))
            continue
        except Exception as exc:  # whatever a stored file does, the others are still read
            problems.append(f"{printable(sent_name(path))}: could not be read ({exc.__class__.__name__}: "
                            f"{printable(str(exc))[:200]}); skipped")
            continue
        if name == notebook:
            versions.append((path, received_at))
    return versions


def nbgrader_submission(course: Course, student: str, lab: str, notebook: str) -> list:
    """[(path, time)] of a notebook that nbgrader's own tools (or an instructor) put in submitted/, its time read
    from timestamp.txt as nbgrader reads it (None without one: nbgrader counts it on time), or []."""
    from .gradebook import read_timestamp

    path = course.submitted_dir(student, lab) / f"{notebook}.ipynb"
    if not path.is_file():
        return []
    moment = read_timestamp(course, student, lab)  # naive UTC, nbgrader's convention
    return [(path, moment.replace(tzinfo=timezone.utc) if moment is not None else None)]


def selection_for(course: Course, student: str, lab: str, notebook: str = None, released: dict = None,
                  problems: list = None, submitted: bool = True):
    """The versions of one notebook that count under course.toml's windows and policy (all of them without it).
    With none received, submitted/ (nbgrader's layout) holds the version, late or not by its timestamp.txt."""
    from .policy import load_config, select_versions, window_for

    notebook = notebook or course.notebooks(lab)[0]
    versions = valid_versions(course, student, lab, notebook, released, problems)
    if not versions and submitted:
        versions = nbgrader_submission(course, student, lab, notebook)
    return select_versions(versions, window_for(load_config(course), student, lab, course))


def promote_latest(course: Course, student: str, lab: str) -> list:
    """Copy the last version of each notebook that counts to submitted/ (nbgrader's layout: what to grade)."""
    released = released_notebooks(course, lab)
    target_dir, promoted, latest = course.submitted_dir(student, lab), [], None
    for name in course.notebooks(lab):
        selection = selection_for(course, student, lab, name, released, submitted=False)
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
    # links are listed (and refused below); rglob does not go into linked folders
    files = sorted(p for p in folder.rglob("*") if (p.is_symlink() or p.is_file()) and not p.name.startswith("."))
    if not files:
        report.problems.append(f"{folder}: the folder is empty; nothing to collect")
        return report
    touched, released = set(), released_notebooks(course, lab)
    for path in files:
        relative = path.relative_to(folder)
        try:
            student = _collect_file(course, path, relative, lab, roster, released, report)
        except Exception as exc:  # one file never stops the others: it gets its line
            report.problems.append(f"{printable(relative)}: could not be collected ({exc.__class__.__name__}: "
                                   f"{printable(str(exc))[:200]}); the other files were collected")
            continue
        if student is not None:
            touched.add(student)
    for student in sorted(touched):
        promote_latest(course, student, lab)
    return report


def _collect_file(course: Course, path: Path, relative: Path, lab: str, roster, released, report) -> str | None:
    """Store one file of the folder as a received version. Returns its student when it is a new valid version,
    else None (the report says why)."""
    shown = printable(relative)
    if path.suffix.lower() != ".ipynb":
        report.problems.append(f"{shown}: not a notebook (.ipynb); left where it is, not collected")
        return None
    if path.is_symlink():  # it could point to another student's file, or to any file of the instructor's
        report.problems.append(f"{shown}: a symbolic link, not collected: put the file itself in the folder "
                               "(cp -L copies what a link points to)")
        return None
    student = identify_student(relative, roster)
    if student is None:
        report.problems.append(
            f"{shown}: unknown student; add them to {course.roster_path.name} or rename the file "
            "to start with the student's id (e.g. ada_01_micrograd.ipynb)")
        return None
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:  # never read into memory, nor stored
        report.problems.append(f"{student}: {too_big(shown, size)} (left in the folder, not collected)")
        return None
    data = path.read_bytes()
    received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    stored, is_new = archive_version(course, student, lab, data, path.name, received_at)
    if not is_new:
        report.duplicates.append((student, shown))
        return None
    try:
        read_matched(stored, lab, released)
    except NotebookProblem as problem:
        report.problems.append(f"{student}: {str(problem).replace(stored.name, shown)} "
                               f"(kept in {stored.relative_to(course.root)})")
        return None
    version = len(list(course.received_dir(student, lab).iterdir()))
    report.collected.append((student, shown, version))
    return student
