"""What a batch prepares before any kernel runs, and reuses while its inputs are unchanged.

Three things: the assignment's student version (nbgrader's GenerateAssignment, about 2 s with
nbgrader's import), kept under a key made of every input's bytes; the lesson's stand-in models,
built by a subprocess that imports course_utils (2.5 s even when nothing is left to build),
skipped when a stamp says the same course_utils built them and they are all still there; and
matplotlib's font list as a sandboxed kernel sees the fonts, which every kernel's empty home
would otherwise build again (0.1-0.25 s each). The caches live in the instructor's own folders,
which no sandbox mounts; a cache that cannot be written is simply not kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from .release import generate
from .protocol import Job
from .sandbox import GRADER, course_utils_folder, kernel_command

IGNORED = (".ipynb_checkpoints", "__pycache__")
STANDIN_SOURCES = ("standins.py", "lessons.py", "registry.py")  # what decides a stand-in's files


def cache_folder() -> Path:
    """The grader's own cache (XDG_CACHE_HOME, else ~/.cache, then course_grading/)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "course_grading"


def _digest(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


def release_key(exercises: Path, assignment: str) -> str:
    """A checksum of everything GenerateAssignment reads: the assignment's files, the config,
    nbgrader's version and the grader's generate()."""
    from importlib.metadata import version

    src = Path(exercises) / "source" / assignment
    parts = [assignment.encode(), version("nbgrader").encode(),  # not nbgrader's 0.8 s import
             Path(__file__).with_name("release.py").read_bytes()]
    config = Path(exercises) / "nbgrader_config.py"
    parts.append(config.read_bytes() if config.exists() else b"")
    for path in sorted(src.rglob("*")):
        if path.is_file() and not any(part in IGNORED for part in path.parts):
            parts += [str(path.relative_to(src)).encode(), path.read_bytes()]
    return _digest(parts)


def _store(folder: Path, cache: Path) -> None:
    """Copy `folder` to `cache` atomically; leave no cache when that fails."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}-", dir=cache.parent))
        shutil.copytree(folder, tmp / "x")
        os.replace(tmp / "x", cache)
        shutil.rmtree(tmp, ignore_errors=True)
    except OSError:  # read-only or full: no cache, the same result
        pass


def release_folder(exercises: Path, assignment: str, work: Path) -> Path:
    """The folder of the assignment's student version: from the cache when its key matches,
    else generated with nbgrader into `work` (and kept for next time)."""
    key = release_key(exercises, assignment)
    cached = cache_folder() / "release" / f"{assignment}-{key[:32]}"
    if cached.is_dir() and any(cached.glob("*.ipynb")):
        return cached
    made = generate(exercises, work, assignment)
    _store(made, cached)
    return made


# ---------------------------------------------------------------------------------------------
# stand-ins


def standin_key(assignment: str, size: str) -> Optional[str]:
    """A checksum of the installed course_utils files that decide the stand-ins (None when
    course_utils is not installed)."""
    folder = course_utils_folder()
    if folder is None:
        return None
    try:
        parts = [assignment.encode(), size.encode()] + [(folder / name).read_bytes()
                                                         for name in STANDIN_SOURCES]
    except OSError:
        return None
    return _digest(parts)


def _stamp(cache: str, assignment: str, size: str) -> Optional[Path]:
    key = standin_key(assignment, size)
    return None if key is None else Path(cache) / "standins" / f".built-{assignment}-{key[:32]}"


def standins_ready(assignment: str, cache: str, size: str) -> bool:
    """True when the stamp of a build by this course_utils exists and every folder it names
    still holds its model."""
    stamp = _stamp(cache, assignment, size)
    try:
        folders = json.loads(stamp.read_text(encoding="utf-8")) if stamp else None
    except (OSError, ValueError):
        return False
    return isinstance(folders, list) and all(
        isinstance(f, str) and (Path(f) / "model.safetensors").is_file() for f in folders)


BUILD = """\
import json, sys
from course_utils import lessons, registry, standins
entry = [e for e in lessons.LESSONS if e.assignment == sys.argv[1]]
print(json.dumps([str(standins.build(role, registry.standin_size()))
                  for role in (entry[0].roles if entry else ())]))
"""


class Prebuild:
    """The lesson's stand-ins, built by a subprocess while the batch gets ready (nothing to do
    when the lesson loads real checkpoints, or when standins_ready says they are built)."""

    def __init__(self, assignment: str, cache: str):
        self.assignment, self.cache = assignment, cache
        self.size = os.environ.get("COURSE_STANDIN_SIZE", "tiny")
        self.proc: Optional[subprocess.Popen] = None
        if os.environ.get("COURSE_MODELS", "offline") != "offline":
            return
        if standins_ready(assignment, cache, self.size):
            readable(Path(cache))  # a folder rebuilt since (by a notebook) is 0700 again
            return
        env = dict(os.environ, COURSE_CACHE=cache)
        self.proc = subprocess.Popen([sys.executable, "-c", BUILD, assignment], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def finish(self, timeout: float = 1800) -> None:
        """Wait (bounded) for the build, stamp it, and open the stand-ins to the sandboxes."""
        if self.proc is None:
            return
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return
        finally:
            readable(Path(self.cache))
        stamp = _stamp(self.cache, self.assignment, self.size)
        try:
            folders = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return  # the build failed: the kernels will say what is missing
        if self.proc.returncode == 0 and stamp is not None:
            try:
                tmp = stamp.with_name(stamp.name + ".tmp")
                tmp.write_text(json.dumps(folders), encoding="utf-8")
                os.replace(tmp, stamp)
            except OSError:  # a read-only cache: build again next time
                pass

    def stop(self) -> None:
        """Kill a build still running (a batch that never got going)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def readable(folder: Path) -> None:
    """Let the sandbox's unprivileged uid read the stand-ins (they are built 0700)."""
    if os.geteuid() != 0 or not folder.is_dir():
        return
    for base, _dirs, files in os.walk(folder):
        os.chmod(base, os.stat(base).st_mode | 0o555)
        for name in files:
            path = os.path.join(base, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode | 0o444)


# ---------------------------------------------------------------------------------------------
# matplotlib's font list

FONT_FOLDERS = ("/etc/fonts", "/usr/share/fonts", "/usr/local/share/fonts")  # and matplotlib's
FONTS_BUILD_SECONDS = 120  # a build still running then ends itself (SIGALRM)
FONT_BUILD = f"""\
import os, signal, sys
signal.alarm(int(sys.argv[3]))
if sys.argv[2]:  # the grader is root: the kernel's uid, as kernel_start drops to it
    sys.path.insert(0, {GRADER!r})
    from kernel_start import drop_to
    drop_to(int(sys.argv[2]))
import matplotlib.font_manager  # finds the fonts and writes its list into MPLCONFIGDIR
mpl = os.environ["MPLCONFIGDIR"]
for name in os.listdir(mpl):
    if name.startswith("fontlist-") and name.endswith(".json"):
        os.replace(os.path.join(mpl, name), os.path.join(sys.argv[1], name))
"""
_FONTS_LOCK = threading.Lock()
_FONTS: dict[str, Any] = {}  # this process's: its cache folder, its build, the list once found


def _matplotlib_data() -> Optional[Path]:
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    return Path(spec.origin).with_name("mpl-data") if spec and spec.origin else None


def font_list_folder() -> Optional[Path]:
    """Where the font list is kept, under a key of matplotlib's version and the font folders'
    modification times (a font installed or removed changes it); None without matplotlib."""
    from importlib.metadata import PackageNotFoundError, version

    data = _matplotlib_data()
    try:
        parts = [version("matplotlib").encode()]
    except PackageNotFoundError:
        return None
    for top in [*FONT_FOLDERS, *([str(data / "fonts")] if data else [])]:
        for base, dirs, _files in os.walk(top):
            dirs.sort()
            parts.append(f"{base} {os.stat(base).st_mtime_ns}".encode())
    return cache_folder() / "matplotlib" / _digest(parts)[:32]


def font_list_valid(path: Path) -> bool:
    """True when `path` is a font list whose every font file is still on disk."""
    data_path = _matplotlib_data()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = [entry["fname"] for entry in data["ttflist"] + data["afmlist"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if data_path is None or not names or not all(isinstance(n, str) for n in names):
        return False
    return all(os.path.isfile(n if os.path.isabs(n) else data_path / n) for n in names)


def _adopt_builds(folder: Path) -> None:
    """Move a finished build's list into `folder` (this process's or an earlier one's); remove
    the build folders that are done, and those too old to be running still."""
    mine = _FONTS.get("build")
    for build in folder.glob(".build-*"):
        running = mine is not None and mine[1] == build and mine[0].poll() is None
        made = sorted(build.glob("fontlist-*.json"))
        if made and font_list_valid(made[-1]):
            if os.geteuid() == 0:  # written as the kernel's uid: the grader's own from here
                os.chown(made[-1], 0, 0)
            os.replace(made[-1], folder / made[-1].name)
        elif running or time.time() - build.stat().st_mtime < 2 * FONTS_BUILD_SECONDS:
            continue
        shutil.rmtree(build, ignore_errors=True)


def _start_font_build(folder: Path, job: Job) -> None:
    """Build the list in a sandbox of the kernel's own (its mounts, environment and uid)."""
    folder.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
    (build / "mpl").mkdir()
    if job.uid is not None:
        for path in (build, build / "mpl"):
            os.chown(path, job.uid, job.uid)
    spec = dataclasses.replace(job, work=str(build), env=dict(job.env, MPLCONFIGDIR=str(
        build / "mpl")))
    cmd = kernel_command(spec, "", "")
    python = cmd[cmd.index("--") + 1]
    cmd = cmd[:cmd.index("--") + 1] + [python, "-c", FONT_BUILD, str(build),
                                       "" if job.uid is None else str(job.uid),
                                       str(FONTS_BUILD_SECONDS)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    _FONTS["build"] = (proc, build)


def font_list(job: Job) -> Optional[Path]:
    """This machine's matplotlib font list as `job`'s kernel would build it in its sandbox, from
    the grader's cache. With none cached for these font folders, one build starts in the
    background (once per process) and this returns None until a later call finds its list."""
    with _FONTS_LOCK:
        if "ready" in _FONTS and _FONTS["ready"].is_file():
            return _FONTS["ready"]
        try:
            folder = _FONTS.get("folder") or font_list_folder()
            if folder is None:
                return None
            _FONTS["folder"] = folder
            if folder.is_dir():
                _adopt_builds(folder)
                found = sorted(folder.glob("fontlist-*.json"))
                if found and font_list_valid(found[-1]):
                    _FONTS["ready"] = found[-1]
                    return found[-1]
            if not _FONTS.get("tried"):  # one build per process: a failing one is not repeated
                _FONTS["tried"] = True
                _start_font_build(folder, job)
        except (OSError, RuntimeError):  # a cache that cannot be written, bwrap gone: every
            pass  # kernel builds its own list, as without this
        return None
