"""Benchmark: grading throughput with the sandbox on, at -j 2 and -j 1, against plain `nbgrader autograde`.

Generates N submissions of the sample lab (correct, partly wrong, crashing with os._exit, looping
forever), grades them with `course grade` (bubblewrap sandbox, integrity guard, seeding) at -j 2 and
at -j 1, then with nbgrader 0.9.6's own `nbgrader autograde` on the same submitted/ folder, all with
the same per-cell timeout. Then nbgrader's own documentation course (from the installed wheel: ps1, two
notebooks and an image, students bitdiddle and hacker) as it is, with `course grade ps1 -j 2` against
`nbgrader autograde ps1`, checking both give the same totals. Prints each time; the last line is
`submissions_per_s=...` for -j 2 on the sample lab.

    .venv/bin/python bench/grading_throughput.py [N] [--timeout SECONDS]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from autograder.course import COURSE_ID, Course  # noqa: E402
from autograder.grading.run_lab import grade_lab  # noqa: E402
from autograder.release import release  # noqa: E402
from autograder.grading.sandbox import current_mode  # noqa: E402
from sample_lab import write_sample_labs  # noqa: E402  (the test lab lives with the tests)
from autograder.planted_bugs import apply_bugs, load_bugs, reference_submission  # noqa: E402

LAB = "00_tiny"


def make_submissions(course: Course, n: int) -> dict:
    source = nbformat.read(course.source(LAB), as_version=4)
    released = nbformat.read(course.release(LAB), as_version=4)
    reference = reference_submission(released, source)
    wrong = apply_bugs(reference, load_bugs(LAB)[:1])
    crashing = nbformat.from_dict(reference)
    crashing.cells.insert(4, new_code_cell("import os\nos._exit(1)"))
    looping = nbformat.from_dict(reference)
    looping.cells.insert(2, new_code_cell("while True:\n    pass"))
    kinds = [("correct", reference)] * 2 + [("wrong", wrong), ("crashing", crashing), ("correct", reference),
                                            ("wrong", wrong), ("correct", reference), ("looping", looping)]
    made = {}
    for i in range(n):
        kind, nb = kinds[i % len(kinds)]
        student = f"s{i:03d}_{kind}"
        folder = course.submitted_dir(student, LAB)
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{LAB}.ipynb")
        (folder / "timestamp.txt").write_text("2026-10-05 17:00:00.000000 UTC")
        made[student] = kind
    return made


def timed(label, fn):
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label}: {seconds:.1f} s", flush=True)
    return seconds, result


def docs_course(work: Path, timeout: float, env: dict):
    """(course seconds, nbgrader seconds, same totals?) on nbgrader's documentation course, copied as it is."""
    import nbgrader
    from autograder.gradebook import open_gradebook

    docs = Path(nbgrader.__file__).parent / "docs" / "source" / "user_guide"
    ours, theirs = work / "docs-ours", work / "docs-theirs"
    for target in (ours, theirs):
        for part in ("source", "submitted"):
            shutil.copytree(docs / part, target / part)
    subprocess.run(["nbgrader", "generate_assignment", "ps1", "--force"], cwd=theirs, env=env, capture_output=True, check=True)
    os.environ["COURSE_LABS_DIR"] = str(work / "no-labs")  # ps1 comes from the course's own source/
    release(Course(ours), "ps1")
    quiet = lambda line: None  # noqa: E731
    course_s, _ = timed("docs course: course grade ps1 -j 2 (sandboxed)",
                        lambda: grade_lab(Course(ours), "ps1", cell_timeout=timeout, jobs=2, force=True, echo=quiet))
    nbgrader_s, _ = timed("docs course: nbgrader autograde ps1 (no sandbox, sequential)",
                          lambda: subprocess.run(["nbgrader", "autograde", "ps1", "--force",
                                                  f"--Execute.timeout={int(timeout)}"], cwd=theirs, env=env,
                                                 capture_output=True, text=True))
    totals = []
    for folder in (ours, theirs):
        with open_gradebook(Course(folder)) as gb:
            totals.append({s.student.id: s.score for s in gb.find_assignment("ps1").submissions})
    print(f"docs course totals: course {totals[0]}, nbgrader {totals[1]}")
    return course_s, nbgrader_s, totals[0] == totals[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=5.0, help="per-cell timeout for every grader")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    os.environ["COURSE_LABS_DIR"] = str(write_sample_labs(work / "labs"))
    course = Course(work / "course")
    course.root.mkdir()
    release(course, LAB)
    kinds = make_submissions(course, args.n)
    nbgrader_copy = work / "nbgrader-course"
    shutil.copytree(course.root, nbgrader_copy)
    print(current_mode().describe())  # root mode or unprivileged mode: run it as each to compare
    print(f"{args.n} submissions: " + ", ".join(f"{k} {list(kinds.values()).count(k)}" for k in sorted(set(kinds.values()))))

    quiet = lambda line: None  # noqa: E731
    j2, records = timed("course grade -j 2 (sandboxed)",
                        lambda: grade_lab(course, LAB, cell_timeout=args.timeout, jobs=2, force=True, echo=quiet))
    j1, _ = timed("course grade -j 1 (sandboxed)",
                  lambda: grade_lab(course, LAB, cell_timeout=args.timeout, jobs=1, force=True, echo=quiet))
    scores = {r.student: r.score for r in records}
    expected = {"correct": 5, "wrong": 3, "crashing": 5, "looping": 5}
    wrong_scores = {s: scores[s] for s, k in kinds.items() if scores[s] != expected[k]}
    if wrong_scores:
        print(f"unexpected scores: {wrong_scores}")

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    command = ["nbgrader", "autograde", LAB, "--force", f"--CourseDirectory.root={nbgrader_copy}",
               f"--CourseDirectory.course_id={COURSE_ID}", f"--Execute.timeout={int(args.timeout)}"]
    nb_seconds, proc = timed("nbgrader autograde (no sandbox, sequential)",
                             lambda: subprocess.run(command, env=env, capture_output=True, text=True))
    if proc.returncode not in (0, 1):
        print(proc.stderr[-2000:])

    print(f"per submission: -j 2 {j2 / args.n:.2f} s, -j 1 {j1 / args.n:.2f} s, nbgrader {nb_seconds / args.n:.2f} s")
    print(f"throughput vs nbgrader autograde: -j 2 {nb_seconds / j2:.2f}x, -j 1 {nb_seconds / j1:.2f}x; "
          f"-j 2 vs -j 1: {j1 / j2:.2f}x")
    docs_ours, docs_theirs, same = docs_course(work, args.timeout, env)
    print(f"nbgrader's documentation course: course grade -j 2 {docs_ours:.1f} s, nbgrader autograde {docs_theirs:.1f} s, "
          f"{docs_theirs / docs_ours:.2f}x; same totals: {'yes' if same else 'NO'}")
    shutil.rmtree(work, ignore_errors=True)
    print(f"submissions_per_s={args.n / j2:.3f}")
    return 1 if wrong_scores or not same else 0


if __name__ == "__main__":
    sys.exit(main())
