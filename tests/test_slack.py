"""Collecting from Slack against a local fake of the Web API (tests/fake_slack.py), with slack_sdk pointed at it."""
import json
import time
import zipfile
from datetime import datetime, timezone
from urllib.parse import quote

import nbformat
import pytest

from autograder.cli import main
from autograder.slack.api import collect_slack
from autograder.slack.client import make_client
from autograder.slack.collector import state_path, ts_to_datetime
from autograder.slack.export_archive import collect_export
from autograder.slack.receipt_bot import ReceiptBot, socket_listener
from autograder.slack.send_feedback import send_feedback
from autograder.planted_bugs import reference_submission
from course_cli import course_command, problem_lines, scores_printed
from fake_slack import BOT_USER, EXPORT_TOKEN, SIGN_IN_PAGE, TOKEN, FakeSlack
from malformed_files import BOMB, add_bomb, malformed

LAB = "00_tiny"
T1, T2, T3, T4, T5 = "1790000001.000100", "1790000002.000200", "1790000003.000300", "1790000004.000400", "1790000005.000500"


@pytest.fixture
def slack(monkeypatch):
    fake = FakeSlack().start()
    monkeypatch.setenv("COURSE_SLACK_API_URL", fake.api_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    fake.add_user("UADA", "Ada Lovelace", "ada@example.edu")
    fake.add_user("UBOB", "Bob O'Neil", "Bob@Example.edu")  # e-mails match whatever their case
    fake.add_user("UCY", "Cy Young", "cy@example.edu")
    fake.add_user("UMAL", "Mallory Smith", "mallory@elsewhere.example")
    fake.add_channel("CLAB", "lab-submissions")
    fake.add_channel("DADA")  # a direct message with the bot
    yield fake
    fake.stop()


@pytest.fixture
def client(slack):
    return make_client(TOKEN, max_wait=0.01)


@pytest.fixture
def notebook(course):
    """notebook(answer=...) -> the bytes of a valid 00_tiny submission (distinct answers, distinct versions)."""
    release = nbformat.read(course.release(LAB), as_version=4)
    source = nbformat.read(course.source(LAB), as_version=4)

    def make(answer="", lab=LAB):
        nb = reference_submission(release, source)
        nb.metadata["course"]["lab"] = lab
        nb.cells.append(nbformat.v4.new_markdown_cell(answer))
        return nbformat.writes(nb).encode()
    return make


def collect(course, client, **kwargs):
    return collect_slack(course, client, TOKEN, **kwargs)


def submitted(course, student):
    path = course.submitted_dir(student, LAB) / f"{LAB}.ipynb"
    return path.read_bytes() if path.exists() else None


def versions(course, student):
    folder = course.received_dir(student, LAB)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_channel_threads_and_dms(course, slack, client, notebook):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.add_file("FBOB", "my work (1).ipynb", notebook("bob"), "UBOB")  # renamed: the metadata says which lab
    slack.add_file("FPNG", "screenshot.png", b"\x89PNG", "UBOB")
    slack.add_file("FCY", "tiny.ipynb", notebook("cy"), "UCY")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    slack.post("CLAB", "UBOB", T2, text="here is mine")
    slack.post("CLAB", "UBOB", T3, ["FBOB", "FPNG"], thread_ts=T2)  # a thread reply: not in the history
    slack.post("CLAB", BOT_USER, T4, text="received", thread_ts=T1, bot_id="B1")
    slack.post("DADA", "UCY", T5, ["FCY"])

    report = collect(course, client)

    assert report.problems == []
    assert sorted(s for s, _, _ in report.collected) == ["ada", "bob", "cy"]
    assert report.skipped == [f"screenshot.png (#lab-submissions, thread, {ts_to_datetime(T3):%Y-%m-%d %H:%M} UTC)"]
    assert b'"ada"' in submitted(course, "ada") and b'"bob"' in submitted(course, "bob") and b'"cy"' in submitted(course, "cy")
    # every version keeps the time of its message; the graded copy is saved under the released name
    assert versions(course, "bob")[0].startswith(ts_to_datetime(T3).strftime("%Y%m%dT%H%M%S.%fZ"))
    assert versions(course, "bob")[0].endswith("__my work (1).ipynb")
    stamp = (course.submitted_dir("bob", LAB) / "timestamp.txt").read_text()
    assert datetime.fromisoformat(stamp) == ts_to_datetime(T3)
    assert ts_to_datetime(T3) == datetime(2026, 9, 21, 14, 13, 23, 300, tzinfo=timezone.utc)
    assert sorted(p["ts"] for p in slack.called("conversations.replies")) == [T1, T2]
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in slack.downloads)


def test_cursor_paging_and_time_window(course, slack, client, notebook):
    slack.max_page = 2
    for i, ts in enumerate([T1, T2, T3, T4, T5]):
        slack.add_file(f"F{i}", "00_tiny.ipynb", notebook(f"v{i}"), "UADA")
        slack.post("CLAB", "UADA", ts, [f"F{i}"])

    report = collect(course, client, oldest=T2, latest=T5)  # both ends exclusive, as in Slack
    assert [v for _, _, v in report.collected] == [1, 2]
    assert [v.split("__")[0] for v in versions(course, "ada")] == [ts_to_datetime(t).strftime("%Y%m%dT%H%M%S.%fZ") for t in (T3, T4)]

    report = collect(course, client)
    history = [p for p in slack.called("conversations.history") if p["channel"] == "CLAB"]
    assert len(report.collected) == 3 and len(versions(course, "ada")) == 5
    assert [p.get("cursor") for p in history[-3:]] == [None, "2", "4"]  # three pages of two
    assert b'"v4"' in submitted(course, "ada")  # the newest counts (no course.toml windows here)


def test_rerun_collects_only_what_is_new(course, slack, client, notebook):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada 1"), "UADA")
    bob = notebook("bob 1")
    slack.add_file("FBOB", "00_tiny.ipynb", bob, "UBOB")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    slack.post("CLAB", "UBOB", T2, ["FBOB"])
    slack.post("CLAB", "UCY", T3, text="question: is the deadline friday?")
    slack.post("CLAB", "UADA", "1790000003.900000", text="yes", thread_ts=T3)
    assert len(collect(course, client).collected) == 2

    downloads, replies = len(slack.downloads), len(slack.called("conversations.replies"))
    again = collect(course, client)
    assert again.collected == [] and again.duplicates == [] and again.problems == []
    assert len(slack.downloads) == downloads  # nothing fetched twice
    assert len(slack.called("conversations.replies")) == replies  # unchanged threads are not re-read

    # a week later: an improved version in ada's old thread, and the same notebook sent again by bob
    slack.add_file("FADA2", "00_tiny.ipynb", notebook("ada 2"), "UADA")
    slack.add_file("FBOB2", "00_tiny (1).ipynb", bob, "UBOB")
    slack.post("CLAB", "UADA", T4, ["FADA2"], thread_ts=T1)
    slack.post("DADA", "UBOB", T5, ["FBOB2"])
    slack.add_file("FCY", "00_tiny.ipynb", notebook("cy"), "UCY")
    slack.post("CLAB", "UCY", "1790000006.000600", ["FCY"], thread_ts=T3)  # in a thread read before
    third = collect(course, client)
    assert third.collected == [("ada", "00_tiny.ipynb", 2), ("cy", "00_tiny.ipynb", 1)]
    assert third.duplicates == [("bob", "00_tiny (1).ipynb")]
    thread_reads = [(p["ts"], p.get("oldest")) for p in slack.called("conversations.replies")[replies:]]
    assert thread_reads == [(T1, None), (T3, "1790000003.900000")]  # a known thread: only its new replies
    assert b"ada 2" in submitted(course, "ada") and len(versions(course, "bob")) == 1


def test_rate_limits_and_server_errors_are_retried(course, slack, client, notebook):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    slack.fail("conversations.history", 429, {"Retry-After": "30"})  # capped by max_wait in tests
    slack.fail("conversations.history", 503)
    slack.fail("users.info", 500)
    slack.fail("/files-pri/", 429, {"Retry-After": "30"})
    slack.fail("/files-pri/", 502, body=b"<html>bad gateway</html>")
    start = time.monotonic()
    report = collect(course, client)
    assert report.problems == [] and [s for s, _, _ in report.collected] == ["ada"]
    assert time.monotonic() - start < 10 and slack.faults == []
    assert len(slack.called("conversations.history")) >= 3


def test_a_server_error_that_lasts_is_reported_and_a_rerun_recovers(course, slack, client, notebook):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.post("DADA", "UADA", T1, ["FADA"])
    slack.fail("conversations.history", 500, times=20)
    report = collect(course, client)
    assert any("internal_error" in p and "re-run later" in p for p in report.problems)
    slack.faults.clear()
    slack.fail("/files-pri/", 500, times=20)
    assert "00_tiny.ipynb: the download failed (HTTP 500); re-run later" in collect(course, client).problems[0]
    slack.faults.clear()
    assert [s for s, _, _ in collect(course, client).collected] == ["ada"]


def test_an_interrupted_run_can_be_run_again(course, slack, client, notebook, monkeypatch):
    import autograder.slack.api as api  # api_fetcher calls api.download

    for i, (user, ts) in enumerate([("UADA", T1), ("UBOB", T2), ("UCY", T3)]):
        slack.add_file(f"F{i}", "00_tiny.ipynb", notebook(user), user)
        slack.post("CLAB", user, ts, [f"F{i}"])
    real, calls = api.download, []

    def download_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the instructor's Ctrl-C, after two files were stored
        return real(*args, **kwargs)
    monkeypatch.setattr(api, "download", download_then_stop)
    with pytest.raises(KeyboardInterrupt):
        collect(course, client)
    assert submitted(course, "ada") is None and len(versions(course, "bob")) == 1  # stored, not yet promoted
    monkeypatch.setattr(api, "download", real)
    report = collect(course, client)
    assert report.collected == [("cy", "00_tiny.ipynb", 1)] and report.duplicates == []
    assert all(submitted(course, s) for s in ("ada", "bob", "cy"))


def test_html_sign_in_page_instead_of_the_file(course, slack, client, notebook):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    slack.fail("/files-pri/", 200, body=SIGN_IN_PAGE)  # what Slack serves without files:read
    report = collect(course, client)
    assert len(report.problems) == 1
    assert "sign-in page" in report.problems[0] and "files:read" in report.problems[0]
    assert versions(course, "ada") == []  # nothing saved ...
    assert [s for s, _, _ in collect(course, client).collected] == ["ada"]  # ... and not lost: the re-run gets it


def test_redirects_keep_the_token_on_slack_and_never_carry_it_elsewhere(course, slack, client, notebook):
    port = slack.server.server_address[1]
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.add_file("FBOB", "00_tiny.ipynb", notebook("bob"), "UBOB")
    slack.add_file("FCY", "00_tiny.ipynb", notebook("cy"), "UCY")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    slack.post("CLAB", "UBOB", T2, ["FBOB"])
    slack.post("CLAB", "UCY", T3, ["FCY"])
    slack.fail("/files-pri/T1-FADA/", 302, {"Location": "/files-pri/T1-FADA/download/moved.ipynb"})  # same host
    slack.fail("/files-pri/T1-FBOB/", 302, {"Location": f"http://localhost:{port}/files-pri/T1-FBOB/x.ipynb"})
    slack.fail("/files-pri/T1-FCY/", 302, {"Location": "https://files.example.org/steal"})
    report = collect(course, client)
    assert [s for s, _, _ in report.collected] == ["ada"]
    assert [path for _, path, _ in slack.downloads if "FADA" in path][-1].endswith("/moved.ipynb")
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in slack.downloads)
    assert not any((host or "").startswith("localhost") for host, _, _ in slack.downloads)
    assert any("points to localhost, not to Slack" in p for p in report.problems)
    assert any("points to files.example.org, not to Slack" in p for p in report.problems)


def test_unknown_senders_are_reported_by_their_slack_name(course, slack, client, notebook):
    slack.add_file("FMAL", "00_tiny.ipynb", notebook("m"), "UMAL")
    slack.add_file("FNOE", "00_tiny.ipynb", notebook("n"), "UNOE")
    slack.add_user("UNOE", "Noe Email")  # the app lacks users:read.email, or the profile hides it
    slack.post("CLAB", "UMAL", T1, ["FMAL"])
    slack.post("CLAB", "UNOE", T2, ["FNOE"])
    for _ in range(2):  # reported again on every run until the roster says who they are
        problems = "\n".join(collect(course, client).problems)
        assert "Mallory Smith (UMAL, mallory@elsewhere.example)" in problems and "roster.csv" in problems
        assert "Noe Email (UNOE, no e-mail visible: the app needs the users:read.email scope)" in problems
    course.roster_path.write_text(course.roster_path.read_text() + "mal,Mallory,Smith,mallory@elsewhere.example\n")
    assert [s for s, _, _ in collect(course, client).collected] == ["mal"]


def test_lab_by_metadata_first_then_name(course, slack, client, notebook):
    no_metadata = json.loads(notebook("cy"))
    del no_metadata["metadata"]["course"]
    slack.add_file("FBOB", "00_tiny.ipynb", notebook("bob", lab="00_other"), "UBOB")  # named for one lab, made for another
    slack.add_file("FCY", "00_tiny (2).ipynb", json.dumps(no_metadata).encode(), "UCY")
    slack.add_file("FCY2", "00_tiny (3).ipynb", nbformat.writes(nbformat.v4.new_notebook()).encode(), "UCY")
    slack.add_file("FADA", "notes.ipynb", b"not json at all", "UADA")
    slack.post("CLAB", "UBOB", T1, ["FBOB"])
    slack.post("CLAB", "UCY", T2, ["FCY"])
    slack.post("CLAB", "UCY", T4, ["FCY2"])
    slack.post("CLAB", "UADA", T3, ["FADA"])
    report = collect(course, client)
    problems = "\n".join(report.problems)
    assert "bob: 00_tiny.ipynb" in problems and "lab 00_other, which is not released" in problems
    # without course metadata, a notebook is the lab's by its grade ids (as nbgrader makes them); with none, refused
    assert ("cy", "00_tiny (2).ipynb", 1) in report.collected
    assert "cy: 00_tiny (3).ipynb: not a notebook of lab 00_tiny (it carries no course metadata" in problems
    assert "ada: notes.ipynb" in problems and "cannot tell which lab" in problems
    assert versions(course, "bob") == [] and len(versions(course, "cy")) == 2  # kept, never lost
    assert b'"cy"' in submitted(course, "cy")
    assert collect(course, client, lab=LAB).problems == []  # another lab's file waits for the run that collects it
    [again] = collect(course, client).problems  # bob's is retried (00_other may be released); the others were settled
    assert "00_other, which is not released" in again


def test_slack_connect_stub_is_completed_by_files_info(course, slack, client, notebook):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    stub = {"id": "FADA", "mode": "file_access", "file_access": "check_file_info", "created": 0, "user": ""}
    slack.post("CLAB", "UADA", T1, [stub])
    assert [s for s, _, _ in collect(course, client).collected] == ["ada"]
    assert slack.called("files.info") == [{"file": "FADA"}]


def test_cli_token_from_dotenv_never_printed_or_stored(course, slack, notebook, tmp_path, monkeypatch, capsys):
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.chdir(tmp_path)
    assert main(["--course-dir", str(course.root), "collect", "slack"]) == 2
    assert "SLACK_BOT_TOKEN" in capsys.readouterr().err
    (tmp_path / ".env").write_text(f"# Slack\nexport SLACK_BOT_TOKEN='{TOKEN}'\n")
    assert main(["--course-dir", str(course.root), "collect", "slack", "--channel", "#lab-submissions"]) == 0
    out = capsys.readouterr()
    assert "collected 00_tiny.ipynb -> ada (version 1)" in out.out
    assert TOKEN not in out.out + out.err
    assert json.loads(state_path(course).read_text())["files"]["FADA@" + T1]["student"] == "ada"
    for path in course.root.rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes()
    assert main(["--course-dir", str(course.root), "collect", "slack", "--channel", "general"]) == 2
    assert "the bot is not in general" in capsys.readouterr().err


def make_export(path, messages_by_day, files=None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("users.json", json.dumps([
            {"id": "UADA", "name": "ada", "real_name": "Ada Lovelace", "profile": {"email": "ada@example.edu"}},
            {"id": "UBOB", "name": "bob", "real_name": "Bob O'Neil", "profile": {"email": "bob@example.edu"}},
            {"id": "UCY", "name": "cy", "real_name": "Cy Young", "profile": {"email": "cy@example.edu"}},
            {"id": "UMAL", "name": "mallory", "real_name": "Mallory Smith", "profile": {}}]))
        zf.writestr("channels.json", json.dumps([{"id": "CLAB", "name": "lab-submissions", "members": ["UADA"]}]))
        for day, messages in messages_by_day.items():
            zf.writestr(day, json.dumps(messages))
        for name, data in (files or {}).items():
            zf.writestr(name, data)


def test_export_zip_with_files_list_and_legacy_file_key(course, slack, notebook, tmp_path):
    def file(file_id, name):
        return {"id": file_id, "name": name, "mode": "hosted",
                "url_private_download": f"{slack.url}/files-pri/T1-{file_id}/download/{quote(name)}?t={EXPORT_TOKEN}"}
    slack.blobs["FBOB"] = notebook("bob")  # only online: downloaded with the export's own link
    export = tmp_path / "export.zip"
    make_export(export, {
        "lab-submissions/2026-09-21.json": [
            {"type": "message", "subtype": "file_share", "user": "UADA", "ts": T1, "files": [file("FADA", "00_tiny.ipynb")]},
            {"type": "message", "subtype": "file_share", "user": "UBOB", "ts": T2, "upload": True,  # 2016-era shape
             "file": file("FBOB", "00_tiny.ipynb"), "text": "<@UBOB> uploaded a file: <x|00_tiny.ipynb>"},
            {"type": "message", "user": "UCY", "ts": T3, "thread_ts": T1, "files": [file("FCY", "tiny (1).ipynb")]},
            {"type": "message", "user": "UMAL", "ts": T4, "files": [file("FMAL", "00_tiny.ipynb")]}],
        "D0DM/2026-09-22.json": [
            {"type": "message", "user": "UADA", "ts": T5, "files": [file("FADA2", "00_tiny.ipynb")]},
            {"type": "message", "subtype": "bot_message", "bot_id": "B1", "ts": T5 + "1", "text": "received"}],
    }, files={"__uploads/FADA/00_tiny.ipynb": notebook("ada 1")})  # slackdump's layout, inside the zip
    files_dir = tmp_path / "files"
    (files_dir / "lab-submissions" / "attachments").mkdir(parents=True)
    (files_dir / "lab-submissions" / "attachments" / "FCY-tiny (1).ipynb").write_bytes(notebook("cy"))

    offline = collect_export(course, export, files_dir, offline=True)
    assert sorted(s for s, _, _ in offline.collected) == ["ada", "cy"]
    problems = "\n".join(offline.problems)
    assert "FBOB): not in the export nor in" in problems and "re-run online" in problems
    assert "Mallory Smith (UMAL" in problems and "FADA2" in problems
    assert EXPORT_TOKEN not in problems  # export links are credentials: never shown

    slack.blobs["FADA2"] = notebook("ada 2")
    online = collect_export(course, export, files_dir, max_wait=0.01)
    assert sorted(online.collected) == [("ada", "00_tiny.ipynb", 2), ("bob", "00_tiny.ipynb", 1)]
    assert b"ada 2" in submitted(course, "ada") and b'"bob"' in submitted(course, "bob")
    assert all(auth is None for _, _, auth in slack.downloads)  # no bot token was given: none was sent
    assert collect_export(course, export, files_dir, offline=True).collected == []  # the re-run adds nothing


def test_cli_export_rejects_a_file_that_is_not_a_zip(course, tmp_path, capsys):
    (tmp_path / "export.zip").write_text("nope")
    assert main(["--course-dir", str(course.root), "collect", "slack-export", str(tmp_path / "export.zip"), "--offline"]) == 2
    assert "not a zip file" in capsys.readouterr().err


def test_receipt_bot_answers_each_upload_once(course, slack, client, notebook):
    bot = ReceiptBot(course, client, TOKEN)
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada 1"), "UADA")
    message = slack.post("DADA", "UADA", T1, ["FADA"])
    event = {**message, "channel": "DADA", "channel_type": "im"}
    [reply] = bot.handle(event)
    when = f"{ts_to_datetime(T1).astimezone():%H:%M}"
    assert reply == f"received 00_tiny, version 1, {when}; the notebook is valid"
    assert slack.posted[-1]["channel"] == "DADA" and slack.posted[-1]["thread_ts"] == T1
    shared = {"type": "file_shared", "file_id": "FADA", "user_id": "UADA", "channel_id": "DADA", "event_ts": T1}
    assert bot.handle(shared) == [] and bot.handle(event) == []  # the second event of one upload, a redelivery
    assert len(slack.posted) == 1

    # file_shared first: files.info gives the message's ts through the file's shares
    slack.add_file("FADA2", "00_tiny.ipynb", notebook("ada 2"), "UADA")
    second = slack.post("CLAB", "UADA", T2, ["FADA2"], thread_ts=T1)
    [reply] = bot.handle({"type": "file_shared", "file_id": "FADA2", "user_id": "UADA", "channel_id": "CLAB", "event_ts": T2})
    assert reply.startswith("received 00_tiny, version 2") and slack.posted[-1]["thread_ts"] == T1
    assert bot.handle({**second, "channel": "CLAB"}) == []
    assert b"ada 2" in submitted(course, "ada")

    slack.add_file("FBAD", "00_tiny.ipynb", notebook("bob", lab="00_other"), "UBOB")
    slack.add_file("FMAL", "00_tiny.ipynb", notebook("m"), "UMAL")
    [wrong] = bot.handle({**slack.post("CLAB", "UBOB", T3, ["FBAD"]), "channel": "CLAB"})
    [stranger] = bot.handle({**slack.post("CLAB", "UMAL", T4, ["FMAL"]), "channel": "CLAB"})
    assert wrong == "00_tiny.ipynb is the notebook of lab 00_other, which is not open for submissions yet."
    assert "roster" in stranger
    assert bot.handle({**slack.post("CLAB", BOT_USER, T5, ["FADA"]), "channel": "CLAB"}) == []  # its own posts
    assert collect(course, client).collected == []  # the batch collection does not redo what the bot stored


def test_socket_mode_listener_acknowledges_then_handles(course, slack, client, notebook):
    from slack_sdk.socket_mode.request import SocketModeRequest

    class Socket:
        acks = []

        def send_socket_mode_response(self, response):
            self.acks.append(response.envelope_id)

    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    event = {**slack.post("DADA", "UADA", T1, ["FADA"]), "channel": "DADA", "channel_type": "im"}
    listener = socket_listener(ReceiptBot(course, client, TOKEN))
    listener(Socket(), SocketModeRequest(type="events_api", envelope_id="E1", payload={"event": event}))
    listener(Socket(), SocketModeRequest(type="events_api", envelope_id="E2", payload={"event": {"type": "message"}}))
    assert Socket.acks == ["E1", "E2"] and len(slack.posted) == 1


def test_feedback_sent_by_direct_message(course, slack, notebook, capsys):
    for student, score in (("ada", 5), ("cy", 2)):
        course.submitted_dir(student, LAB).mkdir(parents=True)
        (course.submitted_dir(student, LAB) / f"{LAB}.ipynb").write_bytes(notebook(student))
        course.autograded_dir(student, LAB).mkdir(parents=True)
        (course.autograded_dir(student, LAB) / "result.json").write_text(
            json.dumps({"lab": LAB, "student": student, "score": score, "max_score": 5, "cells": []}))
    slack.users["UCY"]["profile"]["email"] = "cy.young@elsewhere.example"  # not the roster's e-mail

    assert main(["--course-dir", str(course.root), "feedback", LAB, "--slack"]) == 1
    out = capsys.readouterr()
    assert "sent to ada on Slack: 5 / 5" in out.out and "cy: feedback not sent" in out.err and "users_not_found" in out.err
    [upload] = slack.uploaded.values()
    assert upload["channel"] == "DUADA" and upload["filename"] == f"{LAB}_feedback.html"
    assert upload["data"] == course.feedback_file("ada", LAB).read_bytes() and "5 / 5" in upload["comment"]

    again = send_feedback(course, LAB, make_client(TOKEN, max_wait=0.01))
    assert again.sent == [] and again.unchanged == ["ada"] and len(slack.uploaded) == 1


def test_export_with_the_malformed_corpus_through_the_cli(course, notebook, tmp_path):
    """A workspace export carrying the corpus (tests/malformed_files.py) as bob's, a member that inflates to 150 MB,
    a truncated day file and damaged messages, between ada's and cy's correct notebooks: one line each, ada and cy
    collected and graded, and the next collection and grading unaffected."""
    bad = malformed(nbformat.reads(notebook("bob"), as_version=4))
    shared, members = [], {}
    for i, (name, data, _) in enumerate(bad.values()):
        file_id = f"FBAD{i}"
        members[f"__uploads/{file_id}/00_tiny_{name}"] = data  # named for the lab: stored, then found damaged
        shared.append({"type": "message", "user": "UBOB", "ts": f"17900000{i + 10:02d}.000100",
                       "files": [{"id": file_id, "name": f"00_tiny_{name}", "mode": "hosted"}]})
    long_name = "00_tiny_" + "x" * 238 + ".ipynb"  # 252 characters, a correct notebook
    members["__uploads/FLONG/" + "x" * 100] = notebook("bob long")  # slackdump's layouts match by file id
    export = tmp_path / "export.zip"
    make_export(export, {
        "lab-submissions/2026-09-21.json": [
            {"type": "message", "user": "UADA", "ts": T1, "files": [{"id": "FADA", "name": "00_tiny.ipynb"}]},
            *shared,
            {"type": "message", "user": "UBOB", "ts": "1790000090.000100",
             "files": [{"id": "FBOMB", "name": "00_tiny.ipynb"}]},
            {"type": "message", "user": "UBOB", "ts": "1790000091.000100", "files": [{"id": "FLONG", "name": long_name}]},
            {"type": "message", "user": "UBOB", "ts": "not a time", "files": [{"id": "FADA", "name": "00_tiny.ipynb"}]},
            {"type": "message", "user": ["UBOB"], "ts": "1790000092.000100", "files": {"id": "FNONE"}},
            {"type": "message", "user": "UCY", "ts": "1790000099.000100", "files": [{"id": "FCY", "name": "00_tiny.ipynb"}]}],
    }, files={"__uploads/FADA/00_tiny.ipynb": notebook("ada"), "__uploads/FCY/00_tiny.ipynb": notebook("cy"), **members})
    with zipfile.ZipFile(export, "a") as zf:
        add_bomb(zf, "__uploads/FBOMB/00_tiny.ipynb", notebook("bob bomb"))
        zf.writestr("lab-submissions/2026-09-22.json", json.dumps([{"type": "message", "ts": T5}]) [:-5])  # truncated
    assert export.stat().st_size < 2 * 2**20  # the bomb: under 1 MB in the zip, 150 MB once inflated

    first = course_command(course, "collect", "slack-export", str(export), "--offline")
    assert first.returncode == 1
    lines = problem_lines(first)
    for case, (name, _, words) in bad.items():
        [line] = [line for line in lines if f"00_tiny_{name}" in line]
        assert line.startswith("PROBLEM: bob: ") and words in line, case
    [bomb] = [line for line in lines if "FBOMB" in line]
    assert f"{BOMB // 2**20} MB once unpacked, more than 100 MB" in bomb
    [truncated] = [line for line in lines if "2026-09-22.json" in line]
    assert "is damaged (JSONDecodeError" in truncated and "Export the workspace again" in truncated
    [no_time] = [line for line in lines if "no valid time stamp" in line]
    assert len(lines) == len(bad) + 3
    collected = first.stdout.splitlines()
    assert "collected 00_tiny.ipynb -> ada (version 1)" in collected and "collected 00_tiny.ipynb -> cy (version 1)" in collected
    assert any(line.startswith("collected 00_tiny_xxx") and "-> bob (version" in line for line in collected)

    again = course_command(course, "collect", "slack-export", str(export), "--offline")
    assert "0 collected" in again.stdout and len(problem_lines(again)) == 3  # the export's own, and the bomb, again

    graded = course_command(course, "grade", LAB, "-j", "2")
    assert {s: v[0] for s, v in scores_printed(graded).items()} == {"ada": 5, "bob": 5, "cy": 5}


def test_api_collection_of_the_malformed_corpus(course, slack, client, notebook):
    """The corpus shared in a channel through the Web API, between ada's and cy's notebooks: one line each, reported
    once (the file is settled), the others collected."""
    bad = malformed(nbformat.reads(notebook("bob"), as_version=4))
    slack.add_file("FADA", "00_tiny.ipynb", notebook("ada"), "UADA")
    slack.post("CLAB", "UADA", T1, ["FADA"])
    for i, (name, data, _) in enumerate(bad.values()):
        slack.add_file(f"FBAD{i}", f"00_tiny_{name}", data, "UBOB")
        slack.post("CLAB", "UBOB", f"17900000{i + 10:02d}.000100", [f"FBAD{i}"])
    slack.add_file("FCY", "00_tiny.ipynb", notebook("cy"), "UCY")
    slack.post("CLAB", "UCY", "1790000099.000100", ["FCY"])

    report = collect(course, client)
    for case, (name, _, words) in bad.items():
        [line] = [p for p in report.problems if f"00_tiny_{name}" in p]
        assert line.startswith("bob: ") and words in line, case
    assert len(report.problems) == len(bad)
    assert sorted(s for s, _, _ in report.collected) == ["ada", "cy"]
    again = collect(course, client)
    assert again.problems == [] and again.collected == []
