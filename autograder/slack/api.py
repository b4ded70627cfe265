"""`course collect slack`: walking the bot's channels, thread replies and DMs through the Web API.

The history itself is read again on each run (a few pages for a course), because a new reply in an old thread
shows only as its parent's `latest_reply`; threads whose last reply was seen before are not read again.
"""
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from ..collect import CollectReport
from ..course import Course, CourseError, read_roster
from .collector import Collector, People, datetime_to_ts, files_of, is_from_bot, save_state, ts_to_datetime
from .download import SlackProblem, download


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


def parse_when(text: str | None) -> str | None:
    """'2026-10-05' or '2026-10-05T18:00' (local time unless an offset is given) as a Slack ts."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CourseError(f"{text!r} is not a date like 2026-10-05 or 2026-10-05T18:00") from None
    return datetime_to_ts(moment if moment.tzinfo else moment.astimezone())
