"""What the commands print: collected files, a lab's grading, the grade table. One wording for every
path that leads there (folder or Slack collection, `course grade` or the demo)."""
import sys


def print_collected(report, echo=print, warn=lambda line: print(line, file=sys.stderr)) -> int:
    """A collection's report (folder, Slack or Slack export); returns the exit status. Names are students' choice:
    each line is printed as one line (notebooks.printable)."""
    from .notebooks import printable

    for student, name, version in report.collected:
        echo(printable(f"collected {name} -> {student} (version {version})"))
    for student, name in report.duplicates:
        echo(printable(f"already had: {name} ({student})"))
    for name in report.skipped:
        echo(printable(f"skipped, not a notebook: {name}"))
    for problem in report.problems:
        warn(printable(f"PROBLEM: {problem}"))
    echo(f"{len(report.collected)} collected, {len(report.duplicates)} already had, {len(report.problems)} problems")
    return 0 if report.ok else 1


def print_grading_summary(records, reused, echo=print):
    """One line per student kept, then the totals (course grade)."""
    failed = [r for r in records if r.problem]
    timeouts = sum(1 for r in records for c in r.cells if c.status in ("timeout", "died"))
    errors = sum(1 for r in records for c in r.cells if c.status in ("failed", "error"))
    partial = sum(1 for r in records for c in r.cells if c.status == "partial")
    for r in records:
        note = f"  ({r.problem.splitlines()[0]})" if r.problem else ""
        if r.error:  # the grader's own failure: the instructor sees it here, the student never does
            lines = r.error.strip().splitlines()
            note += (f"\n      grader error: {lines[0]}" if lines[0].startswith("could not be saved") else
                     f"\n      grader error: {lines[-1]} (traceback in {r.student}'s result.json)")
        tamper = f"  tampered: {', '.join(r.tampered)}" if r.tampered else ""
        tamper += f"  given cells changed (put back): {', '.join(r.restored)}" if r.restored else ""
        kind = f" [{r.kind}]" if r.kind and r.kind != "any" else ""
        who = f"{r.student} {r.notebook_name}" if r.notebook_name else r.student
        bonus = f" (bonus {r.bonus:g}/{r.bonus_max:g})" if r.bonus_max else ""
        echo(f"  {who:20s} {r.score:6g} / {r.max_score:g}{bonus}   {r.seconds:5.1f} s{kind}{tamper}{note}")
    if any(r.notebook_name for r in records):  # an assignment of several notebooks: its total per student
        for student in sorted({r.student for r in records}):
            mine = [r for r in records if r.student == student]
            echo(f"  {student:20s} {sum(r.score for r in mine):6g} / {sum(r.max_score for r in mine):g}   in all")
    echo(f"graded {len(records) - len(failed)}, could not grade {len(failed)}, already graded and unchanged {reused}, "
         f"failing test cells {errors}, partly passing {partial}, timeouts or crashes {timeouts}, tampered {sum(bool(r.tampered) for r in records)}")


def print_grades(course, echo=print, versions=False):
    """Per-lab percentages (r: a resubmission counted; +N late: N versions after the window), the final grade."""
    from .collect import selection_for
    from .final_grade import final_grades, graded_items, percent
    from .gradebook import load_result

    labs, quiz = graded_items(course)
    columns = [*labs, quiz] if quiz else list(labs)
    grades = final_grades(course)  # raises (one line) before the header when nothing is graded
    mean = "notebooks".rjust(11) if quiz else ""
    echo("student".ljust(16) + "".join(c[:14].rjust(15) for c in columns) + mean + "final".rjust(9))
    for grade in grades:
        cells = []
        for name in columns:
            value = grade.quiz if name == quiz else grade.labs[name]
            result = load_result(course, grade.student, name) or {}
            mark = "r" if result.get("kind") == "resubmission" else ""
            late = len(selection_for(course, grade.student, name).late)
            mark += f" +{late} late" if late else ""
            cells.append(f"{percent(value)}{mark}".rjust(15) if result else "-".rjust(15))
        mean = percent(grade.notebooks).rjust(11) if quiz else ""
        echo(grade.student[:15].ljust(16) + "".join(cells) + mean + percent(grade.final).rjust(9))
        if versions:
            for name in columns:
                selection = selection_for(course, grade.student, name)
                for v in selection.candidates + [v for v in selection.late if v not in selection.candidates]:
                    counted = v.kind if v.kind != "late" else "late, counted" if v in selection.candidates \
                        else "late, not counted"
                    when = f"received {v.received_at:%Y-%m-%d %H:%M} UTC" if v.received_at else "time unknown"
                    echo(f"    {name}: {v.path.name.split('__')[-1]} {when} ({counted})")
    if quiz:
        echo(f"final = 2/3 x mean of the {len(labs)} lab percentages + 1/3 x {quiz}; a missing lab counts 0")
    else:
        echo(f"final = mean of the {len(labs)} assignment percentages (a missing one counts 0); course.toml "
             "[grading] labs and quiz set another formula")


def print_bundle(plan, path, echo=print, warn=lambda line: print(line, file=sys.stderr)) -> None:
    """What `course bundle` packed, what it left out and why, and where the zip is."""
    for line in plan.warnings:
        warn(f"warning: {line}")
    echo(f"packed: {', '.join(plan.labs)}")
    for lab, why in plan.left_out.items():
        echo(f"left out: {lab} ({why})")
    for name, why in plan.withheld.items():
        echo(f"withheld: {name} ({why})")
    echo(f"student bundle: {path}")
