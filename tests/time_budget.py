"""The suite's time budget, per test file: at the end of a run it prints the suite's time and each file's, and fails the
run for a file that took more than twice its measured time (tests/durations.json), naming the file and its time.

The budgets are measured, not guessed: `pytest --record-durations tests` writes each file's time of that run into
tests/durations.json. A file with no budget fails until its time is recorded. Files that took less than a few
seconds are not held to twice their time (at that size it is noise).
"""
import json
import time
from collections import defaultdict
from pathlib import Path

import pytest

BUDGETS = Path(__file__).with_name("durations.json")
FACTOR = 2.0
FLOOR_S = 10.0  # a file's allowance is at least this much


def pytest_addoption(parser):
    parser.addoption("--record-durations", action="store_true",
                     help="write each test file's time of this run into tests/durations.json (its budget is twice that)")


class TimeBudget:
    def __init__(self, config):
        self.config = config
        self.seconds = defaultdict(float)  # test file -> seconds of setup, call and teardown (all workers)
        self.started = time.monotonic()
        self.over = []

    @staticmethod
    def _file(nodeid: str) -> str:
        return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]

    def pytest_runtest_logreport(self, report):
        self.seconds[self._file(report.nodeid)] += report.duration

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        if not self.seconds or hasattr(self.config, "workerinput"):  # an xdist worker: its controller judges
            return
        budgets = json.loads(BUDGETS.read_text()) if BUDGETS.exists() else {}
        if self.config.getoption("record_durations"):
            budgets.update({name: round(seconds, 1) for name, seconds in self.seconds.items()})
            BUDGETS.write_text(json.dumps(dict(sorted(budgets.items())), indent=1) + "\n")
            return
        for name, seconds in sorted(self.seconds.items()):
            if name not in budgets:
                self.over.append(f"{name}: {seconds:.0f} s, and it has no budget: run it with --record-durations "
                                 "and commit tests/durations.json")
            elif seconds > max(FACTOR * budgets[name], FLOOR_S):
                self.over.append(f"{name}: {seconds:.0f} s, over its budget of {FACTOR:g} x {budgets[name]:.0f} s "
                                 "(tests/durations.json): make it faster (share gradings, test one stage) or, if the "
                                 "time is right, record it again")
        if self.over and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter):
        if not self.seconds:
            return
        write = terminalreporter.write_line
        terminalreporter.section("time per test file (seconds of work; the suite's wall time last)")
        for name, seconds in sorted(self.seconds.items(), key=lambda item: -item[1]):
            write(f"{seconds:8.1f}  {name}")
        write(f"{time.monotonic() - self.started:8.1f}  the suite, wall time")
        for line in self.over:
            write(f"OVER BUDGET: {line}", red=True)


def pytest_configure(config):
    config.pluginmanager.register(TimeBudget(config), "course-time-budget")
