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
    quiz: Fraction | None  # None: a course without a quiz (an nbgrader course of its own assignments)
    notebooks: Fraction  # mean of the labs
    final: Fraction      # in [0, 1]


def graded_items(course: Course):
    """(labs, quiz): what the final grade is made of. course.toml's [grading] names them; without it, this course's
    six labs and quiz, except on an nbgrader course that has none of them: its own assignments, in due-date order,
    and no quiz (None), the final grade then being the mean of their percentages."""
    grading = load_config(course).get("grading")
    if grading is None:
        own = course_assignments(course)
        if own and not set(own) & {*LABS, QUIZ}:
            return tuple(own), None
        grading = {}
    labs = tuple(grading.get("labs", LABS))
    if not labs:
        raise CourseError("course.toml [grading] labs is empty: list the graded labs")
    return labs, grading.get("quiz", QUIZ)


def course_assignments(course: Course) -> list:
    """The course's assignments: the gradebook's, by due date then name, and any other folder of source/."""
    from .gradebook import _has_gradebook, open_gradebook

    found = []
    if _has_gradebook(course):
        with open_gradebook(course) as gb:
            found = [a.name for a in sorted(gb.assignments, key=lambda a: (a.duedate is None, a.duedate or 0, a.name))]
    source = course.root / "source"
    if source.is_dir():
        found += sorted(p.name for p in source.iterdir() if p.is_dir() and p.name not in found and any(p.glob("*.ipynb")))
    return found


def fraction_of(points: float, maximum: float) -> Fraction:
    if not maximum:
        return Fraction(0)
    return min(Fraction(1), max(Fraction(0), Fraction(points) / Fraction(maximum)))


def compute(lab_fractions: dict, quiz, labs) -> tuple:
    """(notebooks mean, final) from per-lab fractions; a missing lab counts 0. Without a quiz (None: an nbgrader
    course of its own assignments) the final grade is the mean."""
    notebooks = sum((lab_fractions.get(lab, Fraction(0)) for lab in labs), Fraction(0)) / len(labs)
    return notebooks, notebooks if quiz is None else LAB_WEIGHT * notebooks + QUIZ_WEIGHT * quiz


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
        for name in (*labs, quiz_name) if quiz_name else labs:
            info = data["labs"].get(name)
            cells = info["students"].get(student) if info else None
            # bonus cells add to the points but not to the max: a lab counts at most 100%
            fractions[name] = fraction_of(lab_total(cells, info["max"]), info["max"]) if cells else Fraction(0)
        quiz = fractions.pop(quiz_name) if quiz_name else None
        notebooks, final = compute(fractions, quiz, labs)
        rows.append(FinalGrade(student, fractions, quiz, notebooks, final))
    return rows


def percent(value: Fraction | None) -> str:
    """Two decimals, rounded half up (Fractions are exact, so 2/3 shows as 66.67); "" for no value (no quiz)."""
    if value is None:
        return ""
    hundredths = value * 10000
    return f"{(hundredths + Fraction(1, 2)) // 1 / 100:.2f}"
