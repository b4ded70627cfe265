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
