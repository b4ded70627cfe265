"""Is this notebook being graded? Training cells ask, so they run on a small budget when graded.

nbgrader sets NBGRADER_EXECUTION ("autograde" or "validate") in the kernel's environment;
the course's own grader and `course check` set it too. Students running the notebook
themselves get the full budget.
"""
import os

GRADING_VARIABLE = "NBGRADER_EXECUTION"


def is_graded() -> bool:
    """True while the autograder (or `course check`) runs this notebook."""
    return bool(os.environ.get(GRADING_VARIABLE))


def budget(full, graded):
    """`full` when a student runs the notebook, `graded` under the autograder.

    Example: `steps = budget(full=2000, graded=100)`.
    """
    return graded if is_graded() else full


TIME_CAP_VARIABLE = "COURSE_TIME_CAP_SCALE"


def time_cap(seconds):
    """A training run's time budget in seconds. `course verify LAB --time-caps 0.5` halves every cap: on this
    machine that gives a run what a CPU half as fast would do in the full cap, to check that the lab's
    visible tests still pass there."""
    return seconds * float(os.environ.get(TIME_CAP_VARIABLE, "1"))
