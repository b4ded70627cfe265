"""A small Slack workspace on 127.0.0.1 that answers like the Web API, for slack_sdk to talk to in tests.

Like the real API it takes POST form (or JSON) bodies with `Authorization: Bearer`, pages with cursors
(response_metadata.next_cursor), filters history by oldest/latest (exclusive), answers 429 with Retry-After,
serves url_private_download only with the bot token (else Slack's sign-in page, HTML with status 200), and
takes uploads through files.getUploadURLExternal / upload URL / files.completeUploadExternal.
Faults are queued with fail(...) and served once each, in order, to the first matching request.
"""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

TOKEN = "xoxb-fake-0123456789-secret"
EXPORT_TOKEN = "xoxe-fake-export-secret"
BOT_USER = "UBOT"
SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"


class FakeSlack:
    def __init__(self):
        self.users, self.channels, self.messages, self.files, self.blobs = {}, {}, [], {}, {}
        self.faults, self.calls, self.posted, self.uploaded, self.downloads = [], [], [], {}, []
        self.max_page = 100  # Slack caps `limit` (at 15 for some apps): small pages exercise the cursors
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self):
        return self.url + "/api/"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    # --- the workspace --------------------------------------------------------------------------------
    def add_user(self, user_id, name, email=None):
        profile = {"real_name": name, "display_name": name.split()[0].lower()}
        if email:
            profile["email"] = email
        self.users[user_id] = {"id": user_id, "name": name.split()[0].lower(), "real_name": name, "profile": profile}

    def add_channel(self, channel_id, name=None):
        self.channels[channel_id] = ({"id": channel_id, "is_im": True, "user": "U?"} if name is None else
                                     {"id": channel_id, "name": name, "is_channel": True, "is_member": True})

    def add_file(self, file_id, name, data: bytes, user):
        self.blobs[file_id] = data
        self.files[file_id] = {
            "id": file_id, "name": name, "title": name, "user": user, "size": len(data), "mode": "hosted",
            "mimetype": "application/octet-stream", "filetype": "binary", "created": 1700000000,
            "url_private": f"{self.url}/files-pri/T1-{file_id}/{quote(name)}",
            "url_private_download": f"{self.url}/files-pri/T1-{file_id}/download/{quote(name)}", "shares": {}}
        return self.files[file_id]

    def post(self, channel, user, ts, files=(), thread_ts=None, text="", legacy=False, **extra):
        """A message; files are file objects (or ids); legacy=True uses the old single `file` key."""
        objects = [self.files[f] if isinstance(f, str) else f for f in files]
        message = {"type": "message", "user": user, "ts": ts, "text": text, **extra}
        if objects:
            message["subtype"] = "file_share"
            message.update({"file": objects[0]} if legacy else {"files": objects})
        if thread_ts:
            message["thread_ts"] = thread_ts
        for f in objects:
            if f.get("id") in self.files:
                share = {"ts": ts, **({"thread_ts": thread_ts} if thread_ts else {})}
                self.files[f["id"]]["shares"].setdefault("public", {}).setdefault(channel, []).append(share)
        self.messages.append((channel, message))
        return message

    def fail(self, where, status, headers=None, body=None, times=1):
        """The next `times` requests whose path contains `where` get this answer."""
        for _ in range(times):
            self.faults.append((where, status, headers or {}, body))

    def called(self, method):
        return [params for path, params in self.calls if path == f"/api/{method}"]

    # --- answers --------------------------------------------------------------------------------------
    def thread_of(self, channel, parent_ts):
        return [m for c, m in self.messages if c == channel and m.get("thread_ts") == parent_ts and m["ts"] != parent_ts]

    def api(self, method, params):
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "team_id": "T1", "bot_id": "B1", "user": "coursebot"}
        if method == "users.conversations":
            types = params.get("types", "public_channel").split(",")
            found = [c for c in self.channels.values() if ("im" in types) == c.get("is_im", False) or
                     (not c.get("is_im") and "public_channel" in types)]
            return self.page(found, params, "channels")
        if method in ("conversations.history", "conversations.replies"):
            channel = params["channel"]
            if channel not in self.channels:
                return {"ok": False, "error": "channel_not_found"}
            if method == "conversations.history":
                found = [self.with_thread(channel, m) for c, m in self.messages
                         if c == channel and m.get("thread_ts", m["ts"]) == m["ts"]]
                found = sorted(self.window(found, params), key=lambda m: float(m["ts"]), reverse=True)
            else:
                parent = next(m for c, m in self.messages if c == channel and m["ts"] == params["ts"])
                found = [self.with_thread(channel, parent)] + sorted(
                    self.window(self.thread_of(channel, params["ts"]), params), key=lambda m: float(m["ts"]))
            return self.page(found, params, "messages")
        if method == "files.info":
            if params.get("file") not in self.files:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "file": self.files[params["file"]]}
        if method == "users.info":
            user = self.users.get(params.get("user"))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "users.lookupByEmail":
            user = next((u for u in self.users.values() if u["profile"].get("email") == params.get("email")), None)
            return {"ok": True, "user": user} if user else {"ok": False, "error": "users_not_found"}
        if method == "chat.postMessage":
            self.posted.append(params)
            return {"ok": True, "channel": params["channel"], "ts": f"1800000000.{len(self.posted):06d}"}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + params["users"]}}
        if method == "files.getUploadURLExternal":
            file_id = f"FUP{len(self.uploaded) + 1}"
            self.uploaded[file_id] = {"filename": params["filename"], "length": int(params["length"])}
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.url}/upload/v1/{file_id}"}
        if method == "files.completeUploadExternal":
            files = json.loads(params["files"])
            for f in files:
                self.uploaded[f["id"]].update(channel=params.get("channel_id"), comment=params.get("initial_comment"),
                                              title=f.get("title"))
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]}
        return {"ok": False, "error": "unknown_method"}

    def with_thread(self, channel, message):
        replies = self.thread_of(channel, message["ts"])
        if not replies:
            return message
        return {**message, "thread_ts": message["ts"], "reply_count": len(replies),
                "latest_reply": max((r["ts"] for r in replies), key=float)}

    @staticmethod
    def window(messages, params):
        inclusive = params.get("inclusive") in ("1", "true", True)
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or 1e12)
        keep = (lambda t: oldest <= t <= latest) if inclusive else (lambda t: oldest < t < latest)
        return [m for m in messages if keep(float(m["ts"]))]

    def page(self, items, params, key):
        start, limit = int(params.get("cursor") or 0), min(int(params.get("limit") or 100), self.max_page)
        chunk, rest = items[start:start + limit], items[start + limit:]
        return {"ok": True, key: chunk, "has_more": bool(rest),
                "response_metadata": {"next_cursor": str(start + limit) if rest else ""}}


def _handler(slack: FakeSlack):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status, body=b"", headers=None, kind="application/json; charset=utf-8"):
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def fault(self):
            for i, (where, status, headers, body) in enumerate(slack.faults):
                if where in self.path:
                    del slack.faults[i]
                    if body is None:
                        body = {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}
                    kind = "text/html; charset=utf-8" if isinstance(body, bytes) else "application/json; charset=utf-8"
                    self.answer(status, body, headers, kind)
                    return True
            return False

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = urlsplit(self.path).path
            if path.startswith("/upload/v1/"):
                slack.uploaded[path.rsplit("/", 1)[1]]["data"] = raw
                return self.answer(200, b"OK - %d" % len(raw), kind="text/plain")
            if "json" in (self.headers.get("Content-Type") or ""):
                params = json.loads(raw or b"{}")
            else:
                params = dict(parse_qsl(raw.decode()))
            slack.calls.append((path, params))
            if self.fault():
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self.answer(200, {"ok": False, "error": "not_authed"})
            self.answer(200, slack.api(path.removeprefix("/api/"), params))

        def do_GET(self):
            parts = urlsplit(self.path)
            slack.downloads.append((self.headers.get("Host"), parts.path, self.headers.get("Authorization")))
            if self.fault():
                return
            if not parts.path.startswith("/files-pri/"):
                return self.answer(404, b"not found", kind="text/plain")
            file_id = parts.path.split("/")[2].split("-", 1)[1]
            authorized = (self.headers.get("Authorization") == f"Bearer {TOKEN}"
                          or dict(parse_qsl(parts.query)).get("t") == EXPORT_TOKEN)
            if not authorized or file_id not in slack.blobs:
                return self.answer(200, SIGN_IN_PAGE, kind="text/html; charset=utf-8")  # what Slack does
            self.answer(200, slack.blobs[file_id], kind="application/octet-stream")

    return Handler
