"""Grade one submission: the stages in order, and one function that runs them on a job.

    read and match (matching.py) -> restore.py -> execute.py (in sandbox.py, watched by integrity.py) -> score.py

`grade_submission(job)` takes everything it needs in the job and returns a plain record; it writes
nothing but its scratch directory. Only the parent process writes the gradebook, so jobs can run in
threads, in worker processes or on a Dask cluster (run_lab.py).
"""
import time
import traceback
from pathlib import Path

import nbformat

from ..matching import read_matched
from ..notebooks import NotebookProblem, bonus_ids, grade_id, is_bonus_cell, is_test_cell, nbgrader_meta
from .execute import run_cells
from .kernel_pool import KernelPool, KernelSettings, ReadyKernel, start_ready_kernel
from .records import CellResult, GradeJob, GradeRecord
from .restore import restore_test_cells
from .score import score_cells


def grade_notebook(submission, source, release, *, kernel: ReadyKernel, cell_timeout, budget):
    """restore -> execute (guarded, in the kernel's sandbox if it has one) -> score. The kernel is used up.

    Returns (test cell results, the run's report, the executed notebook); report.restored names the locked cells of
    given code or text that the student had changed (put back before the run). `course grade` and `course check`
    both grade this way; check passes the release as the source (it has no hidden tests) and no sandbox.
    Which cells are bonus cells is the source's say, never the submission's metadata.
    """
    nb, tampered = restore_test_cells(submission, source, release)
    report = run_cells(nb, kernel=kernel.kernel, cell_timeout=cell_timeout, budget=budget, hooks=kernel.hooks)
    report.restored = [gid for gid in tampered if not any(is_test_cell(c) and grade_id(c) == gid for c in nb.cells)]
    return score_cells(nb, report, tampered, kernel.guard, bonus=bonus_ids(source)), report, nb


COULD_NOT_GRADE = "your notebook could not be graded because of a problem on the grader's side; your instructor has the details"


def job_settings(job: GradeJob, scratch_root=None) -> KernelSettings:
    """The kernel a job needs (the same for every job of a lab's grading)."""
    return KernelSettings(sandbox=job.sandbox, hidden=tuple(job.hidden), budget=job.budget,
                          preload=tuple(job.preload), scratch_root=scratch_root, files=tuple(job.files))


def grade_submission(job: GradeJob, scratch_root=None, kernels: KernelPool = None) -> GradeRecord:
    """Grade one submission, in a kernel from the pool if there is one. Never raises: a failure is recorded."""
    started = time.monotonic()
    record = GradeRecord(job.student, job.lab, version=job.version, received_at=job.received_at,
                         kind=job.kind, fingerprint=job.fingerprint, notebook_name=job.notebook_name)
    source = release = None
    try:
        source = nbformat.from_dict(job.source_notebook)
        release = nbformat.from_dict(job.release_notebook)
        try:
            submission, name = read_matched(Path(job.submission), job.lab, job.released or {job.lab: release},
                                            data=job.submission_bytes or None)
            if name != (job.notebook_name or job.lab):
                raise NotebookProblem(f"{Path(job.submission).name}: this is {name}.ipynb of lab {job.lab}, "
                                      f"not {job.notebook_name or job.lab}.ipynb; send it as {name}.ipynb")
        except NotebookProblem as problem:
            record.problem = str(problem)
            record.cells = _not_graded(source, "not graded: " + str(problem))
            return record
        kernel = kernels.take() if kernels is not None else start_ready_kernel(job_settings(job, scratch_root))
        if kernels is not None:
            started = time.monotonic()  # the time this notebook took, not its wait in the queue for a kernel
        try:
            record.cells, report, record.notebook = grade_notebook(
                submission, source, release, kernel=kernel, cell_timeout=job.cell_timeout, budget=job.budget)
        finally:
            kernel.close()
        record.kernel_restarts = report.kernel_restarts
        record.restored = report.restored
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
    return [CellResult(grade_id(c), 0.0, float(nbgrader_meta(c).get("points", 0)), "skipped", why, bonus=is_bonus_cell(c))
            for c in source.cells if is_test_cell(c)]
