"""Grading a whole lab: plan one job per version that counts, run them, keep the best per student.

Only this (parent) process writes: the gradebook, autograded/STUDENT/LAB/ and its versions/.
A version already graded against the same source is not graded again unless forced.
"""
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

import nbformat
from tqdm import tqdm

from ..collect import selection_for
from ..course import Course, CourseError, read_roster
from .records import CellResult, GradeJob, GradeRecord
from .submission import grade_submission
from ..gradebook import save_record
from ..notebooks import is_test_cell, nbgrader_meta
from .sandbox import SandboxUnavailable, current_mode, require_sandbox


def _fingerprint(submission_bytes: bytes, source_bytes: bytes) -> str:
    return hashlib.sha256(hashlib.sha256(submission_bytes).digest() + source_bytes).hexdigest()


def students_of(course: Course, lab: str) -> list:
    found = set(course.submitted_students(lab))
    received = course.root / "received"
    if received.exists():
        found |= {p.name for p in received.iterdir() if (p / lab).is_dir()}
    return sorted(found)


def plan(course: Course, lab: str, students, cell_timeout, budget, sandbox=True):
    """(jobs, records of students with nothing to grade)."""
    source_bytes = course.source(lab).read_bytes()
    source = nbformat.reads(source_bytes.decode(), as_version=4)
    release = nbformat.read(course.release(lab), as_version=4)
    jobs, nothing = [], []
    for student in students:
        selection = selection_for(course, student, lab)
        versions = [(v.path, v.received_at.isoformat(), v.kind) for v in selection.candidates]
        submitted = course.submitted_dir(student, lab) / f"{lab}.ipynb"
        if not versions and not selection.late and submitted.exists():
            versions = [(submitted, "", "any")]  # placed there by hand or by nbgrader's own tools
        if not versions:
            why = "only late versions were received" if selection.late else "no valid notebook was received"
            nothing.append(GradeRecord(student, lab, problem=why, cells=[
                CellResult(nbgrader_meta(c)["grade_id"], 0.0, float(nbgrader_meta(c).get("points", 0)), "skipped", why)
                for c in source.cells if is_test_cell(c)]))
            continue
        for path, received_at, kind in versions:
            data = path.read_bytes()
            jobs.append(GradeJob(student, lab, str(path), source, release, cell_timeout, budget,
                                 version=path.name, received_at=received_at, kind=kind,
                                 fingerprint=_fingerprint(data, source_bytes),
                                 sandbox=sandbox, hidden=(str(course.root),), submission_bytes=data))
    return jobs, nothing


def _previous(course: Course, job: GradeJob):
    path = course.autograded_dir(job.student, job.lab) / "versions" / f"{job.version}.json"
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("fingerprint") == job.fingerprint:
            return GradeRecord.from_json(data)
    return None


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
            previous = _previous(course, job)
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
    summarise(kept, reused, echo)
    return kept


def summarise(records, reused, echo):
    failed = [r for r in records if r.problem]
    timeouts = sum(1 for r in records for c in r.cells if c.status in ("timeout", "died"))
    errors = sum(1 for r in records for c in r.cells if c.status in ("failed", "error"))
    for r in records:
        note = f"  ({r.problem.splitlines()[0]})" if r.problem else ""
        if r.error:  # the grader's own failure: the instructor sees it here, the student never does
            note += f"\n      grader error: {r.error.strip().splitlines()[-1]} (traceback in {r.student}'s result.json)"
        tamper = f"  tampered: {', '.join(r.tampered)}" if r.tampered else ""
        kind = f" [{r.kind}]" if r.kind and r.kind != "any" else ""
        echo(f"  {r.student:20s} {r.score:6g} / {r.max_score:g}   {r.seconds:5.1f} s{kind}{tamper}{note}")
    echo(f"graded {len(records) - len(failed)}, could not grade {len(failed)}, already graded and unchanged {reused}, "
         f"failing test cells {errors}, timeouts or crashes {timeouts}, tampered {sum(bool(r.tampered) for r in records)}")
