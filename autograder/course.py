"""Where things live: the repository's labs and the instructor's course directory (nbgrader layout).

An assignment (a lab) is a folder: any number of notebooks plus files (data, images, helper modules).
Our own labs are the simple case, one notebook named after the folder (labs/LAB/LAB.ipynb); `NB` below
is a notebook's name without .ipynb (LAB for our labs).

course/
  gradebook.db                      nbgrader's gradebook (scores per test cell)
  roster.csv                        id,first_name,last_name,email (optional: else the gradebook's students)
  source/LAB/NB.ipynb + files       copied from labs/ at release time (solutions + hidden tests), or an
                                    nbgrader course's own source/ when labs/ has no such assignment
  release/LAB/NB.ipynb + files      the student version
  received/STUDENT/LAB/...          every version a student sent, never deleted
  submitted/STUDENT/LAB/NB.ipynb    the version to grade (+ timestamp.txt), as nbgrader writes it too
  autograded/STUDENT/LAB/           executed notebooks + result.json (NB.result.json for NB other than LAB)
  feedback/STUDENT/LAB/NB.html
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


# what an assignment folder holds that is not given to students, nor copied into the grading sandbox
# our labs' planted bugs (planted_bugs.py), the checks each bug fails (signatures.py), cell times (lab_time.py)
NOT_RELEASED = ("bugs.toml", "bug_signatures.json", "timings.json")
IGNORED_PARTS = (".ipynb_checkpoints", "__pycache__")


def notebook_names(folder: Path) -> list[str]:
    """The notebooks of an assignment folder, by name without .ipynb (its own name first, then sorted)."""
    folder = Path(folder)
    names = sorted(p.stem for p in folder.glob("*.ipynb")) if folder.is_dir() else []
    return sorted(names, key=lambda name: name != folder.name)


def assignment_files(folder: Path) -> list[str]:
    """The other files of an assignment folder (data, images, helper modules), relative to it, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or path.suffix == ".ipynb" and len(relative.parts) == 1 or relative.name in NOT_RELEASED \
                or any(part in IGNORED_PARTS or part.startswith(".") for part in relative.parts):
            continue
        found.append(str(relative))
    return found


def available_labs() -> list[str]:
    folder = labs_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and notebook_names(p))


def lab_source_notebook(lab: str) -> Path:
    """The main notebook of a lab in labs/ (its own name, else its first notebook)."""
    folder = lab_source_folder(lab)
    return folder / f"{notebook_names(folder)[0]}.ipynb"


def lab_source_folder(lab: str, course: "Course" = None) -> Path:
    """Where an assignment's source is: labs/LAB, else (an nbgrader course) the course's source/LAB."""
    folder = labs_dir() / lab
    if notebook_names(folder):
        return folder
    if course is not None and notebook_names(course.source_dir(lab)):
        return course.source_dir(lab)
    known = ", ".join(available_labs()) or "none"
    where = f" nor {course.source_dir(lab)}" if course is not None else ""
    raise CourseError(f"unknown lab '{lab}': no notebook in {folder}{where} (labs available: {known})")


@dataclass
class Course:
    root: Path

    def __post_init__(self):
        self.root = Path(self.root).resolve()

    @property
    def db_url(self) -> str:
        """nbgrader's gradebook: SQLite in the course directory, or any SQLAlchemy URL in COURSE_DB_URL."""
        return os.environ.get("COURSE_DB_URL") or f"sqlite:///{self.root / 'gradebook.db'}"

    def source_dir(self, lab: str) -> Path:
        return self.root / "source" / lab

    def release_dir(self, lab: str) -> Path:
        return self.root / "release" / lab

    def notebooks(self, lab: str) -> list[str]:
        """The released assignment's notebooks by name (just [LAB] for our labs; [LAB] before release)."""
        return notebook_names(self.source_dir(lab)) or [lab]

    def source(self, lab: str, notebook: str = None) -> Path:
        return self.source_dir(lab) / f"{notebook or lab}.ipynb"

    def release(self, lab: str, notebook: str = None) -> Path:
        return self.release_dir(lab) / f"{notebook or lab}.ipynb"

    def files(self, lab: str) -> list[str]:
        """The assignment's other files (data, images, helper modules), relative to its source folder."""
        return assignment_files(self.source_dir(lab))

    def received_dir(self, student: str, lab: str) -> Path:
        return self.root / "received" / student / lab

    def submitted_dir(self, student: str, lab: str) -> Path:
        return self.root / "submitted" / student / lab

    def autograded_dir(self, student: str, lab: str) -> Path:
        return self.root / "autograded" / student / lab

    def result_file(self, student: str, lab: str, notebook: str = None) -> Path:
        name = "result.json" if notebook in (None, "", lab) else f"{notebook}.result.json"
        return self.autograded_dir(student, lab) / name

    def feedback_file(self, student: str, lab: str, notebook: str = None) -> Path:
        return self.root / "feedback" / student / lab / f"{notebook or lab}.html"

    @property
    def roster_path(self) -> Path:
        return self.root / "roster.csv"

    def require_release(self, lab: str) -> None:
        names = notebook_names(self.source_dir(lab))
        if not names or not all(self.release(lab, name).exists() for name in names):
            raise CourseError(f"lab {lab} has not been released in {self.root}: run `course release {lab}` first")

    def submitted_students(self, lab: str) -> list[str]:
        base = self.root / "submitted"
        if not base.exists():
            return []
        names = self.notebooks(lab)
        return sorted(p.name for p in base.iterdir() if any((p / lab / f"{n}.ipynb").exists() for n in names))


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
