"""Student versions of the labs (nbgrader's generate_assignment); the zip students install is bundle.py's."""
import ast
import hashlib
import io
import logging
import re
import shutil
from pathlib import Path

import nbformat

from .course import (COURSE_ID, NOT_RELEASED, Course, CourseError, assignment_files, ensure_tools_on_path,
                     lab_source_folder, notebook_names)


def release(course: Course, lab: str) -> Path:
    """Copy labs/LAB (its notebooks and files) into the course's source/, or take the course's own source/LAB
    (an nbgrader course), and generate release/LAB with nbgrader. Returns the first released notebook."""
    folder = lab_source_folder(lab, course)
    names = notebook_names(folder)
    for name in names:
        found = nbformat.read(folder / f"{name}.ipynb", as_version=4).metadata.get("course", {}).get("lab")
        if found is not None and found != lab:
            raise CourseError(f"{folder / name}.ipynb: metadata.course.lab is {found!r}; it must be '{lab}' (or absent)")
    if folder != course.source_dir(lab):
        if course.source_dir(lab).exists():
            shutil.rmtree(course.source_dir(lab))  # the labs folder is the truth: no stale notebook or file stays
        course.source_dir(lab).mkdir(parents=True)
        for relative in [f"{name}.ipynb" for name in names] + assignment_files(folder):
            (course.source_dir(lab) / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / relative, course.source_dir(lab) / relative)
    _write_nbgrader_config(course)

    ensure_tools_on_path()
    from traitlets.config import Config
    from nbgrader.converters import GenerateAssignment
    from nbgrader.coursedir import CourseDirectory

    from .nbgrader_settings import nbgrader_config

    config = Config()
    config.merge(nbgrader_config(course))  # the course's own settings (a code stub, ...), as nbgrader would read them
    config.CourseDirectory.root = str(course.root)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.assignment_id = lab
    config.CourseDirectory.db_url = course.db_url
    config.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", *NOT_RELEASED]
    app = GenerateAssignment(coursedir=CourseDirectory(config=config), config=config)
    app.force = True
    app.create_assignment = True
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    app.log.addHandler(handler)
    app.log.propagate = False
    try:
        app.start()
    except Exception as exc:
        raise CourseError(f"nbgrader could not generate the release of {lab}: {_cause(log.getvalue()) or exc}") from None
    finally:
        app.log.removeHandler(handler)
    _mark_bonus_cells(course, lab, names)
    for name in names:
        released = nbformat.read(course.release(lab, name), as_version=4)
        meta = released.metadata.setdefault("course", {})
        meta["source_sha256"] = hashlib.sha256(course.source(lab, name).read_bytes()).hexdigest()
        if len(names) > 1:  # which notebook of the assignment (collect.py and the grader read it first)
            meta.update(lab=lab, notebook=name)
        nbformat.write(released, course.release(lab, name))
    return course.release(lab, names[0])


def _cause(log: str) -> str:
    """The error nbgrader's log ends with, in one line, with what to do where we know it."""
    errors = [line.strip() for line in log.splitlines() if re.match(r"^\w+(Error|Exception): ", line.strip())]
    if not errors:
        return ""
    if "autotests.yml" in errors[-1]:
        return ("its notebooks use ### AUTOTEST lines, which need nbgrader's template file autotests.yml in the "
                "assignment's folder or the course directory; put one there (nbgrader's documentation has an example)")
    return errors[-1]


def idle_test_cells(course: Course, lab: str) -> list:
    """One line for each test cell of the release that executes no statement (only comments, `pass` or constants, as
    an unexpanded `### AUTOTEST` line or tests commented out): it passes whatever the answer, so its points are free."""
    from .gradebook import generated_cells
    from .notebooks import grade_id, is_test_cell

    found = []
    for name in notebook_names(course.source_dir(lab)):
        generated = generated_cells(course, lab, name)
        for cell in nbformat.read(course.source(lab, name), as_version=4).cells:
            if is_test_cell(cell) and not _executes_something(generated.get(grade_id(cell), cell.source)):
                found.append(f"{lab}/{name}.ipynb: test cell {grade_id(cell)!r} executes no statement, so it passes "
                             "whatever the answer; give it an assert (or an AUTOTEST line with autotests.yml beside the course)")
    return found


def _executes_something(code: str) -> bool:
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return True  # not plain Python (a cell magic): the kernel decides
    return any(not isinstance(node, ast.Pass) and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
               for node in tree.body)


def _mark_bonus_cells(course: Course, lab: str, names) -> None:
    """nbgrader's release records every test cell's points as its maximum: a bonus cell's must be 0 (its points
    are written as extra credit, gradebook.save_record), so that the lab's maximum is the core's."""
    from .gradebook import mark_bonus_cells, open_gradebook
    from .notebooks import bonus_ids

    bonus = {name: bonus_ids(nbformat.read(course.source(lab, name), as_version=4)) for name in names}
    if any(bonus.values()):
        with open_gradebook(course) as gb:
            for name, ids in bonus.items():
                mark_bonus_cells(gb, lab, name, ids)


def _write_nbgrader_config(course: Course) -> None:
    """So that nbgrader's own tools (formgrader) work on the same course directory."""
    path = course.root / "nbgrader_config.py"
    if not path.exists():
        path.write_text(
            "c = get_config()  # noqa: F821\n"
            f"c.CourseDirectory.course_id = {COURSE_ID!r}\n"
            "c.CourseDirectory.root = __file__.rsplit('/', 1)[0]\n"
        )
