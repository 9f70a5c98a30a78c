"""Synthetic images pushed with a plain synchronous httpx.Client, independent of regsync.

Fixtures must not share code with what they test, or a bug could hide in both. Content is
deterministic (seeded), so pushing the same spec twice yields the same digests; layers are
random bytes, not tarballs (registries never look inside).

    push_image / push_index / push_index_info   one image, an OCI index or a Docker list
    push_nested_index                           an OCI index holding another index
    push_artifact / push_cosign                 referrers: OCI artifact with subject, cosign tag
    build_corpus(server, CorpusSpec(...))       many repos and tags sharing base layers
    manifest_digest (HEAD) / fetch_manifest / skopeo_digest (the independent peer's view)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import re
import subprocess
import tempfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self
from urllib.parse import urlsplit

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
ACCEPT = f"{OCI_INDEX}, {DOCKER_LIST}, {OCI_MANIFEST}, {DOCKER_MANIFEST}"
DEFAULT_PLATFORMS = (("linux", "amd64", ""), ("linux", "arm64", "v8"))
#: the platforms of Docker's official images, in the order a corpus takes them
CORPUS_PLATFORMS = (
    ("linux", "amd64", ""), ("linux", "arm64", "v8"), ("linux", "arm", "v7"),
    ("linux", "ppc64le", ""), ("linux", "s390x", ""), ("linux", "386", ""),
)
CHUNK = 8 * 1024 * 1024


class Endpoint(Protocol):
    """Where to push: a RegistryServer, a CountingProxy, or anything with these."""

    @property
    def url(self) -> str: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password(self) -> str | None: ...


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def random_layer(size: int, seed: int | str) -> bytes:
    """`size` deterministic pseudo-random bytes (incompressible, like real gzip layers)."""
    return random.Random(str(seed)).randbytes(size)


def stream_layer(size: int, seed: int | str, chunk: int = CHUNK) -> Iterator[bytes]:
    """A large layer as chunks, never all in memory: one random block, each chunk stamped with
    its index so no two chunks are equal."""
    block = random.Random(str(seed)).randbytes(min(chunk, size))
    index, left = 0, size
    while left > 0:
        n = min(chunk, left)
        yield (index.to_bytes(8, "big") + block[8:])[:n]
        index, left = index + 1, left - n


# auth: a tiny httpx.Auth flow (basic, or Bearer via the challenge's realm) ---------------------
_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


def _repo_scope(path: str) -> str:
    m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", path)
    if m:
        return f"repository:{m[1]}:pull,push"
    return "registry:catalog:*" if path.startswith("/v2/_catalog") else ""


class RegistryAuth(httpx.Auth):
    """Answers 401 challenges: Basic with the credentials, or Bearer by fetching a token for
    `repository:NAME:pull,push`; tokens are cached per scope."""

    requires_response_body = True

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self._credentials = credentials
        self._tokens: dict[str, str] = {}
        self._basic = False

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        scope = _repo_scope(request.url.path)
        self._apply(request, scope)
        response = yield request
        if response.status_code != 401:
            return
        challenge = response.headers.get("WWW-Authenticate", "")
        if challenge.lower().startswith("basic") and self._credentials:
            self._basic = True
        elif challenge.lower().startswith("bearer"):
            params = dict(_PARAM_RE.findall(challenge))
            query = {"service": params.get("service", "")} | ({"scope": scope} if scope else {})
            creds = self._credentials
            headers = {"Authorization": _basic_header(creds)} if creds else {}
            token_response = yield httpx.Request(
                "GET", params["realm"], params=query, headers=headers
            )
            if token_response.status_code != 200:
                return
            body = token_response.json()
            self._tokens[scope] = body.get("token") or body["access_token"]
        else:
            return
        self._apply(request, scope)
        yield request

    def _apply(self, request: httpx.Request, scope: str) -> None:
        if scope in self._tokens:
            request.headers["Authorization"] = f"Bearer {self._tokens[scope]}"
        elif self._basic and self._credentials:
            request.headers["Authorization"] = _basic_header(self._credentials)


def _basic_header(credentials: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(":".join(credentials).encode()).decode()


def _credentials(server: Endpoint | str) -> tuple[str, str] | None:
    if isinstance(server, str) or server.username is None or server.password is None:
        return None
    return (server.username, server.password)


# the pusher ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Blob:
    digest: str
    size: int


class Pusher:
    """A synchronous V2 client that can only push (and HEAD); one per batch of pushes."""

    def __init__(self, server: Endpoint | str) -> None:
        base = server if isinstance(server, str) else server.url
        self.client = httpx.Client(
            # plain-HTTP loopback only: verify=False spares ~50 ms of CA loading per client
            base_url=base, auth=RegistryAuth(_credentials(server)), timeout=120.0, verify=False
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc: type[BaseException] | None, val: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.client.close()

    def blob_exists(self, repo: str, digest: str) -> bool:
        return self.client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200

    def push_blob(self, repo: str, data: bytes) -> Blob:
        """Monolithic upload (POST, then PUT with the bytes), skipped when already present."""
        blob = Blob(sha256(data), len(data))
        if not self.blob_exists(repo, blob.digest):
            location = self._start_upload(repo)
            put = self.client.put(
                _with_digest(location, blob.digest), content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            _check(put, 201)
        return blob

    def push_blob_stream(self, repo: str, chunks: Iterable[bytes]) -> Blob:
        """Chunked upload (PATCH per chunk with Content-Range), hashing as bytes pass."""
        location, offset, hasher = self._start_upload(repo), 0, hashlib.sha256()
        for chunk in chunks:
            hasher.update(chunk)
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            }
            patch = self.client.patch(location, content=chunk, headers=headers)
            _check(patch, 202)
            location, offset = patch.headers["Location"], offset + len(chunk)
        blob = Blob("sha256:" + hasher.hexdigest(), offset)
        _check(self.client.put(_with_digest(location, blob.digest)), 201)
        return blob

    def push_manifest(self, repo: str, ref: str | None, body: bytes, media_type: str) -> str:
        """PUT under `ref` (a tag), or under its own digest when `ref` is None."""
        digest = sha256(body)
        put = self.client.put(
            f"/v2/{repo}/manifests/{ref or digest}", content=body,
            headers={"Content-Type": media_type},
        )
        _check(put, 201)
        return digest

    def _start_upload(self, repo: str) -> str:
        post = self.client.post(f"/v2/{repo}/blobs/uploads/")
        _check(post, 202)
        return post.headers["Location"]


def _with_digest(location: str, digest: str) -> httpx.URL:
    # httpx 0.28 `params=` REPLACES the query; the upload URL's `_state` must survive
    return httpx.URL(location).copy_merge_params({"digest": digest})


def _check(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} -> "
            f"{response.status_code} {response.text[:500]}"
        )


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _descriptor(media_type: str, blob: Blob, **extra: object) -> dict[str, object]:
    return {"mediaType": media_type, "digest": blob.digest, "size": blob.size, **extra}


def _platform(os: str, arch: str, variant: str) -> dict[str, str]:
    return {"os": os, "architecture": arch} | ({"variant": variant} if variant else {})


def image_manifest(
    pusher: Pusher, repo: str, layers: list[Blob], *, config: dict[str, object], oci: bool,
    layer_type: str | None = None,
) -> bytes:
    """Upload `config` and build the manifest over already-uploaded `layers`."""
    config_blob = pusher.push_blob(repo, _json(config))
    layer_type = layer_type or (OCI_LAYER if oci else DOCKER_LAYER)
    return _json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": _descriptor(OCI_CONFIG if oci else DOCKER_CONFIG, config_blob),
        "layers": [_descriptor(layer_type, b) for b in layers],
    })


def _image_config(layers: list[Blob], os: str, arch: str, variant: str) -> dict[str, object]:
    # layers are not gzipped, so each diff_id is the layer digest itself
    rootfs = {"type": "layers", "diff_ids": [b.digest for b in layers]}
    return _platform(os, arch, variant) | {"rootfs": rootfs, "config": {}}


def push_image_blobs(
    pusher: Pusher, repo: str, tag: str | None, layers: list[Blob], *,
    arch: str = "amd64", os: str = "linux", variant: str = "", oci: bool = False,
) -> Blob:
    """Manifest (and config) for layers already uploaded; returns the manifest's digest+size."""
    config = _image_config(layers, os, arch, variant)
    body = image_manifest(pusher, repo, layers, config=config, oci=oci)
    pusher.push_manifest(repo, tag, body, OCI_MANIFEST if oci else DOCKER_MANIFEST)
    return Blob(sha256(body), len(body))


def push_image(
    server: Endpoint | str, repo: str, tag: str | None, *, layers: list[bytes],
    arch: str = "amd64", os: str = "linux", variant: str = "", oci: bool = False,
) -> str:
    """Push one image (Docker schema2, or OCI with `oci=True`); returns its manifest digest.
    `tag=None` pushes by digest only."""
    with Pusher(server) as pusher:
        blobs = [pusher.push_blob(repo, data) for data in layers]
        return push_image_blobs(
            pusher, repo, tag, blobs, arch=arch, os=os, variant=variant, oci=oci
        ).digest


# multi-platform --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class IndexInfo:
    """What push_index_info pushed: the index digest, each platform's image digest
    ("os/arch[/variant]" -> digest) and each image's attestation manifest (image -> attestation)."""

    digest: str
    images: dict[str, str] = field(default_factory=dict)
    attestations: dict[str, str] = field(default_factory=dict)


def _attestation(pusher: Pusher, repo: str, image_digest: str) -> tuple[bytes, Blob]:
    """A buildx-style provenance attestation manifest for `image_digest`."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "_", "digest": {"sha256": image_digest.split(":", 1)[1]}}],
        "predicate": {"builder": {"id": "regsync-testbed"}},
    }
    layer = pusher.push_blob(repo, _json(statement))
    config = _image_config([layer], "unknown", "unknown", "")
    config_blob = pusher.push_blob(repo, _json(config))
    body = _json({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(OCI_CONFIG, config_blob),
        "layers": [_descriptor(IN_TOTO, layer, annotations={
            "in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})],
    })
    pusher.push_manifest(repo, None, body, OCI_MANIFEST)
    return body, Blob(sha256(body), len(body))


def push_index_info(
    server: Endpoint | str, repo: str, tag: str | None,
    platforms: Iterable[tuple[str, str, str]] = DEFAULT_PLATFORMS, *,
    oci: bool = True, attestations: bool = True, shared_base: bytes | None = None,
    layer_size: int = 2048, reference_type: str = "attestation-manifest",
) -> IndexInfo:
    """Push one image per platform (a shared base layer, if given, plus a unique one), then an
    OCI index (with attestation entries unless `attestations=False`) or, with `oci=False`, a
    Docker manifest list (never attestations: buildx only writes them into OCI indexes)."""
    with Pusher(server) as pusher:
        base = [pusher.push_blob(repo, shared_base)] if shared_base is not None else []
        return push_index_blobs(
            pusher, repo, tag, platforms, base=base, oci=oci, attestations=attestations,
            layer=lambda name: random_layer(layer_size, f"{repo}:{tag}:{name}"),
            reference_type=reference_type,
        )


def push_index_blobs(
    pusher: Pusher, repo: str, tag: str | None, platforms: Iterable[tuple[str, str, str]], *,
    base: list[Blob], layer: Callable[[str], bytes], oci: bool = True, attestations: bool = True,
    reference_type: str = "attestation-manifest",
) -> IndexInfo:
    """An index of one image per platform: the `base` blobs (already pushed) plus `layer(name)`
    of its own ("os/arch[/variant]"), with attestation entries as in push_index_info (their
    `vnd.docker.reference.type` is `reference_type`: Docker also writes e.g. `builder`)."""
    info = IndexInfo("")
    entries: list[dict[str, object]] = []
    for os, arch, variant in platforms:
        name = "/".join(p for p in (os, arch, variant) if p)
        own = pusher.push_blob(repo, layer(name))
        image = push_image_blobs(
            pusher, repo, None, base + [own], arch=arch, os=os, variant=variant, oci=oci
        )
        entries.append(_descriptor(
            OCI_MANIFEST if oci else DOCKER_MANIFEST, image,
            platform=_platform(os, arch, variant),
        ))
        info.images[name] = image.digest
    if oci and attestations:
        for digest in list(info.images.values()):
            _, att = _attestation(pusher, repo, digest)
            entries.append(_descriptor(OCI_MANIFEST, att, platform=_platform(
                "unknown", "unknown", ""), annotations={
                "vnd.docker.reference.digest": digest,
                "vnd.docker.reference.type": reference_type,
            }))
            info.attestations[digest] = att.digest
    media_type = OCI_INDEX if oci else DOCKER_LIST
    body = _json({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})
    index_digest = pusher.push_manifest(repo, tag, body, media_type)
    return IndexInfo(index_digest, info.images, info.attestations)


def push_index(
    server: Endpoint | str, repo: str, tag: str | None,
    platforms: Iterable[tuple[str, str, str]] = DEFAULT_PLATFORMS, *,
    oci: bool = True, attestations: bool = True, shared_base: bytes | None = None,
) -> str:
    """Like push_index_info, returning only the index digest."""
    return push_index_info(
        server, repo, tag, platforms, oci=oci, attestations=attestations, shared_base=shared_base
    ).digest


@dataclass(frozen=True, slots=True)
class NestedInfo:
    """What push_nested_index pushed: the outer index, the nested one, the outer's own images."""

    digest: str
    inner: IndexInfo
    images: dict[str, str] = field(default_factory=dict)


def push_nested_index(
    server: Endpoint | str, repo: str, tag: str | None, inner_tag: str | None, *,
    inner_platforms: Iterable[tuple[str, str, str]] = DEFAULT_PLATFORMS,
    outer_platforms: Iterable[tuple[str, str, str]] = (("linux", "arm", "v7"),),
) -> NestedInfo:
    """An OCI index holding another OCI index (with attestations, pushed under `inner_tag`, or
    by digest when None) and one image per `outer_platforms`, as regctl and some buildx
    pipelines write: the nested entry has no platform of its own."""
    inner = push_index_info(server, repo, inner_tag, inner_platforms)
    body, media_type = fetch_manifest(server, repo, inner.digest)
    entries: list[dict[str, object]] = [
        _descriptor(media_type, Blob(inner.digest, len(body)))
    ]
    images: dict[str, str] = {}
    with Pusher(server) as pusher:
        for os, arch, variant in outer_platforms:
            name = "/".join(p for p in (os, arch, variant) if p)
            own = pusher.push_blob(repo, random_layer(2048, f"{repo}:{tag}:outer:{name}"))
            image = push_image_blobs(pusher, repo, None, [own], arch=arch, os=os,
                                     variant=variant, oci=True)
            entries.append(_descriptor(OCI_MANIFEST, image, platform=_platform(os, arch, variant)))
            images[name] = image.digest
        outer = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        digest = pusher.push_manifest(repo, tag, outer, OCI_INDEX)
    return NestedInfo(digest, inner, images)


# referrers ---------------------------------------------------------------------------------------
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
COSIGN_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json"


def fallback_tag(digest: str) -> str:
    """The referrers schema's tag for `digest` (and cosign's base): sha256-<hex>."""
    return digest.replace(":", "-")


def push_artifact(
    server: Endpoint | str, repo: str, subject: str, *, artifact_type: str, payload: bytes,
    config_type: str = EMPTY_CONFIG, fallback: bool = True, subject_from: Endpoint | None = None,
) -> str:
    """An OCI 1.1 artifact whose `subject` is the manifest `subject` (by digest), pushed by
    digest; with `fallback`, also listed in the subject's `sha256-<hex>` index (created or
    extended), as oras and regctl do on a registry without the Referrers API. The subject is
    read from `subject_from` (same repository name) when it is not in `server`."""
    body, media_type = fetch_manifest(subject_from or server, repo, subject)
    with Pusher(server) as pusher:
        config = pusher.push_blob(repo, b"{}" if config_type == EMPTY_CONFIG else _json(
            {"created": "2026-01-01T00:00:00Z"}))
        layer = pusher.push_blob(repo, payload)
        manifest = _json({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": _descriptor(config_type, config),
            "layers": [_descriptor("application/octet-stream", layer)],
            "subject": _descriptor(media_type, Blob(subject, len(body))),
            "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
        })
        digest = pusher.push_manifest(repo, None, manifest, OCI_MANIFEST)
        if fallback:
            tag = fallback_tag(subject)
            existing = pusher.client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
            entries = existing.json()["manifests"] if existing.status_code == 200 else []
            entries.append(_descriptor(OCI_MANIFEST, Blob(digest, len(manifest)),
                                       artifactType=artifact_type))
            index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
            pusher.push_manifest(repo, tag, index, OCI_INDEX)
    return digest


def push_cosign(server: Endpoint | str, repo: str, subject: str, suffix: str = ".sig") -> str:
    """A cosign-style signature (or `.att`/`.sbom`) of `subject`: an image-shaped manifest
    tagged `sha256-<hex>.sig`, whose layer is the simple-signing payload."""
    payload = _json({"critical": {"image": {"docker-manifest-digest": subject},
                                  "type": "cosign container image signature"}, "optional": None})
    with Pusher(server) as pusher:
        config = pusher.push_blob(repo, _json({"architecture": "", "os": "", "config": {},
                                               "rootfs": {"type": "layers", "diff_ids": []}}))
        layer = pusher.push_blob(repo, payload)
        manifest = _json({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(COSIGN_LAYER, layer, annotations={
                "dev.cosignproject.cosign/signature": base64.b64encode(payload[:16]).decode()})],
        })
        return pusher.push_manifest(repo, fallback_tag(subject) + suffix, manifest, OCI_MANIFEST)


# corpus for benchmarks -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CorpusSpec:
    """Several repos x tags; each image = `shared_layers` base layers common to every repo plus
    one unique layer; optionally one large layer (streamed) in the first repo's first tag.

    With `platforms` > 0 every tag is instead an OCI index of that many images (each with a
    unique layer of its own) plus buildx-style attestations, as Docker's official images are."""

    repos: int = 3
    tags_per_repo: int = 4
    shared_layers: int = 2
    shared_layer_size: int = 64 * 1024
    unique_layer_size: int = 16 * 1024
    large_layer_size: int = 0
    repo_prefix: str = "corpus/app"
    seed: int = 0
    platforms: int = 0

    def repo_names(self) -> list[str]:
        return [f"{self.repo_prefix}{i}" for i in range(self.repos)]

    def tag_names(self) -> list[str]:
        return [f"1.{i}.0" for i in range(self.tags_per_repo)]


@dataclass(frozen=True, slots=True)
class Corpus:
    """What build_corpus pushed: repo -> tag -> manifest digest, and the large layer if any."""

    spec: CorpusSpec
    tags: dict[str, dict[str, str]]
    large_layer: Blob | None


def _unique_layer(size: int, seed: str, platform: str) -> bytes:
    return random_layer(size, f"{seed}:{platform}")


def build_corpus(server: Endpoint | str, spec: CorpusSpec) -> Corpus:
    """Push the corpus (deterministic for a given spec); memory stays at one chunk."""
    tags: dict[str, dict[str, str]] = {}
    large: Blob | None = None
    with Pusher(server) as pusher:
        for r, repo in enumerate(spec.repo_names()):
            base = [
                pusher.push_blob(repo, random_layer(spec.shared_layer_size, f"{spec.seed}:base{i}"))
                for i in range(spec.shared_layers)
            ]
            tags[repo] = {}
            for t, tag in enumerate(spec.tag_names()):
                seed = f"{spec.seed}:{repo}:{tag}"
                if spec.platforms:
                    tags[repo][tag] = push_index_blobs(
                        pusher, repo, tag, CORPUS_PLATFORMS[: spec.platforms], base=base,
                        layer=functools.partial(_unique_layer, spec.unique_layer_size, seed),
                    ).digest
                    continue
                layers = base + [pusher.push_blob(repo, random_layer(spec.unique_layer_size, seed))]
                if r == 0 and t == 0 and spec.large_layer_size > 0:
                    large = pusher.push_blob_stream(
                        repo, stream_layer(spec.large_layer_size, f"{spec.seed}:large")
                    )
                    layers.append(large)
                tags[repo][tag] = push_image_blobs(pusher, repo, tag, layers, oci=t % 2 == 1).digest
    return Corpus(spec, tags, large)


# reading back ----------------------------------------------------------------------------------
def manifest_digest(server: Endpoint | str, repo: str, ref: str) -> str | None:
    """The registry's Docker-Content-Digest for `ref` (HEAD only), or None when absent."""
    with Pusher(server) as pusher:
        head = pusher.client.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    if head.status_code == 404:
        return None
    _check(head, 200)
    return head.headers["Docker-Content-Digest"]


def fetch_manifest(server: Endpoint | str, repo: str, ref: str) -> tuple[bytes, str]:
    """(raw bytes, Content-Type) of a manifest."""
    with Pusher(server) as pusher:
        get = pusher.client.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
    _check(get, 200)
    return get.content, get.headers["Content-Type"]


def fetch_blob(server: Endpoint | str, repo: str, digest: str) -> bytes:
    """A (small) blob's bytes."""
    with Pusher(server) as pusher:
        get = pusher.client.get(f"/v2/{repo}/blobs/{digest}")
    _check(get, 200)
    return get.content


def skopeo_digest(
    url: str, repo: str, ref: str, creds: tuple[str, str] | None = None
) -> str:
    """sha256 of the raw manifest as skopeo (an independent client) sees it. Credentials go
    through a temporary auth file, never argv."""
    host = urlsplit(url).netloc or url
    image = f"docker://{host}/{repo}{'@' if ':' in ref else ':'}{ref}"
    auths = {host: {"auth": base64.b64encode(":".join(creds).encode()).decode()}} if creds else {}
    with tempfile.TemporaryDirectory(prefix="regsync-skopeo-") as tmp:
        authfile = Path(tmp) / "auth.json"
        authfile.write_text(json.dumps({"auths": auths}))
        result = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", "--authfile", str(authfile),
             image],
            capture_output=True, timeout=60, check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"skopeo inspect {image} failed: {result.stderr.decode()[-500:]}")
    return sha256(result.stdout)
