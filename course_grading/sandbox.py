"""The bubblewrap sandbox around one submission's kernel.

Inside: the system and the Python environment read-only, a read-only copy of course_utils, a
private in-memory home and /tmp, a folder for the kernel's IPC sockets; no network, its own PID
namespace (everything it starts dies with it), a cleared environment. kernel_start.py then sets
the resource limits, drops to an unprivileged uid (when the grader is root) and installs the
tamper detector before the kernel runs a single cell.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional

from .protocol import Job

HOME = "/home/student"
COURSE = "/opt/course"
GRADER = "/opt/grader"
KERNEL_START = Path(__file__).with_name("kernel_start.py")
UID_BASE = 61000  # one uid per concurrently graded submission: limits are counted per uid


@lru_cache(maxsize=1)
def bwrap_status() -> tuple[bool, str]:
    """(True, path) when bubblewrap runs here, else (False, one line saying why)."""
    path = shutil.which("bwrap")
    if path is None:
        return False, "bubblewrap (bwrap) is not installed"
    try:
        done = subprocess.run([path, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                               "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"bwrap does not run here ({type(err).__name__})"
    if done.returncode != 0:
        line = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return False, f"bwrap cannot create namespaces here ({line[:200]})"
    return True, path


def signal_name(code: Optional[int]) -> str:
    """What bwrap's exit status says about the kernel's end (bwrap exits 128 + signal)."""
    import signal

    if code is None or code <= 128:
        return ""
    try:
        return signal.Signals(code - 128).name
    except ValueError:
        return ""


def _ancestors(path: str) -> list[str]:
    parts = Path(path).parts[1:-1]
    return ["/" + "/".join(parts[:k]) for k in range(1, len(parts) + 1)]


def kernel_command(job: Job, connection_file: str, notebook_file: str) -> list[str]:
    """The command that starts the job's kernel (in bwrap unless job.sandbox is False)."""
    config = {"limits": vars(job.limits), "uid": job.uid, "connection_file": connection_file,
              "notebook": notebook_file, "home": HOME if job.sandbox else job.work,
              "name": job.notebook_name}
    import json

    spec = json.dumps(config)
    if not job.sandbox:
        return [sys.executable, str(KERNEL_START), spec]
    ok, bwrap = bwrap_status()
    if not ok:
        raise RuntimeError(bwrap)
    args = [bwrap, "--die-with-parent", "--new-session", "--clearenv"]
    if job.uid is not None:  # root: no user namespace, the kernel drops to job.uid itself
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
                 "--unshare-cgroup-try", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-all"]
    made: set[str] = {"/"}

    def mount(flag: str, src: str, dest: str) -> None:
        for parent in _ancestors(dest):
            if parent not in made:
                args.extend(["--perms", "0755", "--dir", parent])
                made.add(parent)
        args.extend([flag, src, dest])
        made.add(dest)

    size = str(job.limits.scratch_mb * 2**20)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "01777", "--size", size,
             "--tmpfs", "/tmp"]
    made |= {"/proc", "/dev", "/tmp"}
    for top in ("/usr", "/etc"):
        mount("--ro-bind", top, top)
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            mount("--ro-bind", top, top)
    prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    for prefix in sorted(prefixes):
        if not prefix.startswith("/usr/") and os.path.isdir(prefix):
            mount("--ro-bind", prefix, prefix)
    mount("--ro-bind", job.course_copy, COURSE)
    mount("--ro-bind", str(Path(job.course_copy).with_name("grader")), GRADER)
    for folder in job.read_only:
        if os.path.isdir(folder):
            mount("--ro-bind", folder, folder)
    mount("--bind", job.work, job.work)
    for parent in _ancestors(HOME + "/x"):
        if parent not in made:
            args += ["--perms", "0755", "--dir", parent]
    args += ["--perms", "0777", "--size", size, "--tmpfs", HOME, "--chdir", HOME,
             "--hostname", "sandbox"]
    for key, value in sorted(job.env.items()):
        args += ["--setenv", key, value]
    args += ["--setenv", "HOME", HOME, "--setenv", "PYTHONPATH", COURSE]
    python = os.path.join(sys.prefix, "bin", "python")
    return [*args, "--", python, f"{GRADER}/kernel_start.py", spec]


def course_utils_folder() -> Optional[Path]:
    """The installed course_utils package's folder (found, not imported), or None."""
    import importlib.util

    spec = importlib.util.find_spec("course_utils")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def course_copy(dest: Path) -> Path:
    """A read-only copy of the installed course_utils (never the checkout itself) under `dest`;
    beside it, `grader/` holds a copy of kernel_start.py (and, see add_font_list, matplotlib's
    font list). The compiled modules come along (their timestamps kept, so Python trusts them):
    the kernel cannot write bytecode here, and compiling course_utils again in every kernel
    costs about 0.1 s."""
    src = course_utils_folder()
    if src is None:
        raise RuntimeError("course_utils is not installed")
    target = dest / "course_utils"
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("*.tmp", "*.swp"))
    grader = dest.with_name("grader")
    grader.mkdir(parents=True, exist_ok=True)
    shutil.copy(KERNEL_START, grader / "kernel_start.py")
    for path in [dest, target, *target.rglob("*"), grader, grader / "kernel_start.py"]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return dest


def add_font_list(dest: Path, fonts: Optional[Path]) -> None:
    """Put a copy of matplotlib's font list `fonts` in the course copy's read-only `grader/`
    (kernel_start moves it into the kernel's empty home, which would build it again)."""
    if fonts is None:
        return
    grader = dest.with_name("grader")
    grader.chmod(0o755)
    try:
        shutil.copy(fonts, grader / fonts.name)
        (grader / fonts.name).chmod(0o444)
    except OSError:  # gone meanwhile: the kernel builds its own
        pass
    finally:
        grader.chmod(0o555)
