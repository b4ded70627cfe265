"""A page opened in Debian's chromium, headless, driven through the DevTools protocol on a pipe (no websocket, no
extra package): the console errors and failed loads it reports, the state of every image, a full-page screenshot.
scripts/install_system_deps.sh installs chromium."""
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def chromium() -> str:
    for name in CHROMIUM:
        if shutil.which(name):
            return shutil.which(name)
    raise AssertionError("no chromium on PATH: install Debian's chromium (scripts/install_system_deps.sh, as root)")


class _Pipe:
    """DevTools messages over --remote-debugging-pipe: JSON, each ended by a NUL byte, on fds 3 (in) and 4 (out)."""

    def __init__(self, browser_out, browser_in):
        self.out, self.inp, self.buffer, self.next_id, self.events = browser_out, browser_in, b"", 0, []

    def send(self, method, params=None, session=None, timeout=60):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"DevTools {method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def read(self, deadline):
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise AssertionError("chromium did not answer in time")
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise AssertionError("chromium closed its DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def wait_for(self, method, session, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    return event
            self.events.append(self.read(deadline))


def open_page(page: Path, screenshot: Path, width=1280) -> dict:
    """{"errors": [console errors, exceptions and failed loads], "images": [{"src", "complete", "width"}]} of the
    page once loaded; its full-page screenshot written to `screenshot`."""
    to_browser_r, to_browser_w = os.pipe()
    from_browser_r, from_browser_w = os.pipe()

    def wire():  # in the child: chromium reads commands on fd 3 and writes replies on fd 4
        os.dup2(to_browser_r, 3)
        os.dup2(from_browser_w, 4)

    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = subprocess.Popen(
            [chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "--no-first-run", "--disable-extensions", "--disable-background-networking",
             f"--window-size={width},900", "about:blank"],
            close_fds=False, preexec_fn=wire, stdout=subprocess.DEVNULL,  # os.pipe()'s own fds close on exec
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired", session)
            images = pipe.send("Runtime.evaluate", {
                "expression": "JSON.stringify([...document.images].map(i => ({src: i.src.slice(0, 60), "
                              "complete: i.complete, width: i.naturalWidth})))", "returnByValue": True},
                session=session)["result"]["value"]
            size = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
            shot = pipe.send("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}},
                session=session)
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
            errors = []
            for event in pipe.events:
                params = event.get("params", {})
                if event.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
                elif event.get("method") == "Runtime.exceptionThrown":
                    errors.append(params["exceptionDetails"].get("text", "exception"))
                elif event.get("method") == "Log.entryAdded" and params["entry"].get("level") == "error":
                    errors.append(params["entry"].get("text", ""))
            try:
                pipe.send("Browser.close", timeout=10)
            except AssertionError:
                pass
        finally:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)
    return {"errors": errors, "images": json.loads(images)}
