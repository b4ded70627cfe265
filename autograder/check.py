"""`course check NOTEBOOK`: for students, run the notebook the way the grader will and explain."""
import tempfile
from pathlib import Path

from .execute import kernel_environment, run_cells
from .grade import score_cells
from .notebooks import NotebookProblem, is_solution_cell, is_test_cell, lab_of, nbgrader_meta, read_notebook


def check_notebook(path: Path, echo=print, cell_timeout=120.0, budget=600.0) -> bool:
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
    tests = [c for c in nb.cells if is_test_cell(c)]
    total = sum(float(nbgrader_meta(c).get("points", 0)) for c in tests)
    unanswered = [nbgrader_meta(c).get("grade_id") for c in nb.cells
                  if is_solution_cell(c) and "raise NotImplementedError" in c.source]
    echo(f"{path.name}: lab {lab}; {len(tests)} graded test cells worth {total:g} points.")
    echo("Running it as the grader will (small training budgets, CPU) ...")
    with tempfile.TemporaryDirectory(prefix="course-check-") as scratch:
        report = run_cells(nb, cwd=scratch, env=kernel_environment(graded=True), cell_timeout=cell_timeout, budget=budget)
    results = score_cells(nb, report, [])
    for r in results:
        mark = "passes" if r.status == "passed" else "FAILS"
        line = f"  {r.grade_id} ({r.max_points:g} points): {mark} the visible tests"
        if r.status != "passed":
            line += f" - {r.message}"
        echo(line)
    crashed = [run for run in report.cells if run.status in ("timeout", "died")]
    for run in crashed:
        echo(f"  cell {run.index}: {run.error}")
    if unanswered:
        echo(f"Still to answer (they raise NotImplementedError): {', '.join(unanswered)}")
    passing = sum(r.status == "passed" for r in results)
    echo(f"{passing} of {len(results)} test cells pass their visible tests in {report.seconds:.0f} s. "
         "Hidden tests also run when your notebook is graded, so passing here is necessary, not sufficient.")
    return passing == len(results) and not crashed
