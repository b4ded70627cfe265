"""From a shared file to a received version: whose it is, which lab, and what is already done (slack_state.json).

Every notebook a student shares becomes one received version (collect.archive_version) stamped with the
`ts` of the message that shared it; the version to grade is then chosen by the window rules
(collect.promote_latest). A file belongs to
  - a student: the message's sender, matched to roster.csv by the e-mail of their Slack profile
    (users.info, scope users:read.email) or by a `slack_id` roster column;
  - a lab: the notebook's metadata (metadata.course.lab) first, then the released assignment whose
    notebooks share its grade ids (a notebook nbgrader made), then its file name.

Re-running collects only what is new. course/slack_state.json remembers the files already settled
("FILE_ID@TS": stored, or reported once as not gradable) and, per conversation, the last reply seen in each
thread. A file from an unknown sender, or one whose download failed, is reported again on every run until it
is collected. The state is written after each file, so an interrupted run can simply be run again.
"""
import json
import re

import nbformat
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from course_lib.files import write_atomic

from ..collect import CollectReport, archive_version, promote_latest
from ..course import Course
from ..matching import lab_from_cells, read_matched, released_notebooks
from ..notebooks import NotebookProblem, lab_of, notebook_json, printable
from .download import SlackProblem


# --- state, people, labs ------------------------------------------------------------------------------

def ts_to_datetime(ts: str) -> datetime:
    """A Slack ts ("1700000000.123456") as a UTC datetime, without float rounding."""
    seconds, _, fraction = str(ts).partition(".")
    return datetime.fromtimestamp(int(seconds), timezone.utc).replace(microsecond=int((fraction + "000000")[:6]))


def datetime_to_ts(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


def state_path(course: Course) -> Path:
    return course.root / "slack_state.json"


def load_state(course: Course) -> dict:
    path = state_path(course)
    state = json.loads(path.read_text()) if path.exists() else {}
    for key in ("files", "threads", "feedback"):
        state.setdefault(key, {})
    state.setdefault("to_promote", [])  # "student/lab" stored but not yet promoted (kept if a run is stopped)
    return state


def save_state(course: Course, state: dict) -> None:
    path = state_path(course)
    write_atomic(path, json.dumps(state, indent=1, sort_keys=True))  # a stopped run leaves the previous state


def released_labs(course: Course) -> list[str]:
    base = course.root / "release"
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.ipynb"))) if base.exists() else []


def lab_from_name(name: str, labs) -> str | None:
    """'00_tiny (1).ipynb', 'ada-00-tiny.ipynb' and 'tiny.ipynb' are all for 00_tiny."""
    stem = re.sub(r"[\s\-.]+", "_", Path(name).stem.lower())
    found = [lab for lab in labs if lab.lower() in stem]
    if not found:
        found = [lab for lab in labs if lab.lower().split("_", 1)[-1] in re.split(r"[_()]+", stem)]
    return found[0] if len(found) == 1 else None


def lab_from_content(data: bytes, assignments: dict = None, name: str = "") -> str | None:
    """The lab a notebook's bytes name in their metadata, else (with {lab: {name: released notebook}}) the one
    released assignment whose notebooks share its grade ids; None when they are not a notebook (notebook_json:
    the file's own problem is reported once it is stored)."""
    try:
        nb = notebook_json(data, name)
    except NotebookProblem:
        return None
    found = lab_of(nb)
    if found is None and assignments:
        found = lab_from_cells(nbformat.from_dict(nb), assignments)
    return found


class People:
    """Slack users to roster ids, by the e-mail of their Slack profile (or a roster column slack_id)."""

    def __init__(self, roster: dict, client: WebClient | None = None, users: dict | None = None,
                 no_email="no e-mail visible: the app needs the users:read.email scope"):
        self.client, self.users, self.no_email = client, dict(users or {}), no_email
        self.by_email = {s.email.lower(): sid for sid, s in roster.items() if s.email}
        self.by_slack_id = {s.extra["slack_id"]: sid for sid, s in roster.items() if s.extra.get("slack_id")}

    def user(self, user_id: str) -> dict:
        if user_id not in self.users and self.client is not None:
            try:
                self.users[user_id] = self.client.users_info(user=user_id)["user"]
            except SlackApiError:
                self.users[user_id] = {}
        return self.users.get(user_id, {})

    def student(self, user_id: str) -> str | None:
        email = (self.user(user_id).get("profile", {}).get("email") or "").lower()
        return self.by_slack_id.get(user_id) or self.by_email.get(email)

    def describe(self, user_id: str) -> str:
        user = self.user(user_id)
        profile = user.get("profile", {})
        name = profile.get("real_name") or user.get("real_name") or profile.get("display_name") or user.get("name")
        email = profile.get("email") or self.no_email
        return f"Slack user {name or '(unknown name)'} ({user_id}, {email})"


# --- from shared files to received versions -----------------------------------------------------------

@dataclass
class Outcome:
    """What became of one shared file (the receipt bot words its reply from this)."""
    status: str  # collected duplicate invalid already skipped unknown-student unknown-lab unreleased failed
    name: str
    lab: str | None = None
    version: int = 0
    received_at: datetime | None = None
    message: str = ""
    retry: bool = False  # left for the next run (unknown sender, failed download, lab not collected now)


@dataclass
class Collector:
    """Stores shared notebooks as received versions, remembering what is done in slack_state.json."""

    def __init__(self, course: Course, people: People, fetch, lab: str | None = None, complete=None):
        self.course, self.people, self.fetch, self.only_lab = course, people, fetch, lab
        self.complete = complete or (lambda file: file)  # a stub (Slack Connect) to a full file object
        self.labs = released_labs(course)
        self.assignments = {lab: released_notebooks(course, lab) for lab in self.labs}
        if lab is not None:
            course.require_release(lab)
        self.state, self.report = load_state(course), CollectReport()

    def share(self, where: str, ts: str, user_id: str, file: dict) -> Outcome:
        """One file of one message: `where` names the conversation for messages, ts is the message's. Never raises
        (but KeyboardInterrupt): a file that breaks something gets its one line and is retried on the next run."""
        try:
            return self._share(where, ts, user_id, file)
        except Exception as exc:  # whatever a student's file (or the disk, or Slack) does, the others are collected
            name = printable(str(file.get("name") or file.get("id") or "a file"))
            return self._problem("failed", name, f"{name} ({where}, {ts}): could not be collected "
                                 f"({exc.__class__.__name__}: {printable(str(exc))[:200]}); re-run to try again")

    def _share(self, where: str, ts: str, user_id: str, file: dict) -> Outcome:
        key = f"{file.get('id')}@{ts}"
        if key in self.state["files"]:
            return Outcome("already", file.get("name", ""))
        received_at = ts_to_datetime(ts)
        when = f"{received_at:%Y-%m-%d %H:%M} UTC"
        if file.get("mode") in ("tombstone", "hidden_by_limit") or file.get("is_deleted"):
            name = file.get("name") or file.get("id", "file")
            return self._problem("failed", name, f"{name} ({where}, {when}, {self.people.describe(user_id)}): deleted "
                                 "or hidden in Slack before it was collected; ask the student to send it again", key)
        try:
            file = self.complete(file)
        except SlackProblem as exc:
            return self._problem("failed", file.get("id", "file"), str(exc))
        name = printable(str(file.get("name") or file.get("title") or file.get("id", "file")))
        if not name.lower().endswith(".ipynb"):
            self.report.skipped.append(f"{name} ({where}, {when})")
            return Outcome("skipped", name)
        student = self.people.student(user_id)
        if student is None:
            return self._problem("unknown-student", name, f"{name} ({where}, {when}): sent by {self.people.describe(user_id)}, "
                                 f"who is not in {self.course.roster_path.name}; add their e-mail there (or a "
                                 "slack_id column) and re-run")
        try:
            data = self.fetch(file)
        except SlackProblem as exc:
            return self._problem("failed", name, f"{student}: {exc}")
        lab = lab_from_content(data, self.assignments, name) or lab_from_name(name, self.labs)
        if lab is None:
            try:
                notebook_json(data, name)
                why = f"no course metadata, and the name matches none of {', '.join(self.labs)}"
            except NotebookProblem as problem:  # say what is wrong with it, not only that its lab is unknown
                why = str(problem).removeprefix(f"{name}: ")
            return self._problem("unknown-lab", name, f"{student}: {name} ({where}, {when}): cannot tell which lab it "
                                 f"is for: {why}", key)
        if self.only_lab is not None and lab != self.only_lab:
            return Outcome("skipped", name, lab, retry=True)  # left for the run that collects that lab
        if lab not in self.labs:
            outcome = self._problem("unreleased", name, f"{student}: {name} ({where}, {when}) is a notebook of lab {lab}, "
                                    f"which is not released; run `course release {lab}` and re-run")
            outcome.lab = lab
            return outcome
        stored, is_new = archive_version(self.course, student, lab, data, name, received_at)
        versions = sorted(self.course.received_dir(student, lab).iterdir())
        outcome = Outcome("collected" if is_new else "duplicate", name, lab, versions.index(stored) + 1, received_at)
        try:
            read_matched(stored, lab, self.assignments[lab])
        except NotebookProblem as exc:
            outcome.status, outcome.message = "invalid", str(exc).replace(stored.name, name)
            if is_new:
                self.report.problems.append(f"{student}: {outcome.message} (kept in {stored.relative_to(self.course.root)})")
        if outcome.status == "duplicate":
            self.report.duplicates.append((student, name))
        elif outcome.status == "collected":
            self.report.collected.append((student, name, outcome.version))
        if f"{student}/{lab}" not in self.state["to_promote"]:
            self.state["to_promote"].append(f"{student}/{lab}")
        self._done(key, {"student": student, "lab": lab, "version": stored.name})
        return outcome

    def _problem(self, status, name, message, key=None) -> Outcome:
        """Report a problem; with a key, the file is settled (reported once), else it is retried next run."""
        self.report.problems.append(message)
        if key is not None:
            self._done(key, {"problem": message})
        return Outcome(status, name, message=message, retry=key is None)

    def _done(self, key, record) -> None:
        self.state["files"][key] = record
        save_state(self.course, self.state)

    def finish(self) -> CollectReport:
        """Choose the version to grade (the window rules) wherever something was stored, then forget it."""
        for pair in sorted(self.state["to_promote"]):
            promote_latest(self.course, *pair.split("/"))
        self.state["to_promote"] = []
        save_state(self.course, self.state)
        return self.report


def files_of(message: dict) -> list[dict]:
    """Today's messages list their files in `files`; older ones (and old exports) have a single `file`. Only
    entries that are file objects with an id (a damaged export may hold anything there)."""
    files = message.get("files") or ([message["file"]] if message.get("file") else [])
    return [f for f in (files if isinstance(files, list) else [files])
            if isinstance(f, dict) and isinstance(f.get("id"), str)]


def is_from_bot(message: dict, bot_user: str | None = None) -> bool:
    return bool(message.get("bot_id")) or message.get("subtype") == "bot_message" or (
        bot_user is not None and message.get("user") == bot_user)
