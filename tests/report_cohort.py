"""A small synthetic class of the tiny lab (tests/sample_lab.py) for `course report`: what each student sent is known,
so the report's groups, counts and similar pairs can be checked against it. It grades in seconds.

Students write `double` and `square` in several independent ways (vectorised or looped, helpers or not); some plant
one of bugs.toml's two bugs in their own words, one plants both, two make the same new mistake, some leave a cell
unanswered, one sends the release untouched, and two copy another student's notebook with the variables renamed and
the functions reordered, as copiers do. Three students resubmit during the week (a version the same as the
last one sent is not kept: collect drops it), and one copier sends only after the session.
"""
import builtins
import copy
import keyword
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import nbformat

from sample_lab import with_answer

SESSION_END = datetime(2026, 10, 5, 18, 0, tzinfo=timezone.utc)
COURSE_TOML = '[course]\npolicy = "best"\n\n[labs.00_tiny]\nsession_end = 2026-10-05T18:00:00Z\n\n' \
              '[similarity]\nthreshold = 0.8\n'

# correct answers, each written as a student would (the short ones are below copydetect's noise threshold: too short
# to say anything about copying, they are never compared)
DOUBLE = {
    "ref": "def double(x):\n    return 2 * x",
    "plus": "def double(x):\n    return x + x",
    "while": ("def double(x):\n    steps_left = 2\n    accumulated = 0\n    while steps_left > 0:\n"
              "        accumulated += x\n        steps_left -= 1\n    return accumulated"),
    "helpers": ("def add_up(values):\n    running = 0\n    for value in values:\n        running = running + value\n"
                "    return running\n\n\ndef repeated(item, times):\n    return [item for _ in range(times)]\n\n\n"
                "def double(x):\n    return add_up(repeated(x, 2))"),
    "shift": ("def double(x):\n    if isinstance(x, int):\n        return x << 1\n    halves = [x / 2.0] * 4\n"
              "    return sum(halves)"),
}
SQUARE = {
    "ref": "def square(x):\n    return x * x",
    "pow": "def square(x):\n    return x ** 2",
    "table": ("def square(x):\n    sign_free = abs(x)\n    partial_sums = [sign_free * k for k in range(1, 2)]\n"
              "    total_area = 0\n    for row in range(sign_free):\n        total_area = total_area + partial_sums[0]\n"
              "    return total_area"),
    "helpers": ("def times(first, second):\n    product = 0\n    for _ in range(abs(second)):\n"
                "        product = product + first\n    return product if second >= 0 else -product\n\n\n"
                "def square(x):\n    return times(x, x)"),
    "odd": ("def square(x):\n    n = abs(x)\n    odd_numbers = range(1, 2 * n, 2)\n"
            "    return sum(odd_numbers)"),
}
# the planted bugs of sample_lab.PLANTED_BUGS, as students make them in their own words
DOUBLE_IS_SQUARE = ["def double(x):\n    return x * x", "def double(x):\n    return x ** 2",
                    "def double(x):\n    return pow(x, 2)"]
SQUARE_OF_ABS = ["def square(x):\n    return x * abs(x)", "def square(x):\n    return abs(x) * x"]
NEW_MISTAKE = "def double(x):\n    return 2 * x.real()"   # a new mistake: no planted bug fails this way


@dataclass
class Sent:
    double: str | None      # None: left as released
    square: str | None
    hours: float = -1.0     # when, from the session's end
    copy_of: str = ""       # a student whose last version this one copies


# student: their versions, in the order sent
PLAN = {
    "s01": [Sent(DOUBLE["ref"], SQUARE["ref"])],
    "s02": [Sent(DOUBLE_IS_SQUARE[0], SQUARE["pow"]), Sent(DOUBLE["plus"], SQUARE["pow"], hours=50)],
    "s03": [Sent(DOUBLE["while"], SQUARE["ref"])],
    "s04": [Sent(DOUBLE["ref"], SQUARE["table"])],
    "s05": [Sent(DOUBLE["helpers"], SQUARE["helpers"])],
    "s06": [Sent(None, None, hours=-0.5, copy_of="s05")],
    "s07": [Sent(DOUBLE_IS_SQUARE[0], SQUARE["pow"])],
    "s08": [Sent(DOUBLE_IS_SQUARE[1], SQUARE["ref"])],
    "s09": [Sent(DOUBLE_IS_SQUARE[2], SQUARE["odd"])],
    "s10": [Sent(DOUBLE["plus"], SQUARE_OF_ABS[0])],
    "s11": [Sent(DOUBLE["ref"], SQUARE_OF_ABS[1])],
    "s12": [Sent(DOUBLE_IS_SQUARE[1], SQUARE_OF_ABS[0])],
    "s13": [Sent(None, SQUARE["ref"])],
    "s14": [Sent(None, None)],
    "s15": [Sent(NEW_MISTAKE, SQUARE["pow"])],
    "s16": [Sent(NEW_MISTAKE, SQUARE["ref"]), Sent(NEW_MISTAKE, SQUARE["pow"], hours=30)],
    "s17": [Sent(DOUBLE["shift"], SQUARE["pow"], hours=-2), Sent(DOUBLE["shift"], SQUARE["odd"], hours=100)],
    "s18": [Sent(None, None, hours=101, copy_of="s17")],
}
# what the report must find
PLANTED = {"double_is_square": {"s07", "s08", "s09", "s12"}, "square_of_abs_wrong": {"s10", "s11", "s12"}}
NEW = {"s15", "s16"}
COPIED = {("s05", "s06"), ("s17", "s18")}


# ---- copying as copiers do -----------------------------------------------------------------------------------------

IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_]\w*\b")
KEEP = set(keyword.kwlist) | set(dir(builtins))


def rename_variables(code: str, given: set) -> str:
    """code with every name it introduces (not in the release, not a keyword or builtin) renamed."""
    mine = sorted(set(IDENTIFIER.findall(code)) - given - KEEP)
    mapping = {name: f"my_{name[::-1]}" for name in mine}
    return IDENTIFIER.sub(lambda m: mapping.get(m.group(0), m.group(0)), code)


def reorder_functions(code: str) -> str:
    """code with its top-level function definitions in reverse order (Python resolves the names at call time)."""
    blocks = [b for b in re.split(r"\n\s*\n(?=def )", code) if b.strip()]
    return "\n\n\n".join(reversed(blocks))


def copied(code: str | None, given: set) -> str | None:
    return None if code is None else reorder_functions(rename_variables(code, given))


# ---- the notebooks -------------------------------------------------------------------------------------------------

def notebook(release, sent: Sent):
    nb = copy.deepcopy(release)
    for cell_id, code in (("double", sent.double), ("square", sent.square)):
        if code is not None:
            nb = with_answer(nb, cell_id, code)
    return nb


def student_ids(classes: int = 1) -> list:
    """The students of `classes` copies of the class (s05, s05_2, ...: each copy copies within itself)."""
    return [student + (f"_{k}" if k > 1 else "") for k in range(1, classes + 1) for student in PLAN]


def roster(classes: int = 1) -> str:
    return "id,first_name,last_name,email\n" + "".join(f"{s},Student,{s.upper()},{s}@example.edu\n"
                                                       for s in student_ids(classes))


def cohort_inbox(release, folder, classes: int = 1) -> dict:
    """Write every version into folder/STUDENT/00_tiny_vN.ipynb, its file time its sending time; {student: last Sent}.
    classes > 1: that many copies of the class, for the scale benchmark (bench/report_scale.py)."""
    import os

    given = set(IDENTIFIER.findall("\n".join(c.source for c in release.cells))) | {"double", "square"}
    last = {}
    for k in range(1, classes + 1):
        suffix = f"_{k}" if k > 1 else ""
        for student, versions in PLAN.items():
            (folder / f"{student}{suffix}").mkdir(parents=True, exist_ok=True)
            for number, sent in enumerate(versions, start=1):
                if sent.copy_of:
                    original = last[sent.copy_of + suffix]
                    sent = Sent(copied(original.double, given), copied(original.square, given), sent.hours)
                last[student + suffix] = sent
                path = folder / f"{student}{suffix}" / f"00_tiny_v{number}.ipynb"
                nbformat.write(notebook(release, sent), path)
                moment = (SESSION_END + timedelta(hours=sent.hours)).timestamp()
                os.utime(path, (moment, moment))
    return last
