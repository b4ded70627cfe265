"""The bot token and the Web API client: where the token comes from, and how rate limits and errors are retried.

The bot token comes from SLACK_BOT_TOKEN or a .env file in the current folder (read with python-dotenv, not
loaded into the environment). It is sent only to Slack's hosts (and to COURSE_SLACK_API_URL's host, which tests
point at a local server), never printed, and never written into the course directory.
"""
import os
import random
import time
from pathlib import Path

from dotenv import dotenv_values
from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler, RetryIntervalCalculator
from slack_sdk.http_retry.builtin_handlers import (ConnectionErrorRetryHandler, RateLimitErrorRetryHandler,
                                                   ServerErrorRetryHandler)

from ..course import CourseError

API_URL_VARIABLE = "COURSE_SLACK_API_URL"
TOKEN_VARIABLE = "SLACK_BOT_TOKEN"
APP_TOKEN_VARIABLE = "SLACK_APP_TOKEN"
DEFAULT_API_URL = "https://slack.com/api/"
MAX_WAIT = 120.0                     # seconds: the longest pause for a rate limit or a server error


def load_token(variable: str = TOKEN_VARIABLE, env_file: Path = Path(".env")) -> str:
    """The token from the environment, else from a .env file (KEY=VALUE lines, as python-dotenv reads them)."""
    token = os.environ.get(variable, "").strip()
    if not token and Path(env_file).is_file():
        token = (dotenv_values(env_file, interpolate=False).get(variable) or "").strip()
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
