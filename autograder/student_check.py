"""`course check NOTEBOOK`: for students, grade the notebook the way the grader will, on the visible tests.

The same stages as `course grade` (test cells restored from the released notebook, the guard around
every test cell, per-check credit), without the sandbox (it is the student's own machine) and with
the release standing in for the source (a student has no hidden tests).
"""
from pathlib import Path

import nbformat

from .grading.kernel_pool import KernelSettings, start_ready_kernel
from .grading.submission import grade_notebook
from .notebooks import (NotebookProblem, is_bonus_cell, is_solution_cell, is_test_cell, lab_of, nbgrader_meta,
                        notebook_of, read_notebook)

RELEASED = Path(__file__).resolve().parent.parent / "course_lib" / "released"  # the bundle's pristine releases


def released_copy(lab: str, folders=(RELEASED,), notebook: str = None):
    """The notebook of lab (its notebook `notebook`, in an assignment of several) as it was released (the bundle
    keeps a copy), or None."""
    name = notebook or lab
    for folder in folders:
        for path in (Path(folder) / f"{name}.ipynb", Path(folder) / lab / f"{name}.ipynb"):  # a bundle, a course's release/
            if path.is_file():
                return nbformat.read(path, as_version=4)
    return None


def check_notebook(path: Path, echo=print, cell_timeout=120.0, budget=600.0, released_folders=(RELEASED,)) -> bool:
    path = Path(path)
    try:
        nb = read_notebook(path)
    except NotebookProblem as problem:
        echo(f"cannot check: {problem}")
        return False
    except FileNotFoundError:
        echo(f"cannot check: {path} does not exist")
        return False
    lab = lab_of(nb)
    if lab is None:
        echo(f"{path.name} carries no course metadata: start from the released notebook of your lab.")
        return False
    release = released_copy(lab, released_folders, notebook_of(nb))
    if release is None:
        echo(f"note: no released copy of {lab} was found in {', '.join(map(str, released_folders))}: test cells you "
             "edited are checked as you left them (the grader puts back the originals).")
        release = nb
    tests = [c for c in release.cells if is_test_cell(c)]
    total = sum(float(nbgrader_meta(c).get("points", 0)) for c in tests if not is_bonus_cell(c))
    bonus_total = sum(float(nbgrader_meta(c).get("points", 0)) for c in tests if is_bonus_cell(c))
    extras = f" (and {bonus_total:g} bonus points in the optional extras)" if bonus_total else ""
    unanswered = [nbgrader_meta(c).get("grade_id") for c in nb.cells
                  if is_solution_cell(c) and "raise NotImplementedError" in c.source]
    echo(f"{path.name}: lab {lab}; {len(tests)} graded test cells worth {total:g} points{extras}.")
    echo("Running it as the grader will (small training budgets, CPU, the released test cells) ...")
    kernel = start_ready_kernel(KernelSettings(sandbox=False, budget=budget))
    try:
        results, report, _ = grade_notebook(nb, release, release, kernel=kernel, cell_timeout=cell_timeout, budget=budget)
    finally:
        kernel.close()
    for r in results:
        kind = "bonus points" if r.bonus else "points"
        if r.status == "passed":
            line = f"  {r.grade_id}: passes the visible tests ({r.points:g} of {r.max_points:g} {kind})"
        else:
            line = f"  {r.grade_id}: {r.points:g} of {r.max_points:g} {kind} ({r.status}) - {r.message}"
        if r.tampered:
            line += " [this test cell was edited in your notebook: the original was run]"
        if r.replaced:
            line += f" [changed before this test and put back by the grader: {', '.join(r.replaced)}]"
        echo(line)
    crashed = [run for run in report.cells if run.status in ("timeout", "died")]
    for run in crashed:
        echo(f"  cell {run.index}: {run.error}")
    if unanswered:
        echo(f"Still to answer (they raise NotImplementedError): {', '.join(unanswered)}")
    passing = sum(r.status == "passed" for r in results)
    core = sum(r.points for r in results if not r.bonus)
    bonus = sum(r.points for r in results if r.bonus)
    points = min(total, core + bonus)  # bonus points make up for lost core points, never beyond 100%
    if bonus_total:
        echo(f"Core: {core:g} of {total:g} points; bonus: {bonus:g} of {bonus_total:g} points; together {points:g} of "
             f"{total:g} (bonus points make up for core points lost; a lab's grade never goes above 100%).")
    echo(f"{passing} of {len(results)} test cells pass their visible tests: {points:g} of {total:g} points, "
         f"in {report.seconds:.0f} s. Hidden tests also run when your notebook is graded, so this is the most "
         "you can expect, not a promise.")
    return passing == len(results) and not crashed
