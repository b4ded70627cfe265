"""The final quiz: answer checks (course_lib.quiz) and a release that does not give the answers away.

Grading the quiz (reference = full marks, release = 0, each planted wrong answer fails) is done with
the other labs in test_labs.py.
"""
import math
import re

import nbformat
import numpy as np
import pytest

from autograder.course import REPO_ROOT, Course
from autograder.notebooks import (HIDDEN_BEGIN, HIDDEN_END, SOLUTION_BEGIN, grade_id, is_solution_cell,
                                  is_test_cell, nbgrader_meta, solution_source)
from autograder.release import release
from course_lib.quiz import check_choice, check_hashed_choice, check_hashed_number, check_number, hash_answer
from json_text import json_strings

QUIZ = REPO_ROOT / "labs" / "quiz" / "quiz.ipynb"
HIDDEN_LINE = re.compile(
    r'^check_hashed_(?:choice|number)\((q\d\d), "[0-9a-f]{64}", salt="\1"'
    r'(?:, multiple=True|, decimals=\d+)?\)$')


# ---------------------------------------------------------------- the checks
def test_hash_answer_normalises_choices_and_salts():
    assert hash_answer("b", "q01") == hash_answer(" B ", "q01")
    assert hash_answer("CA", "q02") == hash_answer("a, c", "q02") == hash_answer("AC", "q02")
    assert hash_answer("B", "q01") != hash_answer("B", "q02"), "the salt must make equal answers hash differently"
    assert re.fullmatch(r"[0-9a-f]{64}", hash_answer(4.174, "q06", decimals=3))


def test_hash_answer_rounds_numbers_to_the_stated_precision():
    digest = hash_answer(4.174, "q", decimals=3)
    for same in (4.174, 4.1744, 4.17351):
        assert hash_answer(same, "q", decimals=3) == digest, same
    assert hash_answer(2.675, "q", decimals=2) == hash_answer(2.68, "q", decimals=2), "half up, not binary-float rounding"
    assert hash_answer(-0.0001, "q", decimals=2) == hash_answer(0, "q", decimals=2), "-0.00 is 0.00"
    assert hash_answer(13, "q", decimals=0) == hash_answer(13.0, "q", decimals=0) == hash_answer(np.int64(13), "q", decimals=0)
    with pytest.raises(ValueError):
        hash_answer(1.0, "q", decimals=-1)


def test_check_choice_says_what_format_is_wrong():
    check_choice("c", "ABCD")
    check_choice("DB", "ABCD", multiple=True)
    for bad, why in ((3, "must be a string"), ("E", "E is not an option"), ("", "is empty"),
                     ("AB", "single answer"), ("AA", "at most once")):
        with pytest.raises(AssertionError, match=why):
            check_choice(bad, "ABCD", name="q02")
    with pytest.raises(AssertionError, match="q02 must be a string"):
        check_choice(None, "ABCD", name="q02")


def test_check_number_says_what_format_is_wrong():
    torch = pytest.importorskip("torch")
    for ok in (3, -1.5, np.float32(0.25), np.array(2.0), torch.tensor(0.5)):
        check_number(ok)
    for bad, why in (("3.29", "without quotes"), (None, "must be a number"), (True, "must be a number"),
                     ([1.0], "must be a number"), (float("nan"), "finite"), (math.inf, "finite")):
        with pytest.raises(AssertionError, match=why):
            check_number(bad, name="q07")


def test_numbers_within_one_step_pass_and_further_ones_fail():
    digest = hash_answer(8.17, "q07", decimals=2)
    for near in (8.17, 8.166, 8.16, 8.18, 8.1551, 8.1849):  # all that rounds to 8.16, 8.17 or 8.18
        check_hashed_number(near, digest, "q07", decimals=2)
    for far in (8.1549, 8.185, 8.15, 8.19, 8.2, 8.0, -8.17):
        with pytest.raises(AssertionError, match=r"^q07: incorrect$"):
            check_hashed_number(far, digest, "q07", decimals=2)
    zero = hash_answer(0.0, "z", decimals=3)
    check_hashed_number(-0.001, zero, "z", decimals=3)
    check_hashed_number(0.0012, zero, "z", decimals=3)


def test_whole_numbers_must_be_exact():
    digest = hash_answer(13, "q18", decimals=0)
    check_hashed_number(13, digest, "q18", decimals=0)
    check_hashed_number(13.2, digest, "q18", decimals=0)
    for wrong in (12, 14, 13.5):
        with pytest.raises(AssertionError, match="incorrect"):
            check_hashed_number(wrong, digest, "q18", decimals=0)
    check_hashed_number(14, digest, "q18", decimals=0, steps=1)  # a tolerance can still be asked for


def test_wrong_choice_fails_without_revealing_the_answer():
    digest = hash_answer("C", "q15")
    check_hashed_choice("c", digest, "q15")
    for wrong in "ABD":
        with pytest.raises(AssertionError) as info:
            check_hashed_choice(wrong, digest, "q15")
        assert str(info.value) == "q15: incorrect"
    digest = hash_answer("BD", "q09")
    check_hashed_choice("db", digest, "q09", multiple=True)
    for wrong in ("B", "D", "ABD", "BCD"):
        with pytest.raises(AssertionError, match=r"^q09: incorrect$"):
            check_hashed_choice(wrong, digest, "q09", multiple=True)
    with pytest.raises(AssertionError, match="not an option"):  # a format error is not "incorrect"
        check_hashed_choice("F", digest, "q09", multiple=True)


# ---------------------------------------------------------------- the notebook
def _questions(nb):
    """{qid: (answer value, decimals or None, points, question markdown, hidden test source)}."""
    cells = nb.cells
    out = {}
    for i, cell in enumerate(cells):
        if not is_solution_cell(cell):
            continue
        qid = grade_id(cell)
        scope = {"math": math, "np": np}
        exec(solution_source(cell.source), scope)
        test = next(c for c in cells if grade_id(c) == f"test_{qid}")
        question = cells[i - 1].source
        hidden = test.source.split(HIDDEN_BEGIN, 1)[1].split(HIDDEN_END, 1)[0].strip()
        m = re.search(r"decimals=(\d+)", hidden)
        out[qid] = (scope[qid], int(m.group(1)) if m else None, nbgrader_meta(test)["points"], question, hidden)
    return out


@pytest.fixture(scope="module")
def source():
    return nbformat.read(QUIZ, as_version=4)


@pytest.fixture(scope="module")
def released_text(tmp_path_factory):
    course = Course(tmp_path_factory.mktemp("quiz") / "course")
    course.root.mkdir(parents=True)
    return release(course, "quiz").read_text()


def test_quiz_layout(source):
    assert source.metadata["course"] == {"lab": "quiz", "title": "Final quiz", "promises": []}
    assert source.metadata["kernelspec"]["name"] == "python3"
    questions = _questions(source)
    assert 20 <= len(questions) <= 25
    assert all(points in (1, 2) for _, _, points, _, _ in questions.values())
    tests = [c for c in source.cells if is_test_cell(c)]
    assert [grade_id(c) for c in tests] == [f"test_{q}" for q in questions]
    for qid, (value, decimals, _, question, _) in questions.items():
        assert question.startswith(f"**{qid}**"), f"{qid}: the cell before the answer must be its question"
        if decimals is None:
            assert "*Answer:* one letter" in question or "*Answer:* all the letters" in question, qid
        elif decimals == 0:
            assert "*Answer:* a whole number" in question, qid
        else:
            assert f"*Answer:* a number, rounded to {decimals} decimals" in question, qid


def test_hidden_tests_hold_hashes_of_the_reference_answers_only(source):
    for qid, (value, decimals, _, _, hidden) in _questions(source).items():
        lines = [line for line in hidden.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(lines) == 1 and HIDDEN_LINE.match(lines[0]), f"{qid}: hidden test is not a single hash check: {hidden}"
        digest = re.search(r'"([0-9a-f]{64})"', lines[0]).group(1)
        assert digest == hash_answer(value, qid, decimals=decimals), f"{qid}: the hash does not match the reference answer"


def _number_pattern(text):
    return re.compile(rf"(?<![\w.]){re.escape(text)}(?![\d])")


def test_release_does_not_contain_the_answers(source, released_text):
    assert SOLUTION_BEGIN not in released_text and HIDDEN_BEGIN not in released_text
    assert not re.search(r"check_hashed_\w+\(q\d\d", released_text), "a hidden check was released"
    for qid, (value, decimals, _, _, _) in _questions(source).items():
        if decimals is None:
            assert not re.search(rf'{qid}\s*=\s*\\?["\']{value}\\?["\']', released_text), f"{qid}: answer in the release"
        else:
            shown = {format(value, f".{decimals}f"), repr(value), str(value)}
            for text in shown:
                assert not _number_pattern(text).search(released_text), f"{qid}: the answer {text} appears in the release"


def test_source_contains_answers_only_in_solution_cells(source):
    """The instructor's copy has the answers, but only where nbgrader removes them."""
    for qid, (value, decimals, _, _, _) in _questions(source).items():
        if decimals is None:
            continue
        for cell in source.cells:
            if is_solution_cell(cell):
                continue
            assert not _number_pattern(format(value, f".{decimals}f")).search(cell.source), \
                f"{qid}: the answer appears outside its solution cell ({grade_id(cell) or 'markdown'})"


# ---------------------------------------------------------------- what the quiz covers
SESSION = re.compile(r"^## Session (\d) — (.+)$")
# the syllabus's topics of each session (/work/shared/seeds/000: the course's deck), as a question would name them
TOPICS = {1: ["gradient descent", "backward pass"], 2: ["cross-entropy", "perplexity", "language model"],
          3: ["tanh", "initialis", "dropout", "weight decay", "batchnorm", "recurrent"],
          4: ["self-attention", "head", "decoder"],
          5: ["conv2d", "pool", "same kernel at every position", "augment", "u-net"],
          6: ["vae", "elbo", "kl", "ddpm", r"\bar\alpha"]}


def _sessions(nb):
    """{session number: [(question id, points, question text)]}, from the `## Session N — ...` headings."""
    sessions, current = {}, None
    questions = _questions(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (heading := SESSION.match(cell.source.strip())):
            current = int(heading.group(1))
            sessions[current] = []
        elif cell.cell_type == "markdown" and (qid := re.match(r"\*\*(q\d\d)\*\*", cell.source)):
            assert current is not None, f"{qid.group(1)} comes before the first `## Session N` heading"
            sessions[current].append((qid.group(1), questions[qid.group(1)][2], cell.source))
    return sessions


def test_each_session_gets_points_in_proportion_to_its_time(source):
    """Six sessions of equal time (1.5 h of lecture each): each holds a sixth of the points, within one."""
    sessions = _sessions(source)
    assert sorted(sessions) == [1, 2, 3, 4, 5, 6], sorted(sessions)
    points = {n: sum(p for _, p, _ in qs) for n, qs in sessions.items()}
    total = sum(points.values())
    assert total == sum(p for _, _, p, _, _ in _questions(source).values()), "every question sits in a session"
    assert all(abs(p - total / 6) <= 1 for p in points.values()), f"points per session {points} of {total}"
    intro = source.cells[0].source
    assert f"{len(_questions(source))} questions, {total} points" in intro, "the introduction states the count"


def test_every_topic_of_the_syllabus_is_asked_in_its_session(source):
    sessions = _sessions(source)
    for n, topics in TOPICS.items():
        text = "\n".join(q for _, _, q in sessions[n]).lower()
        missing = [topic for topic in topics if topic.lower() not in text]
        assert not missing, f"session {n}: no question asks about {missing}"


def _lab_texts():
    """{lab: every string of its notebooks' JSON (sources, outputs, metadata)} for the labs but the quiz."""
    import json

    labs = sorted(p for p in (REPO_ROOT / "labs").glob("*/*.ipynb") if p.parent.name != "quiz")
    assert len(labs) >= 6, labs
    return {p.parent.name: "\n".join(json_strings(json.loads(p.read_text()))) for p in labs}


def looked_up(answers, texts):
    """The numeric answers that a lab prints: (question, lab, the text found). A number with decimals is looked
    for as the question rounds it; a whole number from 100 up, with and without a thousands separator (a
    smaller one is everywhere)."""
    found = []
    for qid, (value, decimals) in answers.items():
        if decimals is None or (decimals == 0 and abs(value) < 100):
            continue
        shown = {format(value, f".{decimals}f")} if decimals else {f"{int(value)}", f"{int(value):,}"}
        for lab, text in texts.items():
            found += [(qid, lab, s) for s in shown if _number_pattern(s).search(text)]
    return found


def test_no_answer_can_be_looked_up_in_a_lab(source):
    answers = {qid: (value, decimals) for qid, (value, decimals, _, _, _) in _questions(source).items()}
    assert looked_up(answers, _lab_texts()) == []


def test_the_lookup_check_finds_an_answer_a_lab_prints():
    # the quiz of issue 25 asked for alpha_bar_T with T = 50, which lab 6 prints (0.603)
    texts = {"06_diffusion": "| $\\bar\\alpha_T$, $T = 1000$ / $T = 50$ | 4.04·10⁻⁵ / 0.603 |", "04_gpt": "ln 65 = 4.174"}
    assert looked_up({"q24": (0.60295, 3), "q06": (4.1744, 3), "q07": (8.17, 2)}, texts) == \
        [("q24", "06_diffusion", "0.603"), ("q06", "04_gpt", "4.174")]
    assert looked_up({"q13": (6400, 0)}, {"03": "the layer has 6,400 parameters"}) == [("q13", "03", "6,400")]
