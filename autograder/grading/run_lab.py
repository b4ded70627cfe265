"""Grading a whole lab: plan one job per version that counts, run them, keep the best per student.

Only this (parent) process writes: the gradebook, autograded/STUDENT/LAB/ and its versions/.
A version already graded against the same source is not graded again unless forced.
"""
import json
import sys
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed

import nbformat
from tqdm import tqdm

from ..course import Course, CourseError, read_roster
from course_lib.files import write_atomic

from ..gradebook import open_gradebook, save_record, write_notebook
from ..reports import print_grading_summary
from .kernel_pool import KernelPool
from .plan import plan, previous_record, students_of
from .sandbox import SandboxUnavailable, current_mode, require_sandbox
from .submission import grade_submission, job_settings


def run_jobs(todo, jobs=1, dask=None):
    """Yield records as they finish: on a Dask cluster, or here, `jobs` at a time in threads (the work is in
    the kernels, each its own process) with the kernel pool starting the next kernels meanwhile."""
    if dask:
        from distributed import Client, as_completed as dask_completed

        with Client(dask) as client:
            for future in dask_completed(client.map(grade_submission, todo, pure=False)):
                yield future.result()
        return
    if not todo:
        return
    jobs = max(1, jobs)
    with KernelPool(job_settings(todo[0]), count=len(todo), ahead=jobs) as kernels, \
            ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade") as workers:
        futures = [workers.submit(grade_submission, job, kernels=kernels) for job in todo]
        yield from (future.result() for future in as_completed(futures))


def _keep_better(by_student, record):
    """by_student: {(student, notebook name): the record kept}."""
    key = (record.student, record.notebook_name)
    best = by_student.get(key)
    if best is None or (record.score, record.received_at) > (best.score, best.received_at):
        by_student[key] = record


SAVE_FAILED = "could not be saved"


def _save_version(course, record):
    """The version's executed notebook and record under autograded/STUDENT/LAB/versions/; the record last, since a
    rerun reuses a version whose record is there."""
    versions = course.autograded_dir(record.student, record.lab) / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    if record.notebook is not None:
        write_notebook(versions / f"{record.version or 'submitted'}.ipynb", record.notebook)
    write_atomic(versions / f"{record.version or 'submitted'}.json", json.dumps(record.to_json(), indent=1))


def _saving(record, gradebook, save):
    """Run save(); a failure is this record's (the instructor sees it in the summary), never the run's: the other
    students are still graded and saved."""
    try:
        save()
    except Exception as exc:
        gradebook.db.rollback()
        record.error = f"{SAVE_FAILED}: {exc.__class__.__name__}: {exc}\n{traceback.format_exc(limit=3)}" + \
            (f"\n{record.error}" if record.error else "")


def _with_notebook(course, record):
    """A record graded in an earlier run carries no notebook: read the executed one saved with its version."""
    if record.notebook is None and record.version:
        saved = course.autograded_dir(record.student, record.lab) / "versions" / f"{record.version}.ipynb"
        if saved.exists():
            record.notebook = nbformat.read(saved, as_version=4)
    return record


def grade_lab(course: Course, lab: str, students=None, cell_timeout=60.0, budget=300.0, jobs=1,
              force=False, sandbox=True, dask=None, echo=print):
    """Grade every submission of a lab; returns the record kept for each student.

    sandbox=False runs student code with the grader's rights: only for notebooks you trust.
    dask: the address of a Dask scheduler (tcp://HOST:8786) to send the submissions to.
    """
    course.require_release(lab)
    if sandbox:
        try:
            require_sandbox()
        except SandboxUnavailable as exc:
            raise CourseError(str(exc)) from None
        echo(current_mode().describe())
    else:
        echo("sandbox: off (--no-sandbox): student code runs with your rights")
    try:
        roster = read_roster(course.roster_path)
    except CourseError:
        roster = {}
    students = students or students_of(course, lab)
    if not students:
        echo(f"no submissions of {lab} in {course.root}: run `course collect` first")
        return []
    todo, records = plan(course, lab, students, cell_timeout, budget, sandbox)
    done, reused = [], 0
    if not force:
        for job in list(todo):
            previous = previous_record(course, job)
            if previous is not None:
                done.append(previous)
                todo.remove(job)
                reused += 1
    by_student = {}  # the policy's choice: the best version (ties: the latest)
    for record in done:
        _keep_better(by_student, record)
    waiting = Counter((job.student, job.notebook_name) for job in todo)
    with open_gradebook(course) as gradebook, \
            tqdm(total=len(todo), desc=f"grading {lab}", unit="notebook", file=sys.stderr) as bar:
        # a student's kept record is saved as soon as their last version is graded: a stopped run keeps them
        for key in [k for k in by_student if not waiting[k]]:
            kept = by_student[key]
            _saving(kept, gradebook, lambda: save_record(course, _with_notebook(course, kept), roster, gradebook))
        for record in records:
            _saving(record, gradebook, lambda: save_record(course, record, roster, gradebook))
        for record in run_jobs(todo, jobs, dask):
            _saving(record, gradebook, lambda: _save_version(course, record))
            _keep_better(by_student, record)
            key = (record.student, record.notebook_name)
            waiting[key] -= 1
            if not waiting[key]:
                kept = by_student[key]
                _saving(kept, gradebook, lambda: save_record(course, _with_notebook(course, kept), roster, gradebook))
            bar.update(1)
    kept = sorted(list(by_student.values()) + records, key=lambda r: (r.student, r.notebook_name))
    print_grading_summary(kept, reused, echo)
    return kept
