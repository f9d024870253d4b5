"""A loopback server that speaks the Hugging Face Hub's HTTP protocol, with faults on demand.

Point the libraries at it with HF_ENDPOINT. It answers what huggingface_hub 2.4 and
course_utils.hub ask:

- GET  /api/models/{repo}/revision/{rev}      -> {"id", "sha", "siblings": [{"rfilename"}]}
- GET  /api/models/{repo}/tree/{rev}[/{dir}]  -> [{"type", "oid", "size", "path", "lfs"?}]
- HEAD/GET /{repo}/resolve/{rev}/{path}       -> small files: 200, ETag = git blob id;
      LFS files: 302 to /cdn/{sha256} with X-Linked-Etag / X-Linked-Size; always X-Repo-Commit
- GET  /cdn/{sha256}                          -> the bytes, honouring Range (206)
- errors carry X-Error-Code (GatedRepo, RepoNotFound, RevisionNotFound, EntryNotFound)

Use it (this is what issue 20's "real-checkpoint claims" checks can reuse):

    from tests.hub_server import Faults, course_repos, serve_hub
    with serve_hub(course_repos(["sentiment"]), Faults(status=500)) as server:
        os.environ["HF_ENDPOINT"] = server.url
        ...
        server.requests        # [(method, path, range header or "")] in arrival order
        server.fetched()       # repo file paths whose bytes were sent

`course_repos(roles)` serves each role's offline stand-in under the registry's repo id and
pinned commit, beside decoys that must never be fetched: pickled, TF, Flax and ONNX weights, a
2 GiB fake checkpoint (listed, never materialised), a remote-code module, a README, and a nested
onnx/ folder with its own config.json and tokenizer.json. `main` points to another commit that
has no safetensors at all (a moved ref).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional, Union
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".onnx", ".model", ".ot")


@dataclass(frozen=True)
class Lazy:
    """A file too big to hold: listed with this size, its bytes never expected to be asked for."""

    size: int


Content = Union[bytes, Lazy]


@dataclass
class Repo:
    """A model repository: commits (sha -> {path: content}) and refs (name -> sha)."""

    repo_id: str
    commits: dict[str, dict[str, Content]]
    refs: dict[str, str] = field(default_factory=dict)


@dataclass
class Faults:
    """What goes wrong. Defaults: nothing."""

    black_hole: bool = False  # accept every connection, never answer
    trickle: float = 0.0  # seconds between single bytes of every body (0: full speed)
    trickle_files_only: bool = False  # trickle file bodies only, answer the API at full speed
    status: int = 0  # answer every request with this HTTP status
    retry_after: Optional[int] = None  # with status 429: the Retry-After header
    gated: tuple[str, ...] = ()  # repo ids answered 401 GatedRepo
    missing_revision: tuple[str, ...] = ()  # repo ids whose every revision is unknown (404)
    truncate: int = 0  # stop this many CDN bodies halfway (Content-Length promises all)
    corrupt: int = 0  # serve this many CDN bodies with wrong bytes of the right size
    ignore_range: bool = False  # answer Range requests with the whole file (a careless proxy)
    stall_after: int = 0  # with truncate: instead of closing, stall (never finish) the body
    only_paths: tuple[str, ...] = ()  # apply truncate/corrupt only to these repo file paths


def git_blob_id(data: bytes) -> str:
    """The git blob sha1 of `data` (the oid and ETag the Hub gives small files)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


class _Blob:
    def __init__(self, path: str, content: Content):
        self.path = path
        self.content = content
        self.size = content.size if isinstance(content, Lazy) else len(content)
        self.lfs = path.endswith(LFS_SUFFIXES) or isinstance(content, Lazy)
        if isinstance(content, Lazy):
            self.sha256 = hashlib.sha256(path.encode()).hexdigest()  # never verified: never sent
        else:
            self.sha256 = hashlib.sha256(content).hexdigest()
        pointer = _lfs_pointer(self.sha256, self.size)
        self.oid = git_blob_id(pointer) if self.lfs else git_blob_id(content)  # type: ignore[arg-type]

    def entry(self) -> dict:
        entry = {"type": "file", "oid": self.oid, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


_BLOBS: dict[tuple[str, int], _Blob] = {}  # checksums computed once per content object


def _blob(path: str, content: Content) -> _Blob:
    key = (path, id(content))
    if key not in _BLOBS or _BLOBS[key].content is not content:
        _BLOBS[key] = _Blob(path, content)
    return _BLOBS[key]


class HubServer(ThreadingHTTPServer):
    """The server object `serve_hub` yields: its url, its log, and its faults (mutable)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, repos: list[Repo], faults: Faults):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos = {repo.repo_id: repo for repo in repos}
        self.faults = faults
        self.requests: list[tuple[str, str, str]] = []
        self.sent: list[str] = []  # repo file paths whose bytes went out (fully or not)
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.cdn: dict[str, _Blob] = {}
        self.blobs: dict[tuple[str, str], dict[str, _Blob]] = {}
        for repo in repos:
            for sha, files in repo.commits.items():
                blobs = {p: _blob(p, c) for p, c in files.items()}
                self.blobs[(repo.repo_id, sha)] = blobs
                for blob in blobs.values():
                    if blob.lfs:
                        self.cdn[blob.sha256] = blob

    def handle_error(self, request, client_address) -> None:  # a client that hung up: expected
        pass

    @property
    def url(self) -> str:
        """The value for HF_ENDPOINT."""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def fetched(self) -> list[str]:
        """Repo file paths whose bytes were sent, in order."""
        with self.lock:
            return list(self.sent)

    def resolve(self, repo_id: str, rev: str) -> Optional[str]:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        if rev in repo.commits:
            return rev
        return repo.refs.get(rev)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HubServer

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    # -- plumbing
    def _error(self, status: int, code: str = "", message: str = "") -> None:
        body = json.dumps({"error": message or f"HTTP {status}"}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        if status == 429 and self.server.faults.retry_after is not None:
            self.send_header("Retry-After", str(self.server.faults.retry_after))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self._write(body)

    def _write(self, data: bytes, file_body: bool = False) -> None:
        faults = self.server.faults
        if faults.trickle and (file_body or not faults.trickle_files_only):
            for i in range(len(data)):
                if self.server.closing.is_set():
                    return
                self.wfile.write(data[i:i + 1])
                self.wfile.flush()
                time.sleep(faults.trickle)
        else:
            self.wfile.write(data)

    def _json(self, payload: object, headers: Optional[dict] = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        server = self.server
        with server.lock:
            server.requests.append((self.command, self.path, self.headers.get("Range", "")))
        faults = server.faults
        if faults.black_hole:
            server.closing.wait()
            self.close_connection = True
            return
        if faults.status:
            self._error(faults.status)
            return
        path = unquote(urlparse(self.path).path)
        if path.startswith("/cdn/"):
            return self._cdn(path[len("/cdn/"):])
        if path.startswith("/api/models/"):
            return self._api(path[len("/api/models/"):])
        parts = path.lstrip("/").split("/", 4)  # org, name, "resolve", rev..., file
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], parts[4])
        self._error(404, "", "no such route")

    def _repo_rev(self, repo_id: str, rev: str) -> Optional[str]:
        faults = self.server.faults
        if repo_id in faults.gated:
            self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have "
                                          "access to it and be authenticated to access it.")
            return None
        if repo_id not in self.server.repos:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        sha = None if repo_id in faults.missing_revision else self.server.resolve(repo_id, rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return sha

    def _api(self, rest: str) -> None:
        # {org}/{name}/revision/{rev}  or  {org}/{name}/tree/{rev}[/{dir}]
        org, name, kind, tail = (rest.split("/", 3) + ["", "", "", ""])[:4]
        repo_id = f"{org}/{name}"
        # a ref such as refs/pr/3 arrives %2F-encoded in revision/ URLs, decoded here already
        if kind == "revision":
            sha = self._repo_rev(repo_id, tail)
            if sha:
                blobs = self.server.blobs[(repo_id, sha)]
                self._json({"id": repo_id, "sha": sha,
                            "siblings": [{"rfilename": p} for p in sorted(blobs)]})
        elif kind == "tree":
            rev, _, folder = tail.partition("/")
            if rev == "refs" and folder.startswith("pr/"):
                pr, _, folder = folder[3:].partition("/")
                rev = f"refs/pr/{pr}"
            sha = self._repo_rev(repo_id, rev)
            if sha:
                self._json(_tree(self.server.blobs[(repo_id, sha)], folder))
        else:
            self._error(404, "", "no such api route")

    def _resolve(self, repo_id: str, rev_and_file: str, rest: str) -> None:
        rev, filename = rev_and_file, rest
        if rev == "refs" and rest.startswith("pr/"):
            pr, _, filename = rest[3:].partition("/")
            rev = f"refs/pr/{pr}"
        sha = self._repo_rev(repo_id, rev)
        if not sha:
            return
        blob = self.server.blobs[(repo_id, sha)].get(filename)
        if blob is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist at {rev}")
            return
        headers = {"X-Repo-Commit": sha}
        if blob.lfs:
            self.send_response(302)
            self.send_header("Location", f"/cdn/{blob.sha256}")
            self.send_header("ETag", f'"{blob.oid}"')
            self.send_header("X-Linked-Etag", f'"{blob.sha256}"')
            self.send_header("X-Linked-Size", str(blob.size))
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._body(blob, {**headers, "ETag": f'"{blob.oid}"'})

    def _cdn(self, sha256: str) -> None:
        blob = self.server.cdn.get(sha256)
        if blob is None:
            self._error(404, "EntryNotFound", "no such object")
            return
        self._body(blob, {"ETag": f'"{sha256}"'})

    def _body(self, blob: _Blob, headers: dict) -> None:
        server, faults = self.server, self.server.faults
        if isinstance(blob.content, Lazy):
            data = b""  # listed decoy: its request is recorded, no 2 GiB are produced
        else:
            data = blob.content
        start = 0
        wanted = self.headers.get("Range", "")
        if wanted.startswith("bytes=") and not faults.ignore_range:
            start = int(wanted[len("bytes="):].split("-")[0] or 0)
        body = data[start:] if self.command != "HEAD" else b""
        applies = not faults.only_paths or blob.path in faults.only_paths
        truncate = corrupt = False
        if self.command == "GET" and applies:
            with server.lock:
                server.sent.append(blob.path)
                if faults.truncate > 0:
                    faults.truncate -= 1
                    truncate = True
                elif faults.corrupt > 0:
                    faults.corrupt -= 1
                    corrupt = True
        if corrupt and body:
            body = bytes(b ^ 0x5A for b in body)  # same size, wrong bytes
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{blob.size - 1}/{blob.size}")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        if truncate:
            self._write(body[: len(body) // 2], file_body=True)
            if faults.stall_after:
                server.closing.wait()
            self.close_connection = True
            return
        self._write(body, file_body=True)


def _tree(blobs: dict[str, _Blob], folder: str) -> list[dict]:
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    entries, folders = [], set()
    for path, blob in sorted(blobs.items()):
        if not path.startswith(prefix):
            continue
        rest = path[len(prefix):]
        if "/" in rest:
            folders.add(prefix + rest.split("/")[0])
        else:
            entries.append(blob.entry())
    for name in sorted(folders):
        entries.append({"type": "directory", "oid": git_blob_id(name.encode()), "size": 0,
                        "path": name})
    return entries


@contextlib.contextmanager
def serve_hub(repos: list[Repo], faults: Optional[Faults] = None) -> Iterator[HubServer]:
    """Serve `repos` on 127.0.0.1 (a free port) in a thread; stop and release every handler after."""
    server = HubServer(repos, faults or Faults())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


# ---------------------------------------------------------------- the course's repositories

DECOYS: dict[str, Content] = {
    "pytorch_model.bin": b"PICKLE DECOY: must never be fetched\n" * 64,
    "tf_model.h5": b"TF DECOY\n" * 64,
    "flax_model.msgpack": b"FLAX DECOY\n" * 64,
    "model.onnx": b"ONNX DECOY\n" * 64,
    "model.fp32-full.safetensors": Lazy(2 * 1024 ** 3),  # a 2 GiB checkpoint
    "modeling_custom.py": b"raise SystemExit('remote code ran')\n",
    "README.md": b"# decoy model card\n",
    "onnx/config.json": b'{"decoy": "nested onnx config"}\n',
    "onnx/tokenizer.json": b'{"decoy": "nested onnx tokenizer"}\n',
    "onnx/model.onnx": b"NESTED ONNX DECOY\n" * 64,
}
NO_WEIGHTS_COMMIT = "0" * 39 + "1"  # where `main` has moved: no safetensors


def role_files(role: str) -> dict[str, bytes]:
    """The root files of a role's offline stand-in (the real MiniLM for "features")."""
    from course_utils import hub, standins

    folder = standins.build(role)
    names = hub.REQUIRED_FILES + hub.OPTIONAL_FILES
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())
            if p.is_file() and p.name in names}


def course_repos(roles: Optional[list[str]] = None, decoys: bool = True) -> list[Repo]:
    """The registry's repositories at their pinned revisions, holding the stand-ins and decoys."""
    from course_utils import registry

    repos = []
    for role in roles or list(registry.REGISTRY):
        s = registry.REGISTRY[role]
        files: dict[str, Content] = dict(role_files(role))
        if decoys:
            files.update(DECOYS)
        commit = s.revision if s.pinned else hashlib.sha1(f"{s.hub_id}@{s.revision}".encode()).hexdigest()
        moved = {p: c for p, c in files.items() if not p.endswith(".safetensors")}
        refs = {"main": NO_WEIGHTS_COMMIT}
        if not s.pinned:
            refs[s.revision] = commit
        repos.append(Repo(s.hub_id, {commit: files, NO_WEIGHTS_COMMIT: moved}, refs))
    return repos
