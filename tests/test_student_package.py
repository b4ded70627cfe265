"""The student bundle installs what students need (course_lib, `course check`, JupyterLab) and no instructor package.

The fast tests read the zip and run its `course` command with the instructor packages made unimportable. The
slow one installs the bundle as its README tells students (`pip install -e .`) into a fresh venv and uses it.
Tests stay off the network, so pip gets no index: the venv is first given, by hard links to this environment's
files, exactly the installed distributions that the bundle's dependencies require (followed through every
distribution's own requirements, markers evaluated), and pip must then find the package's whole dependency
tree satisfied (`pip check`). What pip accepts there holds no instructor package.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import zipfile
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from autograder.bundle import STUDENT_BUILD_HOOK_PATH, bundle, bundled_datasets
from autograder.cli import STUDENT_COMMANDS
from autograder.course import REPO_ROOT, Course
from autograder.notebooks import is_test_cell
from autograder.planted_bugs import reference_submission
from autograder.release import release
from course_lib import data
from unprivileged import _same_device_tmp

# the instructor extra's packages (and what nbgrader brings: its database), as pip names them and as imported
INSTRUCTOR_DISTRIBUTIONS = ("nbgrader", "distributed", "dask", "psycopg", "psycopg-binary", "slack-sdk",
                            "python-dotenv", "tomli-w", "sqlalchemy", "alembic")
INSTRUCTOR_MODULES = ("nbgrader", "distributed", "dask", "psycopg", "slack_sdk", "dotenv", "tomli_w", "sqlalchemy",
                      "alembic")
# an instructor command and its arguments, for each instructor command (all must answer with one line)
INSTRUCTOR_COMMANDS = (["release", "00_tiny"], ["bundle"], ["collect", "folder", "inbox", "-a", "00_tiny"],
                       ["grade", "00_tiny"], ["feedback", "00_tiny"], ["export"], ["grades"], ["verify", "00_tiny"],
                       ["demo"], ["slack-bot"], ["collect", "slack"])
# makes a Python started with `-c BLOCK + code` see what the student package has: no instructor package, and
# no module of this checkout's editable install (its finder would answer for autograder modules the bundle lacks)
BLOCK = ("import sys\nclass Block:\n    def find_spec(self, name, path=None, target=None):\n"
         f"        if name.split('.')[0] in {INSTRUCTOR_MODULES!r}:\n"
         "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
         "sys.meta_path = [Block()] + [f for f in sys.meta_path\n"
         "                             if not getattr(f, '__module__', '').startswith('__editable__')]\n")


def unzipped(zip_path, folder):
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(folder)
    return Path(folder)


def student_python(folder, code, *args, cwd=None):
    """python -c code in the unzipped bundle folder's code only (not this checkout's), instructor packages blocked."""
    env = {**os.environ, "PYTHONPATH": str(folder)}
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], capture_output=True, text=True, env=env,
                          cwd=cwd or folder, timeout=120)


def test_the_bundle_ships_the_student_part_and_no_instructor_package(course, tmp_path):
    path = bundle(course, tmp_path / "b.zip")
    names = set(zipfile.ZipFile(path).namelist())
    assert {"autograder/cli.py", "autograder/student_check.py", "autograder/grading/submission.py",
            "course_lib/guard.py", "data/MANIFEST.json"} <= names
    for instructor_part in ("autograder/release.py", "autograder/bundle.py", "autograder/gradebook.py",
                            "autograder/grading/run_lab.py", "autograder/slack/client.py", "autograder/verify.py"):
        assert instructor_part not in names, instructor_part

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    shipped = tomllib.loads(zipfile.ZipFile(path).read("pyproject.toml").decode())["project"]["dependencies"]
    assert shipped == project["dependencies"]
    wanted = {canonicalize_name(Requirement(r).name) for r in shipped}
    assert {"jupyterlab", "ipykernel", "torch", "torchvision"} <= wanted
    instructor = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["instructor"]}
    assert "nbgrader" in instructor and not wanted & instructor and not wanted & set(INSTRUCTOR_DISTRIBUTIONS)

    environment = zipfile.ZipFile(path).read("environment.yml").decode()
    assert "- -e .\n" in environment
    assert not [name for name in (*INSTRUCTOR_DISTRIBUTIONS, "instructor") if name in environment]


def test_what_the_student_unzips_is_readable_and_holds_the_small_datasets(course, tmp_path):
    path = bundle(course, tmp_path / "b.zip")
    with zipfile.ZipFile(path) as zf:
        modes = {info.filename: info.external_attr >> 16 for info in zf.infolist()}
        assert {name: oct(mode) for name, mode in modes.items() if mode != 0o100644} == {}, "every file rw-r--r--"
        names = set(zf.namelist())
        assert bundled_datasets() == ["names", "tinyshakespeare"]
        for name in bundled_datasets():
            here = data.resolve(name, download=False)
            assert zf.read(f"data/{here.name}") == here.read_bytes(), name
        readme = zf.read("README.md").decode()
    assert {"README.md", "pyproject.toml", "environment.yml", "data/names.txt", "data/tinyshakespeare.txt"} <= names
    assert "- `data/names.txt`: 32,033 first names" in readme and "labs 2 and 3" in readme
    assert "- `data/tinyshakespeare.txt`: tiny Shakespeare" in readme and "lab 4" in readme
    assert "course data fetch fashion_mnist" in readme, "lab 5's data is not in the bundle: the README says how to get it"

    folder = unzipped(path, tmp_path / "bundle")
    status = student_python(folder, "import os\nos.environ['COURSE_OFFLINE'] = '1'\nos.environ.pop('COURSE_DATA', None)\n"
                                    "from course_lib import data\nprint(data.format_status())", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    for name in bundled_datasets():  # found in the bundle's own data/ folder (no cache, no shared mirror first)
        assert re.search(rf"^{name} +ok +repo data/ {re.escape(str(folder / 'data'))}$", status.stdout, re.M), status.stdout


def test_the_notebooks_carry_the_metadata_jupyterlab_writes_and_the_install_stamps_its_python(course, tmp_path):
    """JupyterLab writes the kernel's kernelspec and language_info into a notebook it opens, and marks it changed
    when they differ; the install's build hook gives them the installing Python's version."""
    from ipykernel.ipkernel import IPythonKernel
    from hatchling.plugin.utils import load_plugin_from_script
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface

    folder = unzipped(bundle(course, tmp_path / "b.zip"), tmp_path / "bundle")
    project = tomllib.loads((folder / "pyproject.toml").read_text())
    assert project["build-system"]["build-backend"] == "hatchling.build"
    assert project["tool"]["hatch"]["build"]["hooks"]["custom"]["path"] == STUDENT_BUILD_HOOK_PATH
    notebooks = sorted((folder / "notebooks").rglob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        meta = json.loads(path.read_text())["metadata"]
        assert meta["kernelspec"] == {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
        assert meta["language_info"] == IPythonKernel.language_info, path.name
        assert meta["course"]["lab"], "the course's own metadata stays"
    assert (folder / "course_lib" / "released").is_dir()

    # the hook, as hatchling runs it on `pip install -e .` with another Python than the one that bundled
    for path in notebooks:
        nb = json.loads(path.read_text())
        nb["metadata"]["language_info"]["version"] = "3.10.0"
        path.write_text(json.dumps(nb))
    hook_class = load_plugin_from_script(str(folder / STUDENT_BUILD_HOOK_PATH), "hook", BuildHookInterface, "build_hook")
    before = {p: p.read_text() for p in notebooks}
    hook_class(str(folder), {}, None, None, str(folder), "wheel").initialize("editable", {})
    for path in notebooks:
        nb = json.loads(path.read_text())
        assert nb["metadata"]["language_info"] == IPythonKernel.language_info, path.name
        assert json.loads(before[path])["cells"] == nb["cells"], "the hook changes the version only"
    again = {p: p.stat().st_mtime_ns for p in notebooks}
    hook_class(str(folder), {}, None, None, str(folder), "wheel").initialize("editable", {})
    assert {p: p.stat().st_mtime_ns for p in notebooks} == again, "a notebook with this Python's version is left alone"


def test_the_student_part_runs_without_the_instructor_packages(course, tmp_path):
    folder = unzipped(bundle(course, tmp_path / "b.zip"), tmp_path / "bundle")
    done = student_python(folder, "import autograder.cli, autograder.student_check, course_lib.data\n"
                                  "print(autograder.cli.__file__)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder / "autograder" / "cli.py")
    blocked = student_python(folder, "import nbgrader")
    assert blocked.returncode == 1 and "No module named 'nbgrader'" in blocked.stderr


def test_an_instructor_command_in_the_student_package_says_what_to_install(course, tmp_path):
    folder = unzipped(bundle(course, tmp_path / "b.zip"), tmp_path / "bundle")
    assert set(STUDENT_COMMANDS) == {"check", "data"}
    for command in INSTRUCTOR_COMMANDS:
        done = student_python(folder, "from autograder.cli import main\nsys.exit(main(sys.argv[1:]))", *command)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith(f"error: course {command[0]} is an instructor command"), (command, done.stderr)
        assert "pip install -e '.[instructor]'" in done.stderr and done.stderr.count("\n") == 1, (command, done.stderr)


def test_an_instructor_command_missing_a_package_in_a_full_install_says_so_too(monkeypatch, capsys):
    from autograder.cli import main

    monkeypatch.setitem(sys.modules, "autograder.grading.run_lab", None)  # what a broken install would raise
    assert main(["grade", "01_micrograd"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "course grade is an instructor command" in err
    assert "(autograder.grading.run_lab)" in err


def installed_closure(requirements) -> list:
    """The installed distributions (canonical names) that requirements need, with theirs, markers evaluated here."""
    seen, todo = set(), [(text, "") for text in requirements]  # (requirement, the extra it was asked under)
    while todo:
        text, extra = todo.pop()
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        for wanted in ("", *sorted(requirement.extras)):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                todo += [(r, wanted) for r in metadata.distribution(name).requires or []]
    return sorted({name for name, _ in seen})


def link_distribution(name, venv):
    """Hard-link an installed distribution's files (its RECORD) into venv: site-packages and the data files
    beside the interpreter (JupyterLab's static files, the kernel spec); its commands are written anew, as pip
    writes them, for venv's python."""
    dist = metadata.distribution(name)
    site = Path(dist.locate_file(""))
    venv_site = venv / Path(site).relative_to(sys.prefix)
    for file in dist.files or []:
        source = Path(os.path.normpath(site / file))
        if source.is_relative_to(site):
            target = venv_site / source.relative_to(site)
        elif source.is_relative_to(sys.prefix) and not source.is_relative_to(Path(sys.prefix) / "bin"):
            target = venv / source.relative_to(sys.prefix)
        else:
            continue
        if source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
    python = venv / "bin" / "python"
    for entry in dist.entry_points.select(group="console_scripts"):
        first, *rest = entry.attr.split(".")
        script = venv / "bin" / entry.name
        script.write_text(f"#!{python}\nimport sys\nfrom {entry.module} import {first} as entry\n"
                          f"sys.exit(entry{''.join('.' + part for part in rest)}())\n")
        script.chmod(0o755)


def run_in(venv, *command, cwd, timeout=300):
    """A command with venv's bin first on PATH and nothing of this checkout's on the Python path."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HOME=str(venv.parent / "home"))
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serves_jupyterlab(venv, folder):
    """Start `jupyter lab` headless in folder, and return (the /lab page, /api/kernelspecs) once it answers."""
    port, token = free_port(), "student-test"
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", HOME=str(venv.parent / "home"))
    server = subprocess.Popen([venv / "bin" / "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
                               *(["--allow-root"] if os.geteuid() == 0 else [])],  # CI runs as root
                              cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and server.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10).read().decode()
                specs = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs?token={token}", timeout=10)
                return page, specs.read().decode()
            except OSError:
                time.sleep(1)
        server.terminate()
        pytest.fail(f"jupyter lab did not serve within 120 s: {server.communicate(timeout=30)[1][-2000:]}")
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)


@pytest.mark.slow  # releases lab 1, builds a venv of hard links (~6 GB of torch, no copy) and checks lab 1 twice
def test_a_fresh_venv_from_the_bundle_opens_no_instructor_package(tmp_path, monkeypatch, request):
    monkeypatch.delenv("COURSE_LABS_DIR", raising=False)
    lab = "01_micrograd"
    course = Course(tmp_path / "course")
    course.root.mkdir()
    release(course, lab)
    folder = unzipped(bundle(course, tmp_path / "b.zip", labs=[lab]), tmp_path / "student")

    dependencies = tomllib.loads((folder / "pyproject.toml").read_text())["project"]["dependencies"]
    closure = installed_closure(dependencies)
    assert {"torch", "jupyterlab", "ipykernel", "nbformat"} <= set(closure)
    assert not set(closure) & set(INSTRUCTOR_DISTRIBUTIONS), set(closure) & set(INSTRUCTOR_DISTRIBUTIONS)

    # hard links cannot cross devices: the venv goes where this environment's packages are, and is removed after
    venv = Path(tempfile.mkdtemp(prefix="student-venv-", dir=_same_device_tmp(Path(metadata.distribution("torch")
                                                                                      .locate_file(""))))) / "venv"
    request.addfinalizer(lambda: shutil.rmtree(venv.parent, ignore_errors=True))
    (venv.parent / "home").mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    # pip itself, and hatchling (with what it needs) to build the bundle's package without an index
    for name in (*closure, *installed_closure(["pip", "hatchling"])):
        link_distribution(name, venv)
    unpacked = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    started = time.monotonic()
    install = run_in(venv, venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-build-isolation",
                     "-e", ".", cwd=folder)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    check = run_in(venv, venv / "bin" / "python", "-m", "pip", "check", cwd=folder)
    assert check.returncode == 0, check.stdout  # every requirement of every installed distribution is met
    print(f"pip install -e . of the bundle: {time.monotonic() - started:.0f} s; {len(closure)} distributions")
    # no build folder (setuptools' *.egg-info), no __pycache__ beside the student's files: the folder as unzipped
    added = sorted(set(p.relative_to(folder) for p in folder.rglob("*")) - set(unpacked))
    assert [p for p in added if p.parts[0] != "course_lib"] == [], added
    # what JupyterLab will write on opening a notebook with this venv's kernel is what the notebook holds
    kernel = run_in(venv, venv / "bin" / "python", "-c", "import json; from ipykernel.ipkernel import IPythonKernel; "
                    "from jupyter_client.kernelspec import KernelSpecManager as M; s = M().get_kernel_spec('python3'); "
                    "print(json.dumps([IPythonKernel.language_info, s.display_name, s.language]))", cwd=tmp_path)
    assert kernel.returncode == 0, kernel.stderr
    language_info, display_name, language = json.loads(kernel.stdout)
    meta = json.loads((folder / "notebooks" / f"{lab}.ipynb").read_text())["metadata"]
    assert meta["language_info"] == language_info
    assert meta["kernelspec"] == {"display_name": display_name, "language": language, "name": "python3"}

    for module in INSTRUCTOR_MODULES:
        opened = run_in(venv, venv / "bin" / "python", "-c", f"import {module}", cwd=tmp_path)
        assert opened.returncode == 1 and f"No module named '{module}'" in opened.stderr, (module, opened.stderr)
    where = run_in(venv, venv / "bin" / "python", "-c", "import course_lib, torch, sklearn, matplotlib; "
                   "print(course_lib.__file__)", cwd=tmp_path)
    assert where.returncode == 0 and where.stdout.strip() == str(folder / "course_lib" / "__init__.py"), where.stderr

    # `course check`: exit 1 and what is left to answer on the release; exit 0 and every cell passing on the answers
    untouched = run_in(venv, venv / "bin" / "course", "check", f"notebooks/{lab}.ipynb", cwd=folder)
    assert untouched.returncode == 1, untouched.stdout + untouched.stderr
    assert "Still to answer" in untouched.stdout and "Traceback" not in untouched.stderr, untouched.stdout
    source = nbformat.read(course.source(lab), as_version=4)
    released = nbformat.read(course.release(lab), as_version=4)
    nbformat.write(reference_submission(released, source), folder / "answered.ipynb")
    answered = run_in(venv, venv / "bin" / "course", "check", "answered.ipynb", cwd=folder)
    tests = sum(map(is_test_cell, released.cells))
    assert answered.returncode == 0, answered.stdout + answered.stderr
    assert f"{tests} of {tests} test cells pass their visible tests" in answered.stdout, answered.stdout

    version = run_in(venv, venv / "bin" / "jupyter", "lab", "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == metadata.version("jupyterlab"), version.stderr
    page, specs = serves_jupyterlab(venv, folder / "notebooks")
    assert "JupyterLab" in page and '"python3"' in specs

    datasets = run_in(venv, venv / "bin" / "course", "data", cwd=tmp_path)  # the manifest came with the bundle
    assert datasets.returncode == 0 and "fashion_mnist" in datasets.stdout, datasets.stdout + datasets.stderr
    grade = run_in(venv, venv / "bin" / "course", "grade", lab, cwd=tmp_path)
    assert grade.returncode == 2 and grade.stderr.count("\n") == 1, grade.stderr
    assert grade.stderr.startswith("error: course grade is an instructor command"), grade.stderr
