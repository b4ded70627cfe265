"""`course collect slack-export`: the same collection from a workspace export zip (day files, users.json)."""
import json
import re
import zipfile
import zlib
from pathlib import Path

from ..collect import CollectReport
from ..course import Course, CourseError, read_roster
from ..notebooks import printable
from .client import MAX_WAIT, retry_handlers
from .collector import Collector, People, files_of, is_from_bot, ts_to_datetime
from .download import MAX_FILE_BYTES, SlackProblem, download

DAY_FILE = re.compile(r"^([^/]+)/\d{4}-\d{2}-\d{2}\.json$")
SLACK_TS = re.compile(r"^\d{1,12}(\.\d{1,6})?$")


def _member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member of the export, at most MAX_FILE_BYTES once inflated (as a download): its declared size is checked
    before anything is inflated, and the inflating stops there whatever the header says. SlackProblem otherwise."""
    info = archive.getinfo(name)
    if info.file_size > MAX_FILE_BYTES:
        raise SlackProblem(f"{printable(name)} in the export: {info.file_size / 2**20:.0f} MB once unpacked, more than "
                           f"{MAX_FILE_BYTES // 2**20} MB; not read")
    try:
        with archive.open(info) as member:
            data = member.read(MAX_FILE_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:  # damaged, encrypted
        raise SlackProblem(f"{printable(name)} in the export: cannot be unpacked ({exc.__class__.__name__}: "
                           f"{printable(str(exc))[:80]}); export the workspace again") from None
    if len(data) > MAX_FILE_BYTES:
        raise SlackProblem(f"{printable(name)} in the export: more than {MAX_FILE_BYTES // 2**20} MB once unpacked; "
                           "not read")
    return data


def _read_json(archive: zipfile.ZipFile, name: str, problems: list, export: Path) -> list:
    """A JSON list of the export (users, channels, one day's messages); [] and a problem line when it is missing
    where it should not be, too big, damaged or not a list."""
    if name not in archive.namelist():
        return []
    try:
        data = json.loads(_member(archive, name).decode("utf-8"))
    except SlackProblem as exc:
        problems.append(f"{export.name}: {exc}")
        return []
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        problems.append(f"{export.name}: {printable(name)} is damaged ({exc.__class__.__name__}: "
                        f"{printable(str(exc))[:80]}; a truncated or edited export?): it was skipped. Export the "
                        "workspace again, or collect from Slack itself (course collect slack)")
        return []
    if not isinstance(data, list):
        problems.append(f"{export.name}: {printable(name)} is not a list as Slack writes it: it was skipped")
        return []
    return [item for item in data if isinstance(item, dict)]


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
    problems = []  # the export's own (a damaged day file, ...): reported with the files'
    with zipfile.ZipFile(export) as archive:
        names = archive.namelist()
        users = {u["id"]: {**u, "profile": u["profile"] if isinstance(u.get("profile"), dict) else {}}
                 for u in _read_json(archive, "users.json", problems, export)
                 or _read_json(archive, "org_users.json", problems, export) if isinstance(u.get("id"), str)}
        channels = {str(c.get("name", c.get("id"))) for listing in ("channels.json", "groups.json", "mpims.json")
                    for c in _read_json(archive, listing, problems, export)}  # DM folders are named by the DM's id

        def fetch(file: dict) -> bytes:
            name, file_id = str(file.get("name", file["id"])), file["id"]
            if (inside := _find_local(file_id, names)) is not None:
                return _member(archive, inside)
            if (outside := _find_local(file_id, local)) is not None:
                path = Path(files_dir) / outside
                if path.stat().st_size > MAX_FILE_BYTES:
                    raise SlackProblem(f"{printable(name)} ({file_id}): {path} is larger than "
                                       f"{MAX_FILE_BYTES // 2**20} MB; not read")
                return path.read_bytes()
            url = file.get("url_private_download") or file.get("url_private")
            if offline or not url:
                raise SlackProblem(f"{name} ({file_id}): not in the export" + (f" nor in {files_dir}" if files_dir else "")
                                   + ("; re-run online to download it" if offline else ""))
            return download(url, token, handlers, name)

        people = People(read_roster(course.roster_path), users=users, no_email="no e-mail in the export's users.json")
        collector = Collector(course, people, fetch, lab)
        collector.report.problems += problems
        messages = []
        for name in names:
            match = DAY_FILE.match(name)
            if match:
                folder = match.group(1)
                where = f"#{folder}" if folder in channels else "a direct message"
                for message in _read_json(archive, name, collector.report.problems, export):
                    if not files_of(message) or is_from_bot(message):
                        continue
                    if not SLACK_TS.match(str(message.get("ts"))):
                        collector.report.problems.append(f"{export.name}: {printable(name)}: a message with files but "
                                                         f"no valid time stamp (ts {printable(str(message.get('ts')))[:30]}); skipped")
                        continue
                    messages.append((message["ts"], where, message))
        for ts, where, message in sorted(messages, key=lambda item: ts_to_datetime(item[0])):
            user = message.get("user")
            for file in files_of(message):
                collector.share(where, ts, user if isinstance(user, str) else "", file)
        return collector.finish()
