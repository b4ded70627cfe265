"""What one planted bug costs: each lab's reference and every planted bug of its bugs.toml, graded in full.

Grades the reference solution and one submission per planted bug (the whole notebook, not only up to the
bug's listed failures, unlike tests/test_labs.py) the way `course grade` does (sandbox, guard, hidden
tests, two notebooks at a time), then prints per lab: the points, the worst single bug (name, share of the
points lost), the median share, and per bug the test cells it failed and the points it lost.

    .venv/bin/python bench/planted_bug_cost.py LAB [LAB ...] [--jobs 2] [--timeout 120] [--budget 300]

Issue 13's bar: no single planted bug loses more than 30% of a lab's core points, the median at most 12%
(bonus cells, the optional (*) extras, count neither in the points lost nor in the total).
Takes about a minute per notebook on a 2-core machine (lab 1: the reference and its bugs, 10-20 min).
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.course import Course  # noqa: E402
from autograder.grading.kernel_pool import preloadable  # noqa: E402
from autograder.grading.records import GradeJob  # noqa: E402
from autograder.grading.run_lab import run_jobs  # noqa: E402
from autograder.planted_bugs import apply_bugs, released_with_bugs  # noqa: E402

WORST_BAR, MEDIAN_BAR = 30.0, 12.0  # percent of a lab's core points


def grade_lab_bugs(lab, workdir, jobs=2, cell_timeout=120.0, budget=300.0):
    """{"reference" or bug name: its GradeRecord}, and the bugs."""
    course = Course(Path(workdir) / lab / "course")
    course.root.mkdir(parents=True)
    source, released, reference, bugs = released_with_bugs(course, lab)
    submissions = {"reference": reference}
    submissions.update({bug.name: apply_bugs(reference, [bug]) for bug in bugs})
    todo = []
    for name, nb in submissions.items():
        path = course.root / f"{name}.ipynb"
        nbformat.write(nb, path)
        todo.append(GradeJob(name, lab, str(path), source, released, cell_timeout=cell_timeout, budget=budget,
                             preload=preloadable(source)))
    return {record.student: record for record in run_jobs(todo, jobs=jobs)}, bugs


def report(lab, records, bugs, seconds, echo=print):
    """Print the lab's table; returns (worst %, median %) or None when the reference is not at full marks."""
    ref = records["reference"]
    total = ref.max_score  # the core's points: bonus cells count neither in the total nor in what a bug loses
    extras = f" (+ {ref.bonus_max:g} bonus points, not counted here)" if ref.bonus_max else ""
    echo(f"== {lab}: {total:g} core points{extras}; reference {ref.core_score:g}/{total:g}, bonus {ref.bonus:g}/"
         f"{ref.bonus_max:g}, in {ref.seconds:.0f} s; {len(bugs)} planted bugs; graded in {seconds:.0f} s")
    wrong = [(c.grade_id, c.status, c.message[:200]) for c in ref.cells if c.status != "passed"]
    if wrong or ref.problem or ref.error:
        echo(f"   the reference does not get full marks: {wrong} {ref.problem} {ref.error}")
    if not bugs or not total:
        return None
    rows = []
    for bug in bugs:
        record = records[bug.name]
        lost = total - record.core_score  # core points only: a bonus cell passed must not hide a core loss
        failed = [f"{c.grade_id}" + (" [bonus]" if c.bonus else "") + (f"({c.points:g}/{c.max_points:g})" if c.points else "")
                  for c in record.cells if c.status != "passed"]
        missed = sorted(set(bug.fails) - {c.grade_id for c in record.cells if c.status != "passed"})
        rows.append((100.0 * lost / total, lost, bug.name, failed, missed, record))
    shares = [r[0] for r in rows]
    worst = max(rows, key=lambda r: r[0])
    median = statistics.median(shares)
    ok = worst[0] <= WORST_BAR and median <= MEDIAN_BAR
    echo(f"   worst single bug: {worst[2]} loses {worst[1]:g} points ({worst[0]:.0f}%); median {median:.1f}%  "
         f"[bar: worst <= {WORST_BAR:g}%, median <= {MEDIAN_BAR:g}%: {'met' if ok else 'NOT met'}]")
    echo(f"   {'bug':34s} {'lost':>5s} {'%':>4s}  failed cells (points kept where partial)")
    for share, lost, name, failed, missed, record in sorted(rows, key=lambda r: (-r[0], r[2])):
        extra = f"  [listed in fails but passed: {', '.join(missed)}]" if missed else ""
        extra += f"  [{record.problem or record.error.splitlines()[-1]}]" if record.problem or record.error else ""
        echo(f"   {name:34s} {lost:5g} {share:4.0f}  {', '.join(failed) or '-'}{extra}")
    return worst[0], median


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="+")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="per-cell timeout (s)")
    parser.add_argument("--budget", type=float, default=300.0, help="per-notebook budget (s)")
    args = parser.parse_args(argv)
    status = 0
    with tempfile.TemporaryDirectory(prefix="planted-bug-cost-") as workdir:
        for lab in args.labs:
            started = time.monotonic()
            records, bugs = grade_lab_bugs(lab, workdir, args.jobs, args.timeout, args.budget)
            result = report(lab, records, bugs, time.monotonic() - started)
            if result is None or result[0] > WORST_BAR or result[1] > MEDIAN_BAR:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
