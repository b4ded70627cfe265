"""`course report LAB` (issue 26): the class view of a graded lab, its failure groups named by the planted bugs, its
similar pairs; the planted bug's words in a student's feedback once the window closed; `course grade --preview`.

The subject is the tiny lab's synthetic class (tests/report_cohort.py): graded once for the module, in seconds.
"""
import hashlib
import shutil
from datetime import timedelta

import nbformat
import pytest

from autograder.collect import collect_folder
from autograder.course import Course, CourseError
from autograder.grading.run_lab import grade_lab
from autograder.gradebook import load_result, scores
from autograder.lab_report import build_report, group_failures, per_test_statistics
from autograder.signatures import (Item, Signatures, bug_classes, cell_items, matched_bugs, normalised_message,
                                   planted_bug_notes, write_signatures)
from autograder.similarity import SimilarityIndex, similarity_settings
from conftest import release_course
from course_cli import run_course
from report_cohort import COPIED, COURSE_TOML, NEW, PLAN, PLANTED, SESSION_END, cohort_inbox, copied, roster
from sample_lab import PLANTED_BUGS

LAB = "00_tiny"
WORDS = {"double_is_square": "double multiplies x by itself instead of by two",
         "square_of_abs_wrong": "the sign is kept: square(-4) comes out negative"}


def described_bugs() -> str:
    text = PLANTED_BUGS
    for name, words in WORDS.items():
        text = text.replace(f'name = "{name}"', f'name = "{name}"\ndescription = "{words}"')
    return text


@pytest.fixture(scope="module")
def cohort(tiny_labs_dir, tmp_path_factory):
    """The tiny lab's class graded, in a course of its own, with its own copy of the labs (signatures written)."""
    top = tmp_path_factory.mktemp("report")
    labs = top / "labs"
    shutil.copytree(tiny_labs_dir, labs)
    (labs / LAB / "bugs.toml").write_text(described_bugs())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_LABS_DIR", str(labs))
        root = release_course(top / "course", labs, LAB, COURSE_TOML)
        course = Course(root)
        course.roster_path.write_text(roster())
        release = nbformat.read(course.release(LAB), as_version=4)
        sent = cohort_inbox(release, top / "inbox")
        assert collect_folder(course, top / "inbox", LAB).ok
        grade_lab(course, LAB, jobs=2, echo=lambda *a: None)
        write_signatures(LAB, jobs=2, echo=lambda *a: None)
        yield course, labs, sent


@pytest.fixture
def labs_env(cohort, monkeypatch):
    monkeypatch.setenv("COURSE_LABS_DIR", str(cohort[1]))
    return cohort


# ---- the parts ----------------------------------------------------------------------------------------------------

def test_a_failed_check_is_named_by_its_description_not_by_the_numbers_in_it():
    descriptions = [("a + a: a.grad should be 2", r"a \+ a: a\.grad should be 2"), ("diamond …", r"diamond .+?")]
    cell = {"grade_id": "t", "status": "partial",
            "message": "a + a: a.grad should be 2 (AssertionError: got 3.5); diamond 7 (ValueError: 1e-3)"}
    assert cell_items(cell, descriptions) == [Item("t", "a + a: a.grad should be 2", "AssertionError"),
                                              Item("t", "diamond …", "ValueError")]
    plain = {"grade_id": "t", "status": "failed", "message": "square(-4): expected 16, got -16.0 (err 3.2e+01)"}
    assert cell_items(plain, []) == [Item("t", "square(#): expected #, got # (err #)", "failed")]
    assert normalised_message("got 0x7f3a and -2.5e-3") == "got # and #"
    assert cell_items({"grade_id": "t", "status": "passed"}, descriptions) == []


def test_a_bug_matches_when_all_its_checks_failed_and_the_larger_of_two_nested_bugs_wins():
    a, b, c = Item("t1", "x", "E"), Item("t2", "y", "E"), Item("t3", "z", "E")
    classes = bug_classes(Signatures("lab", "", {"one": frozenset({a}), "two": frozenset({a, b}),
                                                 "same": frozenset({c}), "twin": frozenset({c})}))
    assert set(classes) == {"one", "two", "same or twin"}
    assert matched_bugs(frozenset({a, b}), classes) == ["two"]
    assert matched_bugs(frozenset({a, c}), classes) == ["one", "same or twin"]
    assert matched_bugs(frozenset({b}), classes) == []


def test_groups_planted_new_and_unanswered():
    signatures = Signatures(LAB, "", {"bug": frozenset({Item("t1", "m", "failed")})})
    results = {s: {"cells": cells} for s, cells in {
        "a": [{"grade_id": "t1", "status": "failed", "message": "m"}],
        "b": [{"grade_id": "t1", "status": "failed", "message": "m"}, {"grade_id": "t2", "status": "failed",
                                                                       "message": "n 3"}],
        "c": [{"grade_id": "t2", "status": "failed", "message": "n 4"}],
        "d": [{"grade_id": "t2", "status": "failed", "message": "NotImplementedError"}],
    }.items()}
    groups = {(g.kind, g.name): sorted(g.students) for g in group_failures(results, {}, signatures, {})}
    assert groups == {("planted", "bug"): ["a", "b"], ("new", "t2: n # (failed)"): ["b", "c"],
                      ("unanswered", "t2"): ["d"]}


def test_pass_rate_credit_and_discrimination_from_the_gradebook_table():
    info = {"cells": [("t1", 2.0), ("t2", 3.0)], "bonus": {},
            "students": {"a": {"t1": 2, "t2": 3}, "b": {"t1": 1, "t2": 0}, "c": {"t1": 0, "t2": 0}, "d": {"t1": 2, "t2": 3}}}
    t1, t2 = per_test_statistics(info, sorted(info["students"]))
    assert (t1.pass_rate, t1.mean_credit) == (0.5, 0.625) and (t2.pass_rate, t2.mean_credit) == (0.5, 0.5)
    assert t1.discrimination == pytest.approx(0.9045, abs=1e-3)


def test_similarity_finds_the_renamed_and_reordered_copy_and_not_other_solutions():
    from report_cohort import DOUBLE, SQUARE

    given = {"double", "square", "x"}
    index = SimilarityIndex("def double(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    documents = {"helpers": DOUBLE["helpers"] + "\n\n" + SQUARE["helpers"], "loops": DOUBLE["while"] + "\n\n" + SQUARE["table"],
                 "odd": DOUBLE["shift"] + "\n\n" + SQUARE["odd"]}
    documents["copy"] = copied(DOUBLE["helpers"], given) + "\n\n" + copied(SQUARE["helpers"], given)
    assert "running" not in documents["copy"] and documents["copy"].startswith("def double")  # renamed, reordered
    for name, code in documents.items():
        index.add(name, code)
    pairs = index.pairs(0.8)
    assert [(p.first, p.second) for p in pairs] == [("copy", "helpers")], [(p.first, p.second, p.score) for p in pairs]
    assert "<mark>" in pairs[0].first_html and pairs[0].score >= 0.8


@pytest.mark.parametrize("table, message", [({"threshold": 2}, "give a number in .0, 1.: the share"),
                                            ({"threshold": "high"}, "give a number"),
                                            ({"archives": "../2025"}, "a list of folders")])
def test_bad_similarity_settings_say_what_to_write(table, message):
    with pytest.raises(CourseError, match=message):
        similarity_settings({"similarity": table})
    assert similarity_settings({}) == (0.8, [])


# ---- the graded class ---------------------------------------------------------------------------------------------

def test_report_on_the_graded_class(labs_env):
    course, _, sent = labs_env
    report = build_report(course, LAB)
    planted = {g.name: set(g.students) for g in report.group("planted")}
    assert planted == PLANTED
    assert [set(g.students) for g in report.group("new")] == [NEW]
    unanswered = {g.name: set(g.students) for g in report.group("unanswered")}
    assert unanswered == {"test_double": {"s13", "s14"}, "test_square": {"s14"}}
    assert {(p.first, p.second) for p in report.pairs} == COPIED, [(p.first, p.second, p.score) for p in report.pairs]
    # the pass rates are the gradebook's, and what the class sent says they should be
    table = scores(course)["labs"][LAB]
    rates = {t.test: t.pass_rate for t in report.tests}
    for test, maximum in table["cells"]:
        assert rates[test] == sum(s[test] >= maximum for s in table["students"].values()) / len(table["students"])
    assert rates == {"test_double": 10 / 18, "test_square": 14 / 18}
    # examples are anonymised answer cells of the group's students
    group = next(g for g in report.group("planted") if g.name == "double_is_square")
    assert [label for label, _ in group.examples] == ["student A", "student B"]
    assert all("def double" in code and ("x * x" in code or "x ** 2" in code or "pow(x, 2)" in code)
               for _, code in group.examples)
    # s02, s16 and s17 resubmit, s18 sends its only version after the session
    assert report.resubmitted == 4 and sum(report.received.values()) == sum(len(v) for v in PLAN.values())
    assert {k: v for k, v in report.received.items() if v} == {"in session": 17, "day 2": 1, "day 3": 1, "day 5": 2}


def test_course_report_through_the_cli(labs_env, tmp_path):
    course, labs, _ = labs_env
    before = hashlib.sha256(load_result(course, "s07", LAB).__repr__().encode()).hexdigest()
    done = run_course(course.root, "report", LAB, timeout=300, env={"COURSE_LABS_DIR": str(labs)})
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in out, out
    assert f"  4 students: {WORDS['double_is_square']} (double_is_square)" in out
    assert f"  3 students: {WORDS['square_of_abs_wrong']} (square_of_abs_wrong)" in out
    assert "new mistakes (no planted bug matches): 1 groups, 2 students" in out
    pairs_line = next(line for line in out.splitlines() if line.startswith("similar pairs"))
    assert pairs_line.count("~") == 2 and "s05 ~ s06" in pairs_line and "s17 ~ s18" in pairs_line
    page = course.root / "reports" / f"{LAB}.html"
    assert f"report: {page}" in out
    text = page.read_text()
    assert text.count("data:image/png;base64,") == 3 and "http://" not in text and "https://" not in text
    assert "<script" not in text and WORDS["double_is_square"] in text
    # grading results are read, never rewritten
    assert hashlib.sha256(load_result(course, "s07", LAB).__repr__().encode()).hexdigest() == before


def test_report_page_in_headless_chromium(labs_env, tmp_path):
    from headless_browser import open_page

    course, labs, _ = labs_env
    page = course.root / "reports" / f"{LAB}.html"
    if not page.exists():
        assert run_course(course.root, "report", LAB, env={"COURSE_LABS_DIR": str(labs)}).returncode == 0
    shot = tmp_path / "report.png"
    seen = open_page(page, shot)
    assert seen["errors"] == []
    assert len(seen["images"]) == 3 and all(i["complete"] and i["width"] > 0 for i in seen["images"]), seen["images"]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_report_of_an_ungraded_lab_says_so_in_one_line(course):
    done = run_course(course.root, "report", LAB, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: ") and "course grade" in done.stderr


def test_the_planted_bug_reaches_the_student_only_once_the_window_closed(labs_env):
    course, _, _ = labs_env
    result = load_result(course, "s07", LAB)
    deadline = SESSION_END + timedelta(days=7)
    assert planted_bug_notes(course, LAB, "s07", result, now=deadline - timedelta(minutes=1)) == {}
    assert planted_bug_notes(course, LAB, "s07", result, now=deadline + timedelta(minutes=1)) == \
        {"test_double": [WORDS["double_is_square"]]}
    assert planted_bug_notes(course, LAB, "s01", load_result(course, "s01", LAB), now=deadline + timedelta(days=1)) == {}


def test_preview_lists_exactly_the_students_a_changed_threshold_moves(labs_env, tmp_path):
    course, labs, _ = labs_env
    changed = tmp_path / "labs"
    shutil.copytree(labs, changed)
    path = changed / LAB / f"{LAB}.ipynb"
    nb = nbformat.read(path, as_version=4)
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square")
    assert "assert_close(square(-4), 16, name='square(-4)')" in test.source
    test.source = test.source.replace("assert_close(square(-4), 16, name='square(-4)')",
                                      "assert_close(square(-4), 16, atol=40, name='square(-4)')")
    nbformat.write(nb, path)
    before_scores = scores(course)
    before_files = {p: p.read_bytes() for p in course.root.rglob("*") if p.is_file() and "reports" not in p.parts}
    done = run_course(course.root, "grade", LAB, "--preview", "-j", "2", timeout=600, env={"COURSE_LABS_DIR": str(changed)})
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in out, out
    moved = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("  ") and "→" in line}
    assert moved == PLANTED["square_of_abs_wrong"], out
    assert "(+3)" in out and "3 of 18 students' scores would change" in out
    assert scores(course) == before_scores
    after_files = {p: p.read_bytes() for p in course.root.rglob("*") if p.is_file() and "reports" not in p.parts}
    assert after_files == before_files
