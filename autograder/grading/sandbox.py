"""The sandbox a student's kernel runs in (bubblewrap): what it can see, and its limits.

Inside: a read-only view of the system, of the Python environment, of course_lib and of every
folder the dataset resolver searches; a private writable scratch directory (the kernel's HOME,
TMPDIR and working directory); empty private /tmp and /dev/shm; no network; its own PID, IPC and
UTS namespaces (a fork bomb or a stray child dies with the kernel). Hidden: the repository (labs
with solutions and hidden tests, the autograder), the course directory (other submissions, the
gradebook), the instructor's home directory (tokens, .env). Only the cell being graded is sent in.

Two modes, chosen by who runs the grader (docs/threat-model.md says what holds in each):
- root: the kernel runs as a fresh unprivileged uid at every start (setpriv), with no capabilities.
- user (an ordinary account, the usual case): bubblewrap in its own user namespace, no setuid and
  no chown; the kernel keeps the instructor's uid but has no capabilities, cannot make further user
  namespaces, and its process count is kept per namespace (Linux >= 5.14), so a fork bomb in one
  kernel cannot starve the next kernel or the instructor's session.
Limits: address space, CPU time, processes and file size per kernel (rlimits, prlimit), and in user
mode also a cgroup through `systemd-run --user --scope` (memory and tasks of the kernel as a whole)
where the user's systemd answers.
"""
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..course import REPO_ROOT, labs_dir


class SandboxUnavailable(Exception):
    pass


@dataclass
class Limits:
    memory_mb: int = 6144
    cpu_seconds: int = 1200
    processes: int = 128
    file_mb: int = 256


@dataclass(frozen=True)
class Mode:
    name: str        # "root" or "user"
    cgroup: bool     # limits also through a systemd user scope

    def describe(self, limits: Limits = Limits()) -> str:
        who = ("root mode: each kernel runs as a fresh unprivileged uid" if self.name == "root" else
               "unprivileged mode: each kernel in its own user namespace")
        rlimits = (f"{limits.memory_mb // 1024} GiB of address space and {limits.processes} processes per kernel, "
                   f"CPU time, {limits.file_mb} MiB files")
        how = (f"a systemd user scope (memory {limits.memory_mb // 1024} GiB, {limits.processes} tasks) and rlimits"
               if self.cgroup else "rlimits")
        return f"sandbox: bubblewrap, {who}; no network; limits by {how} ({rlimits})"


def current_mode() -> Mode:
    return Mode("root" if os.geteuid() == 0 else "user", cgroup=os.geteuid() != 0 and _user_scope_works())


@lru_cache(maxsize=1)
def _user_scope_works() -> bool:
    """Does `systemd-run --user --scope` work here (a user systemd with delegated cgroups)?"""
    if not shutil.which("systemd-run"):
        return False
    try:
        probe = subprocess.run(["systemd-run", "--user", "--scope", "--quiet", "--collect", "-p", "MemoryMax=256M",
                                "-p", "TasksMax=16", "--", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


# ------------------------------------------------------------------------------------ what is seen

PRIVATE = ("/tmp", "/dev/shm")  # empty in the sandbox (writable by anyone, as on the host)


def _resolved(path) -> str:
    return str(Path(path).expanduser().resolve())


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _closed_ancestors(path: str) -> list:
    """The folders above path that others cannot traverse (no o+x)."""
    closed, folder = [], Path(path).parent
    while str(folder) != "/":
        try:
            if not folder.stat().st_mode & stat.S_IXOTH:
                closed.append(str(folder))
        except OSError:
            pass
        folder = folder.parent
    return closed


def data_folders() -> list:
    """The folders course_lib.data searches that exist here (bound read-only into the sandbox)."""
    from course_lib import data

    return [p for p in data.search_folders() if Path(p).is_dir()]


def mounts(scratch, hidden=()) -> list:
    """bubblewrap's mount arguments: hide what must be hidden, then bring back what the kernel needs.

    Mounts apply in order, so they are sorted by depth: a folder brought back inside a hidden one
    (the venv inside the repository, the repository inside the home directory or /tmp) comes after
    it, and a hidden folder inside a visible one comes after that one.
    """
    private = PRIVATE
    hide = {_resolved(p) for p in (REPO_ROOT, labs_dir(), Path.home(), *hidden) if Path(p).exists()} - {"/"}
    # what lies inside /tmp or inside another hidden folder is invisible already (not even an empty folder)
    hide = {h for h in hide if not any(_inside(h, c) and h != c for c in hide | set(private))}
    show = {_resolved(p) for p in (sys.prefix, sys.base_prefix, REPO_ROOT / "course_lib", REPO_ROOT / "data")}
    # a data folder that holds something hidden (a home directory given as COURSE_DATA) is not shown whole
    show |= {p for p in map(_resolved, data_folders()) if not any(_inside(h, p) for h in hide)}
    # a folder on the way that others may not enter (root's home, holding the interpreter): an open tmpfs
    # in its place, so that the kernel's own uid (root mode) reaches what is shown inside it
    hide |= {folder for p in show for folder in _closed_ancestors(p)
             if not any(_inside(folder, h) for h in hide | set(private))}
    covered = hide | set(private)
    show = {p for p in show if Path(p).exists() and any(_inside(p, c) for c in covered)}
    args = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for folder in private:
        args += ["--perms", "1777", "--tmpfs", folder]
    mounted = set(private)
    for path, kind in sorted([(p, "hide") for p in hide] + [(p, "show") for p in show],
                             key=lambda op: (op[0].count(os.sep), op[1] == "show", op[0])):
        # folders between an empty tmpfs and what is mounted inside it: made, and traversable by the kernel
        missing, parent = [], Path(path).parent
        while str(parent) != "/" and str(parent) not in mounted and any(_inside(str(parent), c) for c in covered):
            missing.append(str(parent))
            parent = parent.parent
        for folder in reversed(missing):
            args += ["--perms", "0755", "--dir", folder]
            mounted.add(folder)
        args += ["--perms", "0755", "--tmpfs", path] if kind == "hide" else ["--ro-bind", path, path]
        mounted.add(path)
    scratch = _resolved(scratch)
    return args + ["--bind", scratch, scratch, "--chdir", scratch]


# ------------------------------------------------------------------------------------ the command

def bwrap_prefix(scratch, hidden=(), limits: Limits = Limits(), mode: Mode = None) -> list:
    """The argv prefix that runs a command (the kernel) inside the sandbox, with the scratch directory."""
    mode = mode or current_mode()
    _require_private(scratch)
    rlimits = ["prlimit", f"--as={limits.memory_mb * 2**20}", f"--cpu={limits.cpu_seconds}",
               f"--nproc={limits.processes}", f"--fsize={limits.file_mb * 2**20}", "--"]
    args = mounts(scratch, hidden) + [
        # the kernel watches its parent pid, which a PID namespace hides: bwrap stands in for it
        "--unsetenv", "JPY_PARENT_PID",
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--die-with-parent", "--new-session"]
    if mode.name == "root":
        uid = sandbox_uid()
        # still root inside: hand the scratch directory to the kernel's user, then drop everything
        return ["bwrap", *args, "--", "/bin/sh", "-c",
                f'chown -R {uid}:{uid} "$0" && exec setpriv --reuid={uid} --regid={uid} --clear-groups '
                f'--inh-caps=-all --bounding-set=-all "$@"', _resolved(scratch), *rlimits]
    scope = []
    if mode.cgroup:
        scope = ["systemd-run", "--user", "--scope", "--quiet", "--collect", "-p", f"MemoryMax={limits.memory_mb}M",
                 "-p", "MemorySwapMax=0", "-p", f"TasksMax={limits.processes}", "--"]
    no_nested = ["--disable-userns"] if _bwrap_has("--disable-userns") else []  # bubblewrap >= 0.8
    return [*scope, "bwrap", *args, "--unshare-user", *no_nested, "--cap-drop", "ALL", "--", *rlimits]


@lru_cache(maxsize=None)
def _bwrap_has(option: str) -> bool:
    try:
        return option in subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def sandbox_uid() -> int:
    """Root mode: a fresh unprivileged uid for every kernel start, so process limits are never shared with
    another student's kernel, nor with the remains of a fork bomb that is still being torn down."""
    return SANDBOX_UIDS[secrets.randbelow(len(SANDBOX_UIDS))]


SANDBOX_UIDS = range(60000, 65000)


def prepare_scratch(scratch: Path) -> None:
    os.chmod(scratch, 0o700)


def _require_private(scratch) -> None:
    """The scratch is handed to the kernel (root mode: chown -R to its uid) and bound writable into the sandbox:
    it must be a folder made for it (prepare_scratch), never a shared one such as /tmp or a home directory."""
    info = os.stat(scratch)
    ours = info.st_uid == os.geteuid() or os.geteuid() == 0 and info.st_uid in SANDBOX_UIDS  # (a restart)
    # (the permission bits alone: jupyter adds the sticky bit to the folder its kernel runs in)
    if info.st_mode & 0o777 != 0o700 or not ours or _resolved(scratch) in ("/", "/tmp", _resolved(Path.home())):
        raise ValueError(f"{scratch}: the sandbox's scratch must be a private folder made for one kernel (mode 0700; this one: {info.st_mode & 0o777:o}, owner {info.st_uid})")


# ------------------------------------------------------------------------------------ can we?

@lru_cache(maxsize=1)
def _problem() -> tuple:
    """(kind, why) no sandbox can run here, kind "tools" or "run"; ("", "") when one can. The probe runs this
    interpreter, with the guard, in the real sandbox: not a guess from which tools are installed."""
    needed = ["bwrap", "prlimit"] + (["setpriv"] if os.geteuid() == 0 else [])
    missing = [tool for tool in needed if not shutil.which(tool)]
    if sys.platform != "linux":
        return "tools", f"the sandbox needs Linux (bubblewrap); this is {sys.platform}"
    if missing:
        return "tools", f"{', '.join(missing)} not found"
    with tempfile.TemporaryDirectory(prefix="course-sandbox-probe-") as scratch:
        prepare_scratch(Path(scratch))
        argv = bwrap_prefix(scratch) + [sys.executable, "-c", "import course_lib.guard; print('sandbox-ok')"]
        try:
            probe = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "run", "a test run in the sandbox did not finish within 60 s"
    if probe.returncode == 0 and "sandbox-ok" in probe.stdout:
        return "", ""
    said = (probe.stderr.strip().splitlines() or ["no message"])[-1]
    return "run", f"a test run in the sandbox failed ({said[:200]})"


def sandbox_problem() -> str:
    return _problem()[1]


def sandbox_available() -> bool:
    return not sandbox_problem()


def require_sandbox() -> None:
    kind, problem = _problem()
    if not problem:
        return
    if kind == "tools":
        fix = "install bubblewrap (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap)"
    elif os.geteuid() == 0:
        fix = "check that bubblewrap (0.5 or newer) works here: bwrap --ro-bind / / --unshare-pid true"
    else:
        fix = ("as an ordinary user the sandbox needs unprivileged user namespaces: ask the administrator to allow them "
               "(sysctl user.max_user_namespaces=15000; on Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0 "
               "or an AppArmor profile for bwrap), or grade as root or on another Linux machine")
    raise SandboxUnavailable(
        f"student notebooks cannot be isolated here: {problem}. To grade safely, {fix}. "
        "Only for notebooks you trust, pass --no-sandbox.")
