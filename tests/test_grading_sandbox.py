"""The bubblewrap sandbox: what a submission's kernel can see, write and reach (no kernel here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

from course_grading.config import REPO
from course_grading.protocol import Job, Limits, Result
from course_grading.sandbox import bwrap_status, course_copy, kernel_command

needs_bwrap = pytest.mark.skipif(not bwrap_status()[0], reason=bwrap_status()[1])

PROBE = """
import json, os, socket, sys
found = {}
found["pid"] = os.getpid()
found["checkout"] = os.path.exists(sys.argv[1] + "/exercises/source")
found["course_utils"] = os.path.exists("/opt/course/course_utils/__init__.py")
try:
    open("/opt/course/course_utils/__init__.py", "a").close()
    found["course_writable"] = True
except OSError:
    found["course_writable"] = False
found["env"] = sorted(os.environ)
found["interfaces"] = sorted(name for _, name in socket.if_nameindex())
try:
    socket.create_connection(("1.1.1.1", 80), timeout=2)
    found["network"] = True
except OSError:
    found["network"] = False
found["processes"] = len([p for p in os.listdir("/proc") if p.isdigit()])
print(json.dumps(found))
"""


def _job(tmp_path: Path) -> Job:
    work = tmp_path / "work"
    work.mkdir()
    return Job("ann", "ann", "lesson01", "x.ipynb", {}, {}, str(work),
               str(course_copy(tmp_path / "ro" / "course")), env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
               limits=Limits())


def test_protocol_round_trips_through_json(tmp_path: Path) -> None:
    job = _job(tmp_path)
    again = Job.from_json(job.to_json())
    assert again == job and isinstance(again.limits, Limits)
    result = Result("ann", {"q": 1.0}, {"q": 2.0}, "ok", ["r"], {"q": "passed"}, source="ann")
    assert Result.from_json(result.to_json()) == result


@needs_bwrap
def test_the_command_mounts_no_part_of_the_checkout_but_the_venv(tmp_path: Path) -> None:
    cmd = kernel_command(_job(tmp_path), "/c.json", "/n.ipynb")
    assert {"--die-with-parent", "--clearenv", "--new-session"} <= set(cmd)
    assert "--unshare-net" in cmd or "--unshare-all" in cmd
    sources = [cmd[i + 1] for i, arg in enumerate(cmd) if arg in ("--bind", "--ro-bind")]
    for src in sources:
        inside = Path(src).resolve().is_relative_to(REPO)
        assert not inside or Path(src).resolve().is_relative_to(Path(sys.prefix).resolve()), src
    writable = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--bind"]
    assert writable == [str(tmp_path / "work")], writable


@needs_bwrap
def test_inside_the_sandbox_nothing_of_the_course_or_the_network_is_reachable(
        tmp_path: Path) -> None:
    cmd = kernel_command(_job(tmp_path), "/c.json", "/n.ipynb")
    cmd = cmd[:cmd.index("--") + 1] + [cmd[cmd.index("--") + 1], "-c", PROBE, str(REPO)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["checkout"] is False and found["course_utils"] is True
    assert found["course_writable"] is False
    assert found["network"] is False and found["interfaces"] in ([], ["lo"])
    assert found["pid"] <= 3 and found["processes"] <= 3, found  # its own PID namespace
    assert "HOME" in found["env"] and not any(k.startswith(("SSH", "AWS", "GIT", "PYTEST"))
                                              for k in found["env"]), found["env"]


DETECTOR_RUN = """
import json, os, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import kernel_start as ks
read, write = os.pipe()
detector = ks.Detector(write)
sys.meta_path.insert(0, detector.finder)
sys.addaudithook(detector.hook)
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
for cell in json.loads(sys.argv[3]) + ["pass"]:  # a cell's effect is seen as the next one runs
    shell.run_cell(cell, silent=True)
os.close(write)
data = b""
while chunk := os.read(read, 65536):
    data += chunk
print(json.dumps([json.loads(line[len(ks.PREFIX):]).get("seen") for line in data.splitlines()]))
"""


@pytest.mark.parametrize("cells, seen", [
    (["import course_utils.checks as ch", "c = ch.check", "c(1)", "d = c", "d(2)"], []),
    (["import course_utils", "x = 1", "import course_utils.checks as ch", "c = ch.check", "c(1)",
      "c = lambda x: True"],  # a module loaded after the first cells, as lessons do
     ["the name 'c' (was check) was rebound to something else"]),
    (["import course_utils.checks as ch", "x = 1", "ch.check = lambda x: True"],
     ["course_utils.checks.check was replaced"]),
    (["import sys, types", "import course_utils.checks as ch",
      "sys.modules['course_utils.checks'] = types.ModuleType('course_utils.checks')"],
     ["sys.modules['course_utils.checks'] was replaced"]),
])
def test_the_detector_flags_aliases_rebound_and_checkers_replaced(
        tmp_path: Path, cells: list[str], seen: list[str]) -> None:
    """kernel_start's detector in an IPython shell of its own process (an audit hook stays for
    the life of a process): a name bound to a checker, then rebound, is flagged; using it is not."""
    package = tmp_path / "course_utils"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "checks.py").write_text("def check(x):\n    return x == 1\n")
    done = subprocess.run([sys.executable, "-c", DETECTOR_RUN, str(REPO / "course_grading"),
                           str(tmp_path), json.dumps(cells)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == seen


def test_an_awaited_reply_is_nudged_while_the_kernel_is_not_busy_on_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ipykernel 7 can leave a message unread until another one arrives (ipython/ipykernel#1554):
    while a cell's reply is awaited and the kernel is not busy on it (not begun, or idle
    again), the grader sends a kernel_info_request every NUDGE_AFTER s; never while busy."""
    import asyncio

    import nbformat

    from course_grading import execute

    monkeypatch.setattr(execute, "NUDGE_AFTER", 0.01)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])
    client = execute._client(nb, None, _job(tmp_path), {}, execute.Run(nb))

    def status(state: str) -> None:
        from nbclient.exceptions import CellExecutionComplete

        try:  # nbclient ends a cell's output this way at "idle", as in a real run
            client.process_message({"msg_type": "status", "parent_header": {"msg_id": "request"},
                                    "content": {"execution_state": state}}, nb.cells[0], 0)
        except CellExecutionComplete:
            pass

    class Channels:
        calls = 0

        def kernel_info(self) -> None:
            self.calls += 1

    async def phases() -> list[int]:
        client.kc = Channels()
        nudging = asyncio.ensure_future(client._nudge("request"))
        seen = []
        for state in (None, "busy", "idle"):  # not begun, running, done but no reply
            if state:
                status(state)
            client.kc.calls = 0
            await asyncio.sleep(0.2)
            seen.append(client.kc.calls)
        nudging.cancel()
        return seen

    not_begun, busy, idle = asyncio.run(asyncio.wait_for(phases(), timeout=10))
    assert not_begun >= 3 and busy == 0 and idle >= 3, (not_begun, busy, idle)


FONTS_PROBE = """
import json, logging, sys
sys.path.insert(0, "/opt/grader")
import kernel_start
if sys.argv[2]:
    kernel_start.drop_to(int(sys.argv[2]))
if sys.argv[1] == "seed":
    kernel_start.seed_home("/home/student", "/opt/grader")
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
from matplotlib import font_manager as fm
print(json.dumps(sorted(f.fname for f in fm.fontManager.ttflist + fm.fontManager.afmlist)))
"""


def _font_job(tmp_path: Path, uid: Optional[int]) -> Job:
    work = tmp_path / "work"
    work.mkdir()
    if uid is not None:
        os.chown(work, uid, uid)
    return Job("ann", "ann", "lesson01", "x.ipynb", {}, {}, str(work),
               str(course_copy(tmp_path / "ro" / "course")), uid=uid,
               env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MPLBACKEND": "Agg"},
               limits=Limits())


def _built(job: Job, timeout: float = 120) -> Path:
    from course_grading import prepared

    deadline = time.monotonic() + timeout
    while (fonts := prepared.font_list(job)) is None:
        assert time.monotonic() < deadline, "no font list was built"
        time.sleep(0.2)
    return fonts


@pytest.fixture
def fonts_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from course_grading import prepared

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(prepared, "_FONTS", {})
    return tmp_path / "xdg" / "course_grading" / "matplotlib"


@needs_bwrap
def test_a_sandboxed_kernel_reads_the_font_list_it_would_have_built(
        tmp_path: Path, fonts_cache: Path) -> None:
    """The list is built in a sandbox like the kernel's, as its uid (when the grader is root);
    seeded into the kernel's home it is read, not rebuilt, and names the same fonts."""
    from course_grading.sandbox import UID_BASE, add_font_list

    uid = UID_BASE + 7 if os.geteuid() == 0 else None
    job = _font_job(tmp_path, uid)
    fonts = _built(job)
    assert fonts.is_relative_to(fonts_cache) and fonts.name.startswith("fontlist-")
    add_font_list(Path(job.course_copy), fonts)
    cmd = kernel_command(job, "/c.json", "/n.ipynb")
    seen = {}
    for how in ("seed", "bare"):
        probe = cmd[:cmd.index("--") + 1] + [cmd[cmd.index("--") + 1], "-c", FONTS_PROBE, how,
                                             "" if uid is None else str(uid)]
        done = subprocess.run(probe, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        seen[how] = (json.loads(done.stdout.strip().splitlines()[-1]), done.stderr)
    assert "generated new fontManager" in seen["bare"][1]  # an empty home builds its own list
    assert "generated new fontManager" not in seen["seed"][1], seen["seed"][1][-2000:]
    assert "Matplotlib" not in seen["seed"][1]  # no warning about its cache for the notebook
    assert seen["seed"][0] == seen["bare"][0] and seen["seed"][0]


@needs_bwrap
def test_the_font_list_is_built_once_per_process_and_kept_for_the_next(
        tmp_path: Path, fonts_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from course_grading import prepared

    job = _font_job(tmp_path, None)
    assert prepared.font_list(job) is None  # the first call starts the build, does not wait
    proc, build = prepared._FONTS["build"]
    assert proc.wait(120) == 0
    monkeypatch.setattr(prepared, "_FONTS", {})  # the next process finds the finished build
    monkeypatch.setattr(prepared, "_start_font_build", lambda *a: pytest.fail("built again"))
    found = prepared.font_list(job)
    assert found is not None and found.parent == prepared.font_list_folder()
    assert prepared.font_list_valid(found) and not build.exists()  # its build folder removed

    data = json.loads(found.read_text(encoding="utf-8"))
    data["ttflist"][0]["fname"] = "/nowhere/Uninstalled.ttf"  # a font removed since
    found.write_text(json.dumps(data), encoding="utf-8")
    starts: list[Path] = []
    monkeypatch.setattr(prepared, "_FONTS", {})
    monkeypatch.setattr(prepared, "_start_font_build", lambda folder, job: starts.append(folder))
    assert prepared.font_list(job) is None and starts == [found.parent]
    assert prepared.font_list(job) is None and len(starts) == 1  # once per process
    found.write_text("{", encoding="utf-8")  # a corrupt list is not used either
    monkeypatch.setattr(prepared, "_FONTS", {})
    assert prepared.font_list(job) is None and len(starts) == 2


@needs_bwrap
def test_a_font_list_build_that_hangs_ends_itself_and_a_cache_that_cannot_be_written_is_skipped(
        tmp_path: Path, fonts_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from course_grading import prepared

    monkeypatch.setattr(prepared, "FONTS_BUILD_SECONDS", 1)
    monkeypatch.setattr(prepared, "FONT_BUILD", prepared.FONT_BUILD.replace(
        "import matplotlib.font_manager", "import time; time.sleep(60)"))
    job = _font_job(tmp_path, None)
    start = time.monotonic()
    assert prepared.font_list(job) is None
    proc, _build = prepared._FONTS["build"]
    assert proc.wait(30) != 0 and time.monotonic() - start < 20
    assert prepared.font_list(job) is None  # nothing adopted, no second build
    monkeypatch.setattr(prepared, "_FONTS", {})
    monkeypatch.setenv("XDG_CACHE_HOME", "/dev/null/cache")  # not a folder
    assert prepared.font_list(job) is None and "build" not in prepared._FONTS
