"""Grade one submission: the stages in order, and one function that runs them on a job.

    read -> restore.py -> execute.py (in sandbox.py, watched by integrity.py) -> score.py

`grade_submission(job)` takes everything it needs in the job and returns a plain record; it writes
nothing but its scratch directory. Only the parent process writes the gradebook, so jobs can run in
threads, in worker processes or on a Dask cluster (run_lab.py).
"""
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

import nbformat

from ..notebooks import NotebookProblem, grade_id, is_test_cell, nbgrader_meta, read_notebook
from .execute import kernel_environment, run_cells
from .integrity import Guard
from .records import CellResult, GradeJob, GradeRecord
from .restore import restore_test_cells
from .sandbox import Limits, bwrap_prefix, prepare_scratch
from .score import score_cells


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
