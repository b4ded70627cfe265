"""`make demo`: lab 1 through the whole course cycle, offline, in a fresh course directory."""
import os
import shutil
import time
from pathlib import Path

import nbformat

from .course import Course
from .grading.sandbox import sandbox_available
from .planted_bugs import apply_bugs, load_bugs, reference_submission

LAB = "01_micrograd"
ROSTER = """id,first_name,last_name,email
ada,Ada,Lovelace,ada@example.edu
brian,Brian,"Kernighan, Jr.",brian@example.edu
chen,Chen,Li,chen@example.edu
"""


def run_demo(root: Path, echo=print) -> int:
    from .grading.run_lab import grade_lab
    from .collect import collect_folder
    from .export import EXPORTERS
    from .feedback import write_feedback
    from .bundle import plan_bundle, write_bundle
    from .release import release
    from .reports import print_bundle, print_collected, print_grades

    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    course = Course(root)
    course.root.mkdir(parents=True)
    course.roster_path.write_text(ROSTER)

    def step(text):
        echo(f"\n[{time.monotonic() - started:5.1f} s] {text}")

    step(f"course release {LAB}")
    echo(f"  {release(course, LAB)}")
    step("course bundle")
    plan = plan_bundle(course)
    print_bundle(plan, write_bundle(course, plan), echo=lambda s: echo("  " + s), warn=lambda s: echo("  " + s))

    step("three students send their notebooks to the inbox")
    inbox = course.root / "inbox"
    inbox.mkdir()
    src = nbformat.read(course.source(LAB), as_version=4)
    rel = nbformat.read(course.release(LAB), as_version=4)
    reference = reference_submission(rel, src)
    bugs = load_bugs(LAB)
    nbformat.write(reference, inbox / f"ada_{LAB}.ipynb")
    nbformat.write(rel, inbox / f"brian - {LAB} (1).ipynb")
    nbformat.write(apply_bugs(reference, bugs[:2]), inbox / f"chen@example.edu_{LAB}.ipynb")
    echo("  ada: the reference solution; brian: the untouched release; "
         f"chen: typical bugs ({', '.join(b.name for b in bugs[:2])})")

    step(f"course collect folder {inbox.name} --assignment {LAB}")
    report = collect_folder(course, inbox, LAB)
    print_collected(report, echo=lambda s: echo("  " + s), warn=lambda s: echo("  " + s))

    step(f"course grade {LAB}")
    sandbox = sandbox_available()
    if not sandbox:
        echo("  note: bubblewrap is not usable here; the demo's own notebooks are graded without the sandbox "
             "(real submissions need it: sudo apt-get install bubblewrap)")
    records = {r.student: r for r in grade_lab(course, LAB, jobs=min(2, os.cpu_count() or 1), sandbox=sandbox,
                                               echo=lambda s: echo("  " + s))}

    step(f"course feedback {LAB}")
    for path in write_feedback(course, LAB):
        echo(f"  {path.relative_to(course.root)}")
    step("course export")
    for name, exporter in EXPORTERS.items():
        echo(f"  {name}: {exporter(course).relative_to(course.root)}")
    step("course grades")
    print_grades(course, echo=lambda s: echo("  " + s))

    full, chen = records["ada"].max_score, records["chen"]
    # chen's bugs are in the core; the (*) extras, answered, make up for them up to the core maximum
    ok = records["ada"].score == full and records["brian"].score == 0 and 0 < chen.core_score < full
    echo(f"\ndemo {'OK' if ok else 'FAILED'} in {time.monotonic() - started:.0f} s: reference {records['ada'].score:g}/{full:g}, "
         f"untouched release {records['brian'].score:g}, buggy core {chen.core_score:g}/{full:g} (with the extras' "
         f"bonus {chen.score:g}) (course directory: {course.root})")
    return 0 if ok else 1
