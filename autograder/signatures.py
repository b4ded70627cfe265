"""Failure signatures: which checks a graded notebook failed, and with which error; the planted bugs they match.

A graded test cell that did not pass gives one item per failed check: (test cell, the check's description, the
error's kind), the description read from the instructor's test code (`credit.check(points, "...")`), so that the
numbers a student's answer put in the message do not split one mistake in two. A cell without such checks (a plain
assert) gives one item: (test cell, its message with numbers made "#", its status).

A planted bug's signature is the set of items its grading gave; `course signatures LAB` grades the reference and each
bug of labs/LAB/bugs.toml in a scratch course and writes them to labs/LAB/bug_signatures.json (tests/test_labs.py
checks the file against its own gradings). A student matches a bug when every item of the bug's signature is among
theirs; two bugs with the same signature are one match ("A or B"), and a bug whose items are a strict part of another
matched bug's is not counted beside it.
"""
import ast
import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .course import Course, CourseError, labs_dir
from .notebooks import grade_id, is_solution_cell, is_test_cell, python_tree

SIGNATURES_FILE = "bug_signatures.json"
NUMBER = re.compile(r"0x[0-9a-fA-F]+|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
UNANSWERED_KINDS = ("NotImplementedError",)


@dataclass(frozen=True, order=True)
class Item:
    """One failed check of one test cell."""
    test: str
    check: str   # the check's description (or the cell's normalised message)
    error: str   # the error's kind (AssertionError, NotImplementedError, ...) or the cell's status

    def text(self) -> str:
        return f"{self.test}: {self.check}" + (f" ({self.error})" if self.error else "")

    @property
    def unanswered(self) -> bool:
        """The check failed on a `raise NotImplementedError()` left in an answer."""
        return self.error in UNANSWERED_KINDS or "NotImplementedError" in self.check


def normalised_message(message: str) -> str:
    return NUMBER.sub("#", " ".join((message or "").split()))[:300]


def _description_pattern(node):
    """A check's description as (its text, a regex matching it): f-strings' values match anything."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        text, pattern = "", ""
        for part in node.values:
            if isinstance(part, ast.Constant):
                text, pattern = text + str(part.value), pattern + re.escape(str(part.value))
            else:
                text, pattern = text + "…", pattern + ".+?"
        return text, pattern
    return None


def check_descriptions(source_nb) -> dict:
    """{test cell: [(description, regex)]} of the `credit.check(points, description)` calls in each test cell of the
    instructor's notebook (hidden tests included), longest first."""
    found = {}
    for cell in source_nb.cells:
        if not is_test_cell(cell):
            continue
        tree = python_tree(cell)
        if tree is None:
            continue
        checks = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check" \
                    and len(node.args) >= 2 and (pattern := _description_pattern(node.args[1])):
                checks.append(pattern)
        found[grade_id(cell)] = sorted(set(checks), key=lambda c: -len(c[0]))
    return found


def cell_items(cell: dict, descriptions: list) -> list:
    """The items of one graded cell of a result.json ([] when it passed)."""
    if cell.get("status") == "passed":
        return []
    message = cell.get("message") or ""
    items = []
    for text, pattern in descriptions:
        for match in re.finditer(r"(?:^|(?<=; ))" + pattern + r"(?= \((\w+)|;|$)", message):
            items.append(Item(cell["grade_id"], text, match.group(1) or "AssertionError"))
            break
    if not items:
        items.append(Item(cell["grade_id"], normalised_message(message) or "(no message)", cell.get("status", "")))
    return items


def result_items(result: dict, descriptions: dict) -> frozenset:
    """Every item of a graded notebook's result.json."""
    return frozenset(item for cell in result.get("cells", []) for item in cell_items(cell, descriptions.get(cell["grade_id"], [])))


def tests_digest(source_nb) -> str:
    """What a signature depends on: the test cells and the answers the bugs are planted in."""
    parts = [f"{grade_id(c)}\n{c.source}" for c in source_nb.cells if is_test_cell(c) or is_solution_cell(c)]
    return hashlib.sha256("\n\0".join(parts).encode()).hexdigest()


# ---- the signatures file -------------------------------------------------------------------------------------------

@dataclass
class Signatures:
    lab: str
    digest: str
    bugs: dict = field(default_factory=dict)  # {bug name: frozenset of Items}

    def to_json(self) -> dict:
        return {"lab": self.lab, "tests_sha256": self.digest, "written_by": f"course signatures {self.lab}",
                "bugs": {name: [[i.test, i.check, i.error] for i in sorted(items)] for name, items in self.bugs.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "Signatures":
        return cls(data["lab"], data.get("tests_sha256", ""),
                   {name: frozenset(Item(*i) for i in items) for name, items in data.get("bugs", {}).items()})


def signatures_path(lab: str) -> Path:
    return labs_dir() / lab / SIGNATURES_FILE


def load_signatures(lab: str):
    """The lab's stored signatures, or None when it has none."""
    path = signatures_path(lab)
    if not path.exists():
        return None
    try:
        return Signatures.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise CourseError(f"{path}: not a signatures file ({exc}); write it again with `course signatures {lab}`") from None


def stale_warning(signatures, source_nb, lab: str) -> str:
    """"" when the signatures were written for these tests and answers, else what to run."""
    if signatures is None:
        return f"no planted-bug signatures for {lab} (labs/{lab}/{SIGNATURES_FILE}): run `course signatures {lab}`"
    if signatures.digest != tests_digest(source_nb):
        return (f"labs/{lab}/{SIGNATURES_FILE} was written for other tests or answers than the released ones: "
                f"run `course signatures {lab}` again")
    return ""


# ---- matching ------------------------------------------------------------------------------------------------------

def bug_classes(signatures) -> dict:
    """{class name: items}: bugs with the same signature are one class, named "A or B"."""
    by_items = {}
    for name, items in (signatures.bugs if signatures else {}).items():
        if items:
            by_items.setdefault(items, []).append(name)
    return {" or ".join(names): items for items, names in by_items.items()}


def matched_bugs(items: frozenset, classes: dict) -> list:
    """The bug classes whose every item is among `items`, leaving out one whose items are a strict part of another
    matched class's."""
    found = [name for name, signature in classes.items() if signature <= items]
    return [name for name in found if not any(classes[name] < classes[other] for other in found if other != name)]


# ---- `course signatures LAB` ---------------------------------------------------------------------------------------

def write_signatures(lab: str, jobs: int = 2, echo=print) -> Path:
    """Grade the reference and every planted bug of LAB in a scratch course; write labs/LAB/bug_signatures.json."""
    from .collect import collect_folder
    from .gradebook import load_result
    from .grading.run_lab import grade_lab
    from .planted_bugs import apply_bugs, released_with_bugs

    with tempfile.TemporaryDirectory(prefix="signatures-") as scratch:
        course = Course(Path(scratch) / "course")
        course.root.mkdir()
        source, _, reference, bugs = released_with_bugs(course, lab)
        if not bugs:
            raise CourseError(f"labs/{lab}/bugs.toml plants no bug: nothing to write")
        submissions = {"reference": reference, **{f"bug_{b.name}": apply_bugs(reference, [b]) for b in bugs}}
        course.roster_path.write_text("id\n" + "".join(f"{sid}\n" for sid in submissions))
        inbox = Path(scratch) / "inbox"
        inbox.mkdir()
        for sid, nb in submissions.items():
            nbformat.write(nb, inbox / f"{sid}.ipynb")
        collect_folder(course, inbox, lab)
        grade_lab(course, lab, jobs=jobs, cell_timeout=120, echo=echo)
        descriptions = check_descriptions(nbformat.read(course.source(lab), as_version=4))
        results = {sid: load_result(course, sid, lab) for sid in submissions}
        failing = sorted(result_items(results["reference"], descriptions)) if results["reference"] else ["not graded"]
        if failing:
            raise CourseError(f"{lab}: the reference does not pass every test ({', '.join(map(str, failing[:3]))}); "
                              "fix the lab before writing its signatures")
        signatures = Signatures(lab, tests_digest(source))
        for bug in bugs:
            result = results[f"bug_{bug.name}"]
            signatures.bugs[bug.name] = result_items(result, descriptions) if result else frozenset()
            if not signatures.bugs[bug.name]:
                echo(f"warning: planted bug {bug.name} fails no test")
    path = signatures_path(lab)
    path.write_text(json.dumps(signatures.to_json(), indent=1, ensure_ascii=False) + "\n")
    for name, items in bug_classes(signatures).items():
        if " or " in name:
            echo(f"note: {name} fail the same checks; the report names them together")
    echo(f"wrote {len(signatures.bugs)} signatures: {path}")
    return path


# ---- what a student reads ------------------------------------------------------------------------------------------

def planted_bug_notes(course: Course, lab: str, student: str, result: dict, now=None) -> dict:
    """{test cell: [the bug's description]} for the failed tests of a student's result that match a planted bug, once
    the student's resubmission window has closed (their own deadline, extensions included); {} before that, without
    a known deadline, or when the lab's signatures are missing or were written for other tests."""
    from datetime import datetime, timezone

    from .planted_bugs import load_bugs
    from .policy import load_config, window_for

    window = window_for(load_config(course), student, lab, course)
    if window is None or window.deadline is None or (now or datetime.now(timezone.utc)) < window.deadline:
        return {}
    signatures = load_signatures(lab)
    source = nbformat.read(course.source(lab), as_version=4)
    if signatures is None or stale_warning(signatures, source, lab):
        return {}
    classes = bug_classes(signatures)
    described = {b.name: b.description for b in load_bugs(lab) if b.description}
    notes = {}
    for name in matched_bugs(result_items(result, check_descriptions(source)), classes):
        words = " — or — ".join(described[n] for n in name.split(" or ") if n in described)
        if not words:
            continue
        for test in sorted({item.test for item in classes[name]}):
            notes.setdefault(test, []).append(words)
    return notes
