"""Collecting notebooks from Slack: the Web API (course channels, threads, DMs to the bot) and workspace exports.

Every notebook a student shares becomes one received version (collect.archive_version) stamped with the
`ts` of the message that shared it; the version to grade is then chosen by the window rules
(collect.promote_latest). A file belongs to
  - a student: the message's sender, matched to roster.csv by the e-mail of their Slack profile
    (users.info, scope users:read.email) or by a `slack_id` roster column;
  - a lab: the notebook's metadata (metadata.course.lab) first, its file name second.

Re-running collects only what is new. course/slack_state.json remembers the files already settled
("FILE_ID@TS": stored, or reported once as not gradable) and, per conversation, the last reply seen in each
thread. A file from an unknown sender, or one whose download failed, is reported again on every run until it
is collected. The history itself is read again on each run (a few pages for a course), because a new reply in
an old thread shows only as its parent's `latest_reply`. The state is written after each file, so an
interrupted run can simply be run again.

The bot token comes from SLACK_BOT_TOKEN or a .env file in the current folder. It is sent only to Slack's
hosts (and to COURSE_SLACK_API_URL's host, which tests point at a local server), never printed, and never
written into the course directory.
"""
import json
import os
import random
import re
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator, RetryState
from slack_sdk.http_retry.builtin_handlers import (ConnectionErrorRetryHandler, RateLimitErrorRetryHandler,
                                                   ServerErrorRetryHandler)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse

from course_lib.files import write_atomic

from .collect import CollectReport, archive_version, promote_latest
from .course import Course, CourseError, read_roster
from .notebooks import NotebookProblem, read_notebook

API_URL_VARIABLE = "COURSE_SLACK_API_URL"
TOKEN_VARIABLE = "SLACK_BOT_TOKEN"
APP_TOKEN_VARIABLE = "SLACK_APP_TOKEN"
DEFAULT_API_URL = "https://slack.com/api/"
MAX_FILE_BYTES = 100 * 1024 * 1024   # nbgrader's own cap (max_file_size, 100000 KB)
MAX_WAIT = 120.0                     # seconds: the longest pause for a rate limit or a server error
TOKEN_HOSTS = ("slack.com",)         # and their sub-domains (files.slack.com): they get the token
CDN_HOSTS = ("slack-edge.com", "slack-files.com")  # Slack's file CDNs: pre-signed links, no token


class SlackProblem(Exception):
    """A file that could not be fetched from Slack; the message says why and what to do."""


# --- the token and the client -------------------------------------------------------------------------

def load_token(variable: str = TOKEN_VARIABLE, env_file: Path = Path(".env")) -> str:
    """The token from the environment, else from KEY=VALUE lines of a .env file."""
    token = os.environ.get(variable, "").strip()
    if not token and Path(env_file).is_file():
        for line in Path(env_file).read_text().splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and key.strip() == variable:
                token = value.strip().strip("'\"")
    if not token:
        raise CourseError(f"no Slack token: set {variable} in the environment or in a .env file in the current "
                          "folder (not inside the course directory)")
    return token


def api_url() -> str:
    return os.environ.get(API_URL_VARIABLE) or DEFAULT_API_URL


class CappedBackoff(RetryIntervalCalculator):
    """Exponential backoff with jitter, never longer than max_wait seconds."""

    def __init__(self, max_wait: float):
        self.max_wait = max_wait

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return min(0.5 * 2 ** current_attempt + random.random(), self.max_wait)


class RateLimitRetry(RateLimitErrorRetryHandler):
    """HTTP 429: wait what Retry-After says (at most max_wait seconds), then try again."""

    def __init__(self, max_retry_count: int, max_wait: float):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None):
        if response is None:
            raise error
        after = next((v for k, v in response.headers.items() if k.lower() == "retry-after"), ["1"])
        try:
            seconds = float(after[0] if isinstance(after, list) else after)
        except ValueError:
            seconds = 1.0
        state.next_attempt_requested = True
        time.sleep(min(seconds + random.random() * 0.1, self.max_wait))
        state.increment_current_attempt()


class ServerErrorRetry(ServerErrorRetryHandler):
    """HTTP 500, 502, 503 and 504: Slack's own trouble; try again after a short backoff."""

    def _can_retry(self, *, state, request, response=None, error=None):
        return response is not None and response.status_code in (500, 502, 503, 504)


def retry_handlers(max_wait: float = MAX_WAIT, retries: int = 5) -> list[RetryHandler]:
    backoff = CappedBackoff(max_wait)
    return [ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=backoff),
            RateLimitRetry(retries, max_wait), ServerErrorRetry(retries, backoff)]


def make_client(token: str, max_wait: float = MAX_WAIT) -> WebClient:
    return WebClient(token=token, base_url=api_url(), retry_handlers=retry_handlers(max_wait))


# --- downloading a file -------------------------------------------------------------------------------

def _host_in(host: str, domains) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def _token_may_go_to(url: str) -> bool:
    parts, api = urlsplit(url), urlsplit(api_url())
    if parts.hostname == api.hostname and parts.port == api.port and parts.scheme == api.scheme:
        return True
    return parts.scheme == "https" and _host_in(parts.hostname or "", TOKEN_HOSTS)


def _allowed(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return _token_may_go_to(url) or (urlsplit(url).scheme == "https" and _host_in(host, CDN_HOSTS))


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # every hop is checked (and its header chosen) by download()


def download(url: str, token: str | None, handlers, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a Slack file. Redirects are followed only to Slack's hosts, the token only to slack.com.

    Messages never contain the URL: export URLs carry a credential (?t=xoxe-...).
    """
    opener = urllib.request.build_opener(_NoRedirects)
    state, hops = RetryState(), 0
    while True:
        if not _allowed(url):
            raise SlackProblem(f"{name}: not fetched: the link points to {urlsplit(url).hostname}, not to Slack "
                               "(the bot token is only ever sent to Slack)")
        headers = {"Authorization": f"Bearer {token}"} if token and _token_may_go_to(url) else {}
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=60) as response:
                kind = response.headers.get("Content-Type", "")
                data = response.read(max_bytes + 1)
            break
        except (OSError, HTTPException) as exc:  # an HTTP status, a lost connection, a timeout, a malformed link
            status = exc.code if isinstance(exc, HTTPError) else None
            if status in (301, 302, 303, 307, 308) and exc.headers.get("Location") and hops < 5:
                url, hops = urljoin(url, exc.headers["Location"]), hops + 1
                continue
            answer = HttpResponse(status_code=status, headers=dict(exc.headers.items())) if status else None
            error, request = (None if status else exc), HttpRequest(method="GET", url="(file)", headers={})
            handler = next((h for h in handlers
                            if h.can_retry(state=state, request=request, response=answer, error=error)), None)
            if handler is None:
                reason = f"HTTP {status}" if status else getattr(exc, "reason", None) or exc.__class__.__name__
                raise SlackProblem(f"{name}: the download failed ({reason}); re-run later") from None
            handler.prepare_for_next_attempt(state=state, request=request, response=answer, error=error)
    if len(data) > max_bytes:
        raise SlackProblem(f"{name}: larger than {max_bytes // 2**20} MB; a notebook should be much smaller "
                           "(clear large outputs and send it again)")
    if kind.startswith("text/html") or data.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        raise SlackProblem(f"{name}: Slack sent a web page (its sign-in page) instead of the file. The bot token "
                           "needs the files:read scope and the bot must see the file (invite it to the channel); "
                           "fix the app, reinstall it and re-run. Nothing was saved.")
    return data


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
    return sorted(p.name for p in base.iterdir() if (p / f"{p.name}.ipynb").exists()) if base.exists() else []


def lab_from_name(name: str, labs) -> str | None:
    """'00_tiny (1).ipynb', 'ada-00-tiny.ipynb' and 'tiny.ipynb' are all for 00_tiny."""
    stem = re.sub(r"[\s\-.]+", "_", Path(name).stem.lower())
    found = [lab for lab in labs if lab.lower() in stem]
    if not found:
        found = [lab for lab in labs if lab.lower().split("_", 1)[-1] in re.split(r"[_()]+", stem)]
    return found[0] if len(found) == 1 else None


def lab_from_content(data: bytes) -> str | None:
    try:
        return json.loads(data.decode("utf-8")).get("metadata", {}).get("course", {}).get("lab")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None


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
        if lab is not None:
            course.require_release(lab)
        self.state, self.report = load_state(course), CollectReport()

    def share(self, where: str, ts: str, user_id: str, file: dict) -> Outcome:
        """One file of one message: `where` names the conversation for messages, ts is the message's."""
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
        name = file.get("name") or file.get("title") or file.get("id", "file")
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
        lab = lab_from_content(data) or lab_from_name(name, self.labs)
        if lab is None:
            return self._problem("unknown-lab", name, f"{student}: {name} ({where}, {when}): cannot tell which lab it "
                                 f"is for (no course metadata, and the name matches none of {', '.join(self.labs)})", key)
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
            read_notebook(stored, expected_lab=lab)
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
    """Today's messages list their files in `files`; older ones (and old exports) have a single `file`."""
    return list(message.get("files") or ([message["file"]] if message.get("file") else []))


def is_from_bot(message: dict, bot_user: str | None = None) -> bool:
    return bool(message.get("bot_id")) or message.get("subtype") == "bot_message" or (
        bot_user is not None and message.get("user") == bot_user)


def api_fetcher(client: WebClient, token: str):
    def fetch(file: dict) -> bytes:
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise SlackProblem(f"{file.get('name', file['id'])}: Slack gives no download link for it (mode {file.get('mode')})")
        return download(url, token, client.retry_handlers, file.get("name", file["id"]))
    return fetch


def api_completer(client: WebClient):
    """Files shared from another workspace (Slack Connect) come as stubs: files.info gives the whole object."""
    def complete(file: dict) -> dict:
        if file.get("mode") != "file_access" and (file.get("url_private_download") or file.get("url_private")):
            return file
        try:
            return client.files_info(file=file["id"])["file"]
        except SlackApiError as exc:
            raise SlackProblem(f"{file['id']}: files.info answered {exc.response.get('error')}; re-run later") from None
    return complete


def collect_slack(course: Course, client: WebClient, token: str, lab: str | None = None, channels=None,
                  oldest: str | None = None, latest: str | None = None, dms: bool = True) -> CollectReport:
    """Collect the notebooks shared in the bot's channels (or only `channels`, by name or id) and DMs."""
    collector = Collector(course, People(read_roster(course.roster_path), client), api_fetcher(client, token), lab,
                          api_completer(client))
    bot_user = client.auth_test().get("user_id")
    types = "public_channel,private_channel" + (",im" if dms else "")
    joined = [c for page in client.users_conversations(types=types, limit=200) for c in page["channels"]]
    if channels:
        wanted = {c.lstrip("#") for c in channels}
        missing = wanted - {c["id"] for c in joined} - {c.get("name") for c in joined}
        if missing:
            raise CourseError(f"the bot is not in {', '.join(sorted(missing))}: invite it there (/invite @bot) and re-run")
        joined = [c for c in joined if c["id"] in wanted or c.get("name") in wanted or c.get("is_im")]
    window = {k: v for k, v in (("oldest", oldest), ("latest", latest)) if v}
    for conversation in joined:
        channel = conversation["id"]
        where = "a direct message" if conversation.get("is_im") else f"#{conversation.get('name', channel)}"
        threads = collector.state["threads"].setdefault(channel, {})
        try:
            pages = client.conversations_history(channel=channel, limit=200, **window)
            for message in sorted((m for page in pages for m in page["messages"]), key=lambda m: ts_to_datetime(m["ts"])):
                if not is_from_bot(message, bot_user):
                    for file in files_of(message):
                        collector.share(where, message["ts"], message.get("user", ""), file)
                last = message.get("latest_reply")
                if message.get("reply_count") and last and threads.get(message["ts"]) != last:
                    if _collect_thread(client, collector, channel, where, message["ts"], bot_user, window,
                                       threads.get(message["ts"])):
                        threads[message["ts"]] = last
                        save_state(course, collector.state)
        except SlackApiError as exc:
            error = exc.response.get("error") or f"HTTP {exc.response.status_code}"
            hint = {"not_in_channel": "invite the bot to it", "missing_scope":
                    f"add the scope {exc.response.get('needed')} to the app and reinstall it"}.get(error, "re-run later")
            collector.report.problems.append(f"{where}: Slack answered {error}; {hint} (what was collected is kept)")
    return collector.finish()


def _collect_thread(client, collector, channel, where, parent_ts, bot_user, window, seen_until) -> bool:
    """The files in a thread's replies after `seen_until`; True when none was left to retry."""
    settled, window = True, dict(window)
    if seen_until:  # every reply up to there was settled by an earlier run
        window["oldest"] = max(seen_until, window.get("oldest", "0"), key=ts_to_datetime)
    for page in client.conversations_replies(channel=channel, ts=parent_ts, limit=200, **window):
        for reply in page["messages"]:
            if reply["ts"] == parent_ts or is_from_bot(reply, bot_user):
                continue  # the parent came with the history
            for file in files_of(reply):
                settled &= not collector.share(f"{where}, thread", reply["ts"], reply.get("user", ""), file).retry
    return settled


# --- from a workspace export ---------------------------------------------------------------------------

DAY_FILE = re.compile(r"^([^/]+)/\d{4}-\d{2}-\d{2}\.json$")


def _read_json(archive: zipfile.ZipFile, name: str):
    return json.loads(archive.read(name)) if name in archive.namelist() else []


def _find_local(file_id: str, names) -> str | None:
    """slackdump's layouts: __uploads/F123/name.ipynb and channel/attachments/F123-name.ipynb."""
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if file_id in parts[:-1] or parts[-1].startswith(f"{file_id}-"):
            return name
    return None


def collect_export(course: Course, export: Path, files_dir: Path | None = None, token: str | None = None,
                   lab: str | None = None, offline: bool = False, max_wait: float = MAX_WAIT) -> CollectReport:
    """Collect from a workspace export zip: day files CHANNEL/YYYY-MM-DD.json, users.json for e-mails.

    A file is taken from the zip itself or from files_dir when they hold it, else downloaded (not offline).
    """
    export = Path(export)
    if not zipfile.is_zipfile(export):
        raise CourseError(f"{export}: not a zip file; pass the .zip that Slack's export produced")
    local = sorted(str(p.relative_to(files_dir)) for p in Path(files_dir).rglob("*") if p.is_file()) if files_dir else []
    handlers = retry_handlers(max_wait)
    with zipfile.ZipFile(export) as archive:
        names = archive.namelist()
        users = {u["id"]: u for u in _read_json(archive, "users.json") or _read_json(archive, "org_users.json")}
        channels = {c.get("name", c["id"]) for listing in ("channels.json", "groups.json", "mpims.json")
                    for c in _read_json(archive, listing)}  # DM folders are named by the DM's id

        def fetch(file: dict) -> bytes:
            name, file_id = file.get("name", file["id"]), file["id"]
            if (inside := _find_local(file_id, names)) is not None:
                return archive.read(inside)
            if (outside := _find_local(file_id, local)) is not None:
                return (Path(files_dir) / outside).read_bytes()
            url = file.get("url_private_download") or file.get("url_private")
            if offline or not url:
                raise SlackProblem(f"{name} ({file_id}): not in the export" + (f" nor in {files_dir}" if files_dir else "")
                                   + ("; re-run online to download it" if offline else ""))
            return download(url, token, handlers, name)

        people = People(read_roster(course.roster_path), users=users, no_email="no e-mail in the export's users.json")
        collector = Collector(course, people, fetch, lab)
        messages = []
        for name in names:
            match = DAY_FILE.match(name)
            if match:
                folder = match.group(1)
                where = f"#{folder}" if folder in channels else "a direct message"
                messages += [(m["ts"], where, m) for m in json.loads(archive.read(name)) if isinstance(m, dict)]
        for ts, where, message in sorted(messages, key=lambda item: ts_to_datetime(item[0])):
            if not is_from_bot(message):
                for file in files_of(message):
                    collector.share(where, ts, message.get("user", ""), file)
        return collector.finish()


# --- for the command line -----------------------------------------------------------------------------

def parse_when(text: str | None) -> str | None:
    """'2026-10-05' or '2026-10-05T18:00' (local time unless an offset is given) as a Slack ts."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CourseError(f"{text!r} is not a date like 2026-10-05 or 2026-10-05T18:00") from None
    return datetime_to_ts(moment if moment.tzinfo else moment.astimezone())
