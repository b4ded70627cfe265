"""Grades out of the gradebook: plain CSV, per-question CSV, Canvas and Moodle imports, Gradescope JSON.

Every CSV is written by csv.writer (names with commas or quotes survive), every field through
spreadsheet_text (none is a formula a spreadsheet would run). Percentages are exact fractions rounded
to 2 decimals only when written (see final_grade.py).
"""
import csv
import json
import re
from pathlib import Path

from .course import Course, CourseError, read_roster
from .final_grade import final_grades, graded_items, percent
from .feedback import student_safe
from .gradebook import lab_total, load_result, scores

FORMATS = ("csv", "questions", "canvas", "moodle", "gradescope")


def _roster(course: Course) -> dict:
    try:
        return read_roster(course.roster_path)
    except CourseError:
        return {}


def _people(course: Course, data) -> dict:
    roster = _roster(course)
    people = {sid: (s.first_name, s.last_name, s.email) for sid, s in roster.items()}
    for sid, names in data["students"].items():
        people.setdefault(sid, names)
    return people


def grade_table(course: Course):
    """(header, rows): per-lab totals, per-cell scores, and the final grade, one row per student."""
    data = scores(course)
    people = _people(course, data)
    finals = {f.student: f for f in final_grades(course)}
    header = ["student_id", "first_name", "last_name", "email"]
    for lab, info in sorted(data["labs"].items()):
        header += [f"{lab} score", f"{lab} max"] + _notebook_columns(lab, info) + \
            [f"{lab}:{gid}" + (" (bonus)" if gid in info.get("bonus", {}) else "") for gid, _ in info["cells"]]
    quiz = graded_items(course)[1]
    header += ["notebooks %", "quiz %", "final %"] if quiz else ["final %"]
    rows = []
    for sid in sorted(people):
        row = [sid, *people[sid]]
        for lab, info in sorted(data["labs"].items()):
            cells = info["students"].get(sid)
            total = lab_total(cells, info["max"]) if cells else 0.0  # bonus included, capped at the lab's max
            per_notebook = [f"{sum(cells.get(c, 0) for c in names):g}" if cells else ""
                            for names in info["notebooks"].values()] if len(info["notebooks"]) > 1 else []
            row += [f"{total:g}", f"{info['max']:g}"] + per_notebook + \
                [f"{cells[gid]:g}" if cells and gid in cells else "" for gid, _ in info["cells"]]
        final = finals.get(sid)
        if final is None:
            row += [""] * (3 if quiz else 1)
        else:
            row += [percent(final.notebooks), percent(final.quiz)] if quiz else []
            row.append(percent(final.final))
        rows.append(row)
    return header, rows


def _notebook_columns(lab, info) -> list:
    """An assignment of several notebooks also gets a score per notebook (our labs have one: no column)."""
    return [f"{lab}/{name} score" for name in info["notebooks"]] if len(info["notebooks"]) > 1 else []


# What makes a spreadsheet read a field as a formula (OWASP, CSV injection): = + - @ first, or a tab, carriage return
# (and line feed, NUL) before them; the full-width forms, which some locales' spreadsheets take for the ASCII ones.
FORMULA_START = "=+-@\t\r\n\0\uff1d\uff0b\uff0d\uff20"
NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def spreadsheet_text(value) -> str:
    """A field as written to a CSV file: one that a spreadsheet would read as a formula (it starts with one of
    FORMULA_START, or with blanks and then one) gets a leading apostrophe, which spreadsheets show as text and do not
    display; a number (5, -0.5, 66.67) stays a number."""
    text = "" if value is None else str(value)
    first = text[:1] + text.lstrip()[:1]  # the first character, and the first after blanks
    if NUMBER.fullmatch(text) or not any(c in FORMULA_START for c in first):
        return text
    return "'" + text


def _write(path: Path, header, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
        writer.writerow([spreadsheet_text(field) for field in header])
        writer.writerows([spreadsheet_text(field) for field in row] for row in rows)
    return path


def export_csv(course: Course, out: Path = None) -> Path:
    return _write(Path(out or course.root / "exports" / "grades.csv"), *grade_table(course))


def export_questions(course: Course, out: Path = None) -> Path:
    """One row per student, lab and test cell, with the result and the message the student saw."""
    data = scores(course)
    rows = []
    for lab, info in sorted(data["labs"].items()):
        for sid, cells in sorted(info["students"].items()):
            result = load_result(course, sid, lab) or {}
            details = {c["grade_id"]: c for c in result.get("cells", [])}
            for gid, maximum in info["cells"]:
                detail = details.get(gid, {})
                rows.append([sid, lab, gid, f"{cells.get(gid, 0):g}", f"{maximum:g}", detail.get("status", ""),
                             detail.get("message", ""), "yes" if detail.get("tampered") else "",
                             "yes" if gid in info.get("bonus", {}) else ""])
    header = ["student_id", "lab", "question", "score", "max_score", "status", "message", "tampered", "bonus"]
    return _write(Path(out or course.root / "exports" / "questions.csv"), header, rows)


def _items(labs, quiz) -> list:
    """The graded items' columns: the labs, then the quiz (an nbgrader course without course.toml has none)."""
    return [*labs, quiz] if quiz else list(labs)


def _item_percents(final, labs, quiz) -> list:
    """A student's percentage in each of _items(labs, quiz)."""
    return [percent(final.labs[lab]) for lab in labs] + ([percent(final.quiz)] if quiz else [])


def export_canvas(course: Course, out: Path = None) -> Path:
    """Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, one column per assignment
    (percentages, Points Possible 100, so every lab weighs the same), then the final grade."""
    labs, quiz = graded_items(course)
    roster = _roster(course)
    items = _items(labs, quiz)
    header = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *items, "Final grade"]
    rows = [["Points Possible", "", "", "", "", *["100"] * (len(items) + 1)]]
    for f in final_grades(course):
        s = roster.get(f.student)
        name = f"{s.last_name}, {s.first_name}".strip(", ") if s else f.student
        extra = s.extra if s else {}
        rows.append([name, extra.get("canvas_id", ""), extra.get("sis_user_id", f.student),
                     extra.get("sis_login_id", s.email if s else ""), extra.get("section", ""),
                     *_item_percents(f, labs, quiz), percent(f.final)])
    return _write(Path(out or course.root / "exports" / "canvas.csv"), header, rows)


def export_moodle(course: Course, out: Path = None) -> Path:
    """Moodle grade import keyed by e-mail (map 'Email address' to useremail); percentages."""
    labs, quiz = graded_items(course)
    roster = _roster(course)
    header = ["Email address", *_items(labs, quiz), "Final grade"]
    rows, missing, formulas = [], [], []
    for f in final_grades(course):
        email = roster[f.student].email if f.student in roster else ""
        if not email:
            missing.append(f.student)
            continue
        if spreadsheet_text(email) != email:  # escaped, it would match nobody
            formulas.append(f.student)
        rows.append([email, *_item_percents(f, labs, quiz), percent(f.final)])
    # Moodle aborts a whole import on one unknown user: refuse rather than write a bad file
    wrong = ([f"no e-mail in {course.roster_path.name} for: {', '.join(missing)}; Moodle matches by e-mail, add them"]
             if missing else []) + \
        ([f"the e-mail in {course.roster_path.name} of {', '.join(formulas)} starts like a spreadsheet formula (=, +, -, "
          "@): escaped, it would match no Moodle user; correct it"] if formulas else [])
    if wrong:
        raise CourseError("; ".join(wrong))
    return _write(Path(out or course.root / "exports" / "moodle.csv"), header, rows)


def export_gradescope(course: Course, out: Path = None) -> Path:
    """A Gradescope-style results.json per graded submission: exports/gradescope/STUDENT/LAB/results.json.

    A bonus test is named "... (bonus)" with max_score 0 and the points it earned, Gradescope's way of showing
    extra credit: the tests' maxima add up to the lab's (core) points, and the top-level "score", which
    Gradescope takes over the tests' sum, is the capped total."""
    base = Path(out or course.root / "exports" / "gradescope")
    data = scores(course)
    for lab, info in data["labs"].items():
        for sid in info["students"]:
            result = load_result(course, sid, lab)
            if result is None:
                continue
            tests = [{"name": c["grade_id"] + (" (bonus)" if c.get("bonus") else ""), "number": str(i + 1),
                      "score": c["points"], "max_score": 0.0 if c.get("bonus") else c["max_points"],
                      "status": "passed" if c["status"] == "passed" else "failed",
                      "output": student_safe(c["message"], course), "visibility": "after_published"}
                     for i, c in enumerate(result["cells"])]
            # messages come from the student's code: Gradescope shows them as plain text, never as HTML or Markdown
            payload = {"score": result["score"], "execution_time": round(result["seconds"], 1),
                       "output": student_safe(result.get("problem", ""), course), "output_format": "text",
                       "test_output_format": "text", "test_name_format": "text", "visibility": "after_published",
                       "stdout_visibility": "hidden", "tests": tests}
            path = base / sid / lab / "results.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(payload, indent=1))
    return base


EXPORTERS = {"csv": export_csv, "questions": export_questions, "canvas": export_canvas,
             "moodle": export_moodle, "gradescope": export_gradescope}
