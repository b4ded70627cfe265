"""Where things live: the repository's labs and the instructor's course directory (nbgrader layout).

course/
  gradebook.db                      nbgrader's gradebook (scores per test cell)
  roster.csv                        id,first_name,last_name,email
  source/LAB/LAB.ipynb              copied from labs/ at release time (solutions + hidden tests)
  release/LAB/LAB.ipynb             the student version
  received/STUDENT/LAB/...          every version a student sent, never deleted
  submitted/STUDENT/LAB/LAB.ipynb   the version to grade (+ timestamp.txt)
  autograded/STUDENT/LAB/           executed notebook + result.json
  feedback/STUDENT/LAB/LAB.html
  exports/grades.csv
"""
import csv
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COURSE_ID = "deep-learning-from-scratch"
STUDENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
ROSTER_COLUMNS = ("id", "first_name", "last_name", "email")


class CourseError(Exception):
    """A problem the user can fix; the message says what and how."""


def ensure_tools_on_path() -> None:
    """nbgrader's gradebook shells out to `alembic`, which lives beside our interpreter."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def labs_dir() -> Path:
    """The instructor's lab sources (COURSE_LABS_DIR overrides, e.g. for a course's own labs)."""
    return Path(os.environ.get("COURSE_LABS_DIR", REPO_ROOT / "labs"))


def available_labs() -> list[str]:
    folder = labs_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and (p / f"{p.name}.ipynb").exists())


def lab_source_notebook(lab: str) -> Path:
    path = labs_dir() / lab / f"{lab}.ipynb"
    if not path.exists():
        known = ", ".join(available_labs()) or "none"
        raise CourseError(f"unknown lab '{lab}': no {path} (labs available: {known})")
    return path


@dataclass
class Course:
    root: Path

    def __post_init__(self):
        self.root = Path(self.root).resolve()

    @property
    def db_url(self) -> str:
        """nbgrader's gradebook: SQLite in the course directory, or any SQLAlchemy URL in COURSE_DB_URL."""
        return os.environ.get("COURSE_DB_URL") or f"sqlite:///{self.root / 'gradebook.db'}"

    def source(self, lab: str) -> Path:
        return self.root / "source" / lab / f"{lab}.ipynb"

    def release(self, lab: str) -> Path:
        return self.root / "release" / lab / f"{lab}.ipynb"

    def received_dir(self, student: str, lab: str) -> Path:
        return self.root / "received" / student / lab

    def submitted_dir(self, student: str, lab: str) -> Path:
        return self.root / "submitted" / student / lab

    def autograded_dir(self, student: str, lab: str) -> Path:
        return self.root / "autograded" / student / lab

    def feedback_file(self, student: str, lab: str) -> Path:
        return self.root / "feedback" / student / lab / f"{lab}.html"

    @property
    def roster_path(self) -> Path:
        return self.root / "roster.csv"

    def require_release(self, lab: str) -> None:
        if not self.source(lab).exists() or not self.release(lab).exists():
            raise CourseError(f"lab {lab} has not been released in {self.root}: run `course release {lab}` first")

    def submitted_students(self, lab: str) -> list[str]:
        base = self.root / "submitted"
        if not base.exists():
            return []
        return sorted(p.name for p in base.iterdir() if (p / lab / f"{lab}.ipynb").exists())


@dataclass
class Student:
    id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    aliases: set = field(default_factory=set)
    extra: dict = field(default_factory=dict)  # other roster columns (section, sis_user_id, ...)


def read_roster(path: Path) -> dict[str, Student]:
    """Read roster.csv (columns id,first_name,last_name,email; only id is required).

    Raises CourseError naming the file, the line and the fix when it is malformed.
    """
    if not path.exists():
        raise CourseError(
            f"no roster at {path}: create it with the header 'id,first_name,last_name,email' "
            "and one line per student (students are matched by id, e-mail or e-mail name)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise CourseError(f"roster {path} is not UTF-8 text: save it as CSV (UTF-8) from your spreadsheet")
    rows = list(csv.reader(text.splitlines()))
    if not rows or "id" not in [h.strip().lower() for h in rows[0]]:
        raise CourseError(
            f"roster {path} has no 'id' column in its first line: the header must be "
            "'id,first_name,last_name,email'"
        )
    header = [h.strip().lower() for h in rows[0]]
    students: dict[str, Student] = {}
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise CourseError(f"roster {path}, line {line_no}: {len(row)} fields, header has {len(header)}: {row}")
        record = {h: v.strip() for h, v in zip(header, row)}
        sid = record["id"]
        if not STUDENT_ID_PATTERN.match(sid):
            raise CourseError(
                f"roster {path}, line {line_no}: student id {sid!r} must be letters, digits, '.', '_' or '-'"
            )
        if sid in students:
            raise CourseError(f"roster {path}, line {line_no}: student id {sid!r} appears twice")
        email = record.get("email", "")
        aliases = {sid.lower()}
        if email:
            aliases |= {email.lower(), email.split("@")[0].lower()}
        extra = {k: v for k, v in record.items() if k not in ROSTER_COLUMNS}
        students[sid] = Student(sid, record.get("first_name", ""), record.get("last_name", ""), email, aliases, extra)
    return students
