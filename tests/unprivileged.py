"""An instructor's own account to run `course` as: CI and the development machines are root, instructors are not.

`workspace(as_instructor=True)` makes, when the suite runs as root, a system user (`useradd`), a folder it
owns under /tmp with a copy of the repository's code and labs (a clone under /tmp, as a scratch checkout
would be), a home directory, and a Python the user can execute: a venv of this very interpreter (a hard-linked
copy of its installation where it lives under root's home, out of that user's reach) whose site-packages
are hard links to this environment's packages (hard links cost no disk, and the packages are the same). Run by an ordinary user already,
the suite uses that user and this interpreter. `Workspace.course(...)` runs the `course` command line there.
"""
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

USER = "course-grader-test"
REPO = Path(__file__).resolve().parent.parent
CODE = ("autograder", "course_lib", "labs", "data", "pyproject.toml", "README.md")


@dataclass
class Workspace:
    root: Path             # owned by the account
    repo: Path             # root/repo: the repository's code and labs
    home: Path             # the account's HOME
    python: str            # an interpreter the account can execute, with the project's dependencies
    user: str = None       # None: the current user (already unprivileged, or root on purpose)
    env: dict = field(default_factory=dict)

    def run(self, argv, env=None, timeout=900):
        """argv as the account, with a clean environment: what an instructor's shell would give it."""
        base = {"HOME": str(self.home), "PATH": f"{Path(self.python).parent}:/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8", "COURSE_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1", **self.env, **(env or {})}
        prefix = _as_account() if self.user is not None else []
        return subprocess.run(prefix + ["env", "-i", *[f"{k}={v}" for k, v in base.items()], *argv],
                              cwd=self.root, capture_output=True, text=True, timeout=timeout)

    def course(self, *args, course_dir="course", env=None, timeout=900):
        return self.run([self.python, "-m", "autograder.cli", "--course-dir", str(self.root / course_dir), *args],
                        env=env, timeout=timeout)

    def give(self, path: Path) -> Path:
        """Hand a file or folder the test made (never hard links to this environment) to the account."""
        if self.user is not None:
            subprocess.run(["chown", "-R", "{}:{}".format(*_ids()), str(path)], check=True)
        return path


def _ids():
    entry = pwd.getpwnam(USER)
    return entry.pw_uid, entry.pw_gid


def _as_account():
    """Become the account: its uid, gid and groups, and none of root's capabilities."""
    uid, gid = _ids()
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]


def workspace(as_instructor: bool) -> Workspace:
    """as_instructor: as an ordinary user (made here when this runs as root); else as the current user."""
    make_user = as_instructor and os.geteuid() == 0
    if make_user and subprocess.run(["id", USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", USER], check=True, capture_output=True)
    venv_packages = Path(sysconfig.get_paths()["purelib"])
    root = Path(tempfile.mkdtemp(prefix="course-instructor-", dir=_same_device_tmp(venv_packages)))
    os.chmod(root, 0o755)
    repo, home = root / "repo", root / "home"
    home.mkdir()
    for part in CODE:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, repo / part, ignore=shutil.ignore_patterns("__pycache__", "cache", "released"))
        elif source.exists():
            repo.mkdir(exist_ok=True)
            shutil.copy2(source, repo / part)
    space = Workspace(root, repo, home, sys.executable, USER if make_user else None,
                      env={"PYTHONPATH": str(repo)})  # the copy's code, not the installed repository's
    if make_user:
        space.python, space.env = _python_for_user(root, venv_packages, repo)
        # the account owns its folders and the copied code; never the hard links (chown would change the originals)
        os.chown(root, *_ids())
        space.give(repo)
        space.give(home)
    return space


def _same_device_tmp(target: Path) -> str:
    """A temporary folder on the device of target (hard links cannot cross devices)."""
    for candidate in (tempfile.gettempdir(), "/var/tmp", str(REPO.parent)):
        if os.path.isdir(candidate) and os.stat(candidate).st_dev == os.stat(target).st_dev:
            return candidate
    raise RuntimeError(f"no temporary folder on the device of {target}: the unprivileged tests hard-link it")


def _python_for_user(root: Path, packages: Path, repo: Path) -> tuple:
    """A venv the account can run, (its python, the environment it needs): this very interpreter (where it lives
    out of the account's reach, under root's home, a hard-linked copy of its installation), hard links to this
    environment's packages, and the workspace's copy of the code."""
    base, env = Path(sys.base_prefix), {}
    interpreter = f"python{sys.version_info.major}.{sys.version_info.minor}"
    same = f"import sys; sys.exit(sys.version != {sys.version!r} or sys.base_prefix != {sys.base_prefix!r})"
    if subprocess.run(_as_account() + [str(base / "bin" / interpreter), "-c", same], capture_output=True).returncode != 0:
        subprocess.run(["cp", "-al", str(base), str(root / "python")], check=True)
        base = root / "python"
        env["LD_LIBRARY_PATH"] = str(base / "lib")  # its libpython, which the binary looks for at the old place
    venv = root / "venv"
    subprocess.run([str(base / "bin" / interpreter), "-m", "venv", "--without-pip", str(venv)], check=True,
                   capture_output=True, env={**os.environ, **env})
    site = venv / "lib" / interpreter / "site-packages"
    shutil.rmtree(site)
    subprocess.run(["cp", "-al", str(packages), str(site)], check=True)
    for data in ("share", "etc"):  # data files packages installed beside the interpreter (nbconvert's templates)
        if (Path(sys.prefix) / data).is_dir():
            subprocess.run(["cp", "-al", str(Path(sys.prefix) / data), str(venv / data)], check=True)
    for leftover in [*site.glob("__editable__*"), *site.glob("course_lab-*")]:  # this checkout's editable install
        shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    (site / "course-workspace.pth").write_text(f"{repo}\n")
    python = venv / "bin" / "python"
    # nbgrader runs `alembic` from PATH when it makes a gradebook: the console script pip would have written
    (venv / "bin" / "alembic").write_text(f"#!{python}\nimport sys\nfrom alembic.config import main\nsys.exit(main())\n")
    (venv / "bin" / "alembic").chmod(0o755)
    return str(python), env
