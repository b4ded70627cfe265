"""The `course` command: instructors release, collect, grade, give feedback and export; students check."""
import argparse
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from course_lib.budget import TIME_CAP_VARIABLE

from .course import Course, CourseError, available_labs


def cmd_release(args):
    from .release import idle_test_cells, release

    course = Course(args.course_dir)
    path = release(course, args.lab)
    for line in idle_test_cells(course, args.lab):
        print(f"warning: {line}", file=sys.stderr)
    print(f"released {args.lab}: {path}")


def cmd_bundle(args):
    from .bundle import plan_bundle, write_bundle
    from .reports import print_bundle

    course = Course(args.course_dir)
    plan = plan_bundle(course, args.labs, force=args.force)
    print_bundle(plan, write_bundle(course, plan, args.out))


def cmd_collect_folder(args):
    from .collect import collect_folder
    from .reports import print_collected

    report = collect_folder(Course(args.course_dir), Path(args.folder), args.assignment)
    return print_collected(report)


def cmd_collect_slack(args):
    from .reports import print_collected
    from .slack.api import collect_slack, parse_when
    from .slack.client import load_token, make_client

    token = load_token()
    report = collect_slack(Course(args.course_dir), make_client(token), token, args.lab, args.channel,
                           parse_when(args.since), parse_when(args.until), dms=not args.no_dms)
    return print_collected(report)


def cmd_collect_slack_export(args):
    from course_lib import data

    from .reports import print_collected
    from .slack.client import load_token
    from .slack.export_archive import collect_export

    offline = args.offline or data.offline()
    try:
        token = None if offline else load_token()  # export links carry their own token; the bot's is optional
    except CourseError:
        token = None
    report = collect_export(Course(args.course_dir), Path(args.export), Path(args.files) if args.files else None,
                            token, args.lab, offline)
    return print_collected(report)


def cmd_slack_bot(args):
    from .slack.client import APP_TOKEN_VARIABLE, load_token, make_client
    from .slack.receipt_bot import run_bot

    token = load_token()
    run_bot(Course(args.course_dir), make_client(token), token, load_token(APP_TOKEN_VARIABLE))


def cmd_grade(args):
    from .grading.run_lab import grade_lab

    from .nbgrader_settings import cell_timeout

    course = Course(args.course_dir)
    if args.preview:
        from .regrade_preview import preview, print_preview

        if args.student:
            raise CourseError("--preview grades every student of the lab; leave out --student")
        changes = preview(course, args.lab, cell_timeout(course, args.timeout), args.budget, args.jobs,
                          sandbox=not args.no_sandbox, dask=args.dask)
        print_preview(changes, course, args.lab, len(course.submitted_students(args.lab)))
        return 0
    records = grade_lab(course, args.lab, args.student, cell_timeout(course, args.timeout), args.budget, args.jobs,
                        force=args.force, sandbox=not args.no_sandbox, dask=args.dask)
    return 1 if (not records or any(r.problem or r.error for r in records)) else 0


def cmd_report(args):
    from .lab_report import print_summary, write_report

    report, path = write_report(Course(args.course_dir), args.lab, args.archive or ())
    print_summary(report, path)


def cmd_signatures(args):
    from .signatures import write_signatures

    write_signatures(args.lab, jobs=args.jobs)


def cmd_feedback(args):
    from .feedback import write_feedback
    from .policy import feedback_release, is_quiz, load_config

    config = load_config(Course(args.course_dir))
    release_at = feedback_release(config, args.lab)
    if release_at is not None and datetime.now(timezone.utc) < release_at and not args.force:
        raise CourseError(f"{args.lab} is graded once: its per-question feedback goes out after its last deadline, "
                          f"{release_at.isoformat(timespec='minutes')}; run `course feedback {args.lab}` then "
                          "(--force sends it now)")
    if release_at is None and is_quiz(config, args.lab):
        print(f"warning: course.toml gives no session_end for {args.lab}, so its deadline is unknown and its "
              "per-question feedback goes out now; a student who still can resubmit could use it", file=sys.stderr)
    problems = []
    files = write_feedback(Course(args.course_dir), args.lab, problems=problems)
    for problem in problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print(f"wrote {len(files)} feedback files under {Course(args.course_dir).root / 'feedback'}")
    if args.slack and files:
        from .slack.client import load_token, make_client
        from .slack.send_feedback import send_feedback

        report = send_feedback(Course(args.course_dir), args.lab, make_client(load_token()))
        for student, score in report.sent:
            print(f"sent to {student} on Slack: {score}")
        for problem in report.problems:
            print(f"PROBLEM: {problem}", file=sys.stderr)
        print(f"{len(report.sent)} sent on Slack, {len(report.unchanged)} unchanged since last sent")
        return 1 if report.problems or problems else 0
    return 0 if files and not problems else 1


def cmd_export(args):
    from .export import EXPORTERS, FORMATS

    from .gradebook import require_grades

    course, failed = Course(args.course_dir), 0
    require_grades(course)  # one line, not one per format, when there is nothing to export
    for name in (FORMATS if args.format == "all" else [args.format]):
        try:
            print(f"{name}: {EXPORTERS[name](course, args.out if args.format != 'all' else None)}")
        except CourseError as exc:
            print(f"{name}: not written: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def cmd_grades(args):
    from .reports import print_grades

    print_grades(Course(args.course_dir), versions=args.versions)


def cmd_check(args):
    from .student_check import RELEASED, check_notebook

    # a student's bundle keeps the releases in course_lib/released; an instructor's course in release/
    return 0 if check_notebook(Path(args.notebook), released_folders=(RELEASED, Course(args.course_dir).root / "release")) else 1


def cmd_verify(args):
    from .verify import verify_lab

    labs = [args.lab] if args.lab else available_labs()
    if args.time_caps <= 0:
        raise CourseError(f"--time-caps {args.time_caps}: give a positive factor, e.g. 0.5 for a CPU half as fast")
    os.environ[TIME_CAP_VARIABLE] = str(args.time_caps)  # the kernel inherits it (course_lib.budget.time_cap)
    results = {lab: verify_lab(lab, graded=args.graded, record_times=args.record_times) for lab in labs}
    return 0 if all(results.values()) else 1


def cmd_demo(args):
    from .demo import run_demo

    # the demo never touches a real course: it works in ./demo-course unless told otherwise
    return run_demo(Path("demo-course" if args.course_dir == "course" else args.course_dir))


def cmd_data(args):
    from course_lib import data

    return data.fetch_datasets(args.names) if args.action == "fetch" else data.print_status()


def build_parser():
    parser = argparse.ArgumentParser(prog="course", description=__doc__)
    parser.add_argument("--course-dir", default="course", help="the instructor's course directory (default ./course)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="generate the student version of a lab")
    p.add_argument("lab")
    p.set_defaults(func=cmd_release)
    p = sub.add_parser("bundle", help="zip the released labs whose session has started with course_lib, for students")
    p.add_argument("--out")
    p.add_argument("--labs", nargs="+", metavar="LAB", help="pack these released labs (default: those whose session "
                   "has started, by course.toml)")
    p.add_argument("--force", action="store_true",
                   help="pack even what holds answers of a lab whose resubmission window is still open")
    p.set_defaults(func=cmd_bundle)

    p = sub.add_parser("collect", help="collect submissions")
    where = p.add_subparsers(dest="source", required=True)
    f = where.add_parser("folder", help="from a folder of notebooks named by student id")
    f.add_argument("folder")
    f.add_argument("--assignment", "-a", required=True, help="the lab, e.g. 01_micrograd")
    f.set_defaults(func=cmd_collect_folder)
    f = where.add_parser("slack", help="from Slack: course channels, thread replies, DMs to the bot (SLACK_BOT_TOKEN)")
    f.add_argument("--lab", help="collect only this lab (default: every released lab)")
    f.add_argument("--channel", action="append", help="only this channel, by name or id (repeatable; default: all the bot is in)")
    f.add_argument("--since", help="only messages after this date-time, e.g. 2026-09-28")
    f.add_argument("--until", help="only messages before this date-time")
    f.add_argument("--no-dms", action="store_true", help="skip direct messages to the bot")
    f.set_defaults(func=cmd_collect_slack)
    f = where.add_parser("slack-export", help="from a Slack workspace export zip")
    f.add_argument("export", help="the export's .zip")
    f.add_argument("--files", help="a folder holding the shared files (e.g. from slackdump), matched by file id")
    f.add_argument("--lab", help="collect only this lab (default: every released lab)")
    f.add_argument("--offline", action="store_true", help="do not download files missing from the zip and --files")
    f.set_defaults(func=cmd_collect_slack_export)

    p = sub.add_parser("grade", help="autograde the submissions of a lab against the hidden tests")
    p.add_argument("lab")
    p.add_argument("--student", action="append", help="grade only this student (repeatable)")
    p.add_argument("--timeout", type=float, help="seconds per cell (default: nbgrader_config.py's "
                   "ExecutePreprocessor.timeout, else 60)")
    p.add_argument("--budget", type=float, default=300.0, help="seconds per notebook (default 300)")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1,
                   help="submissions graded at once (default: the number of cores)")
    p.add_argument("--dask", metavar="tcp://HOST:8786", help="send the submissions to this Dask scheduler")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded and unchanged")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run student code without bubblewrap isolation (only for notebooks you trust)")
    p.add_argument("--preview", action="store_true",
                   help="grade the lab as its source is now in a scratch course and list whose score would change; "
                        "the gradebook and results are left as they are")
    p.set_defaults(func=cmd_grade)
    p = sub.add_parser("report", help="the class report of a graded lab: scores, tests, typical and new mistakes, "
                                      "similar submissions (reports/LAB.html, instructor only)")
    p.add_argument("lab")
    p.add_argument("--archive", action="append", metavar="DIR",
                   help="also compare with an earlier term's submissions: its course directory or a folder of "
                        "notebooks (repeatable; course.toml [similarity] archives lists them too)")
    p.set_defaults(func=cmd_report)
    p = sub.add_parser("signatures", help="(developers) grade a lab's planted bugs and write the checks each one fails "
                                          "(labs/LAB/bug_signatures.json)")
    p.add_argument("lab")
    p.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    p.set_defaults(func=cmd_signatures)

    p = sub.add_parser("feedback", help="an HTML feedback file per student (hidden test code not shown)")
    p.add_argument("lab")
    p.add_argument("--slack", action="store_true", help="also send each student their score and feedback by Slack DM")
    p.add_argument("--force", action="store_true", help="the quiz's feedback before its deadline has passed")
    p.set_defaults(func=cmd_feedback)
    p = sub.add_parser("slack-bot", help="answer each notebook sent on Slack with a receipt (Socket Mode)")
    p.set_defaults(func=cmd_slack_bot)
    p = sub.add_parser("export", help="grades: CSV (per lab and cell), per-question CSV, Canvas, Moodle, Gradescope")
    p.add_argument("--format", default="all", choices=["all", "csv", "questions", "canvas", "moodle", "gradescope"])
    p.add_argument("--out", help="output path (with a single --format)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("grades", help="print the gradebook: lab percentages, quiz, final grade")
    p.add_argument("--versions", action="store_true", help="also list every version received and whether it counts")
    p.set_defaults(func=cmd_grades)

    p = sub.add_parser("check", help="(students) run your notebook as the grader would")
    p.add_argument("notebook")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("verify", help="(instructors) run a lab's reference in full and check its promised numbers")
    p.add_argument("lab", nargs="?")
    p.add_argument("--graded", action="store_true", help="run with the small grading budgets instead")
    p.add_argument("--time-caps", type=float, default=1.0, metavar="FACTOR",
                   help="multiply every training time cap (0.5: what a CPU half as fast would reach)")
    p.add_argument("--record-times", action="store_true",
                   help="write each code cell's seconds into labs/LAB/timings.json, for the time model "
                        "(docs/time-model.md; a full run only)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("demo", help="the whole course cycle on lab 1 in a fresh course directory")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("data", help="datasets: where each one is found, or fetch one")
    what = p.add_subparsers(dest="action")
    what.add_parser("status", help="where each dataset was found, or why not (the default)")
    f = what.add_parser("fetch", help="download datasets from their canonical source into the cache, checksummed")
    f.add_argument("names", nargs="+", metavar="NAME", help="a dataset of data/MANIFEST.json, or all")
    p.set_defaults(func=cmd_data)
    return parser


# what the student package (the bundle) runs; every other command needs the instructor install, whose
# modules and packages (nbgrader, ...) the student package leaves out
STUDENT_COMMANDS = ("check", "data")
INSTRUCTOR_INSTALL = "in a clone of the course repository: pip install -e '.[instructor]' (or make setup)"


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if args.command in STUDENT_COMMANDS:
            raise
        print(f"error: course {args.command} is an instructor command, and this install lacks what it needs "
              f"({exc.name}): install the instructor package, {INSTRUCTOR_INSTALL}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
