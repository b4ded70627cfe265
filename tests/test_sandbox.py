"""The sandbox's plan: what is hidden, what comes back read-only and in which order, per mode."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import autograder.grading.sandbox as sandbox
from autograder.grading.sandbox import Limits, Mode, bwrap_prefix, mounts


def binds(args):
    """(kind, path) of each mount, in order."""
    out, i = [], 0
    while i < len(args):
        if args[i] in ("--tmpfs", "--ro-bind", "--bind", "--dir"):
            out.append((args[i], args[i + 1]))
            i += 3 if args[i] in ("--ro-bind", "--bind") else 2
        else:
            i += 1
    return out


@pytest.fixture
def tmp_path():
    """A folder others may enter (pytest's own are not), as a disk's folders are."""
    folder = Path(tempfile.mkdtemp(prefix="course-sandbox-plan-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def layout(tmp_path, monkeypatch):
    """An instructor's machine: home/labs-repo (with .venv, course_lib, data), home/datasets, home/course."""
    home = tmp_path / "home" / "ana"
    repo = home / "labs-repo"
    for folder in (repo / ".venv" / "lib", repo / "course_lib", repo / "data", repo / "labs", home / "datasets",
                   home / "course", tmp_path / "shared" / "data", tmp_path / "scratch"):
        folder.mkdir(parents=True)
    monkeypatch.setattr(sandbox, "PRIVATE", ("/dev/shm",))  # pytest's folders under /tmp stand for a disk here
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(sandbox, "REPO_ROOT", repo)
    monkeypatch.setattr(sandbox, "labs_dir", lambda: repo / "labs")
    monkeypatch.setattr(sys, "prefix", str(repo / ".venv"))
    monkeypatch.setattr(sys, "base_prefix", str(repo / ".venv"))
    monkeypatch.setattr(sandbox, "data_folders", lambda: [home / "datasets", tmp_path / "shared" / "data"])
    return tmp_path, home, repo


def test_hidden_first_then_what_the_kernel_needs_inside_them(layout):
    tmp, home, repo = layout
    plan = binds(mounts(tmp / "scratch", hidden=[home / "course"]))
    order = [path for _, path in plan]
    assert ("--tmpfs", str(home)) in plan and ("--dir", str(repo)) in plan  # the repository: an empty folder
    assert order.index(str(home)) < order.index(str(repo)) < order.index(str(repo / ".venv"))  # shallow to deep
    for shown in (repo / ".venv", repo / "course_lib", repo / "data", home / "datasets"):
        assert ("--ro-bind", str(shown)) in plan, shown
    assert not any(path in (str(tmp / "shared"), str(tmp / "shared" / "data")) for _, path in plan)  # visible as it is
    assert ("--ro-bind", str(repo / "labs")) not in plan and ("--ro-bind", str(home / "course")) not in plan
    assert plan[-1] == ("--bind", str(tmp / "scratch"))  # the only writable place, bound last


def test_a_data_folder_holding_the_course_is_not_shown_whole(layout, monkeypatch):
    tmp, home, repo = layout
    monkeypatch.setattr(sandbox, "data_folders", lambda: [home])  # COURSE_DATA=~ would show the tokens and the course
    plan = binds(mounts(tmp / "scratch"))
    assert ("--ro-bind", str(home)) not in plan and ("--tmpfs", str(home)) in plan


def test_a_closed_folder_on_the_way_becomes_an_open_tmpfs(layout, tmp_path, monkeypatch):
    """Root's home (mode 700) holding the interpreter: the kernel's uid must still reach the interpreter."""
    closed = tmp_path / "root-home"
    python = closed / "pyenv" / "3.11"
    python.mkdir(parents=True)
    closed.chmod(0o700)
    monkeypatch.setattr(sys, "base_prefix", str(python))
    monkeypatch.setattr(sandbox, "PRIVATE", ("/dev/shm",))
    plan = binds(mounts(tmp_path / "scratch"))
    assert ("--tmpfs", str(closed)) in plan and ("--ro-bind", str(python)) in plan
    assert ("--dir", str(closed / "pyenv")) in plan


def scratch_in(folder):
    scratch = folder / "scratch-for-one-kernel"
    scratch.mkdir(exist_ok=True)
    sandbox.prepare_scratch(scratch)
    return scratch


def test_modes(tmp_path, monkeypatch):
    tmp_path = scratch_in(tmp_path)
    root = bwrap_prefix(tmp_path, limits=Limits(memory_mb=2048, processes=64), mode=Mode("root", cgroup=False))
    assert "setpriv" in root[root.index("--") + 3] and "--unshare-user" not in root
    assert "--nproc=64" in root and f"--as={2048 * 2**20}" in root
    user = bwrap_prefix(tmp_path, limits=Limits(memory_mb=2048, processes=64), mode=Mode("user", cgroup=False))
    assert "--unshare-user" in user and "--cap-drop" in user and not any("setpriv" in a for a in user)
    assert user[0] == "bwrap" and user[user.index("--") + 1] == "prlimit"
    scoped = bwrap_prefix(tmp_path, limits=Limits(memory_mb=2048, processes=64), mode=Mode("user", cgroup=True))
    assert scoped[:4] == ["systemd-run", "--user", "--scope", "--quiet"] and "MemoryMax=2048M" in scoped
    assert "TasksMax=64" in scoped
    assert "unprivileged mode" in Mode("user", False).describe() and "systemd user scope" in Mode("user", True).describe()


def test_user_scope_is_used_where_systemd_run_works(tmp_path, monkeypatch):
    """A laptop with a user systemd: the limits go into a cgroup scope (a stand-in systemd-run records its call)."""
    fake = tmp_path / "bin" / "systemd-run"
    fake.parent.mkdir()
    log = tmp_path / "calls"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nwhile [ \"$1\" != -- ]; do shift; done; shift; exec \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    sandbox._user_scope_works.cache_clear()
    try:
        assert sandbox._user_scope_works()
        assert "--user --scope" in log.read_text()
        args = bwrap_prefix(scratch_in(tmp_path), mode=Mode("user", cgroup=sandbox._user_scope_works()))
        assert args[0] == "systemd-run"
    finally:
        sandbox._user_scope_works.cache_clear()


def test_refusal_says_why_and_what_to_do(monkeypatch):
    monkeypatch.setattr(sandbox, "_problem", lambda: ("run", "a test run in the sandbox failed (bwrap: No permissions to create new namespace)"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(sandbox.SandboxUnavailable) as refused:
        sandbox.require_sandbox()
    message = str(refused.value)
    assert "No permissions to create new namespace" in message and "user namespaces" in message and "--no-sandbox" in message
    assert "\n" not in message
    monkeypatch.setattr(sandbox, "_problem", lambda: ("tools", "bwrap, prlimit not found"))
    with pytest.raises(sandbox.SandboxUnavailable, match="apt-get install bubblewrap"):
        sandbox.require_sandbox()


def test_the_probe_runs_this_interpreter_in_the_real_sandbox():
    """sandbox_available() is not a guess from which tools exist: it ran Python and the guard inside."""
    sandbox._problem.cache_clear()
    assert sandbox.sandbox_problem() == "", sandbox.sandbox_problem()
    with tempfile.TemporaryDirectory() as folder:
        sandbox.prepare_scratch(Path(folder))
        probe = subprocess.run(bwrap_prefix(folder) + [sys.executable, "-c", "import os; print(os.path.exists(%r))"
                                                       % str(sandbox.REPO_ROOT / "autograder")],
                               capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "False", probe.stderr  # the grader's own code is hidden from the kernel


@pytest.mark.parametrize("shared", ["/tmp", "home"])
def test_a_shared_folder_is_never_a_scratch(shared, monkeypatch, tmp_path):
    """Root mode hands the scratch to the kernel's uid (chown -R): /tmp or a home directory must be refused."""
    monkeypatch.setenv("HOME", str(tmp_path))
    folder = tmp_path if shared == "home" else Path("/tmp")
    before = os.stat(folder)
    with pytest.raises(ValueError, match="private folder made for one kernel"):
        bwrap_prefix(folder)
    after = os.stat(folder)
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
