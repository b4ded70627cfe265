"""Benchmark: `course report` on a class of about 300 graded submissions, against the grading of that class.

Builds CLASSES copies of the tiny lab's synthetic class (tests/report_cohort.py: 18 students, 21 versions each copy;
17 copies = 306 students), grades them with `course grade -j 2` (sandbox on), writes the planted bugs' signatures,
then runs `course report 00_tiny` in a subprocess, as an instructor does. The report only reads what grading saved,
so its time is printed beside the grading's; the last line is `report_s=... students=...`.

Each copy's identical answers make the similarity check's worst case: every student of a copied pair is alike with
the same student of every other copy, so the pairs found grow with the square of the copies.

    flock /work/cpu.lock .venv/bin/python bench/report_scale.py [CLASSES]
"""
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from autograder.collect import collect_folder  # noqa: E402
from autograder.course import Course  # noqa: E402
from autograder.release import release  # noqa: E402
from autograder.signatures import write_signatures  # noqa: E402
from report_cohort import COURSE_TOML, cohort_inbox, roster, student_ids  # noqa: E402
from sample_lab import write_sample_labs  # noqa: E402  (the test lab lives with the tests)

LAB = "00_tiny"


def main(classes: int) -> None:
    with tempfile.TemporaryDirectory(prefix="report-scale-") as top:
        top = Path(top)
        os.environ["COURSE_LABS_DIR"] = str(write_sample_labs(top / "labs"))
        course = Course(top / "course")
        course.root.mkdir()
        course.roster_path.write_text(roster(classes))
        (course.root / "course.toml").write_text(COURSE_TOML)
        release(course, LAB)
        released = nbformat.read(course.release(LAB), as_version=4)
        cohort_inbox(released, top / "inbox", classes)
        assert collect_folder(course, top / "inbox", LAB).ok
        students = len(student_ids(classes))
        course_cmd = [str(Path(sys.executable).parent / "course"), "--course-dir", str(course.root)]
        started = time.monotonic()
        subprocess.run(course_cmd + ["grade", LAB, "-j", "2"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        grading = time.monotonic() - started
        write_signatures(LAB, jobs=2, echo=lambda *a: None)
        started = time.monotonic()
        done = subprocess.run(course_cmd + ["report", LAB], capture_output=True, text=True)
        report = time.monotonic() - started
        if done.returncode:
            sys.exit(done.stdout + done.stderr)
        pairs = next(line for line in done.stdout.splitlines() if line.startswith("similar pairs"))
        page = course.root / "reports" / f"{LAB}.html"
        print(f"students={students}; grading them (course grade -j 2): {grading:.1f} s")
        print(f"course report: {report:.1f} s ({report / grading:.3f} of the grading time); page "
              f"{page.stat().st_size / 1e6:.1f} MB; similar pairs found: {pairs.count('~')}")
        print(f"report_s={report:.2f} students={students}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 17)
