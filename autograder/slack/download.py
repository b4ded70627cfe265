"""Fetching one shared file: only from Slack's hosts, the token only to slack.com, every redirect checked, a size cap."""
import urllib.request
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.parse import urljoin, urlsplit

from slack_sdk.http_retry import RetryState
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse

from ..notebooks import MAX_NOTEBOOK_BYTES
from .client import api_url

MAX_FILE_BYTES = MAX_NOTEBOOK_BYTES  # 100 MB, nbgrader's own cap (max_file_size, 100000 KB), as every read of a notebook
TOKEN_HOSTS = ("slack.com",)         # and their sub-domains (files.slack.com): they get the token
CDN_HOSTS = ("slack-edge.com", "slack-files.com")  # Slack's file CDNs: pre-signed links, no token


class SlackProblem(Exception):
    """A file that could not be fetched from Slack; the message says why and what to do."""


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
