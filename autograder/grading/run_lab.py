"""Grading a whole lab: plan one job per version that counts, run them, keep the best per student.

Only this (parent) process writes: the gradebook, autograded/STUDENT/LAB/ and its versions/.
A version already graded against the same source is not graded again unless forced.
"""
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import nbformat
from tqdm import tqdm

from ..course import Course, CourseError, read_roster
from .plan import plan, previous_record, students_of
from .submission import grade_submission
from ..gradebook import save_record
from ..reports import print_grading_summary
from .sandbox import SandboxUnavailable, current_mode, require_sandbox


def run_jobs(todo, jobs=1, dask=None):
    """Yield records as they finish: here (jobs=1), in a local process pool, or on a Dask cluster."""
    if dask:
        from distributed import Client, as_completed as dask_completed

        with Client(dask) as client:
            for future in dask_completed(client.map(grade_submission, todo, pure=False)):
                yield future.result()
    elif jobs <= 1:
        yield from (grade_submission(job) for job in todo)
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            yield from (f.result() for f in as_completed([pool.submit(grade_submission, j) for j in todo]))


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
    with tqdm(total=len(todo), desc=f"grading {lab}", unit="notebook", file=sys.stderr) as bar:
        for record in run_jobs(todo, jobs, dask):
            versions = course.autograded_dir(record.student, lab) / "versions"
            versions.mkdir(parents=True, exist_ok=True)
            (versions / f"{record.version or 'submitted'}.json").write_text(json.dumps(record.to_json(), indent=1))
            if record.notebook is not None:
                nbformat.write(record.notebook, versions / f"{record.version or 'submitted'}.ipynb")
            done.append(record)
            bar.update(1)
    by_student = {}
    for record in done:  # the policy's choice: the best version (ties: the latest)
        best = by_student.get(record.student)
        if best is None or (record.score, record.received_at) > (best.score, best.received_at):
            by_student[record.student] = record
    for record in list(by_student.values()) + records:
        if record.notebook is None and record.version:
            saved = course.autograded_dir(record.student, lab) / "versions" / f"{record.version}.ipynb"
            if saved.exists():
                record.notebook = nbformat.read(saved, as_version=4)
        save_record(course, record, roster)
    kept = sorted(list(by_student.values()) + records, key=lambda r: r.student)
    print_grading_summary(kept, reused, echo)
    return kept
