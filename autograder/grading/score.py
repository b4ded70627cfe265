"""Stage 3: points per test cell, from the run's statuses, the guard's signed reports and partial credit."""
from course_lib.asserts import CREDIT_MIME
from course_lib.guard import MARKER

from ..notebooks import bonus_ids, is_test_cell, nbgrader_meta
from .execute import stream_text
from .integrity import without_reports
from .records import CellResult


def _credit(outputs, nonce):
    """Per-check points the cell reported through course_lib.checks.Credit: the last report before the
    guard's proof that the test ran to its end (later ones come from student code after the test)."""
    credit = None
    for output in outputs:
        if output.get("output_type") == "stream" and MARKER in output.get("text", ""):
            break
        data = output.get("data", {}).get(CREDIT_MIME)
        if data is not None:
            credit = data["checks"] if data.get("nonce") == nonce else None
    return credit


def _verdict(guard, run, index, cell):
    """Why the guard's reports around this test cell do not let it count ("" when they do), and what
    student code had changed before it (put back, so the test ran honestly; reported as tampering)."""
    before = guard.read(run.before_text, index, "before")
    if before is None:
        return "the grader could not verify the kernel's state before this test cell", []
    changed = before.fields["replaced"]
    if before.fields["stack"]:
        return "student code intercepted the grader's check before this test cell: " + ", ".join(before.fields["stack"]), changed
    if before.fields["canaries_failed"]:
        return ("comparisons gave wrong answers to the grader's own check before this test cell: "
                + ", ".join(before.fields["canaries_failed"])), changed
    if run.status != "ok":
        return "", changed
    done = guard.read(stream_text(cell.get("outputs", [])), index, "completed")
    if done is None:
        return "the test code did not run to its end, yet the kernel reported success", changed
    if done.fields["replaced"] or done.fields["stack"]:
        return "changed while the test ran: " + ", ".join(done.fields["replaced"] + done.fields["stack"]), changed
    return "", changed


def score_cells(nb, report, tampered, guard=None, bonus=None) -> list:
    """Points per test cell. With a guard (graded runs and `course check`), its signed reports decide
    whether a cell that ran fine counts. bonus: the grade ids of the bonus cells, from the instructor's source
    (a submission's own metadata must not decide); None reads nb's (verify runs the source itself)."""
    bonus = bonus_ids(nb) if bonus is None else set(bonus)
    runs = {run.index: run for run in report.cells}
    results, pending = [], []  # pending: changes found after given cells, reported with the next test
    for index, cell in enumerate(nb.cells):
        run = runs.get(index)
        if guard is not None and run is not None and run.status == "ok" and (index, "protect") in guard.nonces:
            checked = guard.read(run.after_text, index, "protect")
            pending += ["the kernel after a given cell could not be verified"] if checked is None else \
                checked.fields["replaced"] + checked.fields["stack"]
        if not is_test_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        max_points = float(meta.get("points", 0))
        status, message, seconds = ("skipped", "not run", 0.0) if run is None else (run.status, run.error, run.seconds)
        replaced, credit = [], None
        if guard is not None and run is not None and status in ("ok", "error"):
            problem, replaced = _verdict(guard, run, index, cell)
            replaced, pending = pending + replaced, []
            if problem:
                status, message = "tampered", problem
            else:
                credit = _credit(cell.get("outputs", []), guard.nonce(index, "before"))
            cell.outputs = without_reports(cell.get("outputs", []))
        if credit is not None:
            points = min(max_points, float(sum(c["points"] for c in credit if c["passed"])))
            failed = [c["message"] for c in credit if not c["passed"]]
            status = "passed" if not failed else ("partial" if points > 0 else "failed")
            message = "; ".join(failed)
        elif status == "ok":
            status, points, message = "passed", max_points, ""
        else:
            points = 0.0
            if status == "error":
                status = "failed" if message.startswith("AssertionError") else "error"
                if message in ("AssertionError: ", "AssertionError"):
                    message = "AssertionError: a check in this cell failed"
        result = CellResult(meta["grade_id"], points, max_points, status, message, seconds, meta["grade_id"] in tampered,
                            bonus=meta["grade_id"] in bonus)
        result.replaced = replaced
        results.append(result)
    return results
