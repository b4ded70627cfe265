"""Feedback for students: their executed notebook as HTML, with test results but no hidden test code."""
import copy
import html
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell, new_output

from .course import Course
from .gradebook import load_result
from .notebooks import is_test_cell, nbgrader_meta


def redact(nb, result: dict):
    """A copy of the autograded notebook safe to show the student, with a score summary on top."""
    nb = copy.deepcopy(nb)
    by_id = {c["grade_id"]: c for c in result["cells"]}
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        res = by_id.get(meta.get("grade_id"), {})
        verdict = "passed" if res.get("status") == "passed" else f"{res.get('status', 'not run')}"
        cell.source = f"# Test cell {meta.get('grade_id')} ({meta.get('points', 0):g} points): the test code is not shown."
        text = f"{verdict}: {res.get('points', 0):g} / {res.get('max_points', meta.get('points', 0)):g} points"
        if res.get("message"):
            text += f"\n{res['message']}"
        if res.get("tampered"):
            text += "\nThis test cell had been edited in your notebook; the original was run."
        cell.outputs = [new_output("stream", name="stdout", text=text + "\n")]
    rows = "\n".join(
        f"| {c['grade_id']} | {c['points']:g} / {c['max_points']:g} | {c['status']} | {html.escape(c['message'][:200]).replace('|', '/')} |"
        for c in result["cells"]
    )
    summary = (
        f"# Feedback: {result['lab']}\n\n**Score: {result['score']:g} / {result['max_score']:g}**\n\n"
        f"| test | points | result | message |\n|---|---|---|---|\n{rows}\n"
    )
    if result.get("problem"):
        summary += f"\n**Your notebook could not be graded:** {html.escape(result['problem'])}\n"
    nb.cells.insert(0, new_markdown_cell(summary))
    return nb


def write_feedback(course: Course, lab: str, students=None) -> list[Path]:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    written = []
    for student in students or course.submitted_students(lab):
        result = load_result(course, student, lab)
        if result is None:
            continue
        notebook_path = course.autograded_dir(student, lab) / f"{lab}.ipynb"
        nb = nbformat.read(notebook_path, as_version=4) if notebook_path.exists() else nbformat.v4.new_notebook()
        body, _ = exporter.from_notebook_node(redact(nb, result))
        out = course.feedback_file(student, lab)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(body, encoding="utf-8")
        written.append(out)
    return written
