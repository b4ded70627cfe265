"""Settings of an nbgrader course that `course` honours where it has none of its own: the per-cell timeout
(`c.Execute.timeout` or `c.ExecutePreprocessor.timeout` in the course's nbgrader_config.py) and every setting
of its release (`course release` generates the student version with that file). The due date is the gradebook's
(policy.nbgrader_due_date)."""
from .course import Course, CourseError

DEFAULT_CELL_TIMEOUT = 60.0  # seconds, when neither --timeout nor nbgrader_config.py says


def nbgrader_config(course: Course):
    """The course's nbgrader_config.py read as nbgrader reads it (a traitlets Config; empty without one)."""
    from traitlets.config import Config
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    path = course.root / "nbgrader_config.py"
    if not path.exists():
        return Config()
    try:
        return PyFileConfigLoader(path.name, path=str(course.root)).load_config()
    except ConfigFileNotFound:
        return Config()
    except Exception as exc:  # the instructor's own Python: say where, in one line
        raise CourseError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc}); fix it or remove it") from None


def cell_timeout(course: Course, given=None) -> float:
    """--timeout when given, else nbgrader_config.py's Execute.timeout (nbgrader's executor) or
    ExecutePreprocessor.timeout (the nbconvert class it extends), else 60 s."""
    if given is not None:
        return float(given)
    config = nbgrader_config(course)
    for section in ("Execute", "ExecutePreprocessor"):
        value = config.get(section, {}).get("timeout")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            return float(value)
    return DEFAULT_CELL_TIMEOUT
