"""Grade one submission: a pipeline of small stages, and one function that runs them.

    read -> restore_test_cells -> execute -> score

`grade_submission(job)` takes everything it needs in the job and returns a plain record;
it writes nothing but its scratch directory. Only the parent process writes the gradebook,
so jobs can run in parallel (or elsewhere) later.
"""
import copy
from functools import partial
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from course_lib.checks import CREDIT_MIME
from course_lib.guard import MARKER

from .execute import kernel_environment, run_cells, stream_text
from .integrity import Guard, without_reports
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
    problem: str = ""            # why the submission could not be graded at all (the student sees it)
    error: str = ""              # the grader's own failure, in full (the instructor alone sees it)
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


def _credit(outputs, nonce):
    """Per-check points the cell reported through course_lib.checks.Credit: the last report before the
    guard's proof that the test ran to its end (later ones come from student code after the test)."""
    credit = None
    for output in outputs:
        if output.get("output_type") == "stream" and MARKER in output.get("text", ""):
            break
        data = output.get("data", {}).get(CREDIT_MIME)
        if data is not None:
            credit = data["checks"] if data.get("nonce") == nonce else None
    return credit


def _verdict(guard, run, index, cell):
    """Why the guard's reports around this test cell do not let it count ("" when they do), and what
    student code had changed before it (put back, so the test ran honestly; reported as tampering)."""
    before = guard.read(run.before_text, index, "before")
    if before is None:
        return "the grader could not verify the kernel's state before this test cell", []
    changed = before.fields["replaced"]
    if before.fields["stack"]:
        return "student code intercepted the grader's check before this test cell: " + ", ".join(before.fields["stack"]), changed
    if before.fields["canaries_failed"]:
        return ("comparisons gave wrong answers to the grader's own check before this test cell: "
                + ", ".join(before.fields["canaries_failed"])), changed
    if run.status != "ok":
        return "", changed
    done = guard.read(stream_text(cell.get("outputs", [])), index, "completed")
    if done is None:
        return "the test code did not run to its end, yet the kernel reported success", changed
    if done.fields["replaced"] or done.fields["stack"]:
        return "changed while the test ran: " + ", ".join(done.fields["replaced"] + done.fields["stack"]), changed
    return "", changed


def score_cells(nb, report, tampered, guard=None) -> list:
    """Points per test cell. With a guard (graded runs and `course check`), its signed reports decide
    whether a cell that ran fine counts."""
    runs = {run.index: run for run in report.cells}
    results, pending = [], []  # pending: changes found after given cells, reported with the next test
    for index, cell in enumerate(nb.cells):
        run = runs.get(index)
        if guard is not None and run is not None and run.status == "ok" and (index, "protect") in guard.nonces:
            checked = guard.read(run.after_text, index, "protect")
            pending += ["the kernel after a given cell could not be verified"] if checked is None else \
                checked.fields["replaced"] + checked.fields["stack"]
        if not is_test_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        max_points = float(meta.get("points", 0))
        status, message, seconds = ("skipped", "not run", 0.0) if run is None else (run.status, run.error, run.seconds)
        replaced, credit = [], None
        if guard is not None and run is not None and status in ("ok", "error"):
            problem, replaced = _verdict(guard, run, index, cell)
            replaced, pending = pending + replaced, []
            if problem:
                status, message = "tampered", problem
            else:
                credit = _credit(cell.get("outputs", []), guard.nonce(index, "before"))
            cell.outputs = without_reports(cell.get("outputs", []))
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


def grade_notebook(submission, source, release, *, scratch, cell_timeout, budget, sandbox=None, hidden=()):
    """restore -> execute (guarded, in the sandbox when asked) -> score, in the scratch directory.

    Returns (test cell results, the run's report, the executed notebook). `course grade` and `course check`
    both grade this way; check passes the release as the source (it has no hidden tests) and no sandbox.
    """
    nb, tampered = restore_test_cells(submission, source, release)
    prefix = None
    if sandbox:
        prepare_scratch(Path(scratch))
        prefix = partial(bwrap_prefix, hidden=hidden, limits=Limits(cpu_seconds=int(budget * 2) + 60))
    env = kernel_environment(graded=True, extra={"HOME": scratch, "IPYTHONDIR": f"{scratch}/.ipython",
                                                 "MPLCONFIGDIR": f"{scratch}/.matplotlib", "TMPDIR": scratch})
    guard = Guard(scratch)
    report = run_cells(nb, cwd=scratch, env=env, cell_timeout=cell_timeout, budget=budget, sandbox=prefix,
                       hooks=guard.hooks())
    return score_cells(nb, report, tampered, guard), report, nb


COULD_NOT_GRADE = "your notebook could not be graded because of a problem on the grader's side; your instructor has the details"


def grade_submission(job: GradeJob, scratch_root=None) -> GradeRecord:
    """Grade one submission. Never raises: a failure is recorded in the result."""
    started = time.monotonic()
    record = GradeRecord(job.student, job.lab, version=job.version, received_at=job.received_at,
                         kind=job.kind, fingerprint=job.fingerprint)
    source = release = None
    try:
        source = nbformat.from_dict(job.source_notebook)
        release = nbformat.from_dict(job.release_notebook)
        try:
            submission = read_notebook(Path(job.submission), expected_lab=job.lab, data=job.submission_bytes or None)
        except NotebookProblem as problem:
            record.problem = str(problem)
            record.cells = _not_graded(source, "not graded: " + str(problem))
            return record
        with tempfile.TemporaryDirectory(prefix=f"grade-{job.student}-", dir=scratch_root) as scratch:
            record.cells, report, record.notebook = grade_notebook(
                submission, source, release, scratch=scratch, cell_timeout=job.cell_timeout, budget=job.budget,
                sandbox=job.sandbox, hidden=job.hidden)
        record.kernel_restarts = report.kernel_restarts
        record.budget_exhausted = report.budget_exhausted
    except Exception:  # the grader's own failure must not stop the other students
        record.problem = COULD_NOT_GRADE  # what the student sees; the instructor sees the error
        record.error = traceback.format_exc(limit=5)
        record.cells = _not_graded(source, "not graded: " + COULD_NOT_GRADE) if source is not None else []
        record.notebook = None
    finally:
        record.seconds = time.monotonic() - started
    return record


def _not_graded(source, why):
    return [CellResult(grade_id(c), 0.0, float(nbgrader_meta(c).get("points", 0)), "skipped", why)
            for c in source.cells if is_test_cell(c)]
