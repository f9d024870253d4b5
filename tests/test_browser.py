"""A learner's session in a real browser: JupyterLab + headless Chromium on lesson 01's exercises.

The test starts JupyterLab from the project's .venv on loopback, opens the student version of
lesson 01's exercises (a copy in a temporary folder) and does what a learner does: Run All (which
stops at the first unanswered cell), type each answer (the source's solution) into its answer
cell, run from there to the end, then use the widgets: a wrong and a right answer in the answer
box (Check button), a new label in the zero-shot explorer's text box, and the fill-mask
explorer's slider. It asserts the text the learner sees and saves screenshots to test-artifacts/.
Skipped only when chromium is absent. Drives Debian's chromium with Playwright.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import nbformat
import psutil
import pytest

from conftest import ROOT
from course_grading.notebooks import nbgrader_meta

pytestmark = pytest.mark.browser

VENV_BIN = ROOT / ".venv" / "bin"
RELEASE = ROOT / "exercises" / "release" / "lesson01" / "01_pipelines_exercises.ipynb"
SOURCE = ROOT / "exercises" / "source" / "lesson01" / "01_pipelines_exercises.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKEN = "course-browser-test"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync",
]
# The answer box of lesson 01 asks for the task that continues a story.
WRONG_ANSWER, RIGHT_ANSWER = "summarization", "text-generation"
NEW_LABEL = "fruit"
WAIT_MS = 120_000  # generous: on a busy machine the models load slowly

# User settings of the fresh JupyterLab profile: no news/update prompts, every cell in the DOM.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
        {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

# Server and lab extensions the learner's session does not use (nbgrader's instructor tools, the
# language-server bridge with no language server installed): they only slow the start.
UNUSED_SERVER_EXT = [
    "jupyter_lsp", "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.validate_assignment", "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
]
UNUSED_LAB_EXT = ["@jupyter/nbgrader"]

if not Path(CHROMIUM).exists():
    pytest.skip("chromium is not installed (./course test installs Debian's chromium)",
                allow_module_level=True)


# ---------------------------------------------------------------- the JupyterLab server

def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(base: Path) -> dict[str, str]:
    """Environment of the server and its kernels: the venv's python first, offline models."""
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        COURSE_MODELS="offline", HF_HUB_OFFLINE="1",
        JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        IPYTHONDIR=str(base / "ipython"),
    )
    for name in ("MPLBACKEND", "COURSE_WIDGETS", "JUPYTER_PLATFORM_DIRS"):
        env.pop(name, None)  # the kernel must pick the inline backend and real widgets
    return env


def write_profile(config_dir: Path) -> None:
    """Write the fresh profile: JupyterLab settings, and the extensions this test does not need."""
    for name, values in LAB_SETTINGS.items():
        path = config_dir / "lab" / "user-settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    server = {"ServerApp": {"jpserver_extensions": {name: False for name in UNUSED_SERVER_EXT}}}
    (config_dir / "jupyter_server_config.json").write_text(json.dumps(server))
    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in UNUSED_LAB_EXT}}))


class Lab:
    """A JupyterLab server on a free loopback port, in its own process group."""

    def __init__(self, base: Path, workdir: Path) -> None:
        self.base, self.workdir = base, workdir
        self.log = base / "server.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""
        write_profile(base / "config")
        (base / "notary").mkdir(exist_ok=True)

    def start(self) -> None:
        """Start the server (returns at once; `wait` waits for it)."""
        port = free_port()
        cmd = [
            str(VENV_BIN / "jupyter"), "lab", "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.workdir}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=None", f"--NotebookNotary.data_dir={self.base / 'notary'}",
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, env=server_env(self.base),
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"

    def wait(self, attempts: int = 3) -> str:
        """Wait until the server answers; restart it if it died (its port was taken)."""
        for attempt in range(attempts):
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(f"{self.url}/api/status?token={TOKEN}", timeout=2):
                        return self.url
                except OSError:
                    time.sleep(0.2)
            self.stop()
            if attempt < attempts - 1:
                self.start()
        pytest.fail(f"JupyterLab did not start; last log lines:\n{tail(self.log)}")

    def stop(self) -> None:
        """Stop the server's process group, then any kernel it started (own session each)."""
        proc = self.proc
        if proc is None:
            return
        try:
            family = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(wait_s)
            except subprocess.TimeoutExpired:
                continue
        _, alive = psutil.wait_procs(family, timeout=5)
        for child in alive:  # only processes this server started, by their own ids
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        self.proc = None


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file."""
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------- the learner's notebook

def solutions(source: Path) -> dict[str, str]:
    """The solution text of every answer cell of an nbgrader source notebook, by grade_id."""
    answers = {}
    for cell in nbformat.read(source, as_version=4).cells:
        grading = nbgrader_meta(cell)
        if cell.cell_type == "code" and grading.get("solution"):
            match = re.search(r"### BEGIN SOLUTION\n(.*?)\n?[ \t]*### END SOLUTION", cell.source,
                              re.S)
            assert match, f"answer cell {grading['grade_id']} has no solution region"
            answers[grading["grade_id"]] = match.group(1).rstrip() + "\n"
    return answers


def answer_cells(student: Path) -> list[tuple[int, str]]:
    """(cell index, grade_id) of the answer cells of a student notebook."""
    cells = nbformat.read(student, as_version=4).cells
    return [(i, c.metadata["nbgrader"]["grade_id"]) for i, c in enumerate(cells)
            if c.cell_type == "code" and nbgrader_meta(c).get("solution")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab (starting) on a temporary copy of lesson 01's student notebook."""
    assert RELEASE.exists(), f"{RELEASE.relative_to(ROOT)} is missing: run ./course release"
    base = tmp_path_factory.mktemp("lab")
    workdir = base / "work"
    workdir.mkdir()
    shutil.copy2(RELEASE, workdir / RELEASE.name)
    server = Lab(base, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(lab: Lab) -> Iterator[Any]:
    """A page of headless Chromium (Debian's build, fresh profile) once the server answers."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(lab.base / "chromium-profile"), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000},
        )
        try:
            lab.wait()  # the server started while Chromium did
            tab = context.pages[0] if context.pages else context.new_page()
            tab.set_default_timeout(WAIT_MS)
            yield tab
        finally:
            context.close()


# ---------------------------------------------------------------- driving JupyterLab

PROMPTS_JS = """() => Array.from(document.querySelectorAll(
    '.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')).map(p => p.textContent.trim())"""


def kernel_status(page: Any) -> str:
    """The notebook's kernel status as the status indicator shows it."""
    return page.locator(".jp-Notebook-ExecutionIndicator").first.get_attribute("data-status") or ""


def wait_for_kernel(page: Any, url: str) -> None:
    """Wait until the notebook's kernel has started, is connected to the page and is idle."""
    deadline = time.monotonic() + WAIT_MS / 1000
    state: Any = None
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}/api/sessions?token={TOKEN}", timeout=5) as answer:
            sessions = json.load(answer)
        name = page.locator(".jp-Toolbar-kernelName").first.inner_text().strip()
        state = (name, kernel_status(page), [(s["kernel"]["execution_state"],
                                              s["kernel"].get("connections")) for s in sessions])
        if (name != "No Kernel" and state[1] == "idle"
                and any(s == "idle" and (c or 0) >= 1 for s, c in state[2])):
            return
        time.sleep(0.25)
    raise AssertionError(f"the kernel did not become idle: {state}")


def wait_for_idle(page: Any, quiet_s: float = 0.6) -> None:
    """Wait until the kernel has handled everything the widgets sent it (idle for `quiet_s`).

    ipywidgets sends a widget's value change only after the kernel answered that widget's previous
    message, while a button click goes out at once, so a click can overtake an answer (the answer
    box re-checks when the answer arrives). A learner's pause before clicking is this wait.
    """
    deadline = time.monotonic() + WAIT_MS / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        if kernel_status(page) == "idle":
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= quiet_s:
                return
        else:
            quiet_since = None
        time.sleep(0.1)
    raise AssertionError(f"the kernel stayed busy for {WAIT_MS / 1000:.0f} s")


def run_menu(page: Any, item: str) -> list[str]:
    """Click Run > `item` in the menu bar; wait until no cell runs; return the cells' prompts."""
    before = page.evaluate(PROMPTS_JS)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item:visible").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$"))).click()
    deadline = time.monotonic() + WAIT_MS / 1000
    quiet_since = None
    while time.monotonic() < deadline:
        prompts = page.evaluate(PROMPTS_JS)
        busy = any("*" in p for p in prompts) or kernel_status(page) != "idle"
        started = prompts != before
        if started and not busy:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 1.0:
                return prompts
        else:
            quiet_since = None
        time.sleep(0.2)
    raise AssertionError(f"Run > {item} did not finish in {WAIT_MS / 1000:.0f} s: {prompts}")


def cell(page: Any, index: int) -> Any:
    """The notebook's cell number `index` (0-based) in the DOM."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def code_cell(page: Any, text: str) -> Any:
    """The one code cell whose input contains `text`."""
    found = page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text=text))
    assert found.count() == 1, f"expected one code cell containing {text!r}, found {found.count()}"
    return found


def type_answer(page: Any, index: int, text: str) -> None:
    """Replace the answer cell's text with `text`, as a learner typing (or pasting) it."""
    editor = cell(page, index).locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(text)
    typed = editor.inner_text()
    assert typed.split() == text.split(), f"cell {index} shows {typed!r}, typed {text!r}"
    page.keyboard.press("Escape")  # back to command mode, as after typing


def table_rows(output: Any) -> list[list[str]]:
    """The body rows of the DataFrame shown in an output, as cell texts."""
    return output.locator("table.dataframe tbody tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.querySelectorAll('td')).map(td => td.innerText))")


def wait_for_rows(output: Any, count: int, contains: str = "") -> list[list[str]]:
    """Wait until the explorer's table has `count` rows (one mentioning `contains`)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    rows: list[list[str]] = []
    while time.monotonic() < deadline:
        rows = table_rows(output)
        if len(rows) == count and (not contains or any(contains in r for row in rows for r in row)):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"explorer table never showed {count} rows with {contains!r}: {rows}")


def check_answer(page: Any, box: Any, answer: str) -> str:
    """Type `answer` into the answer box, press Check, return the feedback text shown."""
    field = box.locator(".widget-text input")
    field.click()
    field.fill("")
    field.press_sequentially(answer, delay=15)
    wait_for_idle(page)
    feedback = box.locator(".widget-html-content").last
    previous = feedback.inner_text()
    box.locator("button", has_text="Check").click()
    try:
        page.wait_for_function("([el, old]) => el.innerText.trim() && el.innerText !== old",
                               arg=[feedback.element_handle(), previous])
    except Exception as err:  # say what the learner would have seen, and keep a picture of it
        screenshot(page, "failure-answer-box.png")
        status = page.locator("#jp-main-statusbar").inner_text().replace("\n", " ")[:200]
        raise AssertionError(f"feedback did not change after Check with {answer!r}: the box holds "
                             f"{field.input_value()!r}, the feedback still says "
                             f"{feedback.inner_text()!r}; status bar: {status!r} "
                             f"({type(err).__name__})") from None
    return feedback.inner_text().strip()


def screenshot(page: Any, name: str) -> None:
    """Save a screenshot of the page under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


# ---------------------------------------------------------------- the test

def test_learner_session_lesson01(lab: Lab, page: Any) -> None:
    """Run, answer, check and explore lesson 01's exercises in JupyterLab like a learner."""
    notebook = lab.workdir / RELEASE.name
    answers = answer_cells(notebook)
    expected = solutions(SOURCE)
    assert answers, "the student notebook has no answer cells"
    assert {g for _, g in answers} <= set(expected), "answer cells missing from the source"
    for old in [*ARTIFACTS.glob("lesson01-*.png"), *ARTIFACTS.glob("failure-*.png")]:  # none stale
        old.unlink(missing_ok=True)
    started = time.monotonic()

    def phase(name: str) -> None:
        print(f"{time.monotonic() - started:6.1f} s  {name}")

    try:
        page.goto(f"{lab.url}/lab/tree/{notebook.name}?token={TOKEN}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        wait_for_kernel(page, lab.url)

        phase("kernel idle")

        # 1. Run All before answering: it stops at the first answer cell.
        prompts = run_menu(page, "Run All Cells")
        first, _ = answers[0]
        code_indices = [i for i, c in enumerate(nbformat.read(notebook, 4).cells)
                        if c.cell_type == "code"]
        assert cell(page, first).locator(".jp-OutputArea").inner_text().count(
            "NotImplementedError") >= 1, "the first answer cell should raise NotImplementedError"
        position = code_indices.index(first)
        assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts[:position + 1]), prompts
        assert all(p == "[ ]:" for p in prompts[position + 1:]), f"Run All went on: {prompts}"
        # The setup cell ran offline; it imports course_utils, installed only in .venv: the
        # kernel is the venv's python.
        assert "offline tier" in cell(page, code_indices[0]).inner_text()

        phase("first Run All")

        # 2. Type every answer, then run from the first answer down: every cell runs without
        #    error and every self-check is green.
        for index, grade_id in answers:
            type_answer(page, index, expected[grade_id])
        cell(page, first).locator(".jp-InputPrompt").click()
        prompts = run_menu(page, "Run Selected Cell and All Below")
        assert all(re.fullmatch(r"\[\d+\]:", p) for p in prompts), f"not all cells ran: {prompts}"
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter"
                              ".stderr']", has_text=re.compile(r"Traceback|Error\b"))
        assert errors.count() == 0, errors.first.inner_text()[:2000]
        checks = page.locator(".jp-CodeCell").filter(
            has=page.locator(".jp-InputArea-editor", has_text="cu.feedback.report("))
        assert checks.count() >= 3
        for i in range(checks.count()):
            shown = checks.nth(i).locator(".jp-OutputArea").inner_text()
            assert "✓ Correct" in shown, f"self-check {i} shows: {shown[:300]}"

        phase("answers typed and run")

        # 3. The answer box: a wrong answer, then the right one.
        box = code_cell(page, "cu.widgets.answer_box(").locator(".widget-vbox").first
        box.scroll_into_view_if_needed()
        said = check_answer(page, box, WRONG_ANSWER)
        assert said.startswith("✗ Not yet"), said
        assert WRONG_ANSWER in said and "removed" in said, said
        said = check_answer(page, box, RIGHT_ANSWER)
        assert said.startswith("✓ Correct"), said
        screenshot(page, "lesson01-answer-box.png")

        phase("answer box")

        # 4. The zero-shot explorer: add a label in its text box; the scores still sum to 1.
        explorer = code_cell(page, "ex.zero_shot_scores")
        output = explorer.locator(".widget-output")
        labels_box = explorer.locator(".widget-text input").nth(1)
        labels_box.scroll_into_view_if_needed()
        start = wait_for_rows(output, 3)
        labels_box.click()
        labels_box.press("End")
        labels_box.press_sequentially(f", {NEW_LABEL}", delay=15)
        rows = wait_for_rows(output, 4, contains=NEW_LABEL)
        assert {r[0] for r in rows} == {r[0] for r in start} | {NEW_LABEL}, rows
        assert abs(sum(float(r[1]) for r in rows) - 1.0) < 1e-3, rows
        output.locator("img").first.wait_for()  # the bar chart of the scores
        wait_for_idle(page)
        screenshot(page, "lesson01-zero-shot-explorer.png")

        phase("zero-shot explorer")

        # 5. The fill-mask explorer: move the top_k slider from 5 to 3 with the keyboard.
        explorer = code_cell(page, "ex.fill_mask_table")
        output = explorer.locator(".widget-output")
        handle = explorer.locator(".widget-slider .noUi-handle").first
        handle.scroll_into_view_if_needed()
        wait_for_rows(output, 5)
        handle.focus()
        handle.press("ArrowLeft")
        handle.press("ArrowLeft")
        rows = wait_for_rows(output, 3)
        assert explorer.locator(".widget-readout").first.inner_text().strip() == "3"
        assert all("<mask>" not in r[2] for r in rows), rows
        screenshot(page, "lesson01-fill-mask-explorer.png")
        phase("fill-mask explorer")
    except BaseException:
        screenshot(page, "lesson01-failure.png")
        print(f"server log:\n{tail(lab.log)}", file=sys.stderr)
        raise
