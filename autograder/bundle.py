"""The zip students install, and what goes in it when (course.toml's calendar, policy.py):

- the released labs whose session has started (or those named with --labs);
- course_lib and the part of the `course` command that students run (`course check`, `course data`: the
  modules student_check.py imports, followed through; the instructor commands' modules stay out), except
  the reference modules (course_lib.reference) of a lab whose
  resubmission window is still open: a module names its lab with `ANSWERS_OF = "LAB"`;
- never an answer of an open lab: if a packed notebook or library file holds a line of an open lab's
  solutions or hidden tests (a later lab's given code often starts from an earlier lab's answers), the
  bundle is refused, naming both labs, unless forced.

Without course.toml the windows are unknown: every released lab is packed, unchecked, and every reference
module is left out.
"""
import ast
import tomllib
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import tomli_w

from .course import REPO_ROOT, Course, CourseError, available_labs, labs_dir
from .notebooks import answer_lines, normalised
from .policy import load_config, session_of

STUDENT_README = """# Deep learning from scratch: student bundle

1. Install (once): `conda env create -f environment.yml && conda activate course-lab`
   or, with plain Python 3.10+: `python -m venv .venv && . .venv/bin/activate && pip install -e .`
2. Open a lab: `jupyter lab notebooks/`
3. Fill in every `# YOUR CODE HERE`, run the cells: the visible tests tell you at once what is wrong.
4. Before you send it: `course check notebooks/LAB.ipynb` runs your notebook the way the grader
   will and says what will be graded and what fails (exit code 0 when every graded cell passes).
   Hidden tests run on top of the visible ones. `course data` says where each dataset was found;
   the other `course` commands are the instructor's.
5. Send the .ipynb (not a PDF) at the end of the session; you may send an improved version within a week.
"""
# conda's way in: pip installs the folder, so the packages are the bundle's pyproject.toml's (the project's
# dependencies without the instructor extra)
STUDENT_ENVIRONMENT = """# conda env create -f environment.yml && conda activate course-lab
# pip installs this folder: its pyproject.toml lists the packages (torch, JupyterLab, ...).
name: course-lab
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
      - -e .
"""
EXCLUDED_PARTS = ("__pycache__",)
ANSWERS_MARK = "ANSWERS_OF"
# where the student part of the `course` command starts: cli.py's module-level imports (its commands import
# their modules when run, and an instructor command in the student package says what to install instead)
# and everything `course check` imports
STUDENT_ENTRY_POINTS = (("autograder/cli.py", "module level"), ("autograder/student_check.py", "all"))


def student_pyproject(version: str, dependencies: list) -> str:
    """The bundle's pyproject.toml: course_lib and the `course` command, with the released notebooks."""
    return tomli_w.dumps({
        "build-system": {"requires": ["setuptools>=68"], "build-backend": "setuptools.build_meta"},
        "project": {"name": "course-lab-student", "version": version, "requires-python": ">=3.10",
                    "dependencies": list(dependencies), "scripts": {"course": "autograder.cli:main"}},
        "tool": {"setuptools": {"packages": {"find": {"include": ["course_lib*", "autograder*"]}},
                                "package-data": {"course_lib": ["released/*.ipynb", "released/*/*.ipynb"]}}},
    })


@dataclass
class BundlePlan:
    labs: list                                     # released labs to pack
    files: list                                    # library files to pack, relative to the repository
    left_out: dict = field(default_factory=dict)   # released lab -> why it is not packed
    withheld: dict = field(default_factory=dict)   # library file -> why it is not packed
    warnings: list = field(default_factory=list)


def _when(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")


@dataclass
class Calendar:
    """course.toml's sessions seen at one moment: which labs have started, which windows are still open."""
    sessions: dict  # lab -> policy.Session, or None when course.toml does not list it
    now: datetime

    def why_not_started(self, lab: str) -> str | None:
        session = self.sessions.get(lab)
        if session is None:
            return "no session in course.toml"
        return f"its session starts {_when(session.start)}" if self.now < session.start else None

    def why_open(self, lab: str) -> str | None:
        """Why the lab's answers must stay out, or None once its window (without extensions) has closed."""
        session = self.sessions.get(lab)
        if session is None:
            return "not in course.toml, so taken as open"
        return f"open until {_when(session.deadline)}" if self.now < session.deadline else None


def released_labs(course: Course) -> list:
    folder = course.root / "release"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def release_notebooks(course: Course, lab: str) -> list:
    return sorted((course.root / "release" / lab).glob("*.ipynb"))


def library_files() -> list:
    """course_lib's modules and the student part of the `course` command, relative to the repository."""
    paths = [*sorted((REPO_ROOT / "course_lib").rglob("*.py")), *student_command_files()]
    return [str(path.relative_to(REPO_ROOT)) for path in paths if not any(x in path.parts for x in EXCLUDED_PARTS)]


def student_command_files() -> list:
    """The autograder modules the student part of the `course` command imports (STUDENT_ENTRY_POINTS, followed
    through every import inside autograder, lazy ones included), with their packages' __init__.py, sorted."""
    todo = [(REPO_ROOT / name, where == "module level") for name, where in STUDENT_ENTRY_POINTS]
    found = set()
    while todo:
        path, module_level_only = todo.pop()
        if path in found:
            continue
        found.add(path)
        tree = ast.parse(path.read_text())
        for node in (tree.body if module_level_only else ast.walk(tree)):
            todo += [(module, False) for module in _autograder_modules(node, path)]
    packages = {folder / "__init__.py" for path in found for folder in path.parents
                if folder.is_relative_to(REPO_ROOT / "autograder")}
    return sorted(found | packages)


def _autograder_modules(node, path: Path) -> list:
    """The files of the autograder modules an import statement in path names (none for other statements)."""
    if isinstance(node, ast.Import):
        names = [alias.name.split(".") for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        package = list(path.relative_to(REPO_ROOT).parts[:-1])
        base = package[:len(package) - node.level + 1] if node.level else []
        module = base + (node.module.split(".") if node.module else [])
        names = [module] + [module + [alias.name] for alias in node.names]  # `from . import x`: x may be a module
    else:
        return []
    files = []
    for parts in names:
        if parts[:1] == ["autograder"]:
            target = REPO_ROOT.joinpath(*parts)
            files += [f for f in (target.with_suffix(".py"), target / "__init__.py") if f.is_file()]
    return files


def answers_of(path: Path) -> str | None:
    """The lab named by a module's `ANSWERS_OF = "LAB"`, or None for a module that holds no lab's answers."""
    text = path.read_text()
    if ANSWERS_MARK not in text:
        return None
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == ANSWERS_MARK for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def plan_bundle(course: Course, labs=None, force: bool = False, now: datetime = None) -> BundlePlan:
    """What `course bundle` packs now; raises CourseError (one line) for bad input or an answer of an open lab."""
    released = released_labs(course)
    if not released:
        raise CourseError(f"nothing released in {course.root}: run `course release LAB` first")
    unknown = [lab for lab in labs or [] if lab not in released]
    if unknown:
        raise CourseError(f"not released in {course.root}: {', '.join(unknown)} (released: {', '.join(released)}); "
                          "run `course release LAB` first")
    if not (course.root / "course.toml").exists():
        return _plan_without_calendar(course, labs or released)
    config = load_config(course)
    known = sorted(set(released) | set(available_labs()))
    calendar = Calendar({lab: session_of(config, lab) for lab in known}, now or datetime.now(timezone.utc))
    plan = BundlePlan(labs=[], files=[])
    for lab in released:
        why = ("not named with --labs" if lab not in labs else None) if labs else calendar.why_not_started(lab)
        if why:
            plan.left_out[lab] = why
        else:
            plan.labs.append(lab)
    if not plan.labs:
        raise CourseError("no released lab's session has started: "
                          + "; ".join(f"{lab}: {why}" for lab, why in plan.left_out.items())
                          + "; name the labs to pack with --labs")
    _choose_files(plan, calendar.why_open)
    _check_for_answers(course, plan, calendar, force)
    return plan


def _plan_without_calendar(course: Course, labs: list) -> BundlePlan:
    plan = BundlePlan(labs=sorted(labs), files=[])
    _choose_files(plan, lambda lab: "and course.toml does not say when its window closes")
    plan.warnings.append(f"no course.toml in {course.root}: the labs' windows are unknown, so every released lab is "
                         "packed without checking it for answers of open labs, and course_lib's reference pieces are "
                         "left out; give each lab's session_end in course.toml")
    return plan


def _choose_files(plan: BundlePlan, why_open) -> None:
    """Every library file, but the reference modules of the labs that why_open(lab) says are still open."""
    for name in library_files():
        lab = answers_of(REPO_ROOT / name)
        why = why_open(lab) if lab else None
        if why:
            plan.withheld[name] = f"answers of {lab}, {why}"
        else:
            plan.files.append(name)


def _source_of(course: Course, lab: str):
    """The lab's source notebooks as one (the released copy, else the instructor's labs folder), or None."""
    for folder in (course.source_dir(lab), labs_dir() / lab):
        paths = sorted(Path(folder).glob("*.ipynb")) if Path(folder).is_dir() else []
        if paths:
            notebooks = [nbformat.read(path, as_version=4) for path in paths]
            notebooks[0].cells = [cell for nb in notebooks for cell in nb.cells]
            return notebooks[0]
    return None


def _packed_texts(course: Course, plan: BundlePlan) -> dict:
    """What the plan packs, as {name: its normalised text}: released notebooks (every cell), library files."""
    texts = {}
    for lab in plan.labs:
        for path in release_notebooks(course, lab):
            cells = nbformat.read(path, as_version=4).cells
            texts[f"the release of {lab} ({path.name})"] = "\n".join(c.source for c in cells)
    for name in plan.files:
        texts[name] = (REPO_ROOT / name).read_text()
    return {name: "\n".join(map(normalised, text.splitlines())) for name, text in texts.items()}


def _check_for_answers(course: Course, plan: BundlePlan, calendar: Calendar, force: bool) -> None:
    """Refuse (or, forced, warn about) every packed text that holds a line of an open lab's answers."""
    open_labs = {lab: why for lab in calendar.sessions if (why := calendar.why_open(lab))}
    answers = {lab: answer_lines(nb) for lab in open_labs if (nb := _source_of(course, lab)) is not None}
    problems = []
    for name, text in _packed_texts(course, plan).items():
        for lab, lines in answers.items():
            found = sorted(line for line in lines if line in text)
            if found:
                problems.append(f"{name} holds {len(found)} answer line(s) of {lab} ({open_labs[lab]}), "
                                f"e.g. `{found[0]}`")
    if problems and not force:
        raise CourseError("; ".join(problems) + ". Bundle once that window has closed, leave the lab out "
                          "(--labs), or pack it anyway with --force")
    plan.warnings += [f"--force: {problem}" for problem in problems]


def write_bundle(course: Course, plan: BundlePlan, out: Path = None) -> Path:
    """The zip: the planned notebooks (also in course_lib/released, for `course check`) and library files,
    the datasets' manifest, environment.yml, a pyproject.toml and a README."""
    out = Path(out or course.root / "bundle" / "course-lab-student.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for lab in plan.labs:
            notebooks = release_notebooks(course, lab)
            # our labs: notebooks/LAB.ipynb; an assignment of several notebooks or with files: its own folder
            folder = "" if len(notebooks) == 1 and not course.files(lab) else f"{lab}/"
            for nb in notebooks:
                zf.write(nb, f"notebooks/{folder}{nb.name}")
                zf.write(nb, f"course_lib/released/{folder}{nb.name}")  # `course check` restores test cells from it
            for relative in course.files(lab):
                if (course.release_dir(lab) / relative).is_file():
                    zf.write(course.release_dir(lab) / relative, f"notebooks/{folder}{relative}")
        for name in plan.files:
            zf.write(REPO_ROOT / name, name)
        # course_lib.data finds every dataset (and checks it) by the manifest, at <the installed folder>/data
        zf.write(REPO_ROOT / "data" / "MANIFEST.json", "data/MANIFEST.json")
        zf.writestr("environment.yml", STUDENT_ENVIRONMENT)
        zf.writestr("pyproject.toml", student_pyproject(project["version"], project["dependencies"]))
        zf.writestr("README.md", STUDENT_README)
    return out


def bundle(course: Course, out: Path = None, labs=None, force: bool = False, now: datetime = None) -> Path:
    """plan_bundle, then write_bundle: the path of the zip."""
    return write_bundle(course, plan_bundle(course, labs, force, now), out)
