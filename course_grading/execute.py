"""Grade one submission: run its notebook in a sandboxed kernel, score what came back.

`grade_submission(job) -> Result` is a plain function (a worker process calls it; it can equally
be a Dask task). The notebook is executed by nbclient in the grader's process, cell by cell,
against a kernel that lives in the sandbox; the scores come from the execute replies and outputs
as received over the kernel protocol, never from a file the submission could write.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from .notebooks import nbgrader_meta
from .protocol import Job, Result, blank_result
from .sandbox import kernel_command, signal_name

# ipykernel 7 can leave a message unread on a socket until another message arrives
# (ipython/ipykernel#1529, #1554). Here about one lesson-01 submission in 80 (5 in some 400) had
# a cell wait out the whole cell timeout (120 s), reported as an endless loop, while the kernel
# sat idle in its event loop (py-spy): it had begun the cell, and no reply reached the grader.
# While a reply is awaited and the kernel is not busy on that request (not begun, or idle
# again), a kernel_info_request is sent behind it every NUDGE_AFTER seconds.
NUDGE_AFTER = 5.0
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*$\n?", re.S | re.M)
PREFIX = "\x1ecourse-grading "


@dataclass
class Run:
    """What one execution of the notebook showed the grader."""

    nb: Any
    status: dict[int, str] = field(default_factory=dict)  # cell index -> execute_reply status
    timeouts: list[int] = field(default_factory=list)
    truncated: dict[int, int] = field(default_factory=dict)
    dead: Optional[int] = None  # the cell during which the kernel died
    hung: bool = False
    exit_signal: str = ""
    start_error: str = ""
    pids: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    finished: bool = False
    sentinel_seen: bool = False


class DetectorPipe:
    """Reads the kernel's original stderr: detector lines are kept, the rest dropped."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.lines: list[dict] = []
        self.chatter = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self.read_fd, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                buffer = (buffer + chunk)[-1_000_000:]
                *complete, buffer = buffer.split(b"\n")
                for line in complete:
                    text = line.decode("utf-8", "replace")
                    if not text.startswith(PREFIX):
                        self.chatter += 1
                        if self.chatter <= 200:  # the worker's log (never a reason or a score)
                            print(f"kernel: {text[:500]}", file=sys.stderr)
                    elif len(self.lines) < 10_000:
                        try:
                            message = json.loads(text[len(PREFIX):])
                        except json.JSONDecodeError:
                            continue
                        if isinstance(message, dict):
                            self.lines.append(message)

    def close_writer(self) -> None:
        try:
            os.close(self.write_fd)
        except OSError:
            pass


def _kernel_manager(job: Job, stderr_fd: int, notebook_file: str) -> Any:
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager

    class NoHeartbeatClient(AsyncKernelClient):
        """A client without the heartbeat thread: liveness is the sandbox process itself.

        A kernel whose sockets were written into stops answering pings, and jupyter_client's
        heartbeat thread then waits in send() forever, so stop_channels() (which joins it) never
        returns: one submission could stall its worker until the wall-clock limit.
        """

        def start_channels(self, shell: bool = True, iopub: bool = True, stdin: bool = True,
                           hb: bool = True, control: bool = True) -> None:
            super().start_channels(shell=shell, iopub=iopub, stdin=stdin, hb=False,
                                   control=control)

    class SandboxKernelManager(AsyncKernelManager):
        """A kernel started by kernel_command, reached over IPC sockets, interrupted by message."""

        def format_kernel_cmd(self, extra_arguments: Optional[list[str]] = None) -> list[str]:
            return kernel_command(job, self.connection_file, notebook_file)

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw.update(stdin=-3, stdout=-3, stderr=stderr_fd, cwd=job.work,
                      env=dict(job.env, HOME=job.work, PYTHONPATH=job.course_copy))
            await super()._async_launch_kernel(kernel_cmd, **kw)

        async def _async_interrupt_kernel(self) -> None:
            if self.has_kernel:
                import zmq

                msg = self.session.msg("interrupt_request", content={})
                self._connect_control_socket()
                self._control_socket.setsockopt(zmq.SNDTIMEO, 2000)  # a broken link never blocks
                try:
                    self.session.send(self._control_socket, msg)
                except zmq.ZMQError:  # the kernel cannot be reached: end it
                    await self.provisioner.kill()

        interrupt_kernel = _async_interrupt_kernel  # the base class binds its own function here

    return SandboxKernelManager(transport="ipc", ip=os.path.join(job.work, "k"),
                                connection_file=os.path.join(job.work, "kernel.json"),
                                client_factory=NoHeartbeatClient)


def _client(nb: Any, km: Any, job: Job, skip: dict[int, str], run: Run) -> Any:
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from nbformat.v4 import new_output

    class GradingClient(NotebookClient):
        """nbclient with the grader's bookkeeping: statuses, timeouts, output cap, skipped cells."""

        _index, _serial, _chars, _truncated = -1, 0, 0, False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._busy: set[str] = set()  # the requests the kernel says it is running

        def process_message(self, msg: dict, cell: Any, cell_index: int) -> Any:
            if msg.get("msg_type") == "status":
                parent = msg.get("parent_header", {}).get("msg_id")
                state = msg.get("content", {}).get("execution_state")
                (self._busy.add if state == "busy" else self._busy.discard)(parent)
            return super().process_message(msg, cell, cell_index)

        async def _async_poll_for_reply(self, msg_id: str, cell: Any, timeout: Any,
                                        task_poll_output_msg: Any,
                                        task_poll_kernel_alive: Any) -> Any:
            nudge = asyncio.ensure_future(self._nudge(msg_id))
            try:
                return await super()._async_poll_for_reply(
                    msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive)
            finally:
                nudge.cancel()

        async def _nudge(self, msg_id: str) -> None:
            """Until cancelled (the reply came): a kernel_info_request whenever the kernel has
            not been busy on msg_id for NUDGE_AFTER s."""
            while True:
                await asyncio.sleep(NUDGE_AFTER)
                if msg_id not in self._busy and self.kc is not None:
                    log(f"cell {self._index}: no reply, and the kernel not busy on it, after "
                        f"{NUDGE_AFTER:g} s; sent a kernel_info_request behind it")
                    self.kc.kernel_info()

        async def async_execute_cell(self, cell: Any, cell_index: int, execution_count: Any = None,
                                     store_history: bool = True) -> Any:
            self._index, self._chars, self._truncated = cell_index, 0, False
            self._serial += 1
            original = cell.source
            if cell_index in skip:
                cell.source = f"raise RuntimeError({skip[cell_index]!r})"
            try:
                return await super().async_execute_cell(cell, cell_index, execution_count,
                                                        store_history)
            except DeadKernelError:
                run.dead = cell_index
                raise
            finally:
                cell.source = original
                if self._truncated:
                    run.truncated[cell_index] = self._chars

        async def _check_raise_for_error(self, cell: Any, cell_index: int,
                                         exec_reply: Any) -> None:
            if exec_reply is not None:
                run.status[cell_index] = exec_reply.get("content", {}).get("status", "error")
            self._serial += 1  # replied: a pending watchdog leaves this cell alone
            return await super()._check_raise_for_error(cell, cell_index, exec_reply)

        async def _async_check_alive(self) -> None:
            provisioner = getattr(self.km, "provisioner", None)
            process = getattr(provisioner, "process", None)
            if process is not None and process.poll() is not None:  # the sandbox has ended
                raise DeadKernelError("Kernel died")
            await super()._async_check_alive()

        async def _async_handle_timeout(self, timeout: int, cell: Any = None) -> None:
            if self._index not in run.timeouts:
                run.timeouts.append(self._index)
                await self.km.interrupt_kernel()
                serial = self._serial
                asyncio.get_running_loop().call_later(
                    job.interrupt_grace, lambda: asyncio.ensure_future(self._kill_if(serial)))
            return None

        async def _kill_if(self, serial: int) -> None:
            if serial == self._serial and self.km is not None:
                run.hung = True
                await self.km.provisioner.kill()

        def output(self, outs: list, msg: dict, display_id: Any, cell_index: int) -> Any:
            out = super().output(outs, msg, display_id, cell_index)
            if out is None:
                return out
            text = out.get("text") if out.get("output_type") == "stream" else None
            size = len(text) if isinstance(text, str) else len(json.dumps(out.get("data", {})))
            room = job.max_output_chars - self._chars
            self._chars += size
            if size <= room:
                return out
            if outs and outs[-1] is out:
                outs.pop()
            if isinstance(text, str) and room > 0:
                out["text"] = text[:room]
                outs.append(out)
            if not self._truncated:
                outs.append(new_output("stream", name="stdout", text=(
                    f"\n[grader] output truncated after {job.max_output_chars} characters\n")))
                self._truncated = True
            return None

    return GradingClient(nb, km=km, timeout=job.cell_timeout, startup_timeout=job.startup_timeout,
                         interrupt_on_timeout=True, allow_errors=True, iopub_timeout=10,
                         raise_on_iopub_timeout=False, record_timing=False, kernel_name="python3",
                         shutdown_kernel="immediate")


async def _grader_code(client: Any, code: str, timeout: float) -> None:
    """Run the grader's own code in the kernel (not part of the notebook)."""
    msg_id = client.kc.execute(code, silent=True, store_history=False)
    start = time.monotonic()
    deadline, nudge_at = start + timeout, start + NUDGE_AFTER
    while time.monotonic() < deadline:
        try:
            msg = await client.kc.shell_channel.get_msg(timeout=1)
        except Exception:  # queue.Empty: the kernel is still busy
            if not await client.kc.is_alive():
                return
            if time.monotonic() > nudge_at:  # as GradingClient._nudge (ipykernel#1554)
                nudge_at += NUDGE_AFTER
                log(f"grader code: no reply after {time.monotonic() - start:.0f} s; sent a "
                    "kernel_info_request behind it")
                client.kc.kernel_info()
            continue
        if msg.get("parent_header", {}).get("msg_id") == msg_id:
            return


def log(text: str) -> None:
    """A line in the worker's log."""
    print(f"worker: {text}", file=sys.stderr, flush=True)


def _host_pids(km: Any) -> list[int]:
    try:
        import psutil

        proc = psutil.Process(km.provisioner.pid)
        return [proc.pid] + [p.pid for p in proc.children(recursive=True)]
    except Exception:  # psutil missing or the kernel is gone
        return []


def run_once(job: Job, skip: dict[int, str]) -> Run:
    """Execute the job's notebook once in a fresh kernel."""
    import nbformat

    nb = nbformat.from_dict(json.loads(json.dumps(job.notebook)))
    run = Run(nb)
    student_copy = nbformat.from_dict(json.loads(json.dumps(job.notebook)))
    for cell in student_copy.cells:  # the scratch copy is the student's own: no hidden tests
        cell.source = HIDDEN.sub("", cell.source)
    notebook_file = os.path.join(job.work, "notebook.ipynb")
    nbformat.write(student_copy, notebook_file)
    if job.uid is not None:
        for path in (job.work, notebook_file):
            os.chown(path, job.uid, job.uid)
    pipe = DetectorPipe()
    km = _kernel_manager(job, pipe.write_fd, notebook_file)
    client = _client(nb, km, job, skip, run)
    token = "course-grading-sentinel-" + secrets.token_hex(16)

    async def go() -> None:
        t0 = time.monotonic()
        async with client.async_setup_kernel(cleanup_kc=True):
            run.pids = _host_pids(km)
            log(f"kernel ready in {time.monotonic() - t0:.1f} s")
            await _grader_code(client, "None", job.startup_timeout)  # the detector's snapshot
            for index, cell in enumerate(nb.cells):
                t1 = time.monotonic()
                await client.async_execute_cell(cell, index, execution_count=None)
                log(f"cell {index}: {time.monotonic() - t1:.1f} s")
            run.finished = True
            t1 = time.monotonic()
            await _grader_code(client, repr(token), 30)
            log(f"sentinel: {time.monotonic() - t1:.1f} s")
        log(f"run: {time.monotonic() - t0:.1f} s")

    try:
        asyncio.run(asyncio.wait_for(go(), timeout=max(1.0, job.submission_timeout)))
    except Exception as err:
        import traceback

        from nbclient.exceptions import DeadKernelError

        traceback.print_exc()  # the worker's log, for the instructor

        if not isinstance(err, DeadKernelError) and run.dead is None and not run.status:
            run.start_error = f"the kernel did not start ({type(err).__name__})"
    finally:
        try:
            km.provisioner and asyncio.run(km.provisioner.kill())
        except Exception:  # already gone
            pass
        process = getattr(km.provisioner, "process", None) if km.provisioner else None
        if process is not None:
            try:
                process.wait(timeout=10)
            except Exception:  # still going: nothing more to do from here
                pass
            run.exit_signal = signal_name(process.returncode)
        pipe.close_writer()
        pipe.thread.join(timeout=5)
    run.sentinel_seen = any(m.get("sentinel") == token for m in pipe.lines)
    run.flags = [str(m["seen"])[:300] for m in pipe.lines if "seen" in m]
    if run.finished and not run.sentinel_seen:
        run.flags.append("the tamper detector did not report the end of the run "
                         "(its channel was closed or the last cell never ran)")
    return run


def cell_name(nb: Any, index: int) -> str:
    """"cell 12 (q2_answer)"."""
    gid = nbgrader_meta(nb.cells[index]).get("grade_id") if 0 <= index < len(nb.cells) else None
    return f"cell {index}" + (f" ({gid})" if gid else "")


def _errors(cell: Any) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def limit_reasons(nb: Any, job: Job) -> list[str]:
    """A line for each limit a cell ran into, read from the error the kernel reported."""
    reasons = []
    for i, cell in enumerate(nb.cells):
        for error in _errors(cell) if cell.cell_type == "code" else []:
            name, value = str(error.get("ename", "")), str(error.get("evalue", ""))
            if name == "MemoryError":
                reasons.append(f"memory limit {job.limits.memory_mb:,} MB reached in "
                               f"{cell_name(nb, i)}")
            elif "File too large" in value:
                reasons.append(f"file size limit {job.limits.file_size_mb:,} MB reached in "
                               f"{cell_name(nb, i)}")
            elif name == "BlockingIOError" or "Resource temporarily unavailable" in value:
                reasons.append(f"process limit {job.limits.processes} reached in "
                               f"{cell_name(nb, i)}")
    return reasons


HAND_GRADED = "a written answer: to grade by hand"
WRITTEN_STUB = "YOUR ANSWER HERE"  # what nbgrader's release leaves in a written answer


def is_hand_graded(meta: dict) -> bool:
    """An answer cell that is also a grade cell (nbgrader's manually graded answer)."""
    return bool(meta.get("grade")) and bool(meta.get("solution"))


def score(nb: Any, run: Run, job: Job) -> tuple[dict[str, float], dict[str, str]]:
    """Points for each graded cell: its maximum when it ran and reported no error, else 0."""
    scores = {gid: 0.0 for gid in job.max_scores}
    details = {gid: "not run" for gid in job.max_scores}
    for i, cell in enumerate(nb.cells):
        meta = nbgrader_meta(cell)
        gid = meta.get("grade_id")
        if gid in job.max_scores and is_hand_graded(meta):  # a person scores it, not the grader
            unanswered = cell.source.strip() in ("", WRITTEN_STUB)
            details[gid] = "not answered" if unanswered else HAND_GRADED
            continue
        if gid not in job.max_scores or i not in job.locked or cell.cell_type != "code":
            continue
        errors = _errors(cell)
        if run.status.get(i) == "ok" and not errors:
            scores[gid] = max(0.0, float(job.max_scores[gid]))
            details[gid] = "passed"
        elif errors:
            value = (str(errors[0].get("evalue", "")).strip().splitlines() or [""])[0]
            details[gid] = f"{errors[0].get('ename', 'Error')}: {value}"[:240]
        elif i in run.status:
            details[gid] = "failed"
    return scores, details


def grade_submission(job: Job) -> Result:
    """Grade one submission (the notebook in the job); always returns a Result."""
    start = time.monotonic()
    result = blank_result(job.student, job.max_scores, source=job.source)
    reasons: list[str] = []
    skip: dict[int, str] = {}
    nb, final = None, None
    for attempt in range(job.max_retries + 1):
        run = run_once(job, skip)
        result.kernel_pids += run.pids
        result.flags += [f for f in run.flags if f not in result.flags]
        for index in run.timeouts:
            if not (run.hung and index == run.dead):
                reasons.append(f"{cell_name(run.nb, index)} ran over {job.cell_timeout} s and "
                               "was interrupted (an endless loop?)")
        for index, chars in run.truncated.items():
            reasons.append(f"{cell_name(run.nb, index)} printed {chars:,} characters: output "
                           f"truncated to {job.max_output_chars:,}")
        if run.start_error:
            reasons.append(run.start_error)
            break
        nb, final = run.nb, run
        if run.dead is None:
            break
        if run.hung:
            what = f"it ran over {job.cell_timeout} s and ignored the interrupt"
        elif run.exit_signal == "SIGXCPU":
            what = f"the CPU time limit ({job.limits.cpu_seconds} s) was reached"
        elif run.exit_signal == "SIGXFSZ":
            what = f"the file size limit ({job.limits.file_size_mb:,} MB) was reached"
        else:
            what = "the kernel died (a crash, os._exit, a kill or out of memory)"
        culprit = run.dead
        if culprit in skip or attempt == job.max_retries or \
                time.monotonic() - start > job.submission_timeout:
            reasons.append(f"{cell_name(run.nb, culprit)}: {what}; gave up after {attempt + 1} "
                           "runs (later cells score zero)")
            break
        reasons.append(f"{cell_name(run.nb, culprit)}: {what}; the grader skipped it (it "
                       "scores zero) and graded the notebook again")
        skip[culprit] = f"The grader did not run this cell: {what}."
    result.seconds = time.monotonic() - start
    if nb is None or final is None:
        result.reasons = list(dict.fromkeys(reasons))
        return result
    result.scores, result.details = score(nb, final, job)
    reasons += [f"{gid}: a written answer ({job.max_scores[gid]:g} points), to grade by hand; "
                "it counts 0 until you do" for gid, d in result.details.items() if d == HAND_GRADED]
    reasons += limit_reasons(nb, job)
    if result.flags:
        reasons.append("check by hand: the tamper detector saw " + "; ".join(result.flags[:5]))
    result.reasons = list(dict.fromkeys(reasons))
    result.status = "partial" if skip or final.dead is not None else "ok"
    result.notebook = json.loads(json.dumps(nb))
    return result


def main() -> None:
    """The worker process: Jobs as JSON lines on stdin, one Result line on stdout for each.

    A worker grades its Dask thread's submissions one after another (its imports are paid
    once); each submission still has a fresh sandbox, kernel and work folder of its own, and its
    log goes to worker.log beside that work folder. It ends at the end of its input."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # nothing else reaches the result channel
    import jupyter_client.manager  # noqa: F401  (0.4 s with nbclient's: before the first job
    import nbclient  # noqa: F401  arrives, while a process started early waits for it)
    for line in sys.stdin:
        if not line.strip():
            continue
        job = Job.from_json(line)
        sys.stderr.flush()
        log_fd = os.open(os.path.join(os.path.dirname(job.work), "worker.log"),
                         os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        out.write(grade_submission(job).to_json() + "\n")
        out.flush()


if __name__ == "__main__":
    main()
