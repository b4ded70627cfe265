"""The `course` command: instructors release, collect, grade, give feedback and export; students check."""
import argparse
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .course import Course, CourseError, available_labs, read_roster


def cmd_release(args):
    from .release import release

    path = release(Course(args.course_dir), args.lab)
    print(f"released {args.lab}: {path}")


def cmd_bundle(args):
    from .release import bundle

    print(f"student bundle: {bundle(Course(args.course_dir), args.out)}")


def cmd_collect_folder(args):
    from .collect import collect_folder

    report = collect_folder(Course(args.course_dir), Path(args.folder), args.assignment)
    for student, name, version in report.collected:
        print(f"collected {name} -> {student} ({args.assignment}, version {version})")
    for student, name in report.duplicates:
        print(f"already collected: {name} ({student})")
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"{len(report.collected)} collected, {len(report.duplicates)} already had, {len(report.problems)} problems")
    return 0 if report.ok else 1


def grade_lab(course: Course, lab: str, students=None, cell_timeout=60.0, budget=300.0, jobs=1, echo=print):
    """Grade every submission of a lab; returns the records. Only this process writes the gradebook."""
    import nbformat
    from tqdm import tqdm

    from .grade import GradeJob, grade_submission
    from .gradebook import save_record

    course.require_release(lab)
    source = nbformat.read(course.source(lab), as_version=4)
    release = nbformat.read(course.release(lab), as_version=4)
    try:
        roster = read_roster(course.roster_path)
    except CourseError:
        roster = {}
    students = students or course.submitted_students(lab)
    if not students:
        echo(f"no submissions of {lab} in {course.root / 'submitted'}: run `course collect` first")
        return []
    job_list = [GradeJob(s, lab, str(course.submitted_dir(s, lab) / f"{lab}.ipynb"), source, release, cell_timeout, budget)
                for s in students]
    records = []
    with tqdm(total=len(job_list), desc=f"grading {lab}", unit="notebook", file=sys.stderr) as bar:
        if jobs <= 1:
            results = (grade_submission(job) for job in job_list)
        else:
            pool = ProcessPoolExecutor(max_workers=jobs)
            results = (f.result() for f in as_completed([pool.submit(grade_submission, j) for j in job_list]))
        for record in results:
            save_record(course, record, roster)
            records.append(record)
            bar.update(1)
    if jobs > 1:
        pool.shutdown()
    failed = [r for r in records if r.problem]
    timeouts = sum(1 for r in records for c in r.cells if c.status in ("timeout", "died"))
    errors = sum(1 for r in records for c in r.cells if c.status in ("failed", "error"))
    for r in sorted(records, key=lambda r: r.student):
        note = f"  ({r.problem.splitlines()[0]})" if r.problem else ""
        tamper = f"  tampered: {', '.join(r.tampered)}" if r.tampered else ""
        echo(f"  {r.student:20s} {r.score:6g} / {r.max_score:g}   {r.seconds:5.1f} s{tamper}{note}")
    echo(f"graded {len(records) - len(failed)}, could not grade {len(failed)}, "
         f"failing test cells {errors}, timeouts or crashes {timeouts}, tampered {sum(bool(r.tampered) for r in records)}")
    return records


def cmd_grade(args):
    records = grade_lab(Course(args.course_dir), args.lab, args.student, args.timeout, args.budget, args.jobs)
    return 1 if (not records or any(r.problem for r in records)) else 0


def cmd_feedback(args):
    from .feedback import write_feedback

    files = write_feedback(Course(args.course_dir), args.lab)
    print(f"wrote {len(files)} feedback files under {Course(args.course_dir).root / 'feedback'}")
    return 0 if files else 1


def cmd_export(args):
    from .export import export_csv

    print(f"grades: {export_csv(Course(args.course_dir), args.out)}")


def print_grades(course: Course, echo=print):
    from .export import grade_table

    header, rows = grade_table(course)
    totals = [i for i, h in enumerate(header) if h.endswith(" score")]
    echo("student".ljust(20) + "".join(header[i][:-6].rjust(16) for i in totals))
    for row in rows:
        echo(row[0].ljust(20) + "".join(f"{row[i]}/{row[i + 1]}".rjust(16) for i in totals))


def cmd_grades(args):
    print_grades(Course(args.course_dir))


def cmd_check(args):
    from .check import check_notebook

    return 0 if check_notebook(Path(args.notebook)) else 1


def cmd_verify(args):
    from .verify import verify_lab

    labs = [args.lab] if args.lab else available_labs()
    results = {lab: verify_lab(lab, graded=args.graded) for lab in labs}
    return 0 if all(results.values()) else 1


def cmd_demo(args):
    from .demo import run_demo

    # the demo never touches a real course: it works in ./demo-course unless told otherwise
    return run_demo(Path("demo-course" if args.course_dir == "course" else args.course_dir))


def cmd_data(args):
    from course_lib import data

    return data.cli([args.action, *args.names])


def build_parser():
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    parser.add_argument("--course-dir", default="course", help="the instructor's course directory (default ./course)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="generate the student version of a lab")
    p.add_argument("lab")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("bundle", help="zip the released notebooks with course_lib for students")
    p.add_argument("--out")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("collect", help="collect submissions")
    where = p.add_subparsers(dest="source", required=True)
    f = where.add_parser("folder", help="from a folder of notebooks named by student id")
    f.add_argument("folder")
    f.add_argument("--assignment", "-a", required=True, help="the lab, e.g. 01_micrograd")
    f.set_defaults(func=cmd_collect_folder)

    p = sub.add_parser("grade", help="autograde the submissions of a lab against the hidden tests")
    p.add_argument("lab")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per cell (default 60)")
    p.add_argument("--budget", type=float, default=300.0, help="seconds per notebook (default 300)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("feedback", help="an HTML feedback file per student (hidden test code not shown)")
    p.add_argument("lab")
    p.set_defaults(func=cmd_feedback)
    p = sub.add_parser("export", help="CSV of per-lab and per-cell scores")
    p.add_argument("--out")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("grades", help="print the gradebook")
    p.set_defaults(func=cmd_grades)

    p = sub.add_parser("check", help="(students) run your notebook as the grader would")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("verify", help="(instructors) run a lab's reference in full and check its promised numbers")
    p.add_argument("lab", nargs="?")
    p.add_argument("--graded", action="store_true", help="run with the small grading budgets instead")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="the whole course cycle on lab 1 in a fresh course directory")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("data", help="datasets: where each one is found, or fetch one")
    p.add_argument("action", nargs="?", choices=["status", "fetch"], default="status")
    p.add_argument("names", nargs="*")
    p.set_defaults(func=cmd_data)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
