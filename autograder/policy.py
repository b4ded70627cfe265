"""Submission windows and the grade policy, from the course's configuration file (course.toml).

    [course]
    policy = "best"              # best: the better of the in-session version and the last one
                                 #       within the window; last: the last version within the window
    resubmission_days = 7        # window after the session end (default 7)

    [labs.01_micrograd]
    session_end = 2026-10-05T18:00:00+02:00       # the in-session deadline
    # session_start = 2026-10-05T15:00:00+02:00   (default: session_end - 3 hours, one lab session)
    # resubmission_deadline = 2026-10-12T23:59:00+02:00   (default: session_end + resubmission_days)
    # policy = "last"                                    (per-lab override)

    [extensions.ada]             # per-student extensions of the resubmission deadline
    01_micrograd = 3             # days, or a date-time

A version received after the deadline is recorded and shown as late, and never counted, except on an nbgrader
course's own due date (a lab without a session here), where nbgrader's late rule applies: its default
(LateSubmissionPlugin.penalty_method = 'none') grades the last version in full and shows it late; 'zero' counts
no late version. Without course.toml or a due date every version counts and the newest is graded.

The quiz ([grading] quiz, "quiz" by default) is graded once: its deadline is its session end (no
resubmission window unless its table sets resubmission_deadline), only the last version before it
counts, and its per-question feedback is released only once every student's deadline has passed:
otherwise a student could resubmit until every multiple-choice answer is right.

`course bundle` packs the labs whose session has started, and a lab's answers (course_lib's reference
pieces, a later lab's given code) only once its resubmission deadline has passed (without extensions).
"""
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .course import Course, CourseError
from .nbgrader_settings import nbgrader_config

POLICIES = ("best", "last")
DEFAULT_SESSION_LENGTH = timedelta(hours=3)  # a lab session, when course.toml gives no session_start


@dataclass
class Session:
    """One lab's calendar, the same for every student (extensions move a student's deadline only)."""
    start: datetime
    end: datetime
    deadline: datetime  # the end of the resubmission window


@dataclass
class Window:
    session_end: datetime | None
    deadline: datetime | None
    policy: str = "best"
    late_counts: bool = False  # an nbgrader due date under nbgrader's default late penalty ('none')


@dataclass
class Version:
    path: Path
    received_at: datetime
    kind: str  # in-session | resubmission | late | any


@dataclass
class Selection:
    """Which versions of one student's lab count."""
    candidates: list = field(default_factory=list)  # versions to grade; the policy picks among them
    late: list = field(default_factory=list)
    policy: str = "last"


def _as_datetime(value, where) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise CourseError(f"{where}: {value!r} is not a date-time like 2026-10-05T18:00:00+02:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def load_config(course: Course) -> dict:
    path = course.root / "course.toml"
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise CourseError(f"{path}: not valid TOML ({exc}); fix the line it names") from None


def _table(value, where) -> dict:
    if not isinstance(value, dict):
        raise CourseError(f"{where} must be a table of settings, not {value!r}")
    return value


def _lab_config(config: dict, lab: str) -> dict | None:
    lab_config = _table(config.get("labs", {}), "course.toml [labs]").get(lab)
    return None if lab_config is None else _table(lab_config, f"course.toml [labs.{lab}]")


def session_of(config: dict, lab: str) -> Session | None:
    """The lab's session and resubmission deadline, or None when course.toml does not list the lab."""
    lab_config = _lab_config(config, lab)
    if lab_config is None:
        return None
    where = f"course.toml [labs.{lab}]"
    if "session_end" not in lab_config:
        raise CourseError(f"{where}: session_end is missing (the end of the session, e.g. 2026-10-05T18:00:00+02:00)")
    end = _as_datetime(lab_config["session_end"], where)
    start = (_as_datetime(lab_config["session_start"], where) if "session_start" in lab_config
             else end - DEFAULT_SESSION_LENGTH)
    if start > end:
        raise CourseError(f"{where}: session_start {start.isoformat()} is after session_end {end.isoformat()}")
    days = 0 if is_quiz(config, lab) else _table(config.get("course", {}), "course.toml [course]").get("resubmission_days", 7)
    if isinstance(days, bool) or not isinstance(days, (int, float)):
        raise CourseError(f"course.toml [course]: resubmission_days must be a number of days, not {days!r}")
    deadline = (_as_datetime(lab_config["resubmission_deadline"], where) if "resubmission_deadline" in lab_config
                else end + timedelta(days=days))
    return Session(start, end, deadline)


def is_quiz(config: dict, lab: str) -> bool:
    """The quiz is graded once (see the module's docstring)."""
    return lab == _table(config.get("grading", {}), "course.toml [grading]").get("quiz", "quiz")


def feedback_release(config: dict, lab: str) -> datetime | None:
    """When per-question feedback on the lab may go out: None for a lab (at once), the latest deadline of any
    student for the quiz (its session end, or a later resubmission_deadline or extension)."""
    session = session_of(config, lab) if is_quiz(config, lab) else None
    if session is None:
        return None
    extended = [window_for(config, student, lab).deadline
                for student in _table(config.get("extensions", {}), "course.toml [extensions]")]
    return max([session.deadline, *extended])


def nbgrader_due_date(course: Course, lab: str) -> datetime | None:
    """The assignment's due date in nbgrader's gradebook (`nbgrader db assignment add LAB --duedate=...`), as UTC."""
    from .gradebook import _has_gradebook, open_gradebook

    if course is None or not _has_gradebook(course):
        return None
    url = course.db_url
    stamp = Path(url[len("sqlite:///"):]).stat().st_mtime if url.startswith("sqlite:///") else None
    key = (url, lab, stamp)
    if key not in _DUE_DATES or stamp is None:
        from nbgrader.api import MissingEntry

        with open_gradebook(course) as gb:
            try:
                due = gb.find_assignment(lab).duedate
            except MissingEntry:
                due = None
        _DUE_DATES[key] = due.replace(tzinfo=timezone.utc) if due is not None else None
    return _DUE_DATES[key]


_DUE_DATES = {}


def nbgrader_late_penalty(course: Course) -> str:
    """nbgrader_config.py's LateSubmissionPlugin.penalty_method: 'none' (nbgrader's default: a late version is
    graded in full and reported late) or 'zero'; another plugin class reads as 'zero' (late is never counted)."""
    config = nbgrader_config(course) if course is not None else {}
    if config.get("AssignLatePenalties", {}).get("plugin_class") not in (None, "nbgrader.plugins.LateSubmissionPlugin"):
        return "zero"
    method = config.get("LateSubmissionPlugin", {}).get("penalty_method", "none")
    return method if method == "none" else "zero"


def window_for(config: dict, student: str, lab: str, course: Course = None) -> Window | None:
    """The student's window for a lab: course.toml's, else (an nbgrader course) the gradebook's due date, after
    which a version is late (nbgrader grades the last version; so does the window it gives)."""
    session = session_of(config, lab)
    late_counts = False
    if session is None:
        due = nbgrader_due_date(course, lab)
        if due is None:
            return None
        session = Session(due - DEFAULT_SESSION_LENGTH, due, due)
        config = {**config, "labs": {**config.get("labs", {}), lab: {"policy": "last"}}}
        late_counts = nbgrader_late_penalty(course) == "none"
    default_policy = "last" if is_quiz(config, lab) else config.get("course", {}).get("policy", "best")
    policy = _lab_config(config, lab).get("policy", default_policy)
    if policy not in POLICIES:
        raise CourseError(f"course.toml [labs.{lab}]: policy {policy!r} must be one of {', '.join(POLICIES)}")
    deadline = session.deadline
    extensions = _table(config.get("extensions", {}), "course.toml [extensions]").get(student, {})
    extension = _table(extensions, f"course.toml [extensions.{student}]").get(lab)
    if extension is not None:
        where = f"course.toml [extensions.{student}] {lab}"
        deadline = (deadline + timedelta(days=extension)) if isinstance(extension, (int, float)) else _as_datetime(extension, where)
    return Window(session.end, deadline, policy, late_counts)


def select_versions(versions, window: Window | None) -> Selection:
    """versions: [(path, received_at)] of valid notebooks. Returns what to grade and what is late.
    A version of unknown time (received_at None: a notebook in submitted/ without timestamp.txt) is on time, as
    nbgrader counts it, and counts when no other version does."""
    undated = [Version(p, t, "any") for p, t in versions if t is None]
    versions = sorted(((p, t) for p, t in versions if t is not None), key=lambda v: v[1])
    if not versions:
        return Selection(undated[-1:], [], window.policy if window else "last")
    if window is None:
        return Selection([Version(p, t, "any") for p, t in versions[-1:]], [], "last")
    in_session = [Version(p, t, "in-session") for p, t in versions if t <= window.session_end]
    resubmitted = [Version(p, t, "resubmission") for p, t in versions if window.session_end < t <= window.deadline]
    late = [Version(p, t, "late") for p, t in versions if t > window.deadline]
    counted = in_session + resubmitted
    if late and window.late_counts:  # as nbgrader: the last version, graded in full and shown late
        return Selection([late[-1]], late, "last")
    if not counted:
        return Selection([], late, window.policy)
    last = counted[-1]
    if window.policy == "best" and in_session and in_session[-1] is not last:
        return Selection([in_session[-1], last], late, "best")
    return Selection([last], late, window.policy)
