"""`course collect slack-export`: the same collection from a workspace export zip (day files, users.json)."""
import json
import re
import zipfile
from pathlib import Path

from ..collect import CollectReport
from ..course import Course, CourseError, read_roster
from .client import MAX_WAIT, retry_handlers
from .collector import Collector, People, files_of, is_from_bot, ts_to_datetime
from .download import SlackProblem, download

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
