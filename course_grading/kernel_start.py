"""The first code a submission's kernel runs: limits, an unprivileged uid, the tamper detector.

Run as a file (python kernel_start.py SPEC) inside the sandbox, before ipykernel starts; it
imports nothing of the grader's. The detector is an audit hook (sys.addaudithook: it cannot be
removed) that compares, at every cell, what a notebook could use to fool its own tests with
what it was when the grader's first cell ran, and reports what it sees on the kernel's original
stderr (the grader's pipe), as lines the grader reads. In-kernel checks can always be fooled by
the kernel's own code; what they see is flagged for a look by hand, never trusted as a score.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import types
from importlib.machinery import PathFinder

PREFIX = b"\x1ecourse-grading "
SENTINEL = "course-grading-sentinel-"
WATCHED = "course_utils"
SHELL_ATTRS = ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
               "run_code", "run_ast_nodes", "transform_cell", "should_run_async", "CustomTB",
               "InteractiveTB", "SyntaxTB", "set_custom_exc", "displayhook", "display_pub")
BUILTINS = ("__import__", "isinstance", "issubclass", "getattr", "setattr", "hasattr", "type",
            "len", "abs", "all", "any", "round", "sum", "min", "max", "sorted", "float", "int",
            "bool", "str", "repr", "print", "exec", "eval", "compile", "open", "callable",
            "AssertionError", "Exception", "BaseException", "NotImplementedError")
LIBRARIES = ("IPython", "ipykernel", "matplotlib", "matplotlib_inline", "ipywidgets", "comm",
             "jupyter", "traitlets", "transformers", "torch", "pandas", "tqdm", "course_utils")
SHELL_LISTS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
# the audit events the hook reads; a lesson-01 kernel raises about 110,000 events, nearly all
# of them others (builtins.id, object.__getattr__, import, open of every module file, ...)
HOOKED = frozenset({"exec", "object.__setattr__", "open", "gc.get_referrers", "gc.get_objects",
                    "gc.get_referents"})


class Detector:
    """Records attempts to change what the grader relies on; reports them on a private fd."""

    def __init__(self, fd: int):
        self.fd = fd
        self.modules: dict[str, tuple[types.ModuleType, dict]] = {}
        self.names: dict[str, object] = {}
        self.shell_state: dict | None = None
        self.seen: set[str] = set()
        self.watched_ids: set[int] | None = None  # ids of the watched objects; None: to compute
        self.finder = WatchFinder(self)

    def say(self, **message: object) -> None:
        try:
            os.write(self.fd, PREFIX + json.dumps(message).encode() + b"\n")
        except OSError:
            pass

    def flag(self, what: str) -> None:
        if what not in self.seen:
            self.seen.add(what)
            self.say(seen=what)

    def watch(self, module: types.ModuleType) -> None:
        keep = {k: v for k, v in vars(module).items()
                if isinstance(v, (types.FunctionType, type, types.ModuleType))}
        self.modules[module.__name__] = (module, keep)
        self.watched_ids = None  # a new or reloaded module: its objects count from now

    # the audit hook -----------------------------------------------------------------------
    def hook(self, event: str, args: tuple) -> None:
        if event not in HOOKED:
            return
        try:
            if event == "exec":
                code = args[0] if args else None
                name = getattr(code, "co_filename", "")
                if "ipykernel_" in name or name.startswith("<ipython-input"):
                    self.check(code)
            elif event == "object.__setattr__" and len(args) >= 2:
                target = args[0]
                module = getattr(target, "__module__", "") or ""
                if isinstance(module, str) and module.split(".")[0] == WATCHED:
                    label = getattr(target, "__qualname__", type(target).__name__)
                    self.flag(f"{module}.{label}.{args[1]} was replaced")
            elif event == "open" and args and isinstance(args[0], str):
                if args[0].startswith("/proc/") and args[0].endswith("/mem"):
                    self.flag(f"opened {args[0]}")
            elif event in ("gc.get_referrers", "gc.get_objects", "gc.get_referents"):
                self.flag(f"called {event}() (it can reach the grader's own objects)")
        except Exception:  # an audit hook must never raise
            pass

    def check(self, code: types.CodeType) -> None:
        for name, (module, snapshot) in list(self.modules.items()):
            if sys.modules.get(name) is not module:
                self.flag(f"sys.modules[{name!r}] was replaced")
            current = vars(module)
            for key, value in snapshot.items():
                if current.get(key) is not value:
                    self.flag(f"{name}.{key} was replaced")
            if type(module) is not types.ModuleType and not isinstance(module, types.ModuleType):
                self.flag(f"{name} is no longer a module")
        for name in list(sys.modules):
            if (name == WATCHED or name.startswith(WATCHED + ".")) and name not in self.modules:
                self.flag(f"sys.modules[{name!r}] was set by hand")
        if self.finder not in sys.meta_path:
            self.flag("the import system (sys.meta_path) was changed")
        self.check_shell()
        consts = [c for c in code.co_consts if isinstance(c, str) and c.startswith(SENTINEL)]
        if consts:
            self.say(sentinel=consts[0])

    def check_shell(self) -> None:
        try:
            from IPython import get_ipython
        except ImportError:
            return
        shell = get_ipython()
        if shell is None:
            return
        state = self.shell_snapshot(shell)
        if self.shell_state is None:
            self.shell_state = state
            return
        for key, value in state.items():
            before = self.shell_state.get(key)
            if isinstance(value, dict) and isinstance(before, dict):
                for new in set(value) - set(before):  # hooks and transformers added
                    module = value[new]
                    if not module.startswith(LIBRARIES):
                        self.flag(f"IPython's {key} gained one from {module or 'the notebook'}")
            elif before != value:
                self.flag(f"IPython's {key} was changed")
        self.shell_state = state
        user_ns = getattr(shell, "user_ns", {})
        if self.watched_ids is None:  # the snapshots change only when watch() runs
            self.watched_ids = {id(m) for m, _ in self.modules.values()}
            self.watched_ids |= {id(v) for _, snap in self.modules.values() for v in snap.values()}
        watched_ids = self.watched_ids
        for name, value in list(user_ns.items()):
            if name.startswith("_"):
                continue
            before = self.names.get(name)
            if id(value) in watched_ids:
                if before is None:
                    self.names[name] = value
                elif before is not value:
                    self.names[name] = value
            elif before is not None and value is not before:
                self.flag(f"the name {name!r} (was {getattr(before, '__name__', '?')}) "
                          "was rebound to something else")
                self.names.pop(name, None)

    @staticmethod
    def shell_snapshot(shell: object) -> dict:
        state: dict = {}
        for key in SHELL_LISTS:
            state[key] = {id(x): _module(x) for x in getattr(shell, key, [])}
        events = getattr(getattr(shell, "events", None), "callbacks", {})
        for key, callbacks in events.items():
            state[f"{key} hooks"] = {id(x): _module(x) for x in callbacks}
        state["custom exceptions (set_custom_exc)"] = repr(getattr(shell, "custom_exceptions", ()))
        for key in SHELL_ATTRS:
            own = vars(shell).get(key)
            state[key] = (id(own) if own is not None else None,
                          id(getattr(type(shell), key, None)))
        import builtins

        for key in BUILTINS:
            state[f"builtins.{key}"] = id(getattr(builtins, key, None))
        return state


def _module(obj: object) -> str:
    """The module a hook or transformer was defined in ("" when it does not say)."""
    target = getattr(obj, "__func__", obj)
    module = getattr(target, "__module__", None) or getattr(type(target), "__module__", "")
    return module if isinstance(module, str) and module != "__main__" else ""


class WatchFinder:
    """Finds course_utils modules as usual and hands each to the detector once it is loaded."""

    def __init__(self, detector: Detector):
        self.detector = detector

    def find_spec(self, name: str, path: object = None, target: object = None) -> object:
        if name.split(".")[0] != WATCHED:
            return None
        spec = PathFinder.find_spec(name, path, target)  # type: ignore[arg-type]
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original, detector = loader.exec_module, self.detector

        def exec_module(module: types.ModuleType) -> None:
            original(module)
            detector.watch(module)

        loader.exec_module = exec_module
        return spec


def set_limits(limits: dict) -> None:
    """Address space, processes, file size and CPU time (soft = hard, except CPU: +5 s)."""
    mb = 2**20
    for kind, value in ((resource.RLIMIT_AS, limits["memory_mb"] * mb),
                        (resource.RLIMIT_NPROC, limits["processes"]),
                        (resource.RLIMIT_FSIZE, limits["file_size_mb"] * mb),
                        (resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 5))):
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.setrlimit(kind, (soft, hard))


def drop_to(uid: int) -> None:
    """Become `uid` (group too, no supplementary groups) for good."""
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def seed_home(home: str, grader: str) -> None:
    """Put the grader's matplotlib font list (kept beside this file) in the kernel's empty home,
    where matplotlib would otherwise build it again."""
    try:
        names = [n for n in os.listdir(grader) if n.startswith("fontlist-") and
                 n.endswith(".json")]
        if names:
            cache = os.path.join(home, ".cache", "matplotlib")
            os.makedirs(cache, exist_ok=True)
            shutil.copyfile(os.path.join(grader, names[0]), os.path.join(cache, names[0]))
    except OSError:  # no list, or no room: matplotlib builds its own
        pass


def main() -> None:
    """Limits, uid, the student's copy of the notebook, the detector; then the kernel."""
    spec = json.loads(sys.argv[1])
    with open(spec["connection_file"], encoding="utf-8") as f:  # readable only before the drop
        connection = f.read()
    report = os.dup(2)  # the grader's pipe, before ipykernel captures fd 2 for the notebook
    set_limits(spec["limits"])
    if spec.get("uid") is not None:
        drop_to(spec["uid"])
    home = spec["home"]
    private = os.path.join(home, ".kernel.json") if home.startswith("/home/") else \
        spec["connection_file"]
    if private != spec["connection_file"]:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, connection.encode())
        os.close(fd)
        try:
            shutil.copyfile(spec["notebook"], os.path.join(home, spec["name"]))
        except OSError:
            pass
        seed_home(home, os.path.dirname(os.path.abspath(__file__)))
    detector = Detector(report)
    sys.meta_path.insert(0, detector.finder)
    sys.addaudithook(detector.hook)
    detector.say(started=os.getpid())
    sys.argv = ["ipykernel_launcher", "-f", private]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
