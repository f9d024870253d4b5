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
from .sandbox import course_utils_folder

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

FONTS_BUILD_TIMEOUT = 120.0  # seconds for `import matplotlib.font_manager` to write its list
_FONTS_LOCK = threading.Lock()
_FONTS: dict[str, Any] = {}  # this process's build in the background, and the list once made


def _matplotlib_data() -> Optional[Path]:
    import importlib.util

    spec = importlib.util.find_spec("matplotlib")
    return Path(spec.origin).with_name("mpl-data") if spec and spec.origin else None


def font_list_folder() -> Optional[Path]:
    """Where the font list of the installed matplotlib is kept (None without matplotlib)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return cache_folder() / "matplotlib" / version("matplotlib")
    except PackageNotFoundError:
        return None


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


def _start_font_build(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
    (tmp / "home").mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOME": str(tmp / "home"), "MPLCONFIGDIR": str(tmp), "MPLBACKEND": "Agg"}
    proc = subprocess.Popen([sys.executable, "-c", "import matplotlib.font_manager"], env=env,
                            cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    _FONTS["build"] = (proc, tmp, time.monotonic() + FONTS_BUILD_TIMEOUT)


def _finish_font_build(folder: Path) -> bool:
    """Move a finished build's list into `folder`; False while it is still running."""
    proc, tmp, deadline = _FONTS["build"]
    if proc.poll() is None:
        if time.monotonic() < deadline:
            return False
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    del _FONTS["build"]
    made = sorted(tmp.glob("fontlist-*.json"))
    if proc.returncode == 0 and made and font_list_valid(made[-1]):
        os.replace(made[-1], folder / made[-1].name)
    shutil.rmtree(tmp, ignore_errors=True)
    return True


def font_list() -> Optional[Path]:
    """This machine's matplotlib font list as a kernel with an empty home builds it, from the
    grader's cache. With none cached (or one naming a font that is gone) a build starts in the
    background, once per process, and this returns None until it has finished."""
    folder = font_list_folder()
    if folder is None:
        return None
    with _FONTS_LOCK:
        if "build" in _FONTS and not _finish_font_build(folder):
            return None
        ready = _FONTS.get("ready")
        if ready is not None and ready.is_file():
            return ready
        found = sorted(folder.glob("fontlist-*.json")) if folder.is_dir() else []
        if found and font_list_valid(found[-1]):
            _FONTS["ready"] = found[-1]
            return found[-1]
        if not _FONTS.get("tried"):  # one build per process: a failing one is not repeated
            _FONTS["tried"] = True
            try:
                _start_font_build(folder)
            except OSError:  # a cache that cannot be written: every kernel builds its own
                pass
        return None
