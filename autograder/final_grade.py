"""The final grade: 2/3 · mean of the six lab percentages + 1/3 · quiz percentage.

Exact fractions all the way (a perfect student gets exactly 100, not 99.99); each lab weighs the
same whatever its number of points; a lab never submitted, or not yet released, counts 0.
The labs and the quiz can be renamed in course.toml:

    [grading]
    labs = ["01_micrograd", "02_makemore", "03_backprop_ninja", "04_gpt", "05_convnets", "06_diffusion"]
    quiz = "quiz"
"""
from dataclasses import dataclass
from fractions import Fraction

from .course import Course, CourseError, read_roster
from .gradebook import lab_total, scores
from .policy import load_config

LABS = ("01_micrograd", "02_makemore", "03_backprop_ninja", "04_gpt", "05_convnets", "06_diffusion")
QUIZ = "quiz"
LAB_WEIGHT = Fraction(2, 3)
QUIZ_WEIGHT = Fraction(1, 3)


@dataclass
class FinalGrade:
    student: str
    labs: dict          # lab -> Fraction in [0, 1]
    quiz: Fraction
    notebooks: Fraction  # mean of the labs
    final: Fraction      # in [0, 1]


def graded_items(course: Course):
    grading = load_config(course).get("grading", {})
    labs = tuple(grading.get("labs", LABS))
    if not labs:
        raise CourseError("course.toml [grading] labs is empty: list the graded labs")
    return labs, grading.get("quiz", QUIZ)


def fraction_of(points: float, maximum: float) -> Fraction:
    if not maximum:
        return Fraction(0)
    return min(Fraction(1), max(Fraction(0), Fraction(points) / Fraction(maximum)))


def compute(lab_fractions: dict, quiz: Fraction, labs) -> tuple:
    """(notebooks mean, final) from per-lab fractions; a missing lab counts 0."""
    notebooks = sum((lab_fractions.get(lab, Fraction(0)) for lab in labs), Fraction(0)) / len(labs)
    return notebooks, LAB_WEIGHT * notebooks + QUIZ_WEIGHT * quiz


def final_grades(course: Course) -> list:
    labs, quiz_name = graded_items(course)
    data = scores(course)
    try:
        students = set(read_roster(course.roster_path))
    except CourseError:
        students = set()
    students |= set(data["students"])
    rows = []
    for student in sorted(students):
        fractions = {}
        for name in (*labs, quiz_name):
            info = data["labs"].get(name)
            cells = info["students"].get(student) if info else None
            # bonus cells add to the points but not to the max: a lab counts at most 100%
            fractions[name] = fraction_of(lab_total(cells, info["max"]), info["max"]) if cells else Fraction(0)
        quiz = fractions.pop(quiz_name)
        notebooks, final = compute(fractions, quiz, labs)
        rows.append(FinalGrade(student, fractions, quiz, notebooks, final))
    return rows


def percent(value: Fraction) -> str:
    """Two decimals, rounded half up (Fractions are exact, so 2/3 shows as 66.67)."""
    hundredths = value * 10000
    return f"{(hundredths + Fraction(1, 2)) // 1 / 100:.2f}"
