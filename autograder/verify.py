"""`course verify LAB`: run a lab's source notebook in full, check every number it promises."""
import datetime
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass

import nbformat
from nbformat.v4 import new_code_cell

from course_lib.budget import TIME_CAP_VARIABLE

from .course import CourseError, lab_source_notebook
from .grading.execute import kernel_environment, run_cells
from .grading.score import score_cells
from .lab_time import record_timings
from .notebooks import is_test_cell, visible_test_source

MARKER = "__COURSE_PROMISES__"


@dataclass
class PromiseResult:
    name: str
    value: object
    target: str
    ok: bool


def promise_cell(promises) -> str:
    return (
        "import json as _json\n"
        f"_promises = {json.dumps([[p['name'], p['expr']] for p in promises])}\n"
        "_values = {}\n"
        "for _name, _expr in _promises:\n"
        "    try:\n"
        "        _values[_name] = float(eval(_expr))\n"
        "    except Exception as _exc:\n"
        "        _values[_name] = f'{type(_exc).__name__}: {_exc}'\n"
        f"print({MARKER!r} + _json.dumps(_values))\n"
    )


def check_promise(promise, value) -> PromiseResult:
    if "expected" in promise:
        target = f"{promise['expected']} ± {promise.get('tol', 0)}"
        ok = isinstance(value, float) and abs(value - promise["expected"]) <= promise.get("tol", 0)
    elif "at_least" in promise:
        target = f">= {promise['at_least']}"
        ok = isinstance(value, float) and value >= promise["at_least"]
    elif "at_most" in promise:
        target = f"<= {promise['at_most']}"
        ok = isinstance(value, float) and value <= promise["at_most"]
    else:
        target, ok = "(no target given)", False
    return PromiseResult(promise["name"], value, target, ok)


def verify_lab(lab: str, graded: bool = False, cell_timeout=900.0, budget=1200.0, echo=print,
               record_times: bool = False) -> bool:
    """Execute labs/LAB/LAB.ipynb; every test cell must pass and every promise hold. With record_times (a full run
    at time caps x 1 that passed), write each code cell's seconds into the lab's timings.json for the time model:
    that run is the student's, the test cells without their hidden tests."""
    source = lab_source_notebook(lab)
    nb = nbformat.read(source, as_version=4)
    if record_times:
        for cell in nb.cells:
            if is_test_cell(cell):
                cell.source = visible_test_source(cell.source)
    promises = nb.metadata.get("course", {}).get("promises", [])
    checked = [p for p in promises if not (graded and p.get("full_only"))]
    nb.cells.append(new_code_cell(promise_cell(checked)))
    mode = ("graded" if graded else "full") + (", visible tests only, timing each cell" if record_times else "")
    caps = float(os.environ.get(TIME_CAP_VARIABLE, "1"))
    if caps != 1:
        mode += f", time caps x {caps:g}"
    if record_times and (graded or caps != 1):
        raise CourseError(f"verify {lab} --record-times: the time model reads a full run (no --graded, no "
                          "--time-caps); run it again without them")
    echo(f"== verify {lab} ({mode} mode): executing the reference notebook ...")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"verify-{lab}-") as scratch:
        report = run_cells(nb, cwd=scratch, env=kernel_environment(graded=graded),
                           cell_timeout=cell_timeout, budget=budget)
    seconds = time.monotonic() - started
    ok = True
    failed_code = [r for r in report.cells[:-1] if r.status != "ok"]
    for run in failed_code:
        ok = False
        echo(f"  cell {run.index}: {run.status}: {run.error}")
    tests = score_cells(nb, report, [])
    passed = sum(t.status == "passed" for t in tests)
    core = [t for t in tests if not t.bonus]
    bonus = [t for t in tests if t.bonus]
    extras = f"; bonus {sum(t.points for t in bonus):g}/{sum(t.max_points for t in bonus):g}" if bonus else ""
    echo(f"  test cells: {passed}/{len(tests)} pass ({sum(t.points for t in core):g}/{sum(t.max_points for t in core):g}"
         f" points{extras})")
    # the reference must earn every point, the bonus cells' too (they are graded like the core's)
    ok &= passed == len(tests)
    values = {}
    for out in nb.cells[-1].outputs:
        if out.get("output_type") == "stream" and MARKER in out.get("text", ""):
            values = json.loads(out["text"].split(MARKER, 1)[1].strip().splitlines()[0])
    for promise in promises:
        if graded and promise.get("full_only"):  # a number only full training reaches
            echo(f"  [skip] {promise['name']}" + ("" if "full run only" in promise["name"] else " (full run only)"))
            continue
        result = check_promise(promise, values.get(promise["name"], "not computed"))
        ok &= result.ok
        shown = f"{result.value:.6g}" if isinstance(result.value, float) else result.value
        echo(f"  [{'ok' if result.ok else 'FAIL'}] {result.name}: {shown} (promised {result.target})")
    slowest = sorted(report.cells, key=lambda r: -r.seconds)[:3]
    echo(f"  time: {seconds:.1f} s in all; slowest cells: " + ", ".join(f"#{r.index} {r.seconds:.1f} s" for r in slowest))
    if record_times and ok:
        # report.cells[:-1]: the promise cell appended above is not a cell of the lab
        path = record_timings(source, nb, report.cells[:-1], machine=f"{platform.machine()}, {os.cpu_count()} cores, "
                              f"{platform.python_implementation()} {platform.python_version()}",
                              date=datetime.date.today().isoformat())
        echo(f"  cell times recorded in {path} (python -m autograder.lab_time {source} reads them)")
    elif record_times:
        echo("  cell times not recorded: the run did not pass")
    echo(f"== {lab} ({mode}): {'PASS' if ok else 'FAIL'}")
    return ok
