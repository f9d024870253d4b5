"""A read-only course cache (a shared lab cache, the grading sandbox) never breaks setup()."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from course_utils import hub


def _unwritable(tmp_path: Path) -> Path:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    return blocker / "cache"  # mkdir fails even for root, as on a read-only mount


def test_logs_fall_back_to_the_temp_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COURSE_CACHE", str(_unwritable(tmp_path)))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    path = hub.send_library_logs_to_file()
    assert path is not None and path.parent.parent == tmp_path / "tmp", path
    logging.getLogger("course_utils.hub").info("a line for the log")
    assert "a line for the log" in path.read_text()


def test_setup_runs_with_an_unwritable_cache_and_temp_folder(tmp_path: Path) -> None:
    nowhere = _unwritable(tmp_path)  # neither the cache nor the temp folder can hold the log
    env = {"COURSE_CACHE": str(nowhere), "TMPDIR": str(nowhere), "COURSE_MODELS": "offline",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    code = "import course_utils as cu; cu.setup(); print('SETUP-OK')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "SETUP-OK" in done.stdout, done.stderr[-2000:]
