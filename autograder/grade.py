"""Grade one submission: a pipeline of small stages, and one function that runs them.

    read -> restore_test_cells -> execute -> score

`grade_submission(job)` takes everything it needs in the job and returns a plain record;
it writes nothing but its scratch directory. Only the parent process writes the gradebook,
so jobs can run in parallel (or elsewhere) later.
"""
import copy
import json
import secrets
from functools import partial
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from course_lib.checks import CREDIT_MIME
from course_lib.guard import MARKER as GUARD_MARKER

from .execute import Hooks, kernel_environment, run_cells
from .sandbox import Limits, bwrap_prefix, prepare_scratch
from .notebooks import (NotebookProblem, grade_id, is_solution_cell, is_test_cell, nbgrader_meta,
                        read_notebook, visible_test_source)


@dataclass
class GradeJob:
    student: str
    lab: str
    submission: str          # path of the submitted notebook
    source_notebook: dict    # instructor source: solutions and hidden tests
    release_notebook: dict   # what students received (for tamper checks)
    cell_timeout: float = 60.0
    budget: float = 300.0
    version: str = ""        # which received version this is (file name under received/)
    received_at: str = ""
    kind: str = ""           # in-session | resubmission | any
    fingerprint: str = ""    # hash of submission + source: unchanged means no need to regrade
    sandbox: bool = True     # run the kernel in bubblewrap (see sandbox.py)
    hidden: tuple = ()       # extra paths the kernel must not see (the course directory)
    submission_bytes: bytes = b""  # the file itself, so a worker elsewhere (Dask) needs no shared disk


@dataclass
class CellResult:
    grade_id: str
    points: float
    max_points: float
    status: str   # passed | failed | error | timeout | died | skipped
    message: str = ""
    seconds: float = 0.0
    tampered: bool = False    # the test cell's code was edited (the original was run)
    replaced: list = field(default_factory=list)  # functions student code replaced before this test


@dataclass
class GradeRecord:
    student: str
    lab: str
    cells: list = field(default_factory=list)
    problem: str = ""            # set when the submission could not be graded at all
    kernel_restarts: int = 0
    seconds: float = 0.0
    budget_exhausted: bool = False
    version: str = ""
    received_at: str = ""
    kind: str = ""
    fingerprint: str = ""
    notebook: dict = None        # the executed notebook (with hidden tests: instructor eyes only)

    @property
    def score(self):
        return sum(c.points for c in self.cells)

    @property
    def max_score(self):
        return sum(c.max_points for c in self.cells)

    @property
    def tampered(self):
        return [c.grade_id for c in self.cells if c.tampered or c.status == "tampered" or c.replaced]

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("notebook")
        data.update(score=self.score, max_score=self.max_score)
        return data

    @classmethod
    def from_json(cls, data: dict) -> "GradeRecord":
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "cells"}
        return cls(**fields, cells=[CellResult(**c) for c in data.get("cells", [])])


def _normalise(code: str) -> str:
    return "\n".join(line.rstrip() for line in code.strip().splitlines())


def restore_test_cells(submission, source, release):
    """Replace every test and locked cell by the instructor's copy; re-add deleted test cells.

    Returns (notebook to run, ids of tampered test cells). A test cell counts as tampered
    only when its code differs from the release's visible tests (whitespace at line ends ignored),
    so untouched cells never raise a false alarm.
    """
    nb = copy.deepcopy(submission)
    source_cells = {grade_id(c): c for c in source.cells if grade_id(c)}
    released_tests = {grade_id(c): c for c in release.cells if is_test_cell(c)}
    tampered, seen = [], set()
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        original = source_cells.get(gid)
        if original is None or is_solution_cell(original):
            continue
        if is_test_cell(original) or nbgrader_meta(original).get("locked"):
            if is_test_cell(original):
                released = released_tests.get(gid)
                expected = released.source if released is not None else visible_test_source(original.source)
                if _normalise(cell.source) != _normalise(expected):
                    tampered.append(gid)
            nb.cells[i] = copy.deepcopy(original)
            seen.add(gid)
    # Test cells a student deleted come back after the cell that preceded them in the source.
    for pos, cell in enumerate(source.cells):
        gid = grade_id(cell)
        if not is_test_cell(cell) or gid in seen:
            continue
        tampered.append(gid)
        anchor = next((grade_id(c) for c in reversed(source.cells[:pos]) if grade_id(c)), None)
        where = next((i + 1 for i, c in enumerate(nb.cells) if anchor and grade_id(c) == anchor), len(nb.cells))
        nb.cells.insert(where, copy.deepcopy(cell))
    return nb, tampered


GUARD = "__import__('course_lib.guard', fromlist=['guard'])"


def guard_hooks(nonces: dict) -> Hooks:
    """Seed every cell; check and restore the kernel's state around each test cell (course_lib/guard.py)."""
    def before(index, cell):
        code = f"{GUARD}.seed({1000 + index})"
        if index in nonces:
            code += f"\n{GUARD}.restore_and_verify({nonces[index]!r})"
        return code

    def after(index, cell):
        return f"{GUARD}.restore_and_verify({nonces[index] + '-after'!r})" if index in nonces else ""

    return Hooks(on_start=f"{GUARD}.snapshot()", before=before, after=after)


def _guard_report(text: str, nonce: str):
    for line in reversed(text.splitlines()):
        if line.startswith(GUARD_MARKER):
            data = json.loads(line[len(GUARD_MARKER):])
            return data if data.get("nonce") == nonce else None
    return None


def _credit(cell, nonce):
    """Per-check points the cell reported through course_lib.checks.Credit (the last report counts)."""
    for output in reversed(cell.get("outputs", [])):
        data = output.get("data", {}).get(CREDIT_MIME)
        if data is not None:
            return data["checks"] if data.get("nonce") == nonce else None
    return None


def score_cells(nb, report, tampered, nonces=None) -> list:
    """Points per test cell. With nonces (graded runs), the guard's reports decide whether a pass counts."""
    runs = {run.index: run for run in report.cells}
    results = []
    for index, cell in enumerate(nb.cells):
        if not is_test_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        max_points = float(meta.get("points", 0))
        run = runs.get(index)
        status, message, seconds = ("skipped", "not run", 0.0) if run is None else (run.status, run.error, run.seconds)
        replaced = []
        if nonces and run is not None and status in ("ok", "error"):
            before = _guard_report(run.before_text, nonces[index])
            after = _guard_report(run.after_text, nonces[index] + "-after") if status == "ok" else {"replaced": [], "canaries_failed": []}
            if before is None or after is None or before["canaries_failed"] or after["canaries_failed"] or after["replaced"]:
                status = "tampered"
                found = ((before or {}).get("canaries_failed", []) + (after or {}).get("replaced", [])
                         + (after or {}).get("canaries_failed", []))
                silent = run.before_text if before is None else run.after_text
                message = ("the grader could not verify the kernel's state around this test cell: "
                           + (", ".join(found) if found else "its check did not report"
                              + (f" ({silent.strip()[-300:]})" if silent.strip() else "")))
            replaced = (before or {}).get("replaced", [])
        credit = _credit(cell, nonces.get(index)) if nonces and status in ("ok", "error") else None
        if credit is not None:
            points = min(max_points, float(sum(c["points"] for c in credit if c["passed"])))
            failed = [c["message"] for c in credit if not c["passed"]]
            status = "passed" if not failed else ("partial" if points > 0 else "failed")
            message = "; ".join(failed)
        elif status == "ok":
            status, points, message = "passed", max_points, ""
        else:
            points = 0.0
            if status == "error":
                status = "failed" if message.startswith("AssertionError") else "error"
                if message in ("AssertionError: ", "AssertionError"):
                    message = "AssertionError: a check in this cell failed"
        result = CellResult(meta["grade_id"], points, max_points, status, message, seconds, meta["grade_id"] in tampered)
        result.replaced = replaced
        results.append(result)
    return results


def grade_submission(job: GradeJob, scratch_root=None) -> GradeRecord:
    """Grade one submission. Never raises: a failure is recorded in the result."""
    started = time.monotonic()
    record = GradeRecord(job.student, job.lab, version=job.version, received_at=job.received_at,
                         kind=job.kind, fingerprint=job.fingerprint)
    try:
        source = nbformat.from_dict(job.source_notebook)
        release = nbformat.from_dict(job.release_notebook)
        try:
            submission = read_notebook(Path(job.submission), expected_lab=job.lab, data=job.submission_bytes or None)
        except NotebookProblem as problem:
            record.problem = str(problem)
            record.cells = [CellResult(grade_id(c), 0.0, float(nbgrader_meta(c).get("points", 0)), "skipped", "not graded: " + str(problem))
                            for c in source.cells if is_test_cell(c)]
            return record
        nb, tampered = restore_test_cells(submission, source, release)
        with tempfile.TemporaryDirectory(prefix=f"grade-{job.student}-", dir=scratch_root) as scratch:
            sandbox = None
            if job.sandbox:
                prepare_scratch(Path(scratch))
                sandbox = partial(bwrap_prefix, hidden=job.hidden,
                                  limits=Limits(cpu_seconds=int(job.budget * 2) + 60))
            env = kernel_environment(graded=True, extra={"HOME": scratch, "IPYTHONDIR": f"{scratch}/.ipython",
                                                         "MPLCONFIGDIR": f"{scratch}/.matplotlib", "TMPDIR": scratch})
            nonces = {i: secrets.token_hex(8) for i, c in enumerate(nb.cells) if is_test_cell(c)}
            report = run_cells(nb, cwd=scratch, env=env, cell_timeout=job.cell_timeout, budget=job.budget,
                               sandbox=sandbox, hooks=guard_hooks(nonces))
        record.cells = score_cells(nb, report, tampered, nonces)
        record.kernel_restarts = report.kernel_restarts
        record.budget_exhausted = report.budget_exhausted
        record.notebook = nb
    except Exception:  # the grader's own failure must not stop the other students
        record.problem = "grader error: " + traceback.format_exc(limit=3)
    finally:
        record.seconds = time.monotonic() - started
    return record
