"""Benchmark: where a lab's graded time goes, per lab, for its reference solution graded as `course grade` does.

Each lab is released into a scratch course; its reference submission is graded once through the grader's own
functions (a sandboxed kernel from start_ready_kernel, then grade_notebook), with Kernel.run and Kernel.start timed
and each call attributed to: kernel start (bubblewrap, IPython), guard start (the guard's snapshot code), preload
(torch, numpy, course_lib imported before the first cell), given cells (locked code), student cells (the
solution cells), test cells (training a test runs is inside them), guard hooks (code run between cells), and the
rest (restore, scoring, messages). Prints one table; graded seconds on one core if run under `taskset -c 0`.

    .venv/bin/python bench/grading_breakdown.py [LAB ...]
"""
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autograder.course import Course, available_labs  # noqa: E402
from autograder.grading import execute, integrity  # noqa: E402
from autograder.grading.kernel_pool import KernelSettings, preloadable, start_ready_kernel  # noqa: E402
from autograder.grading.plan import graded_source  # noqa: E402
from autograder.grading.submission import grade_notebook  # noqa: E402
from autograder.notebooks import grade_id, is_solution_cell, is_test_cell  # noqa: E402
from autograder.planted_bugs import reference_submission  # noqa: E402
from autograder.release import release  # noqa: E402

PARTS = ("kernel start", "guard start", "preload", "given cells", "student cells", "test cells", "guard hooks", "rest")


class Clock:
    """Seconds per part: Kernel.start and Kernel.run timed, each run attributed by the code it ran."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.kinds = {}  # code string the grader sends -> its part
        self.names = {}  # code string of a cell -> the cell's name (grade id, else its first line)
        self.cells = defaultdict(float)  # cell name -> seconds

    def install(self):
        clock, run, start = self, execute.Kernel.run, execute.Kernel.start

        def timed_run(kernel, code, timeout):
            t0 = time.perf_counter()
            try:
                return run(kernel, code, timeout)
            finally:
                part = clock.kinds.get(code, "preload" if code.startswith("for _m in") else "guard hooks")
                clock.seconds[part] += time.perf_counter() - t0
                if code in clock.names:
                    clock.cells[clock.names[code]] += time.perf_counter() - t0

        def timed_start(kernel):
            t0 = time.perf_counter()
            try:
                return start(kernel)
            finally:
                clock.seconds["kernel start"] += time.perf_counter() - t0

        execute.Kernel.run, execute.Kernel.start = timed_run, timed_start

        def undo():
            execute.Kernel.run, execute.Kernel.start = run, start
        return undo

    def label_cells(self, hooks):
        """Wrap the hooks so that the code each returns is known by part."""
        on_start, source = hooks.on_start, hooks.source

        def labelled_start():
            code = on_start()
            self.kinds[code] = "guard start"
            return code

        def labelled_source(index, cell):
            code = source(index, cell) if source else cell.source
            self.kinds[code] = ("test cells" if is_test_cell(cell) else "student cells" if is_solution_cell(cell)
                                else "given cells")
            first = next((line for line in cell.source.splitlines() if line.strip()), "")[:40]
            self.names[code] = f"{self.kinds[code].split()[0]} {grade_id(cell) or repr(first)}"
            return code

        hooks.on_start, hooks.source = labelled_start, labelled_source


def breakdown(lab: str, work: Path) -> dict:
    course = Course(work / lab)
    release(course, lab)
    source = graded_source(course, lab, lab)
    released = nbformat.read(course.release(lab), as_version=4)
    submission = reference_submission(released, nbformat.read(course.source(lab), as_version=4))
    files = tuple((relative, (course.source_dir(lab) / relative).read_bytes()) for relative in course.files(lab))
    settings = KernelSettings(sandbox=True, hidden=(str(course.root),), budget=300.0,
                              preload=tuple(dict.fromkeys(preloadable(source))), files=files)
    clock = Clock()
    # start_ready_kernel runs hooks.on_start() itself: label the code by wrapping the guard's hooks as they are made
    make_hooks = integrity.Guard.hooks

    def labelled_hooks(guard):
        hooks = make_hooks(guard)
        clock.label_cells(hooks)
        return hooks

    integrity.Guard.hooks = labelled_hooks
    undo = clock.install()
    started = time.perf_counter()
    try:
        kernel = start_ready_kernel(settings)
        try:
            results, _, _ = grade_notebook(submission, source, released, kernel=kernel, cell_timeout=120.0, budget=300.0)
        finally:
            kernel.close()
    finally:
        integrity.Guard.hooks = make_hooks
        undo()
    total = time.perf_counter() - started
    seconds = dict(clock.seconds)
    seconds["rest"] = total - sum(seconds.values())
    score = sum(r.points for r in results if not r.bonus)
    most = sum(r.max_points for r in results if not r.bonus)
    slowest = sorted(clock.cells.items(), key=lambda item: -item[1])[:4]
    return {"total": total, "score": f"{score:g}/{most:g}", "slowest": slowest, **seconds}


def main():
    labs = sys.argv[1:] or [lab for lab in available_labs() if lab != "quiz"]
    work = Path(tempfile.mkdtemp(prefix="bench-breakdown-"))
    cores = len(os.sched_getaffinity(0))
    print(f"reference of each lab graded once, sandboxed, on {cores} core(s); seconds")
    print(f"{'lab':<20}{'score':>8}{'total':>8}" + "".join(f"{p:>15}" for p in PARTS))
    for lab in labs:
        row = breakdown(lab, work)
        print(f"{lab:<20}{row['score']:>8}{row['total']:>8.1f}" + "".join(f"{row.get(p, 0.0):>15.1f}" for p in PARTS),
              flush=True)
        print(" " * 20 + "slowest cells: " + "; ".join(f"{name} {sec:.1f} s" for name, sec in row["slowest"]), flush=True)


if __name__ == "__main__":
    main()
