"""A tiny read-only registry serving exactly the bytes a test gives it.

Only for answers the real registry cannot be made to give: distribution 2.8.2 validates what is
pushed, so it never serves a manifest that is not JSON, a Docker schema 1 manifest (its push is
refused) or one over 4 MiB. Everything else (5xx, resets, stalls, HTML pages, redirects, corrupt
bytes) comes from a `CountingProxy` fault in front of a real registry.

The fake speaks just enough of the V2 API for a source: `/v2/`, tag lists, HEAD/GET of
manifests by tag or digest (Docker-Content-Digest is the sha256 of the bytes served, as a real
registry would compute it), HEAD/GET of blobs, and the OCI 1.1 Referrers API (`add_referrer`;
distribution 2.8 lacks it), its answers in pages of `referrers_page` entries when set (`Link`
to the next). Anything else is 405 UNSUPPORTED, unless `writable`: then it is a target with the
Referrers API as well (blob uploads by POST, PATCH and PUT with the digest checked, mounts,
manifest PUTs; a manifest with a `subject` is listed among its subject's referrers and the PUT
answers `OCI-Subject`, as the distribution spec asks of a registry with the API).

Hostile behaviour the real registry cannot show: tag names outside the grammar (`tags` is set
directly), any answer at all from `hook(method, path, query)` (endless or foreign `Link`
pagination, huge or deeply nested bodies), and blobs that trickle (`trickle`: seconds between
bytes), the way a registry that holds a connection open without ever failing does.

    with FakeRegistry() as fake:
        fake.add_manifest("app", "1.0", b"{not json", OCI_MANIFEST)
        ... point a source registry at fake.url ...
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs

_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
_MANIFEST_RE = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB_RE = re.compile(r"^/v2/(?P<repo>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})$")
_TAGS_RE = re.compile(r"^/v2/(?P<repo>.+)/tags/list$")
_UPLOADS_RE = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<session>[0-9]*)$")
_REFERRERS_RE = re.compile(r"^/v2/(?P<repo>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class Served:
    """One answer body with its media type."""

    body: bytes
    media_type: str


Answer = tuple[int, Served, dict[str, str]]
#: (method, path, query) -> an answer, or None for the fake's own
Hook = Callable[[str, str, str], Answer | None]


class FakeRegistry:
    """Serves the manifests and blobs added to it; records (method, path) of every request."""

    def __init__(self, *, writable: bool = False) -> None:
        self.writable = writable
        self.referrers_page = 0  # entries per Referrers API page; 0: all in one
        self.uploads: dict[str, bytearray] = {}
        self.sessions = itertools.count()
        self.hook: Hook | None = None
        #: called with (method, path, query) before each answer, outside the fake's lock: it may
        #: wait (hold one answer back until the client has sent another request)
        self.gate: Callable[[str, str, str], None] | None = None
        self.trickle = 0.0  # seconds between the bytes of a blob body; 0: all at once
        self.manifests: dict[tuple[str, str], Served] = {}
        self.tags: dict[str, list[str]] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.requests: list[tuple[str, str]] = []
        #: the OCI 1.1 Referrers API: (repo, subject digest) -> descriptors of its referrers;
        #: `referrers_api = False` answers 404 as distribution 2.8 does
        self.referrers: dict[tuple[str, str], list[dict[str, object]]] = {}
        self.referrers_api = True
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FakeRegistry({self.url!r})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_manifest(self, repo: str, tag: str, body: bytes, media_type: str) -> str:
        """Serve `body` under `tag` and under its sha256 digest (returned)."""
        digest = sha256(body)
        with self._lock:
            self.manifests[(repo, tag)] = self.manifests[(repo, digest)] = Served(body, media_type)
            self.tags.setdefault(repo, []).append(tag)
        return digest

    def add_blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        with self._lock:
            self.blobs[(repo, digest)] = data
        return digest

    def add_image(self, repo: str, tag: str, layer: bytes) -> str:
        """A one-layer Docker image (config and layer blobs too); returns the manifest digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux",
                             "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": _DOCKER_MANIFEST,
            "config": {"mediaType": _DOCKER_CONFIG, "digest": self.add_blob(repo, config),
                       "size": len(config)},
            "layers": [{"mediaType": _DOCKER_LAYER, "digest": self.add_blob(repo, layer),
                        "size": len(layer)}],
        }).encode()
        return self.add_manifest(repo, tag, manifest, _DOCKER_MANIFEST)

    def add_referrer(
        self, repo: str, subject: str, payload: bytes, artifact_type: str,
        *, subject_type: str = _DOCKER_MANIFEST, subject_size: int = 0,
    ) -> str:
        """An OCI artifact (empty config, one layer) whose `subject` is `subject`, served by
        digest only (no tag, no fallback index): only the Referrers API finds it."""
        empty = b"{}"
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": _OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": self.add_blob(repo, empty), "size": len(empty)},
            "layers": [{"mediaType": "application/octet-stream",
                        "digest": self.add_blob(repo, payload), "size": len(payload)}],
            "subject": {"mediaType": subject_type, "digest": subject, "size": subject_size},
        }).encode()
        digest = sha256(manifest)
        with self._lock:
            self.manifests[(repo, digest)] = Served(manifest, _OCI_MANIFEST)
            self.referrers.setdefault((repo, subject), []).append({
                "mediaType": _OCI_MANIFEST, "digest": digest, "size": len(manifest),
                "artifactType": artifact_type})
        return digest

    def count(self, method: str, path_regex: str) -> int:
        pattern = re.compile(path_regex)
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and pattern.search(p))

    def __enter__(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self, exc: type[BaseException] | None, val: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()

    def answer(
        self, method: str, path: str, query: str = "", body: bytes = b"", content_type: str = ""
    ) -> Answer:
        """(status, body, extra headers) for a request: the whole fake, as a pure function."""
        if self.gate is not None:
            self.gate(method, path, query)
        with self._lock:
            self.requests.append((method, path))
            hooked = self.hook(method, path, query) if self.hook is not None else None
            if hooked is not None:
                return hooked
            if self.writable and method in ("POST", "PATCH", "PUT", "DELETE"):
                return _write(self, method, path, parse_qs(query), body, content_type)
            if path == "/v2/":
                return 200, Served(b"{}", "application/json"), {}
            if m := _TAGS_RE.match(path):
                tags = self.tags.get(m["repo"])
                if tags is None:
                    return _error(404, "NAME_UNKNOWN", "repository name not known to registry")
                body = json.dumps({"name": m["repo"], "tags": tags}).encode()
                return 200, Served(body, "application/json"), {}
            if (m := _REFERRERS_RE.match(path)) and self.referrers_api:
                return self._referrers_page(m["repo"], m["digest"], parse_qs(query))
            if m := _MANIFEST_RE.match(path):
                served = self.manifests.get((m["repo"], m["ref"]))
                if served is None:
                    return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                return 200, served, {"Docker-Content-Digest": sha256(served.body)}
            if m := _BLOB_RE.match(path):
                data = self.blobs.get((m["repo"], m["digest"]))
                if data is None:
                    return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
                served = Served(data, "application/octet-stream")
                return 200, served, {"Docker-Content-Digest": m["digest"]}
        return _error(405, "UNSUPPORTED", "the fake registry is read-only")


    def _referrers_page(self, repo: str, digest: str, query: dict[str, list[str]]) -> Answer:
        entries = self.referrers.get((repo, digest), [])
        headers: dict[str, str] = {}
        if self.referrers_page:
            page = int(query.get("page", ["0"])[0])
            size = self.referrers_page
            if (page + 1) * size < len(entries):
                headers["Link"] = f'</v2/{repo}/referrers/{digest}?page={page + 1}>; rel="next"'
            entries = entries[page * size : (page + 1) * size]
        body = json.dumps({"schemaVersion": 2, "mediaType": _OCI_INDEX,
                           "manifests": entries}).encode()
        return 200, Served(body, _OCI_INDEX), headers


def _write(
    fake: FakeRegistry, method: str, path: str, query: dict[str, list[str]], body: bytes,
    content_type: str,
) -> Answer:
    """A write to a `writable` fake (called with its lock held)."""
    if m := _UPLOADS_RE.match(path):
        repo, session = m["repo"], m["session"]
        if method == "POST":
            source = query.get("from", [""])[0]
            mounted = query.get("mount", [""])[0]
            if mounted and (source, mounted) in fake.blobs:
                fake.blobs[(repo, mounted)] = fake.blobs[(source, mounted)]
                return 201, Served(b"", "text/plain"), {"Location": f"/v2/{repo}/blobs/{mounted}"}
            session = str(next(fake.sessions))
            fake.uploads[session] = bytearray()
            return 202, Served(b"", "text/plain"), {
                "Location": f"/v2/{repo}/blobs/uploads/{session}"}
        if session not in fake.uploads:
            return _error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown")
        if method == "DELETE":
            del fake.uploads[session]
            return 204, Served(b"", "text/plain"), {}
        fake.uploads[session] += body
        if method == "PATCH":
            return 202, Served(b"", "text/plain"), {
                "Location": f"/v2/{repo}/blobs/uploads/{session}",
                "Range": f"0-{len(fake.uploads[session]) - 1}"}
        data = bytes(fake.uploads.pop(session))
        digest = query.get("digest", [""])[0]
        if sha256(data) != digest:
            return _error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
        fake.blobs[(repo, digest)] = data
        return 201, Served(b"", "text/plain"), {"Location": f"/v2/{repo}/blobs/{digest}",
                                                "Docker-Content-Digest": digest}
    if method == "PUT" and (m := _MANIFEST_RE.match(path)):
        return _put_manifest(fake, m["repo"], m["ref"], body, content_type)
    return _error(405, "UNSUPPORTED", "not supported by the fake registry")


def _put_manifest(fake: FakeRegistry, repo: str, ref: str, body: bytes, media_type: str) -> Answer:
    digest = sha256(body)
    if ref.startswith("sha256:") and ref != digest:
        return _error(400, "DIGEST_INVALID", "manifest digest did not match")
    served = Served(body, media_type)
    fake.manifests[(repo, digest)] = served
    if not ref.startswith("sha256:"):
        fake.manifests[(repo, ref)] = served
        if ref not in fake.tags.setdefault(repo, []):
            fake.tags[repo].append(ref)
    headers = {"Location": f"/v2/{repo}/manifests/{digest}", "Docker-Content-Digest": digest}
    document = json.loads(body)
    subject = document.get("subject") if isinstance(document, dict) else None
    if isinstance(subject, dict) and isinstance(subject.get("digest"), str):
        config = document.get("config")
        kind = document.get("artifactType") or (
            config.get("mediaType") if isinstance(config, dict) else None)
        listed = fake.referrers.setdefault((repo, subject["digest"]), [])
        if all(e["digest"] != digest for e in listed):
            listed.append({"mediaType": media_type, "digest": digest, "size": len(body),
                           **({"artifactType": kind} if kind else {})})
        headers["OCI-Subject"] = subject["digest"]
    return 201, Served(b"", "text/plain"), headers


def _error(status: int, code: str, message: str) -> tuple[int, Served, dict[str, str]]:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return status, Served(body, "application/json"), {}


def _handler_for(fake: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            status, served, extra = fake.answer(self.command, path, query, body,
                                                self.headers.get("Content-Type") or "")
            self.send_response_only(status)
            self.send_header("Content-Type", served.media_type)
            self.send_header("Content-Length", str(len(served.body)))
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            if not (fake.trickle and _BLOB_RE.match(path)):
                self.wfile.write(served.body)
                return
            try:
                for i in range(len(served.body)):
                    self.wfile.write(served.body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(fake.trickle)
            except OSError:  # the client gave up: so does the trickle
                self.close_connection = True

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass  # requests are recorded in fake.requests

    return Handler
