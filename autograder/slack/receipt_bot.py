"""`course slack-bot`: a receipt, in the message's thread, for each notebook a student sends.

The receipt bot listens through Socket Mode (no public URL needed) to `message.im`, `message.channels` and
`file_shared` events. ReceiptBot.handle(event) is the whole logic, a plain function of an event payload and a
Web API client: it stores the file as a received version (the same records `course collect slack` writes),
checks its format and lab without executing it, and answers in the message's thread. One upload fires two
events (the message and file_shared) and Slack may redeliver either: each file is handled once.

Slack app set-up: bot scopes files:read, channels:history, groups:history, im:history, users:read,
users:read.email, chat:write, im:write; events message.im, message.channels, file_shared; Socket Mode on
with an app-level token (connections:write) in SLACK_APP_TOKEN.
"""
import threading
from dataclasses import dataclass, field

from slack_sdk import WebClient

from ..course import Course, read_roster
from ..notebooks import printable
from .api import api_completer, api_fetcher
from .collector import Collector, Outcome, People, files_of, is_from_bot


def receipt_text(outcome: Outcome) -> str | None:
    """The reply to a student; None when there is nothing to say (a screenshot, a file already handled)."""
    when = f"{outcome.received_at.astimezone():%H:%M}" if outcome.received_at else ""
    if outcome.status == "collected":
        return f"received {outcome.lab}, version {outcome.version}, {when}; the notebook is valid"
    if outcome.status == "duplicate":
        return f"received {outcome.lab} again: the same notebook as your version {outcome.version}, nothing changes"
    if outcome.status == "invalid":
        return (f"received {outcome.lab}, version {outcome.version}, {when}, but it cannot be graded: "
                f"{outcome.message}")
    if outcome.status == "unknown-student":
        return ("I could not find you on the course roster (it matches students by the e-mail of their Slack "
                "profile). Ask the instructor to add you; your file stays here and will be collected then.")
    if outcome.status == "unreleased":
        return f"{outcome.name} is the notebook of lab {outcome.lab}, which is not open for submissions yet."
    if outcome.status == "unknown-lab":
        return f"I could not tell which lab {outcome.name} is for. Send the notebook you started from the lab's release."
    if outcome.status == "failed":
        return f"I could not fetch {outcome.name}; the instructor will see why. You do not need to send it again."
    return None


@dataclass
class ReceiptBot:
    course: Course
    client: WebClient
    token: str
    bot_user: str | None = None
    seen: set = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        if self.bot_user is None:
            self.bot_user = self.client.auth_test().get("user_id")

    def shares(self, event: dict) -> list:
        """[(channel, message ts, thread ts, user, file)] of the files an event announces."""
        if event.get("type") == "message":
            if is_from_bot(event, self.bot_user) or event.get("subtype") not in (None, "file_share"):
                return []
            return [(event["channel"], event["ts"], event.get("thread_ts"), event.get("user", ""), f)
                    for f in files_of(event)]
        if event.get("type") == "file_shared" and event.get("user_id") != self.bot_user:
            file = self.client.files_info(file=event["file_id"])["file"]
            channel = event.get("channel_id")
            places = {**file.get("shares", {}).get("public", {}), **file.get("shares", {}).get("private", {})}
            share = (places.get(channel) or [{}])[0]
            return [(channel, share.get("ts", event.get("event_ts")), share.get("thread_ts"), event.get("user_id", ""), file)]
        return []

    def handle(self, event: dict) -> list[str]:
        """Store and check each new file of an event and reply in its thread; returns the replies sent."""
        replies = []
        with self.lock:  # one event at a time: Socket Mode hands events to a pool of threads
            for channel, ts, thread_ts, user, file in self.shares(event):
                if file.get("id") in self.seen:
                    continue
                self.seen.add(file.get("id"))
                collector = Collector(self.course, People(read_roster(self.course.roster_path), self.client),
                                      api_fetcher(self.client, self.token), complete=api_completer(self.client))
                outcome = collector.share("Slack", ts, user, file)
                report = collector.finish()
                for problem in report.problems:
                    print(printable(f"PROBLEM: {problem}"), flush=True)
                text = receipt_text(outcome)
                if text is not None:
                    self.client.chat_postMessage(channel=channel, thread_ts=thread_ts or ts, text=text)
                    print(printable(f"replied to {user} about {outcome.name}: {text}"), flush=True)
                    replies.append(text)
        return replies


def socket_listener(bot: ReceiptBot):
    """A Socket Mode listener: acknowledge each envelope first (else Slack sends it again), then handle it."""
    from slack_sdk.socket_mode.response import SocketModeResponse

    def listener(sock, request):
        if request.type != "events_api":
            return
        sock.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        try:
            bot.handle(request.payload.get("event", {}))
        except Exception as exc:  # one bad event must not stop the bot; the batch collection catches up
            print(f"PROBLEM: event not handled: {exc.__class__.__name__}: {exc}", flush=True)
    return listener


def run_bot(course: Course, client: WebClient, token: str, app_token: str) -> None:
    """Listen through Socket Mode until interrupted."""
    from slack_sdk.socket_mode import SocketModeClient

    socket = SocketModeClient(app_token=app_token, web_client=client)
    socket.socket_mode_request_listeners.append(socket_listener(ReceiptBot(course, client, token)))
    socket.connect()
    print("listening for submissions (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    finally:
        socket.close()
