"""Feedback for students: their executed notebook as HTML, with test results but no hidden test code.

What a student sees never holds the grader's internals: a grader failure reads "could not be graded"
(the traceback stays in result.json), and the instructor's folders (the repository, the course directory,
the Python installation, the home directory, the grading scratch) are replaced by neutral names.
"""
import copy
import html
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbformat.v4 import new_markdown_cell, new_output

from .course import REPO_ROOT, Course, labs_dir
from .gradebook import load_notebook_result
from .notebooks import is_test_cell, nbgrader_meta
from .signatures import planted_bug_notes


def _instructor_folders(course: Course):
    """(folder, what the student reads instead), longest first so that nested folders are named precisely."""
    folders = {str(course.root): "<course>", str(labs_dir()): "<labs>", str(REPO_ROOT): "<course software>",
               sys.prefix: "<python>", sys.base_prefix: "<python>", str(Path.home()): "<home>"}
    found = {os.path.realpath(k): v for k, v in folders.items() if k and k != os.sep}
    found.update({k: v for k, v in folders.items() if k and k != os.sep})
    return sorted(found.items(), key=lambda kv: -len(kv[0]))


def student_safe(text: str, course: Course) -> str:
    """text with the grader's scratch folder and the instructor's folders replaced by neutral names."""
    if not text:
        return text
    text = re.sub(re.escape(os.path.realpath(tempfile.gettempdir())) + r"/grade-[^/\s'\"]+", "<your notebook's folder>", text)
    text = re.sub(re.escape(tempfile.gettempdir()) + r"/grade-[^/\s'\"]+", "<your notebook's folder>", text)
    for folder, name in _instructor_folders(course):
        text = text.replace(folder, name)
    return text


def _safe_output(output, course):
    output = copy.deepcopy(output)
    if "text" in output:
        output["text"] = student_safe(output["text"], course)
    if "traceback" in output:
        output["traceback"] = [student_safe(line, course) for line in output["traceback"]]
    if "evalue" in output:
        output["evalue"] = student_safe(output["evalue"], course)
    for mime, value in output.get("data", {}).items():
        if isinstance(value, str) and mime.startswith("text/"):
            output["data"][mime] = student_safe(value, course)
    return output


def redact(nb, result: dict, course: Course, notes: dict = None):
    """A copy of the autograded notebook safe to show the student, with a score summary on top. notes: {test cell:
    [the words of a planted bug its failure matches]} (signatures.planted_bug_notes: only once the window closed)."""
    notes = notes or {}
    nb = copy.deepcopy(nb)
    by_id = {c["grade_id"]: c for c in result["cells"]}
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [_safe_output(o, course) for o in cell.outputs]
        if not is_test_cell(cell):
            continue
        meta = nbgrader_meta(cell)
        res = by_id.get(meta.get("grade_id"), {})
        kind = "bonus points" if res.get("bonus") else "points"
        verdict = "passed" if res.get("status") == "passed" else f"{res.get('status', 'not run')}"
        cell.source = f"# Test cell {meta.get('grade_id')} ({meta.get('points', 0):g} {kind}): the test code is not shown."
        text = f"{verdict}: {res.get('points', 0):g} / {res.get('max_points', meta.get('points', 0)):g} {kind}"
        if res.get("message"):
            text += f"\n{student_safe(res['message'], course)}"
        if res.get("tampered"):
            text += "\nThis test cell had been edited in your notebook; the original was run."
        for words in notes.get(meta.get("grade_id"), []):
            text += f"\nA common mistake fails this test the same way: {words}."
        cell.outputs = [new_output("stream", name="stdout", text=text + "\n")]
    rows = "\n".join(
        f"| {c['grade_id']}{' (bonus)' if c.get('bonus') else ''} | {c['points']:g} / {c['max_points']:g} | {c['status']} | "
        f"{html.escape(student_safe(c['message'], course)[:200]).replace('|', '/')} |"
        for c in result["cells"]
    )
    summary = (
        f"# Feedback: {result['lab']}{' / ' + result['notebook_name'] if result.get('notebook_name') else ''}\n\n**Score: {result['score']:g} / {result['max_score']:g}**\n\n"
        + _bonus_line(result) +
        f"| test | points | result | message |\n|---|---|---|---|\n{rows}\n"
    )
    if result.get("restored"):
        summary += (f"\nYou had changed given cells that are not yours to change ({', '.join(result['restored'])}): "
                    "they were put back as released before your notebook ran.\n")
    if notes:
        summary += ("\nYour failed tests fail the way a common mistake does (the resubmission window has closed, so "
                    "here it is):\n\n" + "".join(f"- {test}: {html.escape(words)}\n" for test, all_words in notes.items()
                                                 for words in all_words))
    if result.get("problem"):
        summary += f"\n**Your notebook could not be graded:** {html.escape(student_safe(result['problem'], course))}\n"
    nb.cells.insert(0, new_markdown_cell(summary))
    return nb


def _bonus_line(result: dict) -> str:
    """How the bonus cells (the optional (*) extras) counted, for a lab that has them ("" otherwise)."""
    bonus = [c for c in result["cells"] if c.get("bonus")]
    if not bonus:
        return ""
    core = sum(c["points"] for c in result["cells"] if not c.get("bonus"))
    earned, possible = sum(c["points"] for c in bonus), sum(c["max_points"] for c in bonus)
    line = (f"Core tests: {core:g} / {result['max_score']:g} points. Bonus tests (the optional extras, marked "
            f"\"(bonus)\"): {earned:g} / {possible:g} points, added to the core points to make up for points lost "
            "there; a lab's grade never goes above 100%")
    if earned and core + earned > result["max_score"]:
        line += f" ({core + earned - result['max_score']:g} of your bonus points went beyond 100% and do not count)"
    return line + ".\n\n"


def write_feedback(course: Course, lab: str, students=None, problems: list = None) -> list[Path]:
    """One HTML file per graded notebook; returns those written. A notebook whose feedback cannot be made (what a
    student's code printed breaks the converter, ...) gets its line in `problems`, and the others are written."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab")
    written = []
    for student in students or course.submitted_students(lab):
        for name in course.notebooks(lab):  # one file per notebook of the assignment, as nbgrader's feedback
            try:
                out = _write_one(course, exporter, student, lab, name)
            except Exception as exc:
                if problems is None:
                    raise
                problems.append(f"{student}: no feedback for {name}.ipynb ({exc.__class__.__name__}: "
                                f"{str(exc)[:200]}); its result is in {course.result_file(student, lab, name)}")
                continue
            if out is not None:
                written.append(out)
    return written


def _write_one(course: Course, exporter, student: str, lab: str, name: str) -> Path | None:
    result = load_notebook_result(course, student, lab, name)
    if result is None:
        return None
    notebook_path = course.autograded_dir(student, lab) / f"{name}.ipynb"
    nb = nbformat.read(notebook_path, as_version=4) if notebook_path.exists() else nbformat.v4.new_notebook()
    notes = planted_bug_notes(course, lab, student, result) if name == lab else {}
    body, _ = exporter.from_notebook_node(redact(nb, result, course, notes))
    out = course.feedback_file(student, lab, name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body, encoding="utf-8")
    return out
